package sidecar

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"syscall"
	"time"
)

// upConn is one keep-alive connection to the application.
type upConn struct {
	nc       net.Conn
	sock     *sockIO
	br       *bufio.Reader
	out      outBuf
	addr     string
	lastUsed time.Time
	reused   bool      // it has carried a request before: a failure may be a stale keep-alive
	deadline time.Time // the read deadline set on nc, zero for none

	peekFn func(fd uintptr) bool // for peerOpen, made once
	open   bool

	// quiet: the read that ended its last response found the socket empty, and the response's
	// framing said where it ended (see usable).
	quiet bool

	loop   *eventLoop  // it belongs to the event loop's pool (nc is nil then)
	home   *target     // the loop's: whose pool it goes back to
	waiter *clientConn // the loop's connection whose request it carries
	// stirred: the loop saw it readable while idle (a close, bytes nobody asked for, or an
	// event about the end of its last response): the socket is checked before it is reused.
	stirred bool
}

// bufio readers and the large copy buffers are pooled: a keep-alive connection keeps its own
// for its lifetime, a closed one gives them back.
var (
	readerPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	bigPool    = sync.Pool{New: func() any { b := make([]byte, outBufLimit); return &b }}
)

func getReader(r io.Reader) *bufio.Reader {
	br := readerPool.Get().(*bufio.Reader)
	br.Reset(r)
	return br
}

func putReader(br *bufio.Reader) {
	br.Reset(nil)
	readerPool.Put(br)
}

func (u *upConn) close() {
	if u.loop != nil {
		u.loop.dropUp(u)
	} else {
		u.nc.Close()
	}
	if u.br != nil {
		putReader(u.br)
		u.br = nil
	}
	u.out.b = nil
}

// setReadDeadline sets nc's read deadline and remembers it.
func (u *upConn) setReadDeadline(t time.Time) {
	if !t.Equal(u.deadline) && u.loop == nil {
		u.nc.SetReadDeadline(t)
		u.deadline = t
	}
}

// awaitHeadBy arms the response-head timeout (Config.UpstreamTimeout) for a wait that starts at
// now. The deadline moves only when it is more than a second early, so a busy keep-alive
// connection pays for a timer update about once a second rather than on every request.
func (u *upConn) awaitHeadBy(now time.Time, timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	if want := now.Add(timeout); u.deadline.IsZero() || want.Sub(u.deadline) > time.Second {
		u.nc.SetReadDeadline(want)
		u.deadline = want
	}
}

// quietReuse is how long after its last use a quiet connection is reused without the socket
// check (see usable): well under the keep-alive timeouts servers close idle connections after
// (seconds), so a close has rarely come by then.
const quietReuse = time.Second

// usable reports whether an idle connection can carry another request: not idle for longer than
// maxIdle, and nothing received since its last response, neither buffered nor on the socket.
// Such bytes are a close, or an application sending more than it was asked for; either way the
// next response read from it would not be the answer to the next request.
//
// The socket check is one system call. It is skipped when retryable (the request can be sent
// again on a fresh connection should this one turn out closed: see exchange) and the
// connection is quiet and was used within quietReuse: the read that ended its last response
// found the socket empty, so stray bytes would have had to arrive in the moments since, while
// the check itself could only see what came before the request leaves, too.
func (u *upConn) usable(now time.Time, maxIdle time.Duration, retryable bool) bool {
	if maxIdle > 0 && now.Sub(u.lastUsed) > maxIdle {
		return false
	}
	if !u.deadline.IsZero() && !now.Before(u.deadline) {
		u.setReadDeadline(time.Time{}) // a response-head deadline that expired while idle
	}
	if u.br.Buffered() != 0 {
		return false
	}
	return retryable && u.quiet && now.Sub(u.lastUsed) < quietReuse || u.peerOpen()
}

// peerOpen peeks at the connection without blocking: an idle keep-alive connection has nothing
// to read, so data, EOF or an error all mean it cannot be reused. The callback is made once per
// connection, so the check allocates nothing; like sockIO, it uses a raw system call.
func (u *upConn) peerOpen() bool {
	if u.loop != nil {
		return rawPeekEmpty(u.sock.fd)
	}
	if u.sock.raw == nil {
		return true
	}
	if u.peekFn == nil {
		u.peekFn = u.peek
	}
	u.open = false
	return u.sock.raw.Read(u.peekFn) == nil && u.open
}

