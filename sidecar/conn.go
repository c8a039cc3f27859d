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
	"unsafe"

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
}

// response is what the proxy needs to know about a response head.
type response struct {
	code   int
	body   bodyKind
	length int64
	close  bool // the application closes its connection after it
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
)

// clientConn serves the HTTP/1.x requests of one client connection, one at a time.
type clientConn struct {
	p  *Proxy
	nc net.Conn
	t  *target
	br *bufio.Reader

	out     outBuf // to the client
	head    []byte // the request head (and a small body) for the application
	scratch []byte // long header lines
	origin  []byte // the request's Origin value; request.origin points into it
	upgrade []byte // the request's Upgrade value
	vary    []byte // the response's Vary values, joined
	hdrs    [cors.MaxHeaders]cors.Header
	req     request
	res     response
	cp      copier

	up    *upConn // the application connection pinned to this client connection
	state atomic.Int32

	now          time.Time // when the current request started
	idleDeadline time.Time // the read deadline set for waiting between requests; zero if another is set

	handedOff bool // the connection now belongs to the HTTP/2 server
}

func (c *clientConn) serve() {
	c.br = getReader(c.nc)
	c.out.w = c.nc
	defer c.finish()
	defer func() {
		// A bug must cost one connection, not the pod's traffic (net/http does the same).
		if v := recover(); v != nil {
			c.p.cfg.Log.Error("panic serving a connection; closing it", "remote", c.nc.RemoteAddr().String(),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			c.up.closeIfSet()
			c.up = nil
		}
	}()
	first := true
	for {
		// Order matters for Shutdown: deadline, then state, then the draining check. Shutdown
		// sets draining first and then expires the deadline of idle connections, so either this
		// loop sees draining or Shutdown sees the idle state after the deadline was set.
		// The idle deadline is only moved when it is more than a second behind, which saves a
		// timer update on most requests of a busy connection.
		c.now = time.Now()
		if want := c.now.Add(c.p.cfg.IdleTimeout); c.idleDeadline.IsZero() || want.Sub(c.idleDeadline) > time.Second {
			c.nc.SetReadDeadline(want)
			c.idleDeadline = want
		}
		c.state.Store(stateIdle)
		if c.p.draining.Load() {
			return
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return // Shutdown closed it while the first byte arrived
		}
		if !c.headBuffered() {
			c.nc.SetReadDeadline(time.Now().Add(c.p.cfg.HeaderTimeout))
			c.idleDeadline = time.Time{}
		}
		if first {
			first = false
			if c.isH2Preface() {
				c.handedOff = true
				c.p.h2.serve(c) // net/http clears the deadline once it has read the preface
				return
			}
		}
		if !c.handle() {
			return
		}
	}
}

// headBuffered reports whether a whole request head is already buffered, in which case reading
// it cannot block and needs no header deadline (a system call saved on most requests).
func (c *clientConn) headBuffered() bool {
	b, _ := c.br.Peek(c.br.Buffered())
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
	if c.up != nil {
		c.p.pool.put(c.up)
		c.up = nil
	}
	c.cp.release()
	if !c.handedOff {
		c.nc.Close()
		putReader(c.br)
		c.br = nil
	}
	c.p.forget(c)
}

// closeIfIdle is Shutdown's hook: an idle connection is woken by an expired deadline and ends.
func (c *clientConn) closeIfIdle() {
	if c.state.CompareAndSwap(stateIdle, stateClosing) {
		c.nc.SetReadDeadline(time.Unix(1, 0))
	}
}

// handle serves one request and reports whether the connection stays open.
func (c *clientConn) handle() bool {
	r := &c.req
	if err := c.readRequest(r); err != nil {
		c.reject(err)
		return false
	}
	if r.body != bodyNone || r.upgrade {
		c.nc.SetReadDeadline(time.Time{}) // bodies and tunnels are not bounded by the header timeout
		c.idleDeadline = time.Time{}
	}
	pol := c.p.policies.Lookup(c.t.port)
	d := pol.Decide(r.method, r.origin)
	c.t.stats.count(d.Action)
	if d.Action == cors.Preflight {
		return c.preflight(r, pol, d)
	}
	return c.forward(r, pol, d)
}

// readRequest reads a request head, fills r, and builds the head to send upstream in c.head:
// the request line and headers as received, minus Connection, Keep-Alive, Proxy-Connection,
// HTTP2-Settings and (unless the upgrade is forwarded) Upgrade, which are hop-by-hop.
func (c *clientConn) readRequest(r *request) error {
	*r = request{}
	budget := c.p.cfg.MaxHeaderBytes
	line, err := readLine(c.br, &c.scratch, &budget)
	if err != nil {
		return err
	}
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 || !isToken(line[:sp1]) {
		return errBadRequest
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errBadRequest
	}
	switch ver := rest[sp2+1:]; string(ver) {
	case "HTTP/1.1":
		r.minor = 1
	case "HTTP/1.0":
		r.minor = 0
		r.close = true // unless it asks for keep-alive
	default:
		if bytes.HasPrefix(ver, []byte("HTTP/")) {
			return errVersion
		}
		return errBadRequest
	}
	for _, b := range rest[:sp2] {
		if b <= ' ' || b == 0x7f {
			return errBadRequest
		}
	}
	r.method = methodString(line[:sp1])
	c.head = append(append(c.head[:0], line...), crlf...)

	var (
		sawOrigin, sawLength, connClose, connKeepAlive, connUpgrade bool
	)
	c.upgrade = c.upgrade[:0]
	for {
		line, err = readLine(c.br, &c.scratch, &budget)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			break
		}
		name, val, ok := splitHeader(line)
		if !ok {
			return errBadRequest
		}
		switch classify(name) {
		case hOrigin:
			if !sawOrigin {
				sawOrigin = true
				c.origin = append(c.origin[:0], val...)
			}
		case hContentLength:
			n := parseContentLength(val)
			if n < 0 || sawLength && n != r.length {
				return errBadRequest
			}
			sawLength, r.length = true, n
		case hTransferEncoding:
			if !lastTokenIs(val, "chunked") {
				// The body length cannot be determined (RFC 9112 6.3).
				return errBadRequest
			}
			r.body = bodyChunked
		case hConnection:
			connClose = connClose || hasToken(val, "close")
			connKeepAlive = connKeepAlive || hasToken(val, "keep-alive")
			connUpgrade = connUpgrade || hasToken(val, "upgrade")
			continue
		case hKeepAlive, hProxyConnection, hHTTP2Settings:
			continue
		case hUpgrade:
			if len(c.upgrade) > 0 {
				c.upgrade = append(c.upgrade, ", "...)
			}
			c.upgrade = append(c.upgrade, val...)
			continue
		case hExpect:
			if equalFold(val, "100-continue") {
				r.expect = true
			}
		}
		c.head = append(append(c.head, line...), crlf...)
	}
	if !sawOrigin {
		c.origin = c.origin[:0]
	}
	if r.body == bodyChunked {
		if sawLength || r.minor == 0 {
			return errBadRequest // smuggling vector, or chunked from an HTTP/1.0 client
		}
	} else if sawLength && r.length > 0 {
		r.body = bodyLength
	}
	switch {
	case connClose:
		r.close = true
	case r.minor == 0 && connKeepAlive:
		r.close = false
	}
	if connUpgrade && len(c.upgrade) > 0 && !equalFold(c.upgrade, "h2c") && r.minor == 1 {
		r.upgrade = true
		c.head = append(c.head, "Upgrade: "...)
		c.head = append(c.head, c.upgrade...)
		c.head = append(c.head, "\r\nConnection: Upgrade\r\n"...)
	} else if r.minor == 0 {
		// Keep the application connection reusable for HTTP/1.0 clients too.
		c.head = append(c.head, "Connection: keep-alive\r\n"...)
	}
	c.head = append(c.head, crlf...)
	if len(c.origin) > 0 {
		r.origin = unsafe.String(unsafe.SliceData(c.origin), len(c.origin))
	}
	return nil
}

