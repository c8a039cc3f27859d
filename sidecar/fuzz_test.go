package sidecar

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/textproto"
	"reflect"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/cors-webhook/cors-webhook/cors"
)

// Differential fuzz targets: the proxy's readers against net/http's on the same bytes. The
// properties, for each input the proxy accepts:
//   - what it forwards parses with net/http, with the framing the proxy used and no bare CR;
//   - when net/http accepts the input too, both agree on the framing and on the fields (minus the
//     hop-by-hop ones the proxy drops).
// The proxy may refuse more than net/http does (it is stricter in places), never less safely.
// Seeds cover every class of the RFC 9112 issue; `make fuzz` runs the targets for long.

// sinkConn is a net.Conn that collects what is written to it.
type sinkConn struct {
	net.Conn
	buf bytes.Buffer
}

func (s *sinkConn) Write(p []byte) (int, error) { return s.buf.Write(p) }

// countingReader counts the bytes read from r.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

func newFuzzConn() *clientConn {
	p := &Proxy{}
	p.cfg.setDefaults()
	p.cfg.MaxHeaderBytes = 16 << 10
	p.largeHeads = make(chan struct{}, 1)
	return &clientConn{p: p, clientAddr: fuzzClientAddr}
}

// fuzzClientAddr is the client address of the fuzz targets' connections.
const fuzzClientAddr = "192.0.2.1"

var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET /v HTTP/1.2\r\nHost: x\r\n\r\n",
	"GET / HTTP/2.0\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\r\nX: y\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
	"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET /c HTTP/1.1\r\nHost: x\r\nX-Hop: 1\r\nConnection: X-Hop, keep-alive\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: x\r\nConnection: Content-Length, close\r\nContent-Length: 3\r\n\r\nabc",
	"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n",
	"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n",
	"GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
	"GET / HTTP/1.1\nHost: x\n\n",
	"GET / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\na",
	"OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: https://a.example\r\nAccess-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: x-a\r\naccess-control-request-headers:  x-b \r\n\r\n",
	"OPTIONS / HTTP/1.1\r\nHost: x\r\nACCESS-CONTROL-REQUEST-METHOD: A\r\nAccess-Control-Request-Method: B\r\n\r\n",
	"OPTIONS / HTTP/1.1\r\nHost: x\r\nAccess-Control-Request-Headers:\r\nAccess-Control-Request-Headers: x-a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nx-forwarded-for: 10.0.0.2, 10.0.0.3\r\nX-Forwarded-Proto: https\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 10.0.0.1\r\nConnection: X-Forwarded-For\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nTE: gzip, trailers\r\nConnection: TE\r\n\r\n",
	"GET / HTTP/1.0\r\nTE: trailers\r\nConnection: keep-alive\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, TE\r\nUpgrade: websocket\r\nTE: trailers\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nTE: deflate\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For:\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For:\r\n\r\n",
}

// hopByHop are the fields the proxy never forwards as received.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Http2-Settings", "Upgrade"}

// withoutHop returns h minus the hop-by-hop fields and those the Connection list names
// (except the framing fields).
func withoutHop(h http.Header) http.Header {
	out := h.Clone()
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			switch name = textproto.CanonicalMIMEHeaderKey(textproto.TrimString(name)); name {
			case "Content-Length", "Transfer-Encoding", "Host", "":
			default:
				delete(out, name)
			}
		}
	}
	for _, name := range hopByHop {
		delete(out, name)
	}
	return out
}

// forwardedHeader is what the application receives of the fields h (see forward.go): h minus
// the hop-by-hop fields, X-Forwarded-For with the client appended, X-Forwarded-Proto "http", and
// TE as "trailers" when the client's TE lists it (what httputil.ReverseProxy does too).
func forwardedHeader(h http.Header, client string) http.Header {
	out := withoutHop(h)
	delete(out, "Te")
	if httpguts.HeaderValuesContainsToken(h["Te"], "trailers") {
		out["Te"] = []string{"trailers"}
	}
	xff := client
	if prior := slices.DeleteFunc(out["X-Forwarded-For"], func(v string) bool { return v == "" }); len(prior) > 0 {
		xff = strings.Join(prior, ", ") + ", " + client
	}
	out["X-Forwarded-For"] = []string{xff}
	out["X-Forwarded-Proto"] = []string{"http"}
	return out
}

