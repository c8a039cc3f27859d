package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cors-webhook/cors-webhook/cors"
)

// Connection states, for Shutdown: only an idle connection (waiting for the next request) is
// closed at once; an active one finishes its request first.
const (
	stateActive int32 = iota
	stateIdle
	stateClosing
)

// maxInlineBody is the largest request body read whole before the request goes upstream: the
// request then leaves in one write and can be replayed on a fresh connection when a kept-alive
// one turns out closed. Larger bodies stream.
const maxInlineBody = 16 << 10

// maxDiscardBody is the largest body a preflight request may carry and still keep its
// connection alive (the body is read and dropped).
const maxDiscardBody = 64 << 10

// expectContinueTimeout is how long to wait for the application's "100 Continue" before sending
// the body anyway, as net/http's Transport does (an application may ignore Expect).
const expectContinueTimeout = time.Second

type bodyKind uint8

const (
	bodyNone bodyKind = iota
	bodyLength
	bodyChunked
	bodyEOF // responses only: delimited by the connection's close
)

// request is what the proxy needs to know about a request head; the head itself, with the
// hop-by-hop headers rewritten, is in clientConn.head.
type request struct {
	method  string
	minor   int // HTTP/1.minor
	body    bodyKind
	length  int64
	close   bool // the client connection ends after this request
	upgrade bool // a protocol upgrade (WebSocket...) is forwarded
	expect  bool // Expect: 100-continue
	origin  string
	// acrm and acrh are access-control-request-method and -headers, for the CORS decision.
	acrm, acrh string
}

// response is what the proxy needs to know about a response head.
type response struct {
	code   int
	body   bodyKind
	length int64
	close  bool // the application closes its connection after it
	http10 bool
}

// httpError is a request the proxy rejects itself with a status code.
type httpError struct {
	code int
	text string
}

func (e *httpError) Error() string { return e.text }

var (
	errBadRequest     = &httpError{400, "Bad Request"}
	errNotImplemented = &httpError{501, "Not Implemented"}
	errVersion        = &httpError{505, "HTTP Version Not Supported"}
	// errLargeHeadsBusy answers a large request head while Config.MaxLargeHeads others are
	// held: a crowd of slow large heads must not exhaust the sidecar's memory.
	errLargeHeadsBusy = &httpError{503, "Service Unavailable: too many large request heads at once"}
)

// smallHeadBytes is the most a request head may take of a connection's memory without a large
// head slot (Config.MaxLargeHeads): what fits in the read buffer, and a forwarded head up to
// this size.
const smallHeadBytes = 8 << 10

// clientConn serves the HTTP/1.x requests of one client connection, one at a time.
type clientConn struct {
	p    *Proxy
	nc   net.Conn
	sock *sockIO // nc's reads and writes on the request path
	t    *target
	br   *bufio.Reader

	out     outBuf // to the client
	head    []byte // the request head (and a small body) for the application
	scratch []byte // long header lines
	origin  []byte // the request's Origin value; request.origin points into it
	acrm    []byte // access-control-request-method; request.acrm points into it
	acrh    []byte // access-control-request-headers, joined; request.acrh points into it
	upgrade []byte // the request's Upgrade value
	vary    []byte // the response's Vary values, joined
	xff     []byte // the request's X-Forwarded-For values, joined
	hop     []byte // the Connection values of the head being read, joined
	spans   []fieldSpan
	clock   bodyClock
	hdrs    [cors.MaxHeaders]cors.Header
	req     request
	res     response
	cp      copier

	state atomic.Int32

	clientAddr string // the client's IP address, for X-Forwarded-For

	now          time.Time // when the current request started
	idleDeadline time.Time // the read deadline set for waiting between requests; zero if another is set

	handedOff bool // the connection now belongs to the HTTP/2 server

	largeHead   bool         // it holds a large head slot (Config.MaxLargeHeads)
	largeHeadFn func() error // takeLargeHead, made once

	wait   waitState             // serveInWait's
	waitFn func(fd uintptr) bool // waitStep, made once

	// The event loop's (see eventLoop).
	lfd       int32     // the socket, while the loop owns the connection
	ledge     bool      // the client's socket became readable since the loop last read it
	lx        exchange  // the request the loop sent to the application
	lnow      time.Time // when it was sent
	lattempt  int       // 1 when it is sent again, on a fresh connection
	sinceBack int       // requests served by the goroutine since the loop handed it back
}

