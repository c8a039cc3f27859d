package sidecar

import (
	"bytes"

	"github.com/cors-webhook/cors-webhook/cors"
)

// The response head (RFC 9112 §4-§6): read from the application, checked, and rewritten for the
// client.

// readResponseHead reads a response head from the application into c.res and appends the head
// for the client to c.out: the status line as HTTP/1.1, the fields minus the hop-by-hop ones
// (those Connection names included), for an actual CORS request the CORS fields (replacing any
// the application set), Vary when a policy is active, and the proxy's own Connection field.
// Interim (1xx) responses are copied without additions.
func (c *clientConn) readResponseHead(up *upConn, r *request, pol *cors.Policy, d cors.Decision, bodyPending bool) error {
	res := &c.res
	*res = response{}
	budget := c.p.cfg.MaxHeaderBytes
	line, err := readLine(up.br, &c.scratch, &budget, nil)
	if err != nil {
		return err
	}
	if err := c.parseStatusLine(res, line); err != nil {
		return err
	}
	interim := res.code < 200 && res.code != 101
	start := len(c.out.b)
	c.hop = c.hop[:0]
	c.spans = c.spans[:0]
	var st headScan
	actual, collectVary := d.Action == cors.Actual && !interim, pol != nil && !interim
	err = c.readFields(up.br, &budget, &c.out.b, errMalformed, nil, func(kind headerKind, val []byte) (bool, error) {
		return c.responseField(res, &st, kind, val, actual, collectVary)
	})
	if err != nil {
		return err
	}
	c.out.b = append(c.out.b[:start], dropHopFields(c.out.b[start:], shift(c.spans, -start), c.hop)...)
	if st.sawTE && (st.sawLength || res.http10) {
		// RFC 9112 §6.3: a smuggling vector; and an HTTP/1.0 recipient (net/http included)
		// ignores chunked. Refuse to forward either.
		return errMalformed
	}
	res.body = responseBody(r, res, st.sawLength)
	if interim {
		c.out.b = append(c.out.b, crlf...)
		return nil
	}
	c.writeCORS(pol, d)
	if res.code == 101 || isConnectTunnel(r, res.code) {
		c.out.b = append(c.out.b, crlf...) // the connection becomes a tunnel: no Connection field of ours
		return nil
	}
	c.connHeader(!r.close && !bodyPending && res.body != bodyEOF && !c.p.draining.Load())
	return nil
}

// shift moves spans by delta, in place.
func shift(spans []fieldSpan, delta int) []fieldSpan {
	for i := range spans {
		spans[i].start += delta
		spans[i].end += delta
	}
	return spans
}

// parseStatusLine checks "HTTP/1.x NNN reason" and appends it to c.out as HTTP/1.1.
func (c *clientConn) parseStatusLine(res *response, line []byte) error {
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || !isDigit(line[7]) || line[8] != ' ' {
		return errMalformed
	}
	code := 0
	for _, b := range line[9:12] {
		if !isDigit(b) {
			return errMalformed
		}
		code = code*10 + int(b-'0')
	}
	if len(line) > 12 && (line[12] != ' ' || !validReason(line[13:])) || code < 100 {
		return errMalformed
	}
	res.code = code
	res.http10 = line[7] == '0'
	res.close = res.http10 // unless it says keep-alive
	c.out.str("HTTP/1.1")
	c.out.b = append(append(c.out.b, line[8:]...), crlf...)
	return nil
}

// responseField takes in one response field and reports whether it is forwarded as received.
// actual drops the application's CORS fields (the policy's replace them); collectVary gathers
// Vary into c.vary.
func (c *clientConn) responseField(res *response, st *headScan, kind headerKind, val []byte, actual, collectVary bool) (bool, error) {
	switch kind {
	case hContentLength:
		n := parseContentLength(val)
		if n < 0 || st.sawLength && n != res.length {
			return false, errMalformed
		}
		st.sawLength, res.length = true, n
	case hTransferEncoding:
		// Only chunked alone: a client (net/http among them) may not decode another coding's
		// framing, and a close-delimited body with a coding is a rarity not worth the ambiguity.
		if st.sawTE || !equalFold(val, "chunked") {
			return false, errMalformed
		}
		st.sawTE, res.body = true, bodyChunked
	case hConnection:
		if hasToken(val, "close") {
			res.close = true
		} else if hasToken(val, "keep-alive") {
			res.close = false
		}
		if res.code != 101 {
			c.hop = appendList(c.hop, val)
			return false, nil
		}
	case hUpgrade:
		return res.code == 101, nil
	case hKeepAlive, hProxyConnection:
		return false, nil
	case hVary:
		if collectVary {
			c.vary = appendList(c.vary, val)
			return false, nil
		}
	case hAllowOrigin, hAllowCredentials, hExposeHeaders:
		return !actual, nil // the policy's values replace the application's
	}
	return true, nil
}

// responseBody decides how the response body is delimited (RFC 9112 §6.3).
func responseBody(r *request, res *response, sawLength bool) bodyKind {
	code := res.code
	switch {
	case code < 200 || code == 204 || code == 304 || r.method == "HEAD" || isConnectTunnel(r, code):
		return bodyNone
	case res.body == bodyChunked:
		return bodyChunked
	case sawLength && res.length > 0:
		return bodyLength
	case sawLength:
		return bodyNone
	}
	return bodyEOF
}