// reject answers a request the proxy could not read.
func (c *clientConn) reject(err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
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
	c.t.stats.upErrors.Add(1)
	c.p.logUpstreamError(c.t, err)
	keep := consumed && !r.close && !c.p.draining.Load()
	const body = "upstream unavailable\n"
	c.vary = c.vary[:0]
	c.out.b = c.out.b[:0]
	c.out.str("HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: " + strconv.Itoa(len(body)) + "\r\n")
	c.writeCORS(pol, d)
	c.connHeader(keep)
	c.out.str(body)
	return c.out.flush() == nil && keep
}

// upstream returns the pinned application connection if it is still usable, else one from the
// pool or a new one.
func (c *clientConn) upstream() (*upConn, error) {
	if u := c.up; u != nil {
		c.up = nil
		if u.usable(c.now, c.p.cfg.UpstreamIdleTimeout) {
			return u, nil
		}
		u.close()
	}
	return c.p.pool.get(context.Background(), c.t.addr)
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
			return false
		}
		inlined = true
	}
	for attempt := 0; ; attempt++ {
		up, err := c.upstream()
		if err != nil {
			return c.badGateway(r, pol, d, inlined, err)
		}
		keep, retry := c.exchange(up, r, pol, d, inlined)
		if retry && attempt == 0 {
			continue
		}
		return keep
	}
}

