package sidecar

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cors-webhook/cors-webhook/cors"
)

// The event loop.
//
// A goroutine per connection parks twice per proxied request, once for the client and once for
// the application, and each park and wake-up goes through Go's scheduler and poller, which
// under load costs more than the proxy's own code. The event loops serve the kept-alive
// connections' simple requests (what serveInWait serves) as nginx's workers do: each has an
// epoll set of its own and, while work comes in, waits in epoll_wait through a raw system call
// that keeps its P, so neither the scheduler nor sysmon takes part. There is one loop per P; a
// busy loop lets the goroutines queued on its P run every loopYield, and an idle one gives its
// P up after loopSpin.
//
// A connection comes to the loop when its first request is done and it waits for the next
// (adopt): its socket leaves Go's poller (dup, then Close) and joins the loop's epoll set. The
// loop serves a request itself only when it need not wait for the client: a head that arrived
// whole, with no body, no upgrade and no CONNECT. It sends the request on one of its own
// application connections and relays the answer when head and body are all in; and it writes
// to the client only what the socket takes at once. Everything else goes back to a goroutine
// (handBack), with the socket back in Go's poller, and carries on where the loop stopped:
// reading a head in pieces, a body, a slow or large answer, an interim response, the rest of
// a response the client reads slowly, dialling the application. Deadlines are checked every
// loopTick, so the idle and response-head timeouts are kept to within it.

var (
	errShortWrite = errors.New("sidecar: the application connection did not take the request at once")
	errNoFD       = errors.New("sidecar: the connection has no socket")
)

// resumeKind is where a goroutine carries on with a connection the loop hands back.
type resumeKind uint8

const (
	resumeServe   resumeKind = iota // the next request
	resumePlain                     // a request whose head is not whole yet
	resumeParsed                    // the request read (c.req, or c.wait.err) waits for an answer
	resumeForward                   // the request waits for an application connection (c.lx.pol, c.lx.d)
	resumeReceive                   // the request was sent on c.lx.up: read the answer
	resumeBody                      // the answer's head is relayed: its body is not all in yet
)

type eventLoop struct {
	p *Proxy

	mu       sync.Mutex
	started  bool
	stopped  bool // it takes no more connections
	closing  bool // Shutdown's deadline passed: close everything
	incoming []*clientConn
	wakeFd   int
	exited   chan struct{} // closed when the loop's thread is done

	// The loop thread's own.
	epfd     int
	socks    []loopSock // by socket number
	nClients int
	nUps     int
	idle     map[*target][]*upConn // the loop's idle application connections, the newest last
	yielded  time.Time
	events   []unix.EpollEvent
	taken    []*clientConn
	now      time.Time // read once per wake-up: the time of everything the loop does until the next
	nextDue  time.Time
}

// loopSock is what a socket number of the loop's is: a client's connection, or an application
// connection (idle in the loop's pool, or carrying a request).
type loopSock struct {
	c *clientConn
	u *upConn
}

func (l *eventLoop) sock(fd int32) *loopSock {
	if int(fd) >= len(l.socks) {
		l.socks = append(l.socks, make([]loopSock, int(fd)+1-len(l.socks))...)
	}
	return &l.socks[fd]
}

func (l *eventLoop) addClient(c *clientConn) { l.sock(c.lfd).c = c; l.nClients++ }

func (l *eventLoop) dropClient(c *clientConn) {
	if s := l.sock(c.lfd); s.c == c {
		s.c = nil
		l.nClients--
	}
}

func (l *eventLoop) addUp(u *upConn) { l.sock(int32(u.sock.fd)).u = u; l.nUps++ }

func (l *eventLoop) forgetUp(u *upConn) {
	if s := l.sock(int32(u.sock.fd)); s.u == u {
		s.u = nil
		l.nUps--
	}
}

// loopsSupported: Linux has epoll.
const loopsSupported = true

// adopt takes c from its goroutine, which must not touch it once adopt returned true.
func (l *eventLoop) adopt(c *clientConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || l.p.draining.Load() {
		return false
	}
	if !l.started && !l.start() {
		return false
	}
	fd, err := detachFD(c.nc)
	if err != nil {
		return false
	}
	l.p.mu.Lock()
	c.nc = nil
	l.p.mu.Unlock()
	c.sock.toLoop(uintptr(fd))
	c.lfd = int32(fd)
	l.incoming = append(l.incoming, c)
	l.wakeLocked()
	return true
}

