//go:build !linux

package sidecar

import "syscall"

// rawSyscalls: elsewhere sockIO uses net.Conn's own Read and Write.
const rawSyscalls = false

func rawRead(uintptr, []byte) (int, syscall.Errno)  { return 0, syscall.ENOSYS }
func rawWrite(uintptr, []byte) (int, syscall.Errno) { return 0, syscall.ENOSYS }

// rawPeekEmpty reports whether a non-blocking socket has nothing to read and is not closed.
func rawPeekEmpty(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
}
