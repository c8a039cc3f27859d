package sidecar

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// tcpPair returns both ends of a loopback TCP connection; both are closed when the test ends.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// TestSockIOBehavesAsNetConn: the raw system calls of sockIO keep net.Conn's contract, which the
// request path relies on: EOF at the peer's close, deadlines, Close from another goroutine,
// resets, and whole writes larger than the socket buffer.
func TestSockIOBehavesAsNetConn(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, s *sockIO, peer net.Conn)
	}{
		{"reads what the peer wrote, then EOF at its close", func(t *testing.T, s *sockIO, peer net.Conn) {
			go func() { peer.Write([]byte("hello")); peer.Close() }()
			got, err := io.ReadAll(s)
			if err != nil || string(got) != "hello" {
				t.Errorf("ReadAll = %q, %v", got, err)
			}
		}},
		{"a read waits for data", func(t *testing.T, s *sockIO, peer net.Conn) {
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 8)
				n, err := s.Read(buf)
				if err != nil || string(buf[:n]) != "late" {
					t.Errorf("Read = %q, %v", buf[:n], err)
				}
			}()
			peer.Write([]byte("late"))
			<-done
		}},
		{"an empty read returns at once", func(t *testing.T, s *sockIO, peer net.Conn) {
			if n, err := s.Read(nil); n != 0 || err != nil {
				t.Errorf("Read(nil) = %d, %v", n, err)
			}
		}},
		{"a read deadline ends a waiting read", func(t *testing.T, s *sockIO, peer net.Conn) {
			s.nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Read after the deadline: %v", err)
			}
		}},
		{"Close from another goroutine ends a waiting read", func(t *testing.T, s *sockIO, peer net.Conn) {
			done := make(chan error, 1)
			go func() {
				_, err := s.Read(make([]byte, 1))
				done <- err
			}()
			// Whether Close comes before or during the read, the read fails with ErrClosed.
			s.nc.Close()
			if err := <-done; !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read on a closed connection: %v", err)
			}
		}},
		{"a reset is ECONNRESET", func(t *testing.T, s *sockIO, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Write([]byte("x"))
			peer.Close() // unread data on close: the peer resets
			var err error
			for err == nil {
				_, err = s.Read(make([]byte, 16))
			}
			if !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("Read after a reset: %v", err)
			}
			if _, err := s.Write(bytes.Repeat([]byte("y"), 1<<20)); !isStaleConnErr(err) {
				t.Errorf("Write after a reset: %v", err)
			}
		}},
		{"a write larger than the socket buffers arrives whole", func(t *testing.T, s *sockIO, peer net.Conn) {
			want := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
			got := make(chan []byte, 1)
			go func() {
				b, _ := io.ReadAll(peer)
				got <- b
			}()
			if n, err := s.Write(want); n != len(want) || err != nil {
				t.Errorf("Write = %d, %v", n, err)
			}
			s.nc.(*net.TCPConn).CloseWrite()
			if b := <-got; !bytes.Equal(b, want) {
				t.Errorf("the peer read %d bytes, want %d equal ones", len(b), len(want))
			}
		}},
		{"a read and a write at once", func(t *testing.T, s *sockIO, peer net.Conn) {
			want := bytes.Repeat([]byte("ping"), 1<<18) // 1 MiB, echoed by the peer
			go io.Copy(peer, peer)
			got := make(chan []byte, 1)
			go func() {
				b := make([]byte, len(want))
				_, err := io.ReadFull(s, b)
				if err != nil {
					t.Errorf("ReadFull: %v", err)
				}
				got <- b
			}()
			if _, err := s.Write(want); err != nil {
				t.Errorf("Write: %v", err)
			}
			if b := <-got; !bytes.Equal(b, want) {
				t.Error("the echo differs from what was written")
			}
		}},
		{"writeAwaitRead returns with the answer readable", func(t *testing.T, s *sockIO, peer net.Conn) {
			go io.Copy(peer, peer)
			if err := s.writeAwaitRead([]byte("ping"), nil); err != nil {
				t.Fatal(err)
			}
			if s.rawIO && rawPeekEmpty(rawFD(t, s)) {
				t.Error("writeAwaitRead returned before the answer arrived")
			}
			if b := make([]byte, 8); !readString(s, b, "ping") {
				t.Error("the answer is not the echo")
			}
		}},
		{"writeAwaitRead reads the answer into br inside the wait", func(t *testing.T, s *sockIO, peer net.Conn) {
			go io.Copy(peer, peer)
			br := bufio.NewReader(s)
			if err := s.writeAwaitRead([]byte("ping"), br); err != nil {
				t.Fatal(err)
			}
			if got, _ := br.Peek(br.Buffered()); s.rawIO && string(got) != "ping" {
				t.Errorf("buffered after the wait: %q, want the echo", got)
			}
			if b := make([]byte, 8); !readString(br, b, "ping") {
				t.Error("the answer is not the echo")
			}
		}},
		{"writeAwaitRead into br: the peer's close is the next read's EOF", func(t *testing.T, s *sockIO, peer net.Conn) {
			go func() {
				b := make([]byte, 4)
				io.ReadFull(peer, b)
				peer.Close()
			}()
			br := bufio.NewReader(s)
			if err := s.writeAwaitRead([]byte("ping"), br); err != nil {
				t.Fatal(err)
			}
			if _, err := br.ReadByte(); err != io.EOF {
				t.Errorf("read after the close: %v, want EOF", err)
			}
		}},
		{"writeAwaitRead larger than the socket buffers", func(t *testing.T, s *sockIO, peer net.Conn) {
			want := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
			go func() {
				b := make([]byte, len(want))
				if _, err := io.ReadFull(peer, b); err == nil && bytes.Equal(b, want) {
					peer.Write([]byte("done"))
				}
			}()
			if err := s.writeAwaitRead(want, nil); err != nil {
				t.Fatal(err)
			}
			if b := make([]byte, 8); !readString(s, b, "done") {
				t.Error("the peer did not receive the write whole")
			}
		}},
		{"writeAwaitRead with a read deadline and a silent peer", func(t *testing.T, s *sockIO, peer net.Conn) {
			s.nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if err := s.writeAwaitRead([]byte("ping"), nil); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("Read after the deadline: %v", err)
			}
			if b := make([]byte, 4); !readString(peer, b, "ping") {
				t.Error("the peer did not receive the write")
			}
		}},
		{"writeAwaitRead to a reset connection", func(t *testing.T, s *sockIO, peer net.Conn) {
			peer.(*net.TCPConn).SetLinger(0)
			peer.Close()
			var err error
			for i := 0; err == nil && i < 100; i++ { // the reset may take a write to show
				if err = s.writeAwaitRead([]byte("ping"), nil); err == nil {
					_, err = s.Read(make([]byte, 1))
				}
			}
			if !isStaleConnErr(err) {
				t.Errorf("writeAwaitRead and Read on a reset connection: %v", err)
			}
		}},
		{"a write deadline ends a write the peer does not read", func(t *testing.T, s *sockIO, peer net.Conn) {
			s.nc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
			n, err := s.Write(make([]byte, 64<<20))
			if !errors.Is(err, os.ErrDeadlineExceeded) || n >= 64<<20 {
				t.Errorf("Write = %d, %v", n, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := tcpPair(t)
			s := newSockIO(c, writeBound{})
			if rawSyscalls && !s.rawIO {
				t.Fatal("a TCP connection should use raw system calls")
			}
			tc.run(t, s, peer)
		})
	}
}

