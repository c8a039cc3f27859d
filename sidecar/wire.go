package sidecar

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"time"
)

// This file holds the HTTP/1.1 wire helpers of the fast path: line reading with a size budget,
// header classification, and body copying with framing. They work on bytes in bufio buffers and
// never allocate per request once the connection's buffers have grown.

var (
	errHeaderTooLarge = errors.New("header section too large")
	errMalformed      = errors.New("malformed HTTP message")
)

var crlf = []byte("\r\n")

// readLine returns the next line without its line ending (CRLF or a bare LF). The slice points
// into br's buffer or into *scratch (for lines longer than br's buffer) and is valid until the
// next read. budget is decremented by the line's length; running out is errHeaderTooLarge.
// long, when set, is asked before a line longer than br's buffer is gathered in *scratch; its
// error is returned.
func readLine(br *bufio.Reader, scratch *[]byte, budget *int, long func() error) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	if err == nil {
		*budget -= len(line)
		if *budget < 0 {
			return nil, errHeaderTooLarge
		}
		return trimEOL(line), nil
	}
	if err != bufio.ErrBufferFull {
		if err == io.EOF && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if long != nil {
		if err := long(); err != nil {
			return nil, err
		}
	}
	buf := append((*scratch)[:0], line...)
	for {
		if len(buf) > *budget {
			return nil, errHeaderTooLarge
		}
		line, err = br.ReadSlice('\n')
		buf = append(buf, line...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	*scratch = buf
	*budget -= len(buf)
	if *budget < 0 {
		return nil, errHeaderTooLarge
	}
	return trimEOL(buf), nil
}

func trimEOL(line []byte) []byte {
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line
}

// splitHeader splits a header field line into name and value (optional whitespace trimmed). It
// rejects obsolete line folding, an empty or non-token name, and whitespace before the colon
// (RFC 9112 5.1: a server must reject it, it is a request smuggling vector).
func splitHeader(line []byte) (name, value []byte, ok bool) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return nil, nil, false
	}
	name = line[:colon]
	if !isToken(name) {
		return nil, nil, false
	}
	value = trimOWS(line[colon+1:])
	for _, c := range value {
		if c < ' ' && c != '\t' || c == 0x7f {
			return nil, nil, false
		}
	}
	return name, value, true
}

// trimOWS trims optional whitespace (SP and HTAB, RFC 9110 §5.6.3) from both ends of b.
func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for n := len(b); n > 0 && (b[n-1] == ' ' || b[n-1] == '\t'); n = len(b) {
		b = b[:n-1]
	}
	return b
}

// tokenTable marks the bytes allowed in an RFC 9110 token.
var tokenTable = alnumTable("!#$%&'*+-.^_`|~")

// alnumTable marks ASCII letters and digits and the bytes of extra.
func alnumTable(extra string) (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range extra {
		t[c] = true
	}
	return t
}

func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenTable[c] {
			return false
		}
	}
	return true
}

// equalFold reports whether b equals the lower-case ASCII string lower, ignoring case.
func equalFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

// headerKind classifies the header names the proxy acts on.
type headerKind uint8

const (
	hOther headerKind = iota
	hOrigin
	hContentLength
	hTransferEncoding
	hConnection
	hKeepAlive
	hProxyConnection
	hUpgrade
	hHTTP2Settings
	hExpect
	hVary
	hAllowOrigin
	hAllowCredentials
	hExposeHeaders
	hTE
	hTrailer
	hHost
	hRequestMethod
	hRequestHeaders
	hForwardedFor
	hForwardedProto
)