// takeLargeHead takes a large head slot for the request head being read, if it holds none, or
// fails with errLargeHeadsBusy when none is free. The slot and the large buffers go back once
// the request is done (trim).
func (c *clientConn) takeLargeHead() error {
	if c.largeHead {
		return nil
	}
	select {
	case c.p.largeHeads <- struct{}{}:
		c.largeHead = true
		return nil
	default:
		return errLargeHeadsBusy
	}
}

// releaseLargeHead drops the large head buffers and gives back the slot.
func (c *clientConn) releaseLargeHead() {
	if c.largeHead {
		c.head, c.scratch = nil, nil
		c.largeHead = false
		<-c.p.largeHeads
	}
}

func (c *clientConn) serve() {
	c.sock = newSockIO(c.nc, c.p.cfg.writeBound())
	c.clientAddr = clientAddr(c.nc)
	c.largeHeadFn = c.takeLargeHead
	c.waitFn = c.waitStep
	c.br = getReader(c.sock)
	c.out.w = c.sock
	c.sinceBack = loopReturnAfter
	c.run(true, nil)
}

// run serves the connection's requests on this goroutine: after resume, if set, finished what
// the event loop handed over, and until the event loop takes the connection (or it ends).
func (c *clientConn) run(first bool, resume func() bool) {
	adopted := false // the event loop owns c now: nothing here may touch it
	defer func() {
		if !adopted {
			c.finish()
		}
	}()
	defer func() {
		// A bug must cost one connection, not the pod's traffic (net/http does the same).
		if v := recover(); v != nil {
			c.p.cfg.Log.Error("panic serving a connection; closing it", "client", c.clientAddr,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		}
	}()
	if resume != nil {
		if c.sock.flushPending() != nil || !resume() {
			return
		}
		c.trim()
	}
	for {
		if !first && c.sock.rawIO {
			if c.loopMayTake() {
				if adopted = c.p.loops.adopt(c); adopted {
					return
				}
				c.sinceBack = 0 // the loop is stopping, or the socket could not leave the poller
			}
			switch res, err := c.serveInWait(); res {
			case waitClosed:
				return
			case waitLoop:
				continue
			case waitParsed:
				if !c.respond(&c.req, err) {
					return
				}
				c.trim()
				continue
			}
			// waitPlain: a request began whose head is not whole yet; it is read below.
		}
		if !c.enterIdle(first) {
			return
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // Shutdown closed it while the first byte arrived
		}
		c.armHeader()
		if first {
			first = false
			if c.isH2Preface() {
				if !c.p.acquireH2Slot() {
					return
				}
				c.handedOff = true
				c.p.h2.serve(c) // net/http clears the deadline once it has read the preface
				return
			}
		}
		if !c.handle() {
			return
		}
		c.trim()
	}
}

// loopReturnAfter is how many requests a connection the event loop handed back serves on its
// goroutine before the loop may take it again.
const loopReturnAfter = 16

// Buffers larger than these are dropped between requests rather than kept for the connection's
// lifetime: one large request head must not cost every idle connection that much.
const (
	maxKeptHead    = maxInlineBody + 4<<10
	maxKeptScratch = 4 << 10
	maxKeptOut     = 8 << 10
)

// loopMayTake reports whether the event loop may take the connection: one it handed back
// serves a few requests on its goroutine first, or one whose requests need the goroutine (with
// bodies, say) would go back and forth.
func (c *clientConn) loopMayTake() bool {
	return c.sinceBack >= loopReturnAfter && c.p.loops != nil
}

// trim lets go of large buffers before the connection waits for its next request.
func (c *clientConn) trim() {
	c.sinceBack++
	c.releaseLargeHead()
	if cap(c.head) > maxKeptHead {
		c.head = nil
	}
	if cap(c.scratch) > maxKeptScratch {
		c.scratch = nil
	}
	if cap(c.out.b) > maxKeptOut {
		c.out.b = nil
	}
	if cap(c.origin) > maxKeptScratch {
		c.origin = nil
	}
	if cap(c.upgrade)+cap(c.vary)+cap(c.hop)+cap(c.xff) > maxKeptScratch {
		c.upgrade, c.vary, c.hop, c.xff = nil, nil, nil, nil
	}
	if cap(c.spans) > 64 {
		c.spans = nil
	}
	c.cp.release()
}

// enterIdle makes the connection idle, waiting for its next request, and reports false when the
// proxy is draining. Order matters for Shutdown: deadline, then state, then the draining check.
// Shutdown sets draining first and then expires the deadline of idle connections, so either the
// connection sees draining or Shutdown sees the idle state after the deadline was set.
func (c *clientConn) enterIdle(first bool) bool {
	return c.idleAt(time.Now(), first)
}

// idleAt is enterIdle at now.
func (c *clientConn) idleAt(now time.Time, first bool) bool {
	c.now = now
	c.armIdle(first)
	c.state.Store(stateIdle)
	return !c.p.draining.Load()
}

// armIdle sets the deadline for the next request's first byte: the header timeout for the
// first request of a connection (a client that connects and stays silent is not idle, it is
// slow), the idle timeout between requests. The idle deadline is only moved when it is more
// than a second behind, which saves a timer update on most requests of a busy connection.
func (c *clientConn) armIdle(first bool) {
	if c.sock.inLoop {
		return // the event loop keeps the idle timeout
	}
	if first {
		c.nc.SetReadDeadline(c.now.Add(c.p.cfg.HeaderTimeout))
		c.idleDeadline = time.Time{}
		return
	}
	if want := c.now.Add(c.p.cfg.IdleTimeout); c.idleDeadline.IsZero() || want.Sub(c.idleDeadline) > time.Second {
		c.nc.SetReadDeadline(want)
		c.idleDeadline = want
	}
}

// armHeader sets the header timeout for a request whose head has begun but is not all buffered.
func (c *clientConn) armHeader() {
	if !c.headBuffered() {
		c.nc.SetReadDeadline(time.Now().Add(c.p.cfg.HeaderTimeout))
		c.idleDeadline = time.Time{}
	}
}

// headBuffered reports whether a whole request head is already buffered, in which case reading
// it cannot block and needs no header deadline (a system call saved on most requests).
func (c *clientConn) headBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
	return headWhole(b)
}

