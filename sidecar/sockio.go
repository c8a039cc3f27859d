package sidecar

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// sockIO is how the request path reads and writes its sockets. A read or write through net.Conn
// enters the system call with the scheduler told (entersyscall), so that sysmon can hand the
// goroutine's P to another thread when the call lasts over 20 µs. On loopback a write runs the
// receiver's TCP stack too, and the kernel may preempt the proxy there in favour of the
// application it just woke: calls cross that line often, and every hand-off costs a futex
// wake-up, a spinning thread and a context switch, the futex and nanosleep calls that showed in
// the proxy's system call profile. sockIO issues the same non-blocking read and write through
// syscall.RawConn with raw system calls instead (rawRead, rawWrite): the P stays with the
// goroutine, and waiting for readiness, deadlines and Close behave as with net.Conn, since
// RawConn waits on the same poller. The raw calls cannot block the P for long: Go's sockets
// are non-blocking, so a call that would wait returns EAGAIN and the goroutine parks on the
// poller as before. A connection without a RawConn (tests' fakes), or one on another system
// than Linux, uses its own Read and Write.
type sockIO struct {
	nc    net.Conn
	raw   syscall.RawConn // nil when nc has none
	rawIO bool            // Read and Write use raw system calls

	// The calls in progress, for the callbacks, which are made once per connection so that a
	// call allocates nothing. A read and a write may run at once (as on a net.Conn), so each
	// has its own.
	rd, wr       ioCall
	readFn, wrFn func(fd uintptr) bool
	tryFn        func(fd uintptr) bool // writeOut without waiting
	awaitFn      func(fd uintptr) bool
	written      bool // writeAwaitRead: the write is done, the next call ends the wait

	// drained: the last read found the socket empty (EAGAIN, or fewer bytes than it asked
	// for). On a stream socket a short read means the receive queue was empty at that moment,
	// so anything later raises the poller's readiness anew (nginx clears its ready flag the
	// same way).
	drained bool

	// inWait is set while the caller runs inside a RawConn read of its own (clientConn's
	// serveInWait), on fd: Read then reads once, never waits, and fails with errWouldBlock
	// when nothing is there; Write writes at once what the socket takes.
	inWait bool
	fd     uintptr

	// inLoop: the event loop owns fd (toLoop); nc and raw are nil. inWait is set too.
	inLoop  bool
	pending []byte // loopWrite's: what the socket did not take yet

	fillBr  *bufio.Reader // writeAwaitRead's: the answer is read into it, inside the wait
	fillErr error         // what that read failed with, for the next Read

	bound writeBound // see Write
}

// errWouldBlock is a read inside a poller wait (sockIO.inWait) that found nothing: the caller
// must return from its RawConn callback to wait.
var errWouldBlock = errors.New("sidecar: no data yet (read inside a poller wait)")

// writeBound bounds a write that the socket does not take at once: it must complete within
// stall plus perByte for each byte (Config.WriteTimeout and MinWriteRate). A zero stall means no
// bound.
type writeBound struct {
	stall, perByte time.Duration
}

// deadline is the deadline of a write of n bytes that the socket did not take at once.
func (b writeBound) deadline(n int) time.Time {
	return time.Now().Add(b.stall + time.Duration(n)*b.perByte)
}

type ioCall struct {
	buf   []byte
	n     int
	errno syscall.Errno
}

// newSockIO wraps nc, its writes bounded by bound.
func newSockIO(nc net.Conn, bound writeBound) *sockIO {
	s := &sockIO{bound: bound}
	s.attach(nc)
	return s
}

// attach makes s read and write nc (again, for a socket the event loop hands back).
func (s *sockIO) attach(nc net.Conn) {
	s.nc, s.raw, s.rawIO, s.inLoop, s.inWait = nc, nil, false, false, false
	if sc, ok := nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			s.raw, s.rawIO = raw, rawSyscalls
			if s.readFn == nil {
				s.readFn, s.wrFn, s.awaitFn = s.read, s.writeOut, s.writeThenWait
				s.tryFn = func(fd uintptr) bool { s.writeOut(fd); return true }
			}
		}
	}
}

// toLoop makes s read and write fd, which the event loop owns: reads never wait, and what a
// write cannot hand the socket at once is kept in pending, for the goroutine the connection
// goes back to (see eventLoop).
func (s *sockIO) toLoop(fd uintptr) {
	s.nc, s.raw = nil, nil
	s.rawIO, s.inLoop, s.inWait, s.fd = true, true, true, fd
}