// headerKinds are the headers classify knows, by the length of their name: a lookup visits at
// most two names, compared without allocating or lower-casing.
var headerKinds = [...][]struct {
	name string
	kind headerKind
}{
	2:  {{"te", hTE}},
	4:  {{"vary", hVary}, {"host", hHost}},
	6:  {{"origin", hOrigin}, {"expect", hExpect}},
	7:  {{"upgrade", hUpgrade}, {"trailer", hTrailer}},
	10: {{"connection", hConnection}, {"keep-alive", hKeepAlive}},
	14: {{"content-length", hContentLength}, {"http2-settings", hHTTP2Settings}},
	15: {{"x-forwarded-for", hForwardedFor}},
	16: {{"proxy-connection", hProxyConnection}},
	17: {{"transfer-encoding", hTransferEncoding}, {"x-forwarded-proto", hForwardedProto}},
	27: {{"access-control-allow-origin", hAllowOrigin}},
	29: {{"access-control-expose-headers", hExposeHeaders}, {"access-control-request-method", hRequestMethod}},
	30: {{"access-control-request-headers", hRequestHeaders}},
	32: {{"access-control-allow-credentials", hAllowCredentials}},
}

func classify(name []byte) headerKind {
	if len(name) >= len(headerKinds) {
		return hOther
	}
	for _, k := range headerKinds[len(name)] {
		if equalFold(name, k.name) {
			return k.kind
		}
	}
	return hOther
}

// parseContentLength parses a Content-Length value: decimal digits only, no sign, no list. It
// returns -1 when the value is invalid.
func parseContentLength(v []byte) int64 {
	if len(v) == 0 || len(v) > 18 {
		return -1
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// lastTokenIs reports whether the last element of a comma-separated list equals lower
// (ignoring case), e.g. "gzip, chunked" ends with "chunked".
func lastTokenIs(list []byte, lower string) bool {
	if i := bytes.LastIndexByte(list, ','); i >= 0 {
		list = list[i+1:]
	}
	return equalFold(trimOWS(list), lower)
}

// hasToken reports whether a comma-separated list holds lower, ignoring case.
func hasToken(list []byte, lower string) bool {
	for len(list) > 0 {
		var tok []byte
		tok, list = nextListItem(list)
		if equalFold(tok, lower) {
			return true
		}
	}
	return false
}

// nextListItem splits the first element (whitespace trimmed) off a comma-separated list.
func nextListItem(list []byte) (item, rest []byte) {
	if i := bytes.IndexByte(list, ','); i >= 0 {
		item, rest = list[:i], list[i+1:]
	} else {
		item = list
	}
	return trimOWS(item), rest
}

// parseChunkLine parses a chunk-size line: the size in hex digits, then chunk extensions, which
// must follow their grammar (RFC 9112 §7.1.1) and are then ignored. It returns the size and its
// digits, the line to forward.
func parseChunkLine(line []byte) (size int64, digits []byte, err error) {
	n := 0
	for n < len(line) && isHex(line[n]) {
		n++
	}
	if n == 0 || n > 15 || !validChunkExt(line[n:]) {
		return 0, nil, errMalformed
	}
	for _, c := range line[:n] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		size = size<<4 | int64(c)
	}
	return size, line[:n], nil
}

// validChunkExt checks chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ),
// the name a token and the value a token or a quoted-string. Trailing whitespace after the size
// is tolerated, as net/http does.
func validChunkExt(ext []byte) bool {
	for {
		ext = trimBWS(ext)
		if len(ext) == 0 {
			return true
		}
		if ext[0] != ';' {
			return false
		}
		ext = trimBWS(ext[1:])
		n := tokenLen(ext)
		if n == 0 {
			return false
		}
		ext = trimBWS(ext[n:])
		if len(ext) == 0 || ext[0] != '=' {
			continue
		}
		ext = trimBWS(ext[1:])
		if len(ext) > 0 && ext[0] == '"' {
			n = quotedLen(ext)
		} else {
			n = tokenLen(ext)
		}
		if n <= 0 {
			return false
		}
		ext = ext[n:]
	}
}

func trimBWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// tokenLen is the length of the token that b starts with.
func tokenLen(b []byte) int {
	n := 0
	for n < len(b) && tokenTable[b[n]] {
		n++
	}
	return n
}

// quotedLen is the length of the quoted-string (RFC 9110 §5.6.4) that b starts with, or -1.
func quotedLen(b []byte) int {
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c == '\\':
			i++
			if i == len(b) || !isFieldVChar(b[i]) && b[i] != ' ' && b[i] != '\t' {
				return -1
			}
		case !isFieldVChar(c) && c != ' ' && c != '\t':
			return -1
		}
	}
	return -1
}