// headWhole reports whether b holds the end of a message head.
func headWhole(b []byte) bool {
	return bytes.Index(b, []byte("\n\r\n")) >= 0 || bytes.Index(b, []byte("\n\n")) >= 0
}

const h2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// isH2Preface reports whether the connection starts with the HTTP/2 client preface (h2c with
// prior knowledge). No HTTP/1 request starts with "PRI", so only such a connection waits for
// the preface's 24 bytes.
func (c *clientConn) isH2Preface() bool {
	b, err := c.br.Peek(3)
	if err != nil || string(b) != "PRI" {
		return false
	}
	b, err = c.br.Peek(len(h2Preface))
	return err == nil && string(b) == h2Preface
}

func (c *clientConn) finish() {
	c.releaseLargeHead()
	c.cp.release()
	if !c.handedOff {
		if c.nc != nil {
			c.nc.Close()
		}
		putReader(c.br)
		c.br = nil
	}
	c.p.forget(c)
}

// closeIfIdle is Shutdown's hook: an idle connection is woken by an expired deadline and ends.
// nc is c.nc as Shutdown read it under Proxy.mu: nil while the event loop owns the connection
// (the loop closes its idle connections itself).
func (c *clientConn) closeIfIdle(nc net.Conn) {
	if nc != nil && c.state.CompareAndSwap(stateIdle, stateClosing) {
		nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// handle serves one request and reports whether the connection stays open.
func (c *clientConn) handle() bool {
	r := &c.req
	return c.respond(r, c.readRequest(r))
}

// respond answers the request just read into r (err: reading it failed) and reports whether
// the connection stays open.
func (c *clientConn) respond(r *request, err error) bool {
	if err != nil {
		c.reject(err)
		return false
	}
	if r.body != bodyNone {
		// The body has its own deadline, extended as it arrives (a tunnel clears it).
		c.clock = bodyClock{nc: c.nc, start: time.Now(), timeout: c.p.cfg.BodyTimeout}
		c.clock.arm()
		c.idleDeadline = time.Time{}
	}
	pol, d := c.decide(r)
	if d.Action == cors.Preflight {
		return c.preflight(r, pol, d)
	}
	return c.forward(r, pol, d)
}

// decide makes (and counts) the CORS decision for r.
func (c *clientConn) decide(r *request) (*cors.Policy, cors.Decision) {
	pol := c.p.policies.Lookup(c.t.port)
	creq := cors.Request{Method: r.method, Origin: r.origin, RequestMethod: r.acrm, RequestHeaders: r.acrh}
	d := pol.Decide(creq)
	c.t.stats.record(pol, &creq, d)
	return pol, d
}

// reject answers a request the proxy could not read.
func (c *clientConn) reject(err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
	case err == errMalformed:
		he = errBadRequest // a request body with malformed framing
	case err == errHeaderTooLarge:
		he = &httpError{431, "Request Header Fields Too Large"}
	case errors.Is(err, os.ErrDeadlineExceeded):
		he = &httpError{408, "Request Timeout"}
	default:
		return // the client went away
	}
	c.out.b = c.out.b[:0]
	c.out.str("HTTP/1.1 " + strconv.Itoa(he.code) + " " + he.text + "\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: " +
		strconv.Itoa(len(he.text)+1) + "\r\nconnection: close\r\n\r\n" + he.text + "\n")
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	if c.out.flush() == nil {
		lingerClose(c.nc, c.br)
	}
}

// lingerClose half-closes a connection after an error response and reads (briefly) what the
// client is still sending, so that closing it does not reset the connection and destroy the
// response before the client read it.
func lingerClose(nc net.Conn, br *bufio.Reader) {
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	nc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.CopyN(io.Discard, br, 256<<10)
}

// writeCORS appends the CORS headers of decision d and, when a policy is active, Vary.
func (c *clientConn) writeCORS(pol *cors.Policy, d cors.Decision) {
	for _, h := range pol.AppendHeaders(c.hdrs[:0], d) {
		c.out.str(h.Name)
		c.out.str(": ")
		c.out.str(h.Value)
		c.out.b = append(c.out.b, crlf...)
	}
	if pol == nil {
		return
	}
	if len(c.vary) == 0 {
		c.out.str("vary: Origin\r\n")
		return
	}
	c.out.str("vary: ")
	c.out.str(cors.MergeVary(string(c.vary)))
	c.out.b = append(c.out.b, crlf...)
}

func (c *clientConn) connHeader(keep bool) {
	if keep {
		c.out.str("connection: keep-alive\r\n\r\n")
	} else {
		c.out.str("connection: close\r\n\r\n")
	}
}

// preflight answers a preflight at the proxy: 200, empty body, the preflight headers.
func (c *clientConn) preflight(r *request, pol *cors.Policy, d cors.Decision) bool {
	keep := !r.close
	switch {
	case r.body == bodyNone:
	case r.expect, r.body == bodyChunked, r.length > maxDiscardBody:
		keep = false // do not wait for (or read) a body nobody needs
	default:
		if err := discardN(c.br, r.length); err != nil {
			return false
		}
	}
	keep = keep && !c.p.draining.Load()
	c.vary = c.vary[:0]
	c.out.b = c.out.b[:0]
	c.out.str("HTTP/1.1 200 OK\r\n")
	c.writeCORS(pol, d)
	c.out.str("content-length: 0\r\n")
	c.connHeader(keep)
	return c.out.flush() == nil && keep
}

// badGateway answers 502 when the application cannot be reached or answers malformed HTTP. The
// connection stays open when the request was consumed whole.
func (c *clientConn) badGateway(r *request, pol *cors.Policy, d cors.Decision, consumed bool, err error) bool {
	return c.gatewayError(r, pol, d, consumed, err, "502 Bad Gateway", "upstream unavailable\n")
}

// upstreamFailed answers a failed wait for the application's response: 504 when the response
// head did not come within Config.UpstreamTimeout, 502 otherwise.
func (c *clientConn) upstreamFailed(r *request, pol *cors.Policy, d cors.Decision, consumed bool, err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return c.gatewayError(r, pol, d, consumed, err, "504 Gateway Timeout", "upstream timed out\n")
	}
	return c.badGateway(r, pol, d, consumed, err)
}