func (s *sockIO) Read(p []byte) (int, error) {
	if !s.rawIO {
		return s.nc.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if s.inWait {
		return s.readNow(p)
	}
	if err := s.fillErr; err != nil {
		s.fillErr = nil
		return 0, err
	}
	s.rd = ioCall{buf: p}
	err := s.raw.Read(s.readFn)
	n, errno := s.rd.n, s.rd.errno
	s.rd.buf = nil
	switch {
	case err != nil:
		return 0, err
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// Write writes p whole. A write the socket does not take at once (its buffer is full: the peer
// reads slowly or not at all) gets a deadline from the stall bound, set only then, so that the
// usual write costs no timer update.
func (s *sockIO) Write(p []byte) (int, error) {
	if !s.rawIO {
		if s.bound.stall <= 0 {
			return s.nc.Write(p)
		}
		s.nc.SetWriteDeadline(s.bound.deadline(len(p)))
		n, err := s.nc.Write(p)
		s.nc.SetWriteDeadline(time.Time{})
		return n, err
	}
	if s.inLoop {
		return s.loopWrite(p)
	}
	s.wr = ioCall{buf: p}
	if s.inWait && s.writeOut(s.fd) && s.wr.errno == 0 {
		// Inside the caller's RawConn read the fd is held: the write needs no RawConn call of
		// its own unless the socket buffer is full.
		s.wr.buf = nil
		return len(p), nil
	}
	var err error
	if s.bound.stall <= 0 {
		err = s.raw.Write(s.wrFn)
	} else if err = s.raw.Write(s.tryFn); err == nil && s.wr.errno == 0 && s.wr.n < len(p) {
		s.nc.SetWriteDeadline(s.bound.deadline(len(p) - s.wr.n))
		err = s.raw.Write(s.wrFn)
		s.nc.SetWriteDeadline(time.Time{})
	}
	n, errno := s.wr.n, s.wr.errno
	s.wr.buf = nil
	if err == nil && errno != 0 {
		err = os.NewSyscallError("write", errno)
	}
	return n, err
}

// loopWrite is Write on a socket the event loop owns: what the socket does not take at once is
// kept in pending, and so is everything written after it, so that the order holds. The loop
// writes at most one response before it sees pending and hands the connection to a goroutine,
// which writes pending out first (flushPending), bounded as any write.
func (s *sockIO) loopWrite(p []byte) (int, error) {
	if len(s.pending) > 0 {
		s.pending = append(s.pending, p...)
		return len(p), nil
	}
	s.wr = ioCall{buf: p}
	s.writeOut(s.fd)
	n, errno := s.wr.n, s.wr.errno
	s.wr.buf = nil
	if errno != 0 {
		return n, os.NewSyscallError("write", errno)
	}
	if n < len(p) {
		s.pending = append(s.pending, p[n:]...)
	}
	return len(p), nil
}

// flushPending writes what loopWrite kept, once the socket is back with the poller.
func (s *sockIO) flushPending() error {
	if len(s.pending) == 0 {
		return nil
	}
	_, err := s.Write(s.pending)
	s.pending = nil
	return err
}

// read is the RawConn callback of Read: false means "wait until readable, then call again".
func (s *sockIO) read(fd uintptr) bool {
	for {
		n, errno := rawRead(fd, s.rd.buf)
		switch errno {
		case 0:
			s.rd.n, s.drained = n, n < len(s.rd.buf)
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.rd.errno = errno
			return true
		}
	}
}

// readNow is Read inside the caller's own RawConn read: one read that does not wait.
func (s *sockIO) readNow(p []byte) (int, error) {
	for {
		n, errno := rawRead(s.fd, p)
		switch errno {
		case 0:
			if n == 0 {
				return 0, io.EOF
			}
			s.drained = n < len(p)
			return n, nil
		case syscall.EINTR:
		case syscall.EAGAIN:
			s.drained = true
			return 0, errWouldBlock
		default:
			return 0, os.NewSyscallError("read", errno)
		}
	}
}

// writeOut is the RawConn callback of Write: it writes what is left of the buffer and reports
// false (wait for writability, then call again) when the socket buffer is full.
func (s *sockIO) writeOut(fd uintptr) bool {
	for s.wr.n < len(s.wr.buf) && s.wr.errno == 0 {
		n, errno := rawWrite(fd, s.wr.buf[s.wr.n:])
		switch errno {
		case 0:
			s.wr.n += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			s.wr.errno = errno
		}
	}
	return true
}

// writeAwaitRead writes p whole and returns once the socket has something to read, for a request
// whose answer is read next: the write happens inside a RawConn read, after the poller's
// readiness was reset, so the answer (which cannot arrive before the request left) always wakes
// the wait, and the read that would find nothing and only then wait is saved. When br (whose
// reader is s) is set, the answer is read into it inside the same wait, which saves a second
// RawConn read; otherwise the next Read finds it. When the socket buffer takes only part of p,
// the rest goes through Write and the answer is read as usual.
func (s *sockIO) writeAwaitRead(p []byte, br *bufio.Reader) error {
	if !s.rawIO {
		_, err := s.Write(p)
		return err
	}
	s.wr, s.written, s.fillBr = ioCall{buf: p}, false, br
	err := s.raw.Read(s.awaitFn)
	n, errno := s.wr.n, s.wr.errno
	s.wr.buf, s.fillBr = nil, nil
	switch {
	case err != nil && n == len(p):
		return nil // the wait failed (a deadline, Close): the next Read says so
	case err != nil:
		return err
	case errno != 0:
		return os.NewSyscallError("write", errno)
	case n < len(p):
		_, err = s.Write(p[n:])
		return err
	}
	return nil
}

// writeThenWait is the RawConn read callback of writeAwaitRead: the first call writes (false:
// wait for readability), the next one ends the wait. A write the socket buffer cuts short ends
// at once.
func (s *sockIO) writeThenWait(fd uintptr) bool {
	if s.written {
		return s.fillNow(fd)
	}
	if !s.writeOut(fd) || s.wr.errno != 0 {
		return true
	}
	s.written = true
	return false
}

// fillNow reads what has arrived into fillBr without waiting, and reports false (wait on) when
// nothing had: the wake-up was for readiness an earlier read had already used up.
func (s *sockIO) fillNow(fd uintptr) bool {
	if s.fillBr == nil {
		return true
	}
	s.inWait, s.fd = true, fd
	_, err := s.fillBr.Peek(1)
	s.inWait = false
	if err == errWouldBlock {
		return false
	}
	s.fillErr = err // bufio hands an error out once: the next Read returns it
	return true
}
