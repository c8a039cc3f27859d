package sidecar

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"unsafe"
)

// The request head (RFC 9112 §3-§6): read, checked, and rewritten for the application.

// headScan is the state of reading one header section that only the reading needs.
type headScan struct {
	sawOrigin, sawLength, sawHost bool
	sawACRM                       bool
	sawTE                         bool
	connClose, connKeepAlive      bool
	connUpgrade                   bool
	teTrailers                    bool // TE lists "trailers"
}

// fieldSpan locates one forwarded field line in an output buffer, so that the fields named in
// Connection can be dropped once the whole section has been read.
type fieldSpan struct {
	start, end, nameLen int
}

// readRequest reads a request head, fills r, and builds the head to send upstream in c.head:
// the request line (as HTTP/1.1 for any 1.x above 1.0) and the fields as received, minus the
// hop-by-hop ones: Connection, Keep-Alive, Proxy-Connection, HTTP2-Settings, TE (but
// "trailers"), the fields that Connection names, and (unless the upgrade is forwarded) Upgrade;
// X-Forwarded-For and X-Forwarded-Proto are rewritten (see forward.go).
func (c *clientConn) readRequest(r *request) error {
	*r = request{}
	budget := c.p.cfg.MaxHeaderBytes
	line, err := readLine(c.br, &c.scratch, &budget, c.largeHeadFn)
	if err != nil {
		return err
	}
	if err := c.parseRequestLine(r, line); err != nil {
		return err
	}
	var st headScan
	c.upgrade = c.upgrade[:0]
	c.acrm, c.acrh = c.acrm[:0], c.acrh[:0]
	c.hop = c.hop[:0]
	c.spans = c.spans[:0]
	c.xff = c.xff[:0]
	err = c.readFields(c.br, &budget, &c.head, errBadRequest, c.largeHeadFn, func(kind headerKind, val []byte) (bool, error) {
		if cap(c.head) > smallHeadBytes && !c.largeHead {
			if err := c.takeLargeHead(); err != nil {
				return false, err
			}
		}
		return c.requestField(r, &st, kind, val)
	})
	if err != nil {
		return err
	}
	return c.finishRequest(r, &st)
}

// parseRequestLine checks "method SP request-target SP HTTP-version" and starts c.head with it.
func (c *clientConn) parseRequestLine(r *request, line []byte) error {
	sp1 := bytes.IndexByte(line, ' ')
	if sp1 <= 0 || !isToken(line[:sp1]) {
		return errBadRequest
	}
	rest := line[sp1+1:]
	sp2 := bytes.IndexByte(rest, ' ')
	if sp2 <= 0 {
		return errBadRequest
	}
	minor, err := parseVersion(rest[sp2+1:])
	if err != nil {
		return err
	}
	r.method = methodString(line[:sp1])
	if !validTarget(r.method, rest[:sp2]) {
		return errBadRequest
	}
	r.minor = minor
	r.close = minor == 0 // unless it asks for keep-alive
	c.head = append(c.head[:0], line[:len(line)-1]...)
	c.head = append(c.head, byte('0'+minor), '\r', '\n')
	return nil
}

// parseVersion parses "HTTP/1.x" into 0 for HTTP/1.0 and 1 for any later minor version, which a
// recipient treats as HTTP/1.1 (RFC 9112 §2.3). Another major version is 505.
func parseVersion(v []byte) (int, error) {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || !isDigit(v[5]) || !isDigit(v[7]) {
		return 0, errBadRequest
	}
	if v[5] != '1' {
		return 0, errVersion
	}
	if v[7] == '0' {
		return 0, nil
	}
	return 1, nil
}

func isDigit(b byte) bool { return '0' <= b && b <= '9' }

