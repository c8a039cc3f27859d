package sidecar

import (
	"syscall"
	"unsafe"
)

// rawSyscalls: Linux sockets are read and written with raw system calls (see sockIO).
const rawSyscalls = true

// rawRead is read(2) on a non-blocking socket without the scheduler's syscall bookkeeping: it
// never blocks, so the P need not be released.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), errno
}

// rawWrite is write(2) on a non-blocking socket, as rawRead.
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
	return int(n), errno
}

// rawPeekEmpty reports whether a non-blocking socket has nothing to read and is not closed:
// recv(MSG_PEEK|MSG_DONTWAIT) of one byte fails with EAGAIN.
func rawPeekEmpty(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	return errno == syscall.EAGAIN
}
