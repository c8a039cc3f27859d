package sidecar

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Config configures a Proxy. Zero durations and sizes take the defaults documented per field.
type Config struct {
	// Upstream, when set, is the explicit "host:port" every connection is forwarded to, and its
	// port selects the policy: no redirect rules are needed. Empty means transparent mode: the
	// original destination port of each connection (SO_ORIGINAL_DST, set by the nftables
	// redirect) selects the policy, and requests go to 127.0.0.1:<that port>.
	Upstream string

	// MaxHeaderBytes bounds a request's (and a response's) request/status line plus headers.
	// A larger request gets 431. Default 64 KiB.
	MaxHeaderBytes int
	// HeaderTimeout bounds reading a request head once its first byte arrived (slow clients get
	// 408). Default 10s.
	HeaderTimeout time.Duration
	// BodyTimeout bounds reading a request body: the body must arrive within BodyTimeout plus
	// one second per minBodyRate bytes received, so a large upload at a sane rate passes and a
	// trickle is cut off. Default 60s.
	BodyTimeout time.Duration
	// IdleTimeout closes a client keep-alive connection that sends no new request. Default 120s.
	IdleTimeout time.Duration
	// DialTimeout bounds connecting to the application. Default 5s.
	DialTimeout time.Duration
	// UpstreamIdleTimeout retires application connections idle for longer, before the
	// application's own keep-alive timeout can race a new request. Default 30s.
	UpstreamIdleTimeout time.Duration
	// MaxIdleUpstream bounds the idle application connections kept per port. Default 256.
	MaxIdleUpstream int
	// MaxConns bounds the client connections served at once, tunnels and HTTP/2 included. At
	// the bound the proxy stops accepting (new connections wait in the kernel's listen
	// backlog) until one ends, so memory stays bounded without refusing anyone outright. A
	// quarter of them at most may be HTTP/2 (h2c), which costs more memory; a further h2c
	// connection waits for one to end. Default: from the Go memory limit (GOMEMLIMIT), see
	// MaxConnsFor.
	MaxConns int
	// MaxLargeHeads bounds the request heads of more than 8 KiB being read or served at once
	// (each may hold up to twice MaxHeaderBytes until its request is done); a further one is
	// answered 503. Default 128.
	MaxLargeHeads int
	// WriteTimeout and MinWriteRate bound a write the peer does not take: a write that cannot
	// complete at once must complete within WriteTimeout plus one second per MinWriteRate
	// bytes, or the connection is dropped (a client that stops reading a large response).
	// Defaults 10s and 4 KiB/s.
	WriteTimeout time.Duration
	MinWriteRate int
	// UpstreamTimeout bounds the wait for the application's response head once the request
	// was sent; on expiry the client gets 504. Negative turns it off. Default 5m: longer than
	// long-polling applications hold a request (they answer within the 60 s idle timeouts of
	// the load balancers in front of them), unlike Envoy's 15 s route timeout, which Istio
	// turned off because it broke such applications.
	UpstreamTimeout time.Duration
	// TunnelIdleTimeout closes a tunnel (an Upgrade such as WebSocket, or CONNECT) that moved
	// no byte in either direction for longer. Default 1h, as Envoy's TCP proxy.
	TunnelIdleTimeout time.Duration

	// NoEventLoop keeps every connection with its goroutine (see eventLoop): for tests, and
	// as a way back should the loop misbehave.
	NoEventLoop bool

	Log *slog.Logger
}

// Defaults that the cors-sidecar flags share.
const (
	DefaultUpstreamTimeout = 5 * time.Minute
)

// Memory per connection for MaxConnsFor, measured with the real binary
// (TestSidecarMemoryUnderLoad): about 10 KiB for an idle HTTP/1.1 client, 26 KiB for one that
// stops reading a large answer, 41 KiB for an h2c connection; 40 KiB covers a crowd of the
// worst kinds within the quarter h2c may take. reservedMemory is the process itself plus
// MaxLargeHeads' worst case.
const (
	memoryPerConn  = 40 << 10
	reservedMemory = 24 << 20
)

// MaxConnsFor is the default of Config.MaxConns for a Go memory limit of limit bytes: as many
// connections as fit in it at memoryPerConn after reservedMemory, between 256 and 16384; 4096
// without a limit (math.MaxInt64). For the injected 128 Mi (GOMEMLIMIT 90% of it) it is 2334.
func MaxConnsFor(limit int64) int {
	if limit == math.MaxInt64 {
		return 4096
	}
	return int(min(max((limit-reservedMemory)/memoryPerConn, 256), 16384))
}

// writeBound is the bound of the proxy's writes (WriteTimeout, MinWriteRate).
func (c *Config) writeBound() writeBound {
	return writeBound{stall: c.WriteTimeout, perByte: time.Second / time.Duration(c.MinWriteRate)}
}