// start makes the loop's epoll set and starts its thread (l.mu held).
func (l *eventLoop) start() bool {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		l.p.cfg.Log.Warn("no event loop; connections stay with their goroutines", "err", err)
		l.stopped = true
		return false
	}
	wfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err == nil {
		err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(wfd)})
	}
	if err != nil {
		unix.Close(epfd)
		l.p.cfg.Log.Warn("no event loop; connections stay with their goroutines", "err", err)
		l.stopped = true
		return false
	}
	l.epfd, l.wakeFd, l.started = epfd, wfd, true
	l.idle = map[*target][]*upConn{}
	l.exited = make(chan struct{})
	l.events = make([]unix.EpollEvent, 128)
	go l.run()
	return true
}

// drain is Shutdown's: the loop closes its idle connections and stops once it has none.
func (l *eventLoop) drain() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.wakeLocked()
	l.mu.Unlock()
}

// closeAll is Shutdown's once its deadline passed: the loop closes all its connections.
func (l *eventLoop) closeAll() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.closing = true
	l.wakeLocked()
	l.mu.Unlock()
}

func (l *eventLoop) wakeLocked() {
	if l.started && !l.stopped {
		var one [8]byte // an eventfd adds the native-endian uint64 written to it
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(l.wakeFd, one[:])
	}
}

func (l *eventLoop) run() {
	for {
		n := l.wait()
		l.now = time.Now()
		if l.now.Sub(l.yielded) > loopYield {
			// A busy loop keeps its P (see wait): now and then it lets the goroutines queued
			// there run (new connections' first requests, connections it handed back).
			runtime.Gosched()
			l.yielded = l.now
		}
		for i := range n {
			l.dispatch(l.events[i].Fd)
		}
		l.mu.Lock()
		l.taken = append(l.taken[:0], l.incoming...)
		clear(l.incoming)
		l.incoming = l.incoming[:0]
		closing := l.closing
		l.mu.Unlock()
		for _, c := range l.taken {
			l.welcome(c)
		}
		clear(l.taken)
		draining := l.p.draining.Load()
		if draining || !l.now.Before(l.nextDue) {
			l.sweep(l.now, draining, closing)
			l.nextDue = l.now.Add(loopTick)
		}
		if draining && l.nClients == 0 && l.stop() {
			return
		}
	}
}

// stop ends the loop when no connection came in meanwhile.
func (l *eventLoop) stop() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.incoming) > 0 {
		return false
	}
	l.stopped = true
	for i := range l.socks {
		if u := l.socks[i].u; u != nil {
			u.close()
		}
	}
	unix.Close(l.epfd)
	unix.Close(l.wakeFd)
	close(l.exited)
	return true
}

// running reports whether the loop was started and has not stopped.
func (l *eventLoop) running() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.started && !l.stopped
}

// waitStopped waits for a started loop to stop (after drain or closeAll, once its connections
// are done).
func (l *eventLoop) waitStopped() {
	if l == nil {
		return
	}
	l.mu.Lock()
	started, exited := l.started, l.exited
	l.mu.Unlock()
	if started {
		<-exited
	}
}

// wait waits for events: in a raw system call, keeping the P, for up to loopSpin; then, when
// nothing came, the usual way, which gives the P to other goroutines meanwhile.
func (l *eventLoop) wait() int {
	if n := rawEpollWait(l.epfd, l.events, loopSpin); n > 0 {
		return n
	}
	timeout := -1
	if l.nClients > 0 || l.nUps > 0 {
		timeout = int(loopTick / time.Millisecond)
	}
	n, err := unix.EpollWait(l.epfd, l.events, timeout)
	if err != nil {
		return 0 // EINTR
	}
	return n
}

func rawEpollWait(epfd int, events []unix.EpollEvent, msec int) int {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	if errno != 0 {
		return 0
	}
	return int(n)
}

