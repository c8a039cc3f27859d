//go:build !linux

package sidecar

// loopsSupported: the event loop is Linux's (epoll); elsewhere every connection stays with its
// goroutine.
const loopsSupported = false

type eventLoop struct{ p *Proxy }

func (*eventLoop) adopt(*clientConn) bool { return false }
func (*eventLoop) drain()                 {}
func (*eventLoop) closeAll()              {}
func (*eventLoop) waitStopped()           {}
func (*eventLoop) running() bool          { return false }
func (*eventLoop) putUp(*upConn)          {}
func (*eventLoop) dropUp(*upConn)         {}