func FuzzRequestHead(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newFuzzConn()
		c.br = bufio.NewReaderSize(bytes.NewReader(data), 16)
		var r request
		if c.readRequest(&r) != nil {
			return
		}
		// What the proxy forwards parses, with the proxy's framing.
		fwd, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(c.head)))
		if err != nil {
			t.Fatalf("net/http cannot read the forwarded head %q: %v (input %q)", c.head, err, data)
		}
		if hasBareCR(c.head) {
			t.Fatalf("bare CR forwarded: %q", c.head)
		}
		checkRequestFraming(t, "forwarded", &r, fwd)
		if fwd.Method != r.method {
			t.Fatalf("forwarded method %q, proxy read %q", fwd.Method, r.method)
		}
		ref, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data)))
		if err != nil {
			return // the proxy is more lenient here; what it forwards was checked above
		}
		checkRequestFraming(t, "input", &r, ref)
		if ref.Method != r.method || ref.RequestURI != fwd.RequestURI || ref.Host != fwd.Host {
			t.Fatalf("net/http read %s %s host %q, the proxy forwarded %s %s host %q", ref.Method, ref.RequestURI, ref.Host, fwd.Method, fwd.RequestURI, fwd.Host)
		}
		got := withoutHop(fwd.Header)
		if te := fwd.Header["Te"]; te != nil {
			got["Te"] = te // named in Connection, as RFC 9110 §10.1.4 asks
		}
		if want := forwardedHeader(ref.Header, fuzzClientAddr); !reflect.DeepEqual(want, got) {
			t.Fatalf("fields: net/http read %v, the proxy forwarded %v (input %q)", want, got, data)
		}
		// What the CORS decision reads is what net/http reads: the first method, all the header
		// lists (a credentialed "*" echoes them).
		if want := ref.Header.Get("Access-Control-Request-Method"); r.acrm != want {
			t.Fatalf("access-control-request-method: net/http %q, the proxy %q", want, r.acrm)
		}
		lines := slices.DeleteFunc(ref.Header.Values("Access-Control-Request-Headers"), func(v string) bool { return v == "" })
		if want := strings.Join(lines, ", "); r.acrh != want {
			t.Fatalf("access-control-request-headers: net/http %q, the proxy %q", want, r.acrh)
		}
	})
}

func checkRequestFraming(t *testing.T, what string, r *request, req *http.Request) {
	t.Helper()
	chunked := len(req.TransferEncoding) == 1 && req.TransferEncoding[0] == "chunked"
	switch r.body {
	case bodyChunked:
		if !chunked {
			t.Fatalf("%s: the proxy reads a chunked body, net/http: length %d, coding %v", what, req.ContentLength, req.TransferEncoding)
		}
	case bodyLength:
		if chunked || req.ContentLength != r.length {
			t.Fatalf("%s: the proxy reads %d bytes, net/http: length %d, coding %v", what, r.length, req.ContentLength, req.TransferEncoding)
		}
	case bodyNone:
		if chunked || req.ContentLength != 0 {
			t.Fatalf("%s: the proxy reads no body, net/http: length %d, coding %v", what, req.ContentLength, req.TransferEncoding)
		}
	}
}

var chunkedSeeds = []string{
	"3\r\nabc\r\n0\r\n\r\n",
	"3;name=\"v a\";flag\r\nabc\r\n0;last\r\n\r\n",
	"3 ; a = b\r\nabc\r\n0\r\n\r\n",
	"3;a=b\rc\r\nabc\r\n0\r\n\r\n",
	"3;a=\x01\r\nabc\r\n0\r\n\r\n",
	"3;=v\r\nabc\r\n0\r\n\r\n",
	"3;a=\"x\\\"y\"\r\nabc\r\n0\r\n\r\n",
	"zz\r\nabc\r\n0\r\n\r\n",
	"3\r\nabcd\r\n0\r\n\r\n",
	"3\nabc\n0\n\n",
	"3\r\nabc\r\n0\r\nX-Trailer: v\r\n\r\n",
	"3\r\nabc\r\n0\r\nnot a field\r\n\r\n",
	"3\r\nabc\r\n0\r\nX-T: a\rb\r\n\r\n",
	"3\r\nabc\r\n0\r\nX-T: a\x7fb\r\n\r\n",
	"3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n",
	"3\r\nabc\r\n0\r\nX: 1\r\n folded\r\n\r\n",
	"0003\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n",
	"fffffffffffffff\r\n",
	"a\r\n0123456789\r\n0\r\n\r\n",
}

// decodeChunked reads a chunked body and its trailers with net/http's readers, and reports how
// many bytes of the input that took.
func decodeChunked(in []byte) (data []byte, trailer textproto.MIMEHeader, used int, err error) {
	cr := &countingReader{r: bytes.NewReader(in)}
	br := bufio.NewReader(cr)
	data, err = io.ReadAll(httputil.NewChunkedReader(br))
	if err != nil {
		return nil, nil, 0, err
	}
	trailer, err = textproto.NewReader(br).ReadMIMEHeader()
	if err != nil {
		return nil, nil, 0, err
	}
	return data, trailer, cr.n - br.Buffered(), nil
}