func (c *Config) setDefaults() {
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 64 << 10
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = 10 * time.Second
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = 60 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 120 * time.Second
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = 5 * time.Second
	}
	if c.UpstreamIdleTimeout <= 0 {
		c.UpstreamIdleTimeout = 30 * time.Second
	}
	if c.MaxIdleUpstream <= 0 {
		c.MaxIdleUpstream = 256
	}
	if c.MaxConns <= 0 {
		c.MaxConns = MaxConnsFor(debug.SetMemoryLimit(-1))
	}
	if c.MaxLargeHeads <= 0 {
		c.MaxLargeHeads = 128
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MinWriteRate <= 0 {
		c.MinWriteRate = 4 << 10
	}
	if c.UpstreamTimeout == 0 {
		c.UpstreamTimeout = DefaultUpstreamTimeout
	}
	if c.TunnelIdleTimeout <= 0 {
		c.TunnelIdleTimeout = time.Hour
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Proxy is the sidecar's inbound HTTP proxy. Create it with New, run Serve on each listener,
// and stop it with Shutdown.
type Proxy struct {
	cfg      Config
	policies *PolicyStore
	metrics  *Metrics
	pool     *pool
	h2       *h2Server
	loops    *eventLoops // nil when off
	explicit *target     // the Upstream target, or nil in transparent mode

	targets sync.Map // uint16 -> *target, transparent mode

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*clientConn]struct{}
	draining   atomic.Bool
	closingAll bool           // Shutdown's deadline passed: connections are closed (p.mu)
	drainCh    chan struct{}  // closed when Shutdown begins
	slots      chan struct{}  // one token per connection served: the MaxConns bound
	h2slots    chan struct{}  // one token per HTTP/2 connection: a quarter of MaxConns
	largeHeads chan struct{}  // one token per large request head: the MaxLargeHeads bound
	atCap      atomic.Bool    // the bound was reached and not yet logged as left
	wg         sync.WaitGroup // connection goroutines
	stopJan    chan struct{}
	stopOnce   sync.Once

	lastUpErrLog atomic.Int64 // unix nanos, to rate-limit upstream error logs
}

// target is where a connection's requests go and whose policy applies to them.
type target struct {
	port  uint16
	addr  string
	stats *portStats
}

// New builds a proxy that reads policies from store and counts into m.
func New(cfg Config, store *PolicyStore, m *Metrics) (*Proxy, error) {
	cfg.setDefaults()
	p := &Proxy{
		cfg:        cfg,
		policies:   store,
		metrics:    m,
		pool:       newPool(&cfg),
		listeners:  map[net.Listener]struct{}{},
		conns:      map[*clientConn]struct{}{},
		stopJan:    make(chan struct{}),
		drainCh:    make(chan struct{}),
		slots:      make(chan struct{}, cfg.MaxConns),
		h2slots:    make(chan struct{}, max(cfg.MaxConns/4, 1)),
		largeHeads: make(chan struct{}, cfg.MaxLargeHeads),
	}
	if cfg.Upstream != "" {
		_, portStr, err := net.SplitHostPort(cfg.Upstream)
		if err != nil {
			return nil, fmt.Errorf("upstream %q: %w", cfg.Upstream, err)
		}
		port, err := strconv.ParseUint(portStr, 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("upstream %q: port must be in 1..65535", cfg.Upstream)
		}
		p.explicit = &target{port: uint16(port), addr: cfg.Upstream, stats: m.port(uint16(port))}
	}
	p.h2 = newH2Server(p)
	p.loops = newEventLoops(p)
	go p.janitor()
	return p, nil
}

// janitor closes expired idle upstream connections, so an idle pod does not hold them open.
func (p *Proxy) janitor() {
	t := time.NewTicker(max(p.cfg.UpstreamIdleTimeout/2, time.Second))
	defer t.Stop()
	for {
		select {
		case <-p.stopJan:
			return
		case <-t.C:
			p.pool.closeIdle(false)
		}
	}
}

func (p *Proxy) targetFor(port uint16) *target {
	if t, ok := p.targets.Load(port); ok {
		return t.(*target)
	}
	t := &target{port: port, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port))), stats: p.metrics.port(port)}
	actual, _ := p.targets.LoadOrStore(port, t)
	return actual.(*target)
}