// gatewayError answers a request the application did not answer with status and body.
func (c *clientConn) gatewayError(r *request, pol *cors.Policy, d cors.Decision, consumed bool, err error, status, body string) bool {
	c.t.stats.upErrors.Add(1)
	c.p.logUpstreamError(c.t, err)
	keep := consumed && !r.close && !c.p.draining.Load()
	c.vary = c.vary[:0]
	c.out.b = c.out.b[:0]
	c.out.str("HTTP/1.1 " + status + "\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: " + strconv.Itoa(len(body)) + "\r\n")
	c.writeCORS(pol, d)
	c.connHeader(keep)
	c.out.str(body)
	return c.out.flush() == nil && keep
}

func isIdempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return true
	}
	return false
}

// forward sends the request to the application and its response to the client.
func (c *clientConn) forward(r *request, pol *cors.Policy, d cors.Decision) bool {
	inlined := r.body == bodyNone
	if r.body == bodyLength && !r.expect && r.length <= maxInlineBody {
		n := len(c.head)
		c.head = slices.Grow(c.head, int(r.length))[:n+int(r.length)]
		if _, err := io.ReadFull(c.br, c.head[n:]); err != nil {
			c.reject(err)
			return false
		}
		inlined = true
	}
	return c.send(r, pol, d, inlined, 0)
}