// TestPeerOpen: an application connection is reusable only while nothing came from it.
func TestPeerOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		peer func(net.Conn)
		open bool
	}{
		{"idle", func(net.Conn) {}, true},
		{"stray bytes", func(c net.Conn) { c.Write([]byte("HTTP/1.1 200 OK\r\n")) }, false},
		{"closed by the application", func(c net.Conn) { c.Close() }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, peer := tcpPair(t)
			u := &upConn{nc: c, sock: newSockIO(c, writeBound{})}
			tc.peer(peer)
			// What the peer sent or its FIN must have arrived before the check: wait for the
			// socket to turn readable (or for the idle case, a moment in which nothing does).
			if !tc.open {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				waitReadable(t, u.sock)
			}
			if got := u.peerOpen(); got != tc.open {
				t.Errorf("peerOpen = %v, want %v", got, tc.open)
			}
		})
	}
}

// waitReadable waits until s has something to read (data or EOF) without reading it.
func waitReadable(t *testing.T, s *sockIO) {
	t.Helper()
	// The callback looks at the socket after the poller's state was reset, so an arrival
	// before the wait is seen by the first call and one after it wakes the wait.
	if err := s.raw.Read(func(fd uintptr) bool { return !rawPeekEmpty(fd) }); err != nil {
		t.Fatal(err)
	}
}

// readString reads len(want) bytes into b and reports whether they are want.
func readString(r io.Reader, b []byte, want string) bool {
	n, err := io.ReadFull(r, b[:len(want)])
	return err == nil && string(b[:n]) == want
}

func rawFD(t *testing.T, s *sockIO) uintptr {
	t.Helper()
	var fd uintptr
	if err := s.raw.Control(func(f uintptr) { fd = f }); err != nil {
		t.Fatal(err)
	}
	return fd
}