// dispatch handles an event of socket fd. An event may be stale (its socket closed and the
// number reused since it came): the handlers treat every event as "may be ready" and read
// without waiting, so a stale one costs a read that finds nothing.
func (l *eventLoop) dispatch(fd int32) {
	if fd == int32(l.wakeFd) {
		var b [8]byte
		unix.Read(l.wakeFd, b[:])
		return
	}
	if int(fd) >= len(l.socks) {
		return
	}
	s := &l.socks[fd]
	if c := s.c; c != nil {
		c.ledge = true
		if c.lx.up == nil {
			l.guard(c, l.step)
		}
		return
	}
	if u := s.u; u != nil {
		if c := u.waiter; c != nil {
			l.guard(c, l.answer)
		} else {
			u.stirred = true
		}
	}
}

// guard runs f for c: a bug must cost one connection, not the pod's traffic.
func (l *eventLoop) guard(c *clientConn, f func(*clientConn)) {
	defer func() {
		if v := recover(); v != nil {
			l.p.cfg.Log.Error("panic serving a connection in the event loop; closing it", "client", c.clientAddr,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if c.lx.up != nil {
				c.lx.up.close()
				c.lx.up = nil
			}
			if l.sock(c.lfd).c == c {
				l.closeClient(c)
			}
		}
	}()
	f(c)
}

// welcome adds an adopted connection to the epoll set and serves what it already has.
func (l *eventLoop) welcome(c *clientConn) {
	if err := l.watch(int(c.lfd)); err != nil {
		unix.Close(int(c.lfd))
		c.finish()
		return
	}
	l.addClient(c)
	c.ledge = !c.sock.drained
	c.wait, c.lx = waitState{}, exchange{} // lx.up set means "waiting for the application"
	l.guard(c, l.step)
}

// watch adds a socket to the epoll set, edge-triggered: an event comes when data (or the end)
// arrives, and the loop reads until the socket is drained.
func (l *eventLoop) watch(fd int) error {
	return unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(fd)})
}

// unwatch gives a socket back to Go's poller (attachFD). It leaves the epoll set first: an
// entry stays as long as its open file does, which the poller's duplicate keeps open, so it
// would go on reporting the socket's events under a number that another socket may take.
func (l *eventLoop) unwatch(fd int) (net.Conn, error) {
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	return attachFD(fd)
}

// step serves c's requests while it can without waiting, as serveInWait does.
func (l *eventLoop) step(c *clientConn) {
	for {
		if len(c.sock.pending) > 0 {
			l.handBack(c, resumeServe) // the client reads slowly: a goroutine writes the rest
			return
		}
		if !c.wait.idle {
			if !c.idleAt(l.now, false) {
				l.closeClient(c)
				return
			}
			c.wait.idle = true
		}
		if c.br.Buffered() == 0 {
			if c.sock.drained && !c.ledge {
				return // wait for the client
			}
			c.ledge = false
			if _, err := c.br.Peek(1); err == errWouldBlock {
				continue
			} else if err != nil {
				l.closeClient(c) // the client went away
				return
			}
		}
		c.wait.idle = false
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			l.closeClient(c) // Shutdown closed it while the first byte arrived
			return
		}
		if !c.headBuffered() {
			l.handBack(c, resumePlain)
			return
		}
		r := &c.req
		err := c.readRequest(r)
		if err != nil || r.body != bodyNone || r.upgrade || r.method == "CONNECT" {
			c.wait.err = err
			l.handBack(c, resumeParsed)
			return
		}
		pol, d := c.decide(r)
		if d.Action == cors.Preflight {
			if !c.preflight(r, pol, d) {
				l.closeClient(c)
				return
			}
			c.trim()
			continue
		}
		if !l.forward(c, pol, d, 0) {
			return // waiting for the answer, or no longer the loop's
		}
	}
}

// forward sends c.req to the application on one of the loop's connections. It reports true when
// the request was answered already (a failure) and c's next request may be served.
func (l *eventLoop) forward(c *clientConn, pol *cors.Policy, d cors.Decision, attempt int) bool {
	r := &c.req
	c.lx = exchange{r: r, pol: pol, d: d, inlined: true}
	c.lattempt = attempt
	now := l.now
	up := l.takeUp(c.t, now, attempt == 0 && isIdempotent(r.method))
	if up == nil || len(c.head) > loopMaxHead {
		if up != nil {
			l.putUp(up)
		}
		l.handBack(c, resumeForward) // a goroutine dials (or sends a large head)
		return false
	}
	c.lx.up, c.lx.replayable = up, up.reused
	c.lnow = now
	if err := writeAll(up.sock.fd, c.head); err != nil {
		up.close()
		c.lx.up = nil
		if c.lx.replayable && attempt == 0 && isStaleConnErr(err) {
			return l.forward(c, pol, d, 1) // the application cannot have seen it
		}
		return l.answered(c, c.badGateway(r, pol, d, true, err))
	}
	up.waiter = c
	c.vary = c.vary[:0]
	return false
}