// Serve accepts connections on ln until ln is closed (by Shutdown). It returns nil after
// Shutdown and the accept error otherwise.
func (p *Proxy) Serve(ln net.Listener) error {
	p.mu.Lock()
	if p.draining.Load() {
		p.mu.Unlock()
		ln.Close()
		return nil
	}
	p.listeners[ln] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.listeners, ln)
		p.mu.Unlock()
	}()

	var backoff time.Duration
	for {
		if !p.acquireSlot() {
			return nil
		}
		nc, err := ln.Accept()
		if err != nil {
			p.releaseSlot()
			if p.draining.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAcceptErr(err) {
				// Out of file descriptors and the like: back off instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				p.cfg.Log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		p.accept(nc)
	}
}

// acquireSlot takes a connection slot, waiting while MaxConns connections are served: the
// backpressure of the bound, since connections not accepted wait in the listen backlog (and
// the kernel holds back clients' handshakes once that is full). It reports false when Shutdown
// began.
func (p *Proxy) acquireSlot() bool {
	select {
	case p.slots <- struct{}{}:
		return true
	default:
	}
	if p.atCap.CompareAndSwap(false, true) {
		p.cfg.Log.Warn("connection limit reached; new connections wait until one ends", "max_connections", p.cfg.MaxConns)
	}
	select {
	case p.slots <- struct{}{}:
		return true
	case <-p.drainCh:
		return false
	}
}

// acquireH2Slot takes an HTTP/2 slot for a connection about to be handed to the HTTP/2 server,
// waiting while a quarter of MaxConns are HTTP/2. It reports false when Shutdown began.
func (p *Proxy) acquireH2Slot() bool {
	select {
	case p.h2slots <- struct{}{}:
		return true
	case <-p.drainCh:
		return false
	}
}

// releaseSlot gives back the slot of a connection that ended.
func (p *Proxy) releaseSlot() {
	<-p.slots
	if len(p.slots) < p.cfg.MaxConns*3/4 && p.atCap.CompareAndSwap(true, false) {
		p.cfg.Log.Info("connections below the limit again", "max_connections", p.cfg.MaxConns)
	}
}

// accept serves nc, which holds a slot; every path releases it once the connection ends.
func (p *Proxy) accept(nc net.Conn) {
	t := p.explicit
	if t == nil {
		dst, err := originalDst(nc)
		local, _ := nc.LocalAddr().(*net.TCPAddr)
		switch {
		case err != nil:
			p.metrics.connErrors.Add(1)
			p.cfg.Log.Debug("no original destination; closing", "remote", nc.RemoteAddr().String(), "err", err)
			nc.Close()
			p.releaseSlot()
			return
		case local != nil && int(dst.Port()) == local.Port:
			// Not redirected: a client connected to the proxy port itself. Forwarding it to
			// 127.0.0.1:<proxy port> would loop.
			p.metrics.connErrors.Add(1)
			p.cfg.Log.Debug("connection to the proxy port was not redirected; closing", "remote", nc.RemoteAddr().String())
			nc.Close()
			p.releaseSlot()
			return
		}
		t = p.targetFor(dst.Port())
	}
	c := &clientConn{p: p, nc: nc, t: t}
	p.mu.Lock()
	if p.draining.Load() {
		p.mu.Unlock()
		nc.Close()
		p.releaseSlot()
		return
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	p.metrics.connsOpen.Add(1)
	go c.serve()
}

// forget drops an ended client connection. A connection handed to the HTTP/2 server keeps its
// slot until that server closes it (h2Conn.Close).
func (p *Proxy) forget(c *clientConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	p.metrics.connsOpen.Add(-1)
	if !c.handedOff {
		p.releaseSlot()
	}
	p.wg.Done()
}

// Draining reports whether Shutdown has begun (the admin port then answers not ready).
func (p *Proxy) Draining() bool { return p.draining.Load() }

// Shutdown stops accepting connections, closes idle keep-alive connections, lets in-flight
// requests finish (their responses carry "connection: close"), and returns when all connections
// are gone. When ctx ends first, the remaining connections are closed and ctx's error returned.
func (p *Proxy) Shutdown(ctx context.Context) error {
	p.mu.Lock()
	if !p.draining.Swap(true) {
		close(p.drainCh)
	}
	for ln := range p.listeners {
		ln.Close()
	}
	conns := make([]*clientConn, 0, len(p.conns))
	ncs := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns, ncs = append(conns, c), append(ncs, c.nc)
	}
	p.mu.Unlock()
	for i, c := range conns {
		c.closeIfIdle(ncs[i])
	}
	p.loops.drain()

	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	h2done := make(chan error, 1)
	go func() { h2done <- p.h2.shutdown(ctx) }()

	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
		p.mu.Lock()
		p.closingAll = true
		ncs = ncs[:0]
		for c := range p.conns {
			if c.nc != nil {
				ncs = append(ncs, c.nc)
			}
		}
		p.mu.Unlock()
		// Not under p.mu: Close waits for a connection's read in progress to return (a request
		// served inside its poller wait, serveInWait, ends when its application answers).
		for _, nc := range ncs {
			nc.Close()
		}
		p.loops.closeAll()
		<-done
	}
	p.loops.waitStopped()
	if h2err := <-h2done; err == nil {
		err = h2err
	}
	p.stopOnce.Do(func() {
		close(p.stopJan)
		p.pool.closeIdle(true)
	})
	return err
}

// logUpstreamError logs at most one upstream failure per second: a down application would
// otherwise flood the log with one line per request.
func (p *Proxy) logUpstreamError(t *target, err error) {
	now := time.Now().UnixNano()
	last := p.lastUpErrLog.Load()
	if now-last < int64(time.Second) || !p.lastUpErrLog.CompareAndSwap(last, now) {
		return
	}
	p.cfg.Log.Warn("application unreachable, misbehaving or too slow; answering 502 or 504", "upstream", t.addr, "err", err)
}