// isFieldVChar reports whether c is a VCHAR or obs-text.
func isFieldVChar(c byte) bool { return c > ' ' && c != 0x7f }

// validReason checks a reason-phrase: *( HTAB / SP / VCHAR / obs-text ) (RFC 9112 §4).
func validReason(b []byte) bool {
	for _, c := range b {
		if !isFieldVChar(c) && c != ' ' && c != '\t' {
			return false
		}
	}
	return true
}

// methodString returns the method as a string, without allocating for the registered methods.
func methodString(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "OPTIONS":
		return "OPTIONS"
	case "PATCH":
		return "PATCH"
	case "CONNECT":
		return "CONNECT"
	case "TRACE":
		return "TRACE"
	}
	return string(m)
}

// outBuf batches writes to a connection so that a response head and a small body leave in one
// write system call. Writes larger than the batch limit go straight to the connection.
type outBuf struct {
	b []byte
	w io.Writer
}

// outBufLimit is the size at which outBuf flushes; bodies are streamed in pieces of this size.
const outBufLimit = 32 << 10

func (o *outBuf) flush() error {
	if len(o.b) == 0 {
		return nil
	}
	_, err := o.w.Write(o.b)
	o.b = o.b[:0]
	return err
}

func (o *outBuf) write(p []byte) error {
	if len(o.b)+len(p) > outBufLimit {
		if err := o.flush(); err != nil {
			return err
		}
		if len(p) >= outBufLimit {
			_, err := o.w.Write(p)
			return err
		}
	}
	o.b = append(o.b, p...)
	return nil
}

func (o *outBuf) str(s string) { o.b = append(o.b, s...) }

// copier streams a message body from a bufio.Reader to an outBuf, flushing the outBuf before
// any read that may block, so that a streamed response (server-sent events, a slow upload)
// never waits in the proxy's buffer while the proxy waits for more input.
type copier struct {
	big     []byte     // lazily taken from bigPool for large bodies
	scratch []byte     // long chunk lines
	clock   *bodyClock // set while a request body is read from the client
}

// minBodyRate is the slowest rate (bytes per second) at which a request body keeps extending
// its read deadline beyond Config.BodyTimeout.
const minBodyRate = 4 << 10

// bodyClock bounds reading a request body: it must arrive by start + timeout, plus one second
// per minBodyRate bytes received.
type bodyClock struct {
	nc      net.Conn
	start   time.Time
	timeout time.Duration
	n       int64
}

// arm sets the read deadline for the next (possibly blocking) read.
func (b *bodyClock) arm() {
	if b != nil {
		b.nc.SetReadDeadline(b.start.Add(b.timeout + time.Duration(b.n)*(time.Second/minBodyRate)))
	}
}

func (b *bodyClock) count(n int) {
	if b != nil {
		b.n += int64(n)
	}
}