// answer reads what the application sent to c's request, and relays the answer once it is all
// in.
func (l *eventLoop) answer(c *clientConn) {
	x := &c.lx
	up := x.up
	for up.br.Buffered() < up.br.Size() {
		_, err := up.br.Peek(up.br.Buffered() + 1)
		if err == errWouldBlock {
			break
		}
		if err != nil {
			if up.br.Buffered() > 0 {
				l.handBack(c, resumeReceive) // an answer that ends with its connection: a goroutine reads it
				return
			}
			up.close()
			x.up = nil
			if x.replayable && c.lattempt == 0 && isStaleConnErr(err) && isIdempotent(x.r.method) {
				if l.forward(c, x.pol, x.d, 1) { // the application closed it before it read the request
					l.step(c)
				}
				return
			}
			if l.answered(c, c.upstreamFailed(x.r, x.pol, x.d, true, err)) {
				l.step(c)
			}
			return
		}
		if up.sock.drained {
			break
		}
	}
	b, _ := up.br.Peek(up.br.Buffered())
	if !headWhole(b) {
		if up.br.Buffered() == up.br.Size() {
			l.handBack(c, resumeReceive) // a head larger than the buffer
		}
		return
	}
	if len(b) > 9 && b[9] == '1' {
		l.handBack(c, resumeReceive) // an interim response (or a malformed one): the goroutine path knows them
		return
	}
	if done, keep, _ := c.readFinalHead(x); done {
		x.up = nil // readFinalHead closed it
		if l.answered(c, keep) {
			l.step(c)
		}
		return
	}
	if res := &c.res; res.body != bodyNone && !(res.body == bodyLength && int64(up.br.Buffered()) >= res.length) {
		l.handBack(c, resumeBody)
		return
	}
	up.waiter = nil
	keep := c.afterHead(x, c.lnow) // the body is in: relaying it cannot wait, and up goes back to the pool
	x.up = nil
	if l.answered(c, keep) {
		l.step(c)
	}
}

// answered finishes a request the loop answered: the connection closes unless keep. It reports
// whether c's next request may be served.
func (l *eventLoop) answered(c *clientConn, keep bool) bool {
	c.lx = exchange{}
	if !keep {
		l.closeClient(c)
		return false
	}
	c.trim()
	return true
}

// sweep closes what timed out, and idle connections when the proxy drains.
func (l *eventLoop) sweep(now time.Time, draining, closing bool) {
	cfg := &l.p.cfg
	for i := range l.socks {
		c := l.socks[i].c
		if c == nil {
			continue
		}
		switch {
		case closing:
			if c.lx.up != nil {
				c.lx.up.close()
				c.lx.up = nil
			}
			l.closeClient(c)
		case c.lx.up != nil:
			if cfg.UpstreamTimeout > 0 && now.Sub(c.lnow) > cfg.UpstreamTimeout && c.lx.up.waiter == c {
				x := &c.lx
				x.up.close()
				x.up = nil
				l.guard(c, func(c *clientConn) {
					if l.answered(c, c.upstreamFailed(x.r, x.pol, x.d, true, os.ErrDeadlineExceeded)) {
						l.step(c)
					}
				})
			}
		case c.state.Load() == stateIdle && (draining || now.Sub(c.now) > cfg.IdleTimeout):
			if c.state.CompareAndSwap(stateIdle, stateClosing) {
				l.closeClient(c)
			}
		}
	}
	for t, list := range l.idle {
		kept := list[:0]
		for _, u := range list {
			if closing || cfg.UpstreamIdleTimeout > 0 && now.Sub(u.lastUsed) > cfg.UpstreamIdleTimeout {
				u.close()
			} else {
				kept = append(kept, u)
			}
		}
		clear(list[len(kept):])
		l.idle[t] = kept
	}
}