// exchange runs one request/response exchange on up. retry means nothing was received from a
// reused connection that turned out closed, and the request may be sent again on a new one.
func (c *clientConn) exchange(up *upConn, r *request, pol *cors.Policy, d cors.Decision, inlined bool) (keep, retry bool) {
	replayable := inlined && up.reused
	bodyPending := !inlined // the body still has to be streamed from the client

	var err error
	if inlined {
		_, err = up.nc.Write(c.head)
		if err != nil {
			up.close()
			if replayable && isStaleConnErr(err) {
				return false, true // the write failed: the application cannot have seen it
			}
			return c.badGateway(r, pol, d, true, err), false
		}
	} else {
		err = up.out.write(c.head)
		if err == nil && !r.expect {
			err = c.sendBody(up, r)
			bodyPending = false
		}
		if err == nil {
			err = up.out.flush()
		}
		if err != nil {
			up.close()
			return c.badGateway(r, pol, d, false, err), false
		}
	}

	// Read the response head, passing 1xx interim responses on to the client.
	c.vary = c.vary[:0]
	if r.expect && bodyPending {
		up.nc.SetReadDeadline(time.Now().Add(expectContinueTimeout))
	}
	first := true
	for {
		_, err = up.br.Peek(1)
		if err != nil && bodyPending && errors.Is(err, os.ErrDeadlineExceeded) {
			// No "100 Continue": send the body anyway.
			up.nc.SetReadDeadline(time.Time{})
			if err = c.sendBody(up, r); err == nil {
				err = up.out.flush()
			}
			bodyPending = false
			if err == nil {
				continue
			}
		}
		if err != nil {
			up.close()
			if first && replayable && isStaleConnErr(err) && isIdempotent(r.method) {
				return false, true
			}
			return c.badGateway(r, pol, d, !bodyPending, err), false
		}
		first = false
		mark := len(c.out.b)
		if err = c.readResponseHead(up, r, pol, d, bodyPending); err != nil {
			up.close()
			c.out.b = c.out.b[:mark]
			return c.badGateway(r, pol, d, !bodyPending, err), false
		}
		code := c.res.code
		if code >= 200 || code == 101 {
			break
		}
		// An interim response: forward it (HTTP/1.1 clients only) and read on.
		if r.minor == 0 {
			c.out.b = c.out.b[:mark]
		} else if err = c.out.flush(); err != nil {
			up.close()
			return false, false
		}
		if code == 100 && bodyPending {
			up.nc.SetReadDeadline(time.Time{})
			if err = c.sendBody(up, r); err == nil {
				err = up.out.flush()
			}
			bodyPending = false
			if err != nil {
				up.close()
				return false, false
			}
		}
	}
	if bodyPending {
		up.nc.SetReadDeadline(time.Time{})
	}
	res := &c.res
	up.lastUsed = c.now

	if res.code == 101 || isConnectTunnel(r, res.code) {
		if res.code == 101 && !r.upgrade {
			up.close()
			c.out.b = c.out.b[:0]
			return c.badGateway(r, pol, d, true, errors.New("101 Switching Protocols to a request without Upgrade")), false
		}
		c.tunnel(up)
		return false, false
	}

	// A final response. The head (connection header included) is in c.out; send the body.
	keep = !r.close && !bodyPending && res.body != bodyEOF && !c.p.draining.Load()
	switch res.body {
	case bodyLength:
		err = c.cp.copyN(&c.out, up.br, res.length)
	case bodyChunked:
		err = c.cp.copyChunked(&c.out, up.br)
	case bodyEOF:
		err = c.cp.copyEOF(&c.out, up.br)
	}
	if err == nil {
		err = c.out.flush()
	}
	if err != nil || res.close || res.body == bodyEOF || bodyPending {
		up.close()
	} else {
		up.reused = true
		c.up = up
	}
	return err == nil && keep, false
}

// sendBody streams the request body to the application with its framing.
func (c *clientConn) sendBody(up *upConn, r *request) error {
	switch r.body {
	case bodyLength:
		return c.cp.copyN(&up.out, c.br, r.length)
	case bodyChunked:
		return c.cp.copyChunked(&up.out, c.br)
	}
	return nil
}