// readFields reads field lines up to the empty line, hands each to take, and appends the ones
// it forwards to *out as received, noting where in c.spans. bad is the error for a line that is
// not a field line; long is readLine's.
func (c *clientConn) readFields(br *bufio.Reader, budget *int, out *[]byte, bad error, long func() error, take func(headerKind, []byte) (bool, error)) error {
	for {
		line, err := readLine(br, &c.scratch, budget, long)
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
		if len(line) == 0 {
			return nil
		}
		name, val, ok := splitHeader(line)
		if !ok {
			return bad
		}
		forward, err := take(classify(name), val)
		if err != nil {
			return err
		}
		if forward {
			c.spans = append(c.spans, fieldSpan{len(*out), len(*out) + len(line) + 2, len(name)})
			*out = append(append(*out, line...), crlf...)
		}
	}
}

// requestField takes in one request field and reports whether it is forwarded as received.
func (c *clientConn) requestField(r *request, st *headScan, kind headerKind, val []byte) (bool, error) {
	switch kind {
	case hHost, hContentLength, hTransferEncoding:
		return true, framingField(r, st, kind, val)
	case hConnection, hKeepAlive, hProxyConnection, hHTTP2Settings, hForwardedProto, hForwardedFor, hTE, hUpgrade:
		c.hopField(st, kind, val)
		return false, nil
	case hOrigin:
		if !st.sawOrigin {
			st.sawOrigin = true
			c.origin = append(c.origin[:0], val...)
		}
	case hRequestMethod:
		if !st.sawACRM {
			st.sawACRM = true
			c.acrm = append(c.acrm, val...)
		}
	case hRequestHeaders:
		if len(val) > 0 { // an empty line adds no element (RFC 9110 §5.3), as the CORS parser reads it
			c.acrh = appendList(c.acrh, val)
		}
	case hExpect:
		r.expect = r.expect || equalFold(val, "100-continue")
	}
	return true, nil
}

// framingField takes in a field that decides where the request goes and where it ends: Host,
// Content-Length, Transfer-Encoding (RFC 9112 §3.2, §6).
func framingField(r *request, st *headScan, kind headerKind, val []byte) error {
	switch kind {
	case hHost:
		if st.sawHost || !validHost(val) {
			return errBadRequest
		}
		st.sawHost = true
	case hContentLength:
		n := parseContentLength(val)
		if n < 0 || st.sawLength && n != r.length {
			return errBadRequest
		}
		st.sawLength, r.length = true, n
	case hTransferEncoding:
		switch {
		case st.sawTE || !lastTokenIs(val, "chunked"):
			return errBadRequest // chunked twice, or the length cannot be determined (RFC 9112 §6.3)
		case !equalFold(val, "chunked"):
			return errNotImplemented // a coding under chunked (RFC 9112 §6.1)
		}
		st.sawTE, r.body = true, bodyChunked
	}
	return nil
}

// hopField takes in a field for this hop only, which is never forwarded as received:
// finishRequest writes what the next hop needs of it.
func (c *clientConn) hopField(st *headScan, kind headerKind, val []byte) {
	switch kind {
	case hConnection:
		st.connClose = st.connClose || hasToken(val, "close")
		st.connKeepAlive = st.connKeepAlive || hasToken(val, "keep-alive")
		st.connUpgrade = st.connUpgrade || hasToken(val, "upgrade")
		c.hop = appendList(c.hop, val)
	case hForwardedFor:
		if len(val) > 0 {
			c.xff = appendList(c.xff, val)
		}
	case hTE:
		st.teTrailers = st.teTrailers || hasToken(val, "trailers")
	case hUpgrade:
		c.upgrade = appendList(c.upgrade, val)
	}
}