// send runs the exchange on an application connection, once more on a fresh one when a reused
// connection turned out closed (attempt counts from 0).
func (c *clientConn) send(r *request, pol *cors.Policy, d cors.Decision, inlined bool, attempt int) bool {
	for ; ; attempt++ {
		// c.now is when the connection began to wait for this request, which may be long ago.
		now := time.Now()
		// A stale connection is sent an inlined idempotent request once more (readFinalHead).
		retryable := attempt == 0 && inlined && isIdempotent(r.method)
		up, err := c.p.pool.get(context.Background(), c.t.addr, now, retryable)
		if err != nil {
			return c.badGateway(r, pol, d, inlined, err)
		}
		keep, retry := c.exchange(up, r, pol, d, inlined, now)
		if retry && attempt == 0 {
			continue
		}
		return keep
	}
}

// exchange is one request/response exchange on an application connection.
type exchange struct {
	up          *upConn
	r           *request
	pol         *cors.Policy
	d           cors.Decision
	inlined     bool // the request (head and body) is in c.head
	replayable  bool // inlined on a reused connection: it may be sent again on a fresh one
	bodyPending bool // the body still has to be streamed from the client
}

// exchange runs one request/response exchange on up. retry means nothing was received from a
// reused connection that turned out closed, and the request may be sent again on a new one.
func (c *clientConn) exchange(up *upConn, r *request, pol *cors.Policy, d cors.Decision, inlined bool, now time.Time) (keep, retry bool) {
	x := &exchange{up: up, r: r, pol: pol, d: d, inlined: inlined, replayable: inlined && up.reused, bodyPending: !inlined}
	up.awaitHeadBy(now, c.p.cfg.UpstreamTimeout) // before the request leaves: an inlined one waits for the answer as it is written
	if err := c.sendRequest(x); err != nil {
		if x.inlined {
			up.close()
			if x.replayable && isStaleConnErr(err) {
				return false, true // the write failed: the application cannot have seen it
			}
			return c.badGateway(r, pol, d, true, err), false
		}
		return c.failBody(up, r, pol, d, err), false
	}
	c.vary = c.vary[:0]
	return c.receive(x, now)
}

// receive reads the answer to the request x sent at now, and relays it.
func (c *clientConn) receive(x *exchange, now time.Time) (keep, retry bool) {
	if done, keep, retry := c.readFinalHead(x); done {
		return keep, retry
	}
	return c.afterHead(x, now), false
}

// afterHead relays the answer whose final head readFinalHead read: its body, or a tunnel.
func (c *clientConn) afterHead(x *exchange, now time.Time) bool {
	up, r, pol, d := x.up, x.r, x.pol, x.d
	up.lastUsed = now
	if code := c.res.code; code == 101 || isConnectTunnel(r, code) {
		if code == 101 && !r.upgrade {
			up.close()
			c.out.b = c.out.b[:0]
			return c.badGateway(r, pol, d, true, errors.New("101 Switching Protocols to a request without Upgrade"))
		}
		c.tunnel(up)
		return false
	}
	return c.relayBody(x)
}

// sendRequest sends the request head, and the body unless it waits for "100 Continue".
func (c *clientConn) sendRequest(x *exchange) error {
	if x.inlined {
		return x.up.sock.writeAwaitRead(c.head, x.up.br)
	}
	err := x.up.out.write(c.head)
	if err == nil && !x.r.expect {
		err = c.sendBody(x.up, x.r)
		x.bodyPending = false
	}
	if err == nil {
		err = x.up.out.flush()
	}
	return err
}