// readResponseHead reads a response head from the application into c.res and appends the head
// for the client to c.out: the status line as HTTP/1.1, the headers minus the hop-by-hop ones,
// for an actual CORS request the CORS headers (replacing any the application set), Vary when a
// policy is active, and the proxy's own Connection header. Interim (1xx) responses are copied
// without additions.
func (c *clientConn) readResponseHead(up *upConn, r *request, pol *cors.Policy, d cors.Decision, bodyPending bool) error {
	res := &c.res
	*res = response{}
	budget := c.p.cfg.MaxHeaderBytes
	line, err := readLine(up.br, &c.scratch, &budget)
	if err != nil {
		return err
	}
	// "HTTP/1.x NNN reason"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return errMalformed
	}
	code := 0
	for _, b := range line[9:12] {
		if b < '0' || b > '9' {
			return errMalformed
		}
		code = code*10 + int(b-'0')
	}
	if len(line) > 12 && line[12] != ' ' || code < 100 {
		return errMalformed
	}
	res.code = code
	res.close = line[7] == '0' // HTTP/1.0 closes unless it says keep-alive
	interim := code < 200 && code != 101
	actual := d.Action == cors.Actual && !interim

	c.out.str("HTTP/1.1")
	c.out.b = append(append(c.out.b, line[8:]...), crlf...)
	sawLength, chunked := false, false
	for {
		line, err = readLine(up.br, &c.scratch, &budget)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			break
		}
		name, val, ok := splitHeader(line)
		if !ok {
			return errMalformed
		}
		switch classify(name) {
		case hContentLength:
			n := parseContentLength(val)
			if n < 0 || sawLength && n != res.length {
				return errMalformed
			}
			sawLength, res.length = true, n
		case hTransferEncoding:
			chunked = lastTokenIs(val, "chunked")
			if !chunked {
				res.close = true // delimited by close
			}
		case hConnection:
			if hasToken(val, "close") {
				res.close = true
			} else if hasToken(val, "keep-alive") {
				res.close = false
			}
			if code != 101 {
				continue
			}
		case hUpgrade:
			if code != 101 {
				continue
			}
		case hKeepAlive, hProxyConnection:
			continue
		case hVary:
			if pol != nil && !interim {
				if len(c.vary) > 0 {
					c.vary = append(c.vary, ", "...)
				}
				c.vary = append(c.vary, val...)
				continue
			}
		case hAllowOrigin, hAllowCredentials, hExposeHeaders:
			if actual {
				continue // the policy's values replace the application's
			}
		}
		c.out.b = append(append(c.out.b, line...), crlf...)
	}
	if sawLength && chunked {
		return errMalformed // RFC 9112 6.3: a smuggling vector; refuse to forward it
	}
	switch {
	case interim || code == 204 || code == 304 || r.method == "HEAD" || isConnectTunnel(r, code):
		res.body = bodyNone
	case chunked:
		res.body = bodyChunked
	case sawLength:
		res.body = bodyLength
		if res.length == 0 {
			res.body = bodyNone
		}
	case code == 101:
		res.body = bodyNone
	default:
		res.body = bodyEOF
	}
	if interim {
		c.out.b = append(c.out.b, crlf...)
		return nil
	}
	c.writeCORS(pol, d)
	if code == 101 || isConnectTunnel(r, code) {
		c.out.b = append(c.out.b, crlf...) // the connection becomes a tunnel: no Connection header of ours
		return nil
	}
	keep := !r.close && !bodyPending && res.body != bodyEOF && !c.p.draining.Load()
	c.connHeader(keep)
	return nil
}

// isConnectTunnel reports whether a response turns the connection into a tunnel: a 2xx answer
// to CONNECT (RFC 9110 9.3.6), which has no content.
func isConnectTunnel(r *request, code int) bool {
	return r.method == "CONNECT" && code >= 200 && code < 300
}

// tunnel joins the client and the application after a 101 Switching Protocols (or a 2xx answer
// to CONNECT): bytes flow both ways until both sides have finished (a half-close is passed on)
// or either fails.
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
		if _, err := up.nc.Write(b); err != nil {
			return
		}
		c.br.Discard(n)
	}
	c.nc.SetReadDeadline(time.Time{})
	var once sync.Once
	abort := func() { once.Do(func() { c.nc.Close(); up.nc.Close() }) }
	pipe := func(dst, src net.Conn) {
		if _, err := io.Copy(dst, src); err != nil {
			abort()
			return
		}
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			abort()
		}
	}
	done := make(chan struct{})
	go func() { pipe(up.nc, c.nc); close(done) }()
	pipe(c.nc, up.nc)
	<-done
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