// finishRequest decides the framing and the connection's fate once the head is read, and ends
// c.head.
func (c *clientConn) finishRequest(r *request, st *headScan) error {
	if !st.sawOrigin {
		c.origin = c.origin[:0]
	}
	if r.minor == 1 && !st.sawHost {
		return errBadRequest // RFC 9112 §3.2
	}
	if r.body == bodyChunked {
		if st.sawLength || r.minor == 0 {
			return errBadRequest // smuggling vector, or chunked from an HTTP/1.0 client
		}
	} else if st.sawLength && r.length > 0 {
		r.body = bodyLength
	}
	switch {
	case st.connClose:
		r.close = true
	case r.minor == 0 && st.connKeepAlive:
		r.close = false
	}
	c.head = dropHopFields(c.head, c.spans, c.hop)
	c.head = c.appendForwarded(c.head)
	var conn string
	if st.connUpgrade && len(c.upgrade) > 0 && !equalFold(c.upgrade, "h2c") && r.minor == 1 {
		r.upgrade = true
		c.head = append(c.head, "Upgrade: "...)
		c.head = append(c.head, c.upgrade...)
		c.head = append(c.head, crlf...)
		conn = "Upgrade"
	} else if r.minor == 0 {
		conn = "keep-alive" // keep the application connection reusable for HTTP/1.0 clients too
	}
	if st.teTrailers {
		// RFC 9110 §10.1.4: TE is for the next hop only, and its sender names it in
		// Connection. The proxy relays trailers, so "trailers" holds on its hop too.
		c.head = append(c.head, "TE: trailers\r\n"...)
		conn = joinToken(conn, "TE")
	}
	if conn != "" {
		c.head = append(c.head, "Connection: "...)
		c.head = append(c.head, conn...)
		c.head = append(c.head, crlf...)
	}
	c.head = append(c.head, crlf...)
	if len(c.origin) > 0 {
		r.origin = unsafe.String(unsafe.SliceData(c.origin), len(c.origin))
	}
	if len(c.acrm) > 0 {
		r.acrm = unsafe.String(unsafe.SliceData(c.acrm), len(c.acrm))
	}
	if len(c.acrh) > 0 {
		r.acrh = unsafe.String(unsafe.SliceData(c.acrh), len(c.acrh))
	}
	return nil
}

// appendForwarded appends the forwarding fields (see forward.go): X-Forwarded-For with the
// client's address after the values received (unless Connection named the field), and
// X-Forwarded-Proto.
func (c *clientConn) appendForwarded(head []byte) []byte {
	head = append(head, "X-Forwarded-For: "...)
	if len(c.xff) > 0 && !(namesOtherFields(c.hop) && listHasFold(c.hop, []byte("x-forwarded-for"))) {
		head = append(append(head, c.xff...), ", "...)
	}
	head = append(head, c.clientAddr...)
	return append(head, "\r\nX-Forwarded-Proto: http\r\n"...)
}

// joinToken appends tok to the comma-separated list list.
func joinToken(list, tok string) string {
	if list == "" {
		return tok
	}
	return list + ", " + tok
}

// appendList appends the comma-separated list v to list.
func appendList(list, v []byte) []byte {
	if len(list) > 0 {
		list = append(list, ", "...)
	}
	return append(list, v...)
}

// dropHopFields removes from buf the field lines at spans whose name the Connection list
// connList holds (RFC 9110 §7.6.1), except the framing fields, which the proxy forwards as
// the framing it relays. It returns buf unchanged when Connection names nothing but its own
// options, the usual case.
func dropHopFields(buf []byte, spans []fieldSpan, connList []byte) []byte {
	if !namesOtherFields(connList) {
		return buf
	}
	if len(spans) == 0 {
		return buf
	}
	// The forwarded lines are contiguous: compact them in place.
	w, last := spans[0].start, spans[len(spans)-1].end
	for _, s := range spans {
		name := buf[s.start : s.start+s.nameLen]
		switch classify(name) {
		case hHost, hContentLength, hTransferEncoding:
		default:
			if listHasFold(connList, name) {
				continue
			}
		}
		w += copy(buf[w:], buf[s.start:s.end])
	}
	return append(buf[:w], buf[last:]...)
}

// namesOtherFields reports whether a Connection list holds more than close, keep-alive and
// upgrade.
func namesOtherFields(list []byte) bool {
	for len(list) > 0 {
		var tok []byte
		tok, list = nextListItem(list)
		if len(tok) > 0 && !equalFold(tok, "close") && !equalFold(tok, "keep-alive") && !equalFold(tok, "upgrade") {
			return true
		}
	}
	return false
}