// readFinalHead reads response heads up to the final one (or a 101), passing 1xx interim
// responses on to the client and sending a waiting body on "100 Continue" (or when none comes in
// time). done means the exchange ended here, with keep and retry its result.
func (c *clientConn) readFinalHead(x *exchange) (done, keep, retry bool) {
	up, r := x.up, x.r
	if r.expect && x.bodyPending {
		up.setReadDeadline(time.Now().Add(expectContinueTimeout))
	} else if !x.inlined {
		up.awaitHeadBy(time.Now(), c.p.cfg.UpstreamTimeout) // the body took its time
	}
	for first := true; ; first = false {
		_, err := up.br.Peek(1)
		if err != nil && x.bodyPending && errors.Is(err, os.ErrDeadlineExceeded) {
			// No "100 Continue": send the body anyway.
			if err = c.sendPendingBody(x); err != nil {
				return true, c.failBody(up, r, x.pol, x.d, err), false
			}
			continue
		}
		if err != nil {
			up.close()
			if first && x.replayable && isStaleConnErr(err) && isIdempotent(r.method) {
				return true, false, true
			}
			return true, c.upstreamFailed(r, x.pol, x.d, !x.bodyPending, err), false
		}
		mark := len(c.out.b)
		if err = c.readResponseHead(up, r, x.pol, x.d, x.bodyPending); err != nil {
			up.close()
			c.out.b = c.out.b[:mark]
			return true, c.upstreamFailed(r, x.pol, x.d, !x.bodyPending, err), false
		}
		code := c.res.code
		if code >= 200 || code == 101 {
			if x.bodyPending {
				up.setReadDeadline(time.Time{})
			}
			return false, false, false
		}
		// An interim response: forward it (HTTP/1.1 clients only) and read on.
		if r.minor == 0 {
			c.out.b = c.out.b[:mark]
		} else if err = c.out.flush(); err != nil {
			up.close()
			return true, false, false
		}
		if code == 100 && x.bodyPending {
			if err = c.sendPendingBody(x); err != nil {
				return true, c.failBody(up, r, x.pol, x.d, err), false
			}
		}
	}
}

// sendPendingBody sends the body a request with "Expect: 100-continue" held back.
func (c *clientConn) sendPendingBody(x *exchange) error {
	x.up.setReadDeadline(time.Time{})
	x.bodyPending = false
	err := c.sendBody(x.up, x.r)
	if err == nil {
		err = x.up.out.flush()
		x.up.awaitHeadBy(time.Now(), c.p.cfg.UpstreamTimeout)
	}
	return err
}

// relayBody sends a final response's body (its head is in c.out) and keeps the application
// connection for the next request when it can carry one: only when nothing but this response
// came from it, since bytes after a complete response would otherwise be served as the answer
// to the next request (RFC 9112 §9.3; net/http closes such connections too).
func (c *clientConn) relayBody(x *exchange) bool {
	up, r, res := x.up, x.r, &c.res
	keep := !r.close && !x.bodyPending && res.body != bodyEOF && !c.p.draining.Load()
	if res.body != bodyNone && !(res.body == bodyLength && int64(up.br.Buffered()) >= res.length) {
		up.setReadDeadline(time.Time{}) // a body may stream for as long as the application likes
	}
	var err error
	switch res.body {
	case bodyLength:
		err = c.cp.copyN(&c.out, up.br, res.length)
	case bodyChunked:
		err = c.cp.copyChunked(&c.out, up.br)
	case bodyEOF:
		err = c.cp.copyEOF(&c.out, up.br)
	}
	// The application connection goes back before the client has the end of the response, so
	// that the client's next request (or another client's) finds it.
	if err != nil || res.close || res.body == bodyEOF || x.bodyPending || up.br.Buffered() > 0 {
		up.close()
	} else {
		// Only a framed body says where the response ends: after a bodiless one (HEAD, 204,
		// 304), an application may still wrongly send one.
		up.quiet = up.sock.drained && (res.body == bodyLength || res.body == bodyChunked)
		c.p.pool.put(up) // the client may idle now: it holds no application connection meanwhile
	}
	if err == nil {
		err = c.out.flush()
	}
	return err == nil && keep
}