// takeUp returns a usable idle application connection of the loop's, or one the shared pool
// hands over, or nil.
func (l *eventLoop) takeUp(t *target, now time.Time, retryable bool) *upConn {
	for list := l.idle[t]; len(list) > 0; list = l.idle[t] {
		u := list[len(list)-1]
		list[len(list)-1] = nil
		l.idle[t] = list[:len(list)-1]
		if (!u.stirred || u.peerOpen()) && u.usable(now, l.p.cfg.UpstreamIdleTimeout, retryable) {
			u.stirred = false
			return u
		}
		u.close()
	}
	for {
		u := l.p.pool.getIdle(t.addr, now, retryable)
		if u == nil {
			return nil
		}
		fd, err := detachFD(u.nc)
		if err != nil {
			u.close()
			continue
		}
		u.nc, u.loop, u.home, u.deadline = nil, l, t, time.Time{}
		u.sock.toLoop(uintptr(fd))
		if err := l.watch(fd); err != nil {
			u.close()
			continue
		}
		l.addUp(u)
		return u
	}
}

// putUp keeps an application connection in the loop's pool, bounded as the shared pool
// (Config.MaxIdleUpstream per address).
func (l *eventLoop) putUp(u *upConn) {
	u.waiter = nil
	list := l.idle[u.home]
	if len(list) >= l.p.cfg.MaxIdleUpstream || l.p.draining.Load() {
		u.close()
		return
	}
	u.reused = true
	l.idle[u.home] = append(list, u)
}

// dropUp closes a connection of the loop's pool (upConn.close).
func (l *eventLoop) dropUp(u *upConn) {
	l.forgetUp(u)
	unix.Close(int(u.sock.fd))
	u.loop, u.waiter = nil, nil
}

func (l *eventLoop) closeClient(c *clientConn) {
	l.dropClient(c)
	unix.Close(int(c.lfd))
	c.finish()
}

// handBack gives c to a goroutine, its sockets back with Go's poller, to carry on at how.
func (l *eventLoop) handBack(c *clientConn, how resumeKind) {
	l.p.loops.handedBack.Add(1)
	l.dropClient(c)
	nc, err := l.unwatch(int(c.lfd))
	if err != nil {
		if c.lx.up != nil {
			c.lx.up.close()
		}
		c.finish()
		return
	}
	if up := c.lx.up; up != nil {
		l.forgetUp(up)
		up.loop, up.waiter = nil, nil
		unc, err := l.unwatch(int(up.sock.fd))
		if err != nil {
			nc.Close()
			c.nc = nil
			c.finish()
			return
		}
		up.nc = unc
		up.sock.attach(unc)
	}
	l.p.mu.Lock()
	c.nc = nc
	if l.p.closingAll {
		nc.Close() // Shutdown's deadline passed while it came back: it ends at once
	}
	l.p.mu.Unlock()
	c.sock.attach(nc)
	c.sinceBack = 0
	c.idleDeadline = time.Time{} // the new socket has none: armIdle must set it
	go c.run(false, c.resumeFn(how))
}

// resumeFn is what a goroutine does first with a connection handed back at how; false ends it.
func (c *clientConn) resumeFn(how resumeKind) func() bool {
	r, x := &c.req, &c.lx
	switch how {
	case resumePlain:
		return func() bool { c.armHeader(); return c.handle() }
	case resumeParsed:
		return func() bool { return c.respond(r, c.wait.err) }
	case resumeForward:
		return func() bool { return c.send(r, x.pol, x.d, true, c.lattempt) }
	case resumeReceive:
		return func() bool {
			keep, retry := c.receive(x, c.lnow)
			if retry {
				return c.send(r, x.pol, x.d, true, 1)
			}
			return keep
		}
	case resumeBody:
		return func() bool { return c.afterHead(x, c.lnow) }
	}
	return func() bool { return true }
}

// writeAll writes p to a socket the loop owns, which must take it at once.
func writeAll(fd uintptr, p []byte) error {
	for len(p) > 0 {
		n, errno := rawWrite(fd, p)
		switch errno {
		case 0:
			p = p[n:]
		case unix.EINTR:
		case unix.EAGAIN:
			return errShortWrite
		default:
			return os.NewSyscallError("write", errno)
		}
	}
	return nil
}

// detachFD takes nc's socket out of Go's poller: a duplicate for the loop, nc closed.
func detachFD(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errNoFD
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	nc.Close()
	return fd, nil
}

// attachFD puts a socket the loop owned back with Go's poller; fd is closed either way.
func attachFD(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	return nc, err
}