// listHasFold reports whether a comma-separated list holds name, ignoring ASCII case.
func listHasFold(list, name []byte) bool {
	for len(list) > 0 {
		var tok []byte
		tok, list = nextListItem(list)
		if bytes.EqualFold(tok, name) {
			return true
		}
	}
	return false
}

// validTarget checks the form of a request-target (RFC 9112 §3.2): origin-form, absolute-form,
// authority-form for CONNECT, asterisk-form for OPTIONS; no whitespace or control bytes, and
// (like net/http) valid percent-encodings in the path.
func validTarget(method string, t []byte) bool {
	for _, b := range t {
		if b <= ' ' || b == 0x7f {
			return false
		}
	}
	return validTargetForm(method, t) && validPathEscapes(t)
}

func validTargetForm(method string, t []byte) bool {
	switch {
	case method == "CONNECT":
		return len(t) > 0 && t[0] != '/' && bytes.IndexByte(t, ':') > 0 && validAuthority(t)
	case len(t) == 1 && t[0] == '*':
		return method == "OPTIONS"
	case len(t) > 0 && t[0] == '/':
		return true
	}
	// absolute-form: scheme "://" authority [ path-abempty [ "?" query ] ], the authority a valid
	// Host (no userinfo: RFC 9110 §4.2.4).
	i := bytes.Index(t, []byte("://"))
	if i <= 0 || !isAlpha(t[0]) {
		return false
	}
	for _, b := range t[1:i] {
		if !isAlpha(b) && !isDigit(b) && b != '+' && b != '-' && b != '.' {
			return false
		}
	}
	authority := t[i+3:]
	if end := bytes.IndexAny(authority, "/?"); end >= 0 {
		authority = authority[:end]
	}
	return validAuthority(authority)
}

// validAuthority checks the authority of an absolute-form or authority-form target: a valid
// Host without percent-encodings (net/http's URL parser allows them in a host only for
// non-ASCII bytes).
func validAuthority(a []byte) bool {
	return bytes.IndexByte(a, '%') < 0 && validHost(a)
}

// validPathEscapes checks the percent-encodings of the target's path (net/http rejects a bad
// one there; the query is left alone, as net/http does).
func validPathEscapes(t []byte) bool {
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		t = t[:i]
	}
	for i := 0; i < len(t); i++ {
		if t[i] == '%' {
			if i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isAlpha(b byte) bool { return 'a' <= b|0x20 && b|0x20 <= 'z' }

// validHost reports whether v is a valid Host value: uri-host [ ":" port ] (RFC 9112 §3.2,
// RFC 3986 §3.2.2), empty included (a request-target without authority).
func validHost(v []byte) bool {
	host, port := v, []byte(nil)
	if len(v) > 0 && v[0] == '[' {
		end := bytes.IndexByte(v, ']')
		if end < 0 || !validIPLiteral(v[1:end]) {
			return false
		}
		host, port = nil, v[end+1:]
		if len(port) > 0 {
			if port[0] != ':' {
				return false
			}
			port = port[1:]
		}
	} else if i := bytes.IndexByte(v, ':'); i >= 0 {
		host, port = v[:i], v[i+1:]
	}
	for _, b := range port {
		if !isDigit(b) {
			return false
		}
	}
	for i := 0; i < len(host); i++ {
		switch b := host[i]; {
		case b == '%':
			if i+2 >= len(host) || !isHex(host[i+1]) || !isHex(host[i+2]) {
				return false
			}
			i += 2
		case !regNameTable[b]:
			return false
		}
	}
	return true
}

// validIPLiteral accepts an IPv6 address between the brackets (IPvFuture is refused, as net/http
// refuses it).
func validIPLiteral(b []byte) bool {
	a, err := netip.ParseAddr(string(b))
	return err == nil && a.Is6() && a.Zone() == ""
}

func isHex(b byte) bool { return isDigit(b) || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' }

// regNameTable marks unreserved and sub-delims (RFC 3986 §2), the bytes of a reg-name besides
// percent-encodings.
var regNameTable = alnumTable("-._~!$&'()*+,;=")