// sendBody streams the request body to the application with its framing. A failure on the
// client's side (malformed framing, the body timeout) is returned as a clientError.
func (c *clientConn) sendBody(up *upConn, r *request) error {
	c.cp.clock = &c.clock
	defer func() { c.cp.clock = nil }()
	var err error
	switch r.body {
	case bodyLength:
		err = c.cp.copyN(&up.out, c.br, r.length)
	case bodyChunked:
		err = c.cp.copyChunked(&up.out, c.br)
	}
	if err == errMalformed || errors.Is(err, os.ErrDeadlineExceeded) {
		return &clientError{err}
	}
	return err
}

// clientError is a request body the client got wrong (or sent too slowly): the answer is 400 or
// 408 from the proxy, not 502.
type clientError struct{ err error }

func (e *clientError) Error() string { return e.err.Error() }
func (e *clientError) Unwrap() error { return e.err }

// failBody answers a request whose body failed: the client's fault gets 400 or 408 and the
// connection closes; an upstream failure is 502.
func (c *clientConn) failBody(up *upConn, r *request, pol *cors.Policy, d cors.Decision, err error) bool {
	up.close()
	var ce *clientError
	if errors.As(err, &ce) {
		c.out.b = c.out.b[:0]
		c.reject(ce.err)
		return false
	}
	return c.badGateway(r, pol, d, false, err)
}

// isConnectTunnel reports whether a response turns the connection into a tunnel: a 2xx answer
// to CONNECT (RFC 9110 9.3.6), which has no content.
func isConnectTunnel(r *request, code int) bool {
	return r.method == "CONNECT" && code >= 200 && code < 300
}

// tunnel joins the client and the application after a 101 Switching Protocols (or a 2xx answer
// to CONNECT): bytes flow both ways until both sides have finished (a half-close is passed on),
// either fails, or no byte moved either way for Config.TunnelIdleTimeout. Writes are bounded as
// on the request path, so a side that stops reading ends the tunnel too.
func (c *clientConn) tunnel(up *upConn) {
	defer up.close()
	if n := up.br.Buffered(); n > 0 {
		b, _ := up.br.Peek(n)
		c.out.b = append(c.out.b, b...)
		up.br.Discard(n)
	}
	if c.out.flush() != nil {
		return
	}
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		if _, err := up.sock.Write(b); err != nil {
			return
		}
		c.br.Discard(n)
	}
	t := &tunnelState{idle: c.p.cfg.TunnelIdleTimeout}
	t.last.Store(time.Now().UnixNano())
	var once sync.Once
	abort := func() { once.Do(func() { c.nc.Close(); up.nc.Close() }) }
	pipe := func(dst *sockIO, src net.Conn) {
		buf := bigPool.Get().(*[]byte)
		defer bigPool.Put(buf)
		if err := t.copy(dst, src, *buf); err != nil {
			abort()
			return
		}
		if cw, ok := dst.nc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			abort()
		}
	}
	done := make(chan struct{})
	go func() { pipe(up.sock, c.nc); close(done) }()
	pipe(c.sock, up.nc)
	<-done
}

// tunnelState is what both directions of a tunnel share: when a byte last moved.
type tunnelState struct {
	idle time.Duration
	last atomic.Int64 // unix nanoseconds
}

// copy moves bytes from src to dst until src ends (nil) or fails, or the tunnel idled for
// longer than t.idle in both directions (os.ErrDeadlineExceeded). The read deadline is moved
// only when it is more than a second early.
func (t *tunnelState) copy(dst *sockIO, src net.Conn, buf []byte) error {
	var deadline time.Time
	for {
		now := time.Now()
		if idleSince := time.Unix(0, t.last.Load()); now.Sub(idleSince) >= t.idle {
			return os.ErrDeadlineExceeded
		} else if want := idleSince.Add(t.idle); deadline.IsZero() || want.Sub(deadline) > time.Second {
			src.SetReadDeadline(want)
			deadline = want
		}
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
			t.last.Store(time.Now().UnixNano())
		}
		switch {
		case err == io.EOF:
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Idle this way: the loop ends the tunnel unless the other way moved meanwhile.
			deadline = time.Time{}
		case err != nil:
			return err
		}
	}
}

func isEOF(err error) bool {
	return err == io.EOF || err == io.ErrUnexpectedEOF
}

// isTemporaryAcceptErr reports accept errors worth retrying after a pause.
func isTemporaryAcceptErr(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}