// chunkFraming returns the framing lines of a chunked body the proxy forwarded (chunk sizes,
// which must be bare hex digits, and trailer lines, each with its CRLF), or nil when the body
// does not have that shape.
func chunkFraming(b []byte) []byte {
	framing := []byte{}
	for {
		i := bytes.Index(b, crlf)
		if i <= 0 {
			return nil
		}
		size, digits, err := parseChunkLine(b[:i])
		if err != nil || len(digits) != i {
			return nil
		}
		framing, b = append(framing, b[:i+2]...), b[i+2:]
		if size == 0 {
			break
		}
		if int64(len(b)) < size+2 || string(b[size:size+2]) != "\r\n" {
			return nil
		}
		b = b[size+2:]
	}
	// The trailer section: the rest, lines ending in CRLF, the last one empty.
	if !bytes.HasSuffix(b, crlf) {
		return nil
	}
	return append(framing, b...)
}

func FuzzChunkedBody(f *testing.F) {
	for _, s := range chunkedSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		sink := &sinkConn{}
		out := outBuf{w: sink}
		var cp copier
		cr := &countingReader{r: bytes.NewReader(in)}
		src := bufio.NewReaderSize(cr, 16)
		err := cp.copyChunked(&out, src)
		if err == nil {
			err = out.flush()
		}
		cp.release()
		if err != nil {
			return
		}
		used := cr.n - src.Buffered()
		fwd := sink.buf.Bytes()
		if framing := chunkFraming(fwd); framing == nil || hasBareCR(framing) {
			t.Fatalf("forwarded %q for %q: bad framing %q", fwd, in, framing)
		}
		data, trailer, fwdUsed, err := decodeChunked(fwd)
		if err != nil || fwdUsed != len(fwd) {
			t.Fatalf("net/http cannot read the forwarded body %q (used %d of %d): %v; input %q", fwd, fwdUsed, len(fwd), err, in)
		}
		refData, refTrailer, refUsed, err := decodeChunked(in)
		if err != nil {
			return // the proxy is more lenient here; what it forwards was checked above
		}
		if refUsed != used {
			t.Fatalf("the body ends after %d bytes for the proxy, %d for net/http: %q", used, refUsed, in)
		}
		if !bytes.Equal(data, refData) || !reflect.DeepEqual(trailer, refTrailer) {
			t.Fatalf("net/http read %q %v, the proxy forwarded %q %v", refData, refTrailer, data, trailer)
		}
	})
}

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
	"HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.1 200 O\x00K\r\n\r\n",
	"HTTP/1.1 200\r\n\r\n",
	"HTTP/1.0 200 OK\r\n\r\n",
	"HTTP/1.1 204 No Content\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\n",
	"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-App-Hop: 1\r\nConnection: X-App-Hop\r\nContent-Length: 2\r\n\r\n",
	"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n",
	"HTTP/1.1 200 OK\r\nVary: Accept\r\nAccess-Control-Allow-Origin: *\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
	"HTTP/1.1 999 X\r\n\r\n",
	"HTTP/1.1 200 OK\nContent-Length: 0\n\n",
}

func FuzzResponseHead(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		c := newFuzzConn()
		up := &upConn{br: bufio.NewReaderSize(bytes.NewReader(data), 16)}
		r := &request{method: method, minor: 1}
		if c.readResponseHead(up, r, nil, cors.Decision{}, false) != nil {
			return
		}
		out := c.out.b
		if hasBareCR(out) {
			t.Fatalf("bare CR forwarded: %q", out)
		}
		fwd, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out)), &http.Request{Method: method})
		if err != nil {
			t.Fatalf("net/http cannot read the forwarded head %q: %v (input %q)", out, err, data)
		}
		checkResponseFraming(t, "forwarded", &c.res, fwd)
		ref, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), &http.Request{Method: method})
		if err != nil {
			return // the proxy is more lenient here; what it forwards was checked above
		}
		if ref.StatusCode != c.res.code || fwd.StatusCode != c.res.code {
			t.Fatalf("status: net/http %d, forwarded %d, proxy %d", ref.StatusCode, fwd.StatusCode, c.res.code)
		}
		checkResponseFraming(t, "input", &c.res, ref)
		want, got := withoutHop(ref.Header), withoutHop(fwd.Header)
		if c.res.code == 101 {
			want, got = ref.Header, fwd.Header
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("fields: net/http read %v, the proxy forwarded %v (input %q)", want, got, data)
		}
	})
}

func checkResponseFraming(t *testing.T, what string, res *response, hr *http.Response) {
	t.Helper()
	chunked := len(hr.TransferEncoding) == 1 && hr.TransferEncoding[0] == "chunked"
	var ok bool
	switch res.body {
	case bodyChunked:
		ok = chunked
	case bodyLength:
		ok = !chunked && hr.ContentLength == res.length
	case bodyNone:
		ok = hr.Body == http.NoBody || !chunked && hr.ContentLength == 0
	case bodyEOF:
		ok = !chunked && hr.ContentLength == -1
	}
	if !ok {
		t.Fatalf("%s: the proxy frames the body as %d (length %d), net/http: length %d, coding %v", what, res.body, res.length, hr.ContentLength, hr.TransferEncoding)
	}
}