func (u *upConn) peek(fd uintptr) bool {
	u.open = rawPeekEmpty(fd)
	return true // never wait
}

// pool keeps idle upstream connections per address. A client connection takes one for each
// request and gives it back once the response is relayed, so an idle client holds no
// application connection, and the most recently returned (warm) connection is taken first.
type pool struct {
	dialTimeout time.Duration
	idleTimeout time.Duration
	writeBound  writeBound // of the connections it dials
	maxIdle     int        // per address

	mu     sync.Mutex
	idle   map[string]*idleConns
	closed bool
}

// idleConns are the idle connections to one address, the most recently returned last. A pointer
// in the map, so that taking and returning a connection does not write the map.
type idleConns struct {
	conns []*upConn
}

func newPool(cfg *Config) *pool {
	return &pool{dialTimeout: cfg.DialTimeout, idleTimeout: cfg.UpstreamIdleTimeout, writeBound: cfg.writeBound(),
		maxIdle: cfg.MaxIdleUpstream, idle: map[string]*idleConns{}}
}

// get returns an idle connection to addr or dials a new one; now and retryable are usable's.
func (p *pool) get(ctx context.Context, addr string, now time.Time, retryable bool) (*upConn, error) {
	if u := p.getIdle(addr, now, retryable); u != nil {
		return u, nil
	}
	return p.dial(ctx, addr)
}

// getIdle returns a usable idle connection to addr, or nil.
func (p *pool) getIdle(addr string, now time.Time, retryable bool) *upConn {
	for {
		p.mu.Lock()
		idle := p.idle[addr]
		if idle == nil || len(idle.conns) == 0 {
			p.mu.Unlock()
			return nil
		}
		u := idle.conns[len(idle.conns)-1]
		idle.conns[len(idle.conns)-1] = nil
		idle.conns = idle.conns[:len(idle.conns)-1]
		p.mu.Unlock()
		if u.usable(now, p.idleTimeout, retryable) {
			return u
		}
		u.close()
	}
}

func (p *pool) dial(ctx context.Context, addr string) (*upConn, error) {
	nc, err := dialUpstream(ctx, p.dialTimeout, addr)
	if err != nil {
		return nil, err
	}
	sock := newSockIO(nc, p.writeBound)
	return &upConn{nc: nc, sock: sock, br: getReader(sock), out: outBuf{w: sock}, addr: addr, lastUsed: time.Now()}, nil
}

// put returns a healthy idle connection, without a large write buffer.
func (p *pool) put(u *upConn) {
	if cap(u.out.b) > maxKeptOut {
		u.out.b = nil
	}
	if u.loop != nil {
		u.loop.putUp(u)
		return
	}
	p.mu.Lock()
	idle := p.idle[u.addr]
	if idle == nil {
		idle = &idleConns{}
		p.idle[u.addr] = idle
	}
	if p.closed || len(idle.conns) >= p.maxIdle {
		p.mu.Unlock()
		u.close()
		return
	}
	u.reused = true
	idle.conns = append(idle.conns, u)
	p.mu.Unlock()
}

// closeIdle closes the idle connections that expired (all of them when all is set).
func (p *pool) closeIdle(all bool) {
	now := time.Now()
	var drop []*upConn
	p.mu.Lock()
	if all {
		p.closed = true
	}
	for addr, idle := range p.idle {
		list := idle.conns
		kept := list[:0]
		for _, u := range list {
			if all || (p.idleTimeout > 0 && now.Sub(u.lastUsed) > p.idleTimeout) {
				drop = append(drop, u)
			} else {
				kept = append(kept, u)
			}
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(p.idle, addr)
		} else {
			idle.conns = kept
		}
	}
	p.mu.Unlock()
	for _, u := range drop {
		u.close()
	}
}

// isStaleConnErr reports whether err is what a write to or a read from a keep-alive connection
// the peer already closed returns.
func isStaleConnErr(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) || isEOF(err)
}