// copyN copies exactly n bytes.
func (cp *copier) copyN(dst *outBuf, src *bufio.Reader, n int64) error {
	for n > 0 {
		if b := src.Buffered(); b > 0 {
			k := int(min(int64(b), n))
			p, _ := src.Peek(k)
			if err := dst.write(p); err != nil {
				return err
			}
			src.Discard(k)
			cp.clock.count(k)
			n -= int64(k)
			continue
		}
		if err := dst.flush(); err != nil {
			return err
		}
		buf := cp.buffer()
		buf = buf[:min(int64(len(buf)), n)]
		cp.clock.arm()
		k, err := src.Read(buf) // reads straight into buf when it is larger than src's buffer
		cp.clock.count(k)
		if k > 0 {
			if werr := dst.write(buf[:k]); werr != nil {
				return werr
			}
			n -= int64(k)
		}
		if err != nil && n > 0 {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// copyEOF copies until src ends (a response delimited by the connection's close).
func (cp *copier) copyEOF(dst *outBuf, src *bufio.Reader) error {
	for {
		if b := src.Buffered(); b > 0 {
			p, _ := src.Peek(b)
			if err := dst.write(p); err != nil {
				return err
			}
			src.Discard(b)
			continue
		}
		if err := dst.flush(); err != nil {
			return err
		}
		buf := cp.buffer()
		k, err := src.Read(buf)
		if k > 0 {
			if werr := dst.write(buf[:k]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// maxChunkLine bounds a chunk-size line (with extensions) and the trailer section.
const maxChunkLine = 8 << 10

// copyChunked copies a chunked body (RFC 9112 §7.1): each chunk's size without its extensions
// (checked, then dropped: a recipient ignores unknown ones), its data, and the trailer fields,
// each checked as a field line. Anything else is errMalformed, raised before it is forwarded.
func (cp *copier) copyChunked(dst *outBuf, src *bufio.Reader) error {
	for {
		size, err := cp.chunkHeader(dst, src)
		if err != nil {
			return err
		}
		if size == 0 {
			return cp.trailers(dst, src)
		}
		if err := cp.copyN(dst, src, size); err != nil {
			return err
		}
		if err := cp.chunkEnd(dst, src); err != nil {
			return err
		}
	}
}

// readChunkLine reads one line of chunked framing, flushing dst first when the read may block.
func (cp *copier) readChunkLine(dst *outBuf, src *bufio.Reader, budget *int) ([]byte, error) {
	if src.Buffered() == 0 {
		if err := dst.flush(); err != nil {
			return nil, err
		}
	}
	cp.clock.arm()
	line, err := readLine(src, &cp.scratch, budget, nil)
	if err != nil {
		return nil, chunkErr(err)
	}
	return line, nil
}

// chunkHeader reads and forwards a chunk-size line.
func (cp *copier) chunkHeader(dst *outBuf, src *bufio.Reader) (int64, error) {
	budget := maxChunkLine
	line, err := cp.readChunkLine(dst, src, &budget)
	if err != nil {
		return 0, err
	}
	size, digits, err := parseChunkLine(line)
	if err != nil {
		return 0, err
	}
	if err := dst.write(digits); err != nil {
		return 0, err
	}
	return size, dst.write(crlf)
}

// chunkEnd reads and forwards the CRLF after a chunk's data (exactly CRLF, as net/http wants).
func (cp *copier) chunkEnd(dst *outBuf, src *bufio.Reader) error {
	if src.Buffered() < 2 {
		if err := dst.flush(); err != nil {
			return err
		}
	}
	cp.clock.arm()
	b, err := src.Peek(2)
	if err != nil {
		return chunkErr(err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errMalformed
	}
	src.Discard(2)
	return dst.write(crlf)
}

// trailers reads and forwards the trailer section and the final CRLF. Trailer fields are field
// lines (RFC 9112 §7.1.2), and never the framing or routing fields (RFC 9110 §6.5.1).
func (cp *copier) trailers(dst *outBuf, src *bufio.Reader) error {
	budget := maxChunkLine
	for {
		line, err := cp.readChunkLine(dst, src, &budget)
		if err != nil {
			return err
		}
		if len(line) > 0 {
			name, _, ok := splitHeader(line)
			if !ok {
				return errMalformed
			}
			switch classify(name) {
			case hContentLength, hTransferEncoding, hTrailer, hHost:
				return errMalformed
			}
			if err := dst.write(line); err != nil {
				return err
			}
		}
		if err := dst.write(crlf); err != nil {
			return err
		}
		if len(line) == 0 {
			return nil
		}
	}
}

func chunkErr(err error) error {
	if err == errHeaderTooLarge {
		return errMalformed
	}
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// discardN drops n bytes of src (a preflight's request body).
func discardN(src *bufio.Reader, n int64) error {
	for n > 0 {
		k, err := src.Discard(int(min(n, 1<<20)))
		n -= int64(k)
		if err != nil {
			return err
		}
	}
	return nil
}

func (cp *copier) buffer() []byte {
	if cp.big == nil {
		cp.big = *bigPool.Get().(*[]byte)
	}
	return cp.big
}

func (cp *copier) release() {
	if cp.big != nil {
		b := cp.big
		cp.big = nil
		bigPool.Put(&b)
	}
	if cap(cp.scratch) > maxChunkLine {
		cp.scratch = nil
	}
}
