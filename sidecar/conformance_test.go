package sidecar

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// strictUpstream is an application that records every byte it receives and parses requests with
// net/http's reader, which refuses what RFC 9112 lets a server refuse. It answers /canary-<n>
// with the body "canary-<n>" and any other request with the raw bytes in reply.
type strictUpstream struct {
	ln net.Listener

	mu       sync.Mutex
	got      bytes.Buffer
	parseErr []error
	reply    string
}

func newStrictUpstream(t *testing.T) *strictUpstream {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &strictUpstream{ln: ln}
	var wg sync.WaitGroup
	var conns sync.Map
	t.Cleanup(func() {
		ln.Close()
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Store(nc, true)
			wg.Add(1)
			go func() { defer wg.Done(); defer conns.Delete(nc); u.serve(nc) }()
		}
	}()
	return u
}

type recorder struct{ u *strictUpstream }

func (r recorder) Write(p []byte) (int, error) {
	r.u.mu.Lock()
	r.u.got.Write(p)
	r.u.mu.Unlock()
	return len(p), nil
}

func (u *strictUpstream) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(io.TeeReader(nc, recorder{u}))
	for {
		req, err := http.ReadRequest(br)
		if err == nil {
			_, err = io.Copy(io.Discard, req.Body)
		}
		if err != nil {
			if err != io.EOF {
				u.mu.Lock()
				u.parseErr = append(u.parseErr, err)
				u.mu.Unlock()
			}
			return
		}
		var out string
		if name, ok := strings.CutPrefix(req.URL.Path, "/"); ok && strings.HasPrefix(name, "canary-") {
			out = "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(name)) + "\r\n\r\n" + name
		} else {
			u.mu.Lock()
			out = u.reply
			u.mu.Unlock()
		}
		if _, err := io.WriteString(nc, out); err != nil {
			return
		}
	}
}

// reset starts a new case: nothing recorded, reply as the answer.
func (u *strictUpstream) reset(reply string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got.Reset()
	u.parseErr = nil
	u.reply = reply
}

func (u *strictUpstream) recorded() (string, []error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.got.String(), append([]error(nil), u.parseErr...)
}

// hasBareCR reports whether b holds a CR that is not followed by LF.
func hasBareCR(b []byte) bool {
	for i, c := range b {
		if c == '\r' && (i+1 == len(b) || b[i+1] != '\n') {
			return true
		}
	}
	return false
}

const okReply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

// conformanceCase is one row of TestConformance.
type conformanceCase struct {
	rule     string
	req      string // sent by the client
	reply    string // sent by the application; okReply when empty
	code     int    // the status the client must get; 0: no response, -1: any
	upHas    []string
	upHasNot []string
	clHasNot []string // substrings the client must not receive
	noBareCR bool     // neither side may receive a bare CR
}

// TestConformance runs one row per RFC 9112 / RFC 9110 rule through the proxy in front of a
// strict, recording upstream. After each row a canary request on a fresh client connection must
// get its own response: a row that leaves stray bytes in a pooled upstream connection fails there.
func TestConformance(t *testing.T) {
	bothPaths(t, testConformance)
}

func testConformance(t *testing.T, path func(*Config)) {
	up := newStrictUpstream(t)
	hs := &harness{store: &PolicyStore{}, metrics: &Metrics{}, upAddr: up.ln.Addr().String(), upPort: up.ln.Addr().(*net.TCPAddr).Port}
	hs.start(t, true, path, func(c *Config) { c.HeaderTimeout = time.Second })

	const chunkedPost = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for i, tc := range []conformanceCase{
		// Request line and version.
		{rule: "9112 §3: request-line = method SP request-target SP HTTP-version", req: "GET /\r\nHost: x\r\n\r\n", code: 400},
		{rule: "9112 §3: method is a token", req: "G(T / HTTP/1.1\r\nHost: x\r\n\r\n", code: 400},
		{rule: "9112 §3.2: request-target has no whitespace or controls", req: "GET /a\x01b HTTP/1.1\r\nHost: x\r\n\r\n", code: 400},
		{rule: "9112 §2.3: a higher minor version is treated as HTTP/1.1", req: "GET /v HTTP/1.2\r\nHost: x\r\n\r\n", code: 200, upHas: []string{"GET /v HTTP/1.1\r\n"}},
		{rule: "9112 §2.3: another major version gets 505", req: "GET / HTTP/2.0\r\nHost: x\r\n\r\n", code: 505},
		// Host.
		{rule: "9112 §3.2: HTTP/1.1 without Host gets 400", req: "GET / HTTP/1.1\r\nX: y\r\n\r\n", code: 400, upHasNot: []string{"GET / "}},
		{rule: "9112 §3.2: two Host fields get 400", req: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", code: 400, upHasNot: []string{"GET / "}},
		{rule: "9112 §3.2: an invalid Host gets 400", req: "GET / HTTP/1.1\r\nHost: a b/c\r\n\r\n", code: 400, upHasNot: []string{"GET / "}},
		{rule: "9112 §3.2: Host with a userinfo gets 400", req: "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", code: 400, upHasNot: []string{"GET / "}},
		{rule: "9112 §3.2: an empty Host is allowed", req: "GET /e HTTP/1.1\r\nHost:\r\n\r\n", code: 200},
		{rule: "9112 §3.2: host:port and IP literals are valid", req: "GET /p HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", code: 200},
		{rule: "9112 §3.2: HTTP/1.0 may omit Host", req: "GET /h10 HTTP/1.0\r\n\r\n", code: 200},
		// Field syntax.
		{rule: "9112 §5.1: no whitespace between field name and colon", req: "GET / HTTP/1.1\r\nHost : x\r\n\r\n", code: 400},
		{rule: "9112 §5.2: obs-fold is rejected", req: "GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", code: 400},
		{rule: "9110 §5.5: a field value has no CR, LF or NUL", req: "GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n", code: 400},
		{rule: "9112 §2.2: a bare CR outside content is rejected", req: "GET / HTTP/1.1\r\nHost: x\r\n\r\r\n", code: 400},
		// Framing.
		{rule: "9112 §6.1: Transfer-Encoding with Content-Length is rejected", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", code: 400},
		{rule: "9112 §6.3: differing Content-Length fields are rejected", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", code: 400},
		{rule: "9112 §6.3: an invalid Content-Length is rejected", req: "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", code: 400},
		{rule: "9112 §6.3: a final coding other than chunked is rejected", req: "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", code: 400},
		// Chunked request bodies.
		{rule: "9112 §7.1: a well-formed chunked body is forwarded", req: chunkedPost + "3\r\nabc\r\n0\r\n\r\n", code: 200, upHas: []string{"3\r\nabc\r\n0\r\n\r\n"}},
		{rule: "9112 §7.1: a malformed chunk size gets 400", req: chunkedPost + "zz\r\nabc\r\n0\r\n\r\n", code: 400},
		{rule: "9112 §7.1: chunk data not followed by CRLF gets 400", req: chunkedPost + "3\r\nabcd\r\n0\r\n\r\n", code: 400},
		{rule: "9112 §7.1.1: chunk extensions are not forwarded", req: chunkedPost + "3;name=\"v a\";flag\r\nabc\r\n0;last\r\n\r\n", code: 200, upHas: []string{"3\r\nabc\r\n0\r\n\r\n"}, upHasNot: []string{"name", "flag", "last"}},
		{rule: "9112 §7.1.1: a chunk extension with a bare CR gets 400", req: chunkedPost + "3;a=b\rc\r\nabc\r\n0\r\n\r\n", code: 400, noBareCR: true},
		{rule: "9112 §7.1.1: a chunk extension with a control character gets 400", req: chunkedPost + "3;a=\x01\r\nabc\r\n0\r\n\r\n", code: 400, upHasNot: []string{"\x01"}},
		{rule: "9112 §7.1.1: chunk-ext = *( BWS \";\" BWS name [ BWS \"=\" BWS value ] )", req: chunkedPost + "3;=v\r\nabc\r\n0\r\n\r\n", code: 400},
		{rule: "9112 §7.1.2: trailer fields are forwarded", req: chunkedPost + "3\r\nabc\r\n0\r\nX-Trailer: v\r\n\r\n", code: 200, upHas: []string{"0\r\nX-Trailer: v\r\n\r\n"}},
		{rule: "9112 §7.1.2: a trailer line that is not a field line gets 400", req: chunkedPost + "3\r\nabc\r\n0\r\nnot a field\r\n\r\n", code: 400, upHasNot: []string{"not a field"}},
		{rule: "9112 §7.1.2: a trailer with a bare CR gets 400", req: chunkedPost + "3\r\nabc\r\n0\r\nX-T: a\rb\r\n\r\n", code: 400, noBareCR: true},
		{rule: "9112 §7.1.2: a trailer with a control character gets 400", req: chunkedPost + "3\r\nabc\r\n0\r\nX-T: a\x7fb\r\n\r\n", code: 400, upHasNot: []string{"\x7f"}},
		{rule: "9110 §6.5.1: framing fields in trailers get 400", req: chunkedPost + "3\r\nabc\r\n0\r\nContent-Length: 5\r\n\r\n", code: 400, upHasNot: []string{"Content-Length: 5"}},
		// Hop-by-hop fields.
		{rule: "9110 §7.6.1: fields named in Connection are not forwarded (request)", req: "GET /c HTTP/1.1\r\nHost: x\r\nConnection: X-Hop, keep-alive\r\nX-Hop: secret\r\nX-End: 1\r\n\r\n", code: 200, upHas: []string{"X-End: 1"}, upHasNot: []string{"X-Hop", "secret"}},
		{rule: "9110 §7.6.1: a field named in Connection before it appears is not forwarded", req: "GET /c HTTP/1.1\r\nHost: x\r\nX-Hop: secret\r\nConnection: x-hop\r\n\r\n", code: 200, upHasNot: []string{"X-Hop", "secret"}},
		{rule: "9110 §7.6.1: fields named in Connection are not forwarded (response)", req: "GET /r HTTP/1.1\r\nHost: x\r\n\r\n", reply: "HTTP/1.1 200 OK\r\nX-App-Hop: secret\r\nConnection: X-App-Hop\r\nContent-Length: 2\r\n\r\nok", code: 200, clHasNot: []string{"X-App-Hop", "secret"}},
		{rule: "9110 §7.6.1: Connection cannot remove framing fields", req: "POST /f HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 3\r\n\r\nabc", code: 200, upHas: []string{"Content-Length: 3\r\n", "\r\n\r\nabc"}},
		// Responses.
		{rule: "9112 §4: a reason phrase with a bare CR is not forwarded", req: "GET /rp HTTP/1.1\r\nHost: x\r\n\r\n", reply: "HTTP/1.1 200 O\rK\r\nContent-Length: 2\r\n\r\nok", code: 502, noBareCR: true},
		{rule: "9112 §4: a reason phrase with a control character is not forwarded", req: "GET /rp HTTP/1.1\r\nHost: x\r\n\r\n", reply: "HTTP/1.1 200 O\x00K\r\nContent-Length: 2\r\n\r\nok", code: 502, clHasNot: []string{"\x00"}},
		{rule: "9112 §7.1.1: a response chunk extension with a bare CR is not forwarded", req: "GET /ce HTTP/1.1\r\nHost: x\r\n\r\n", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2;a=\rb\r\nok\r\n0\r\n\r\n", code: -1, noBareCR: true},
		{rule: "9112 §7.1.2: a response trailer with a bare CR is not forwarded", req: "GET /ct HTTP/1.1\r\nHost: x\r\n\r\n", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-T: a\rb\r\n\r\n", code: -1, noBareCR: true},
		{rule: "9112 §7.1.2: response trailers are forwarded", req: "GET /tr HTTP/1.1\r\nHost: x\r\n\r\n", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2;e=1\r\nok\r\n0\r\nX-T: v\r\n\r\n", code: 200},
		// The connection the application answered on.
		{rule: "9110 §9.3.2: a body sent after a HEAD response reaches nobody", req: "HEAD /head HTTP/1.1\r\nHost: x\r\n\r\n", reply: "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret", code: 200, clHasNot: []string{"secret"}},
		{rule: "9112 §9.3: bytes after a complete response reach nobody", req: "GET /extra HTTP/1.1\r\nHost: x\r\n\r\n", reply: okReply + "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecret", code: 200, clHasNot: []string{"secret"}},
		{rule: "9110 §15.3.5: a body sent with 204 reaches nobody", req: "GET /204 HTTP/1.1\r\nHost: x\r\n\r\n", reply: "HTTP/1.1 204 No Content\r\n\r\nsecret", code: 204, clHasNot: []string{"secret"}},
	} {
		// Each rule holds for a connection's first request (the plain path) and for a later one
		// (served inside the poller wait, serveInWait, or handed back to the plain path).
		for _, second := range []bool{false, true} {
			name := tc.rule
			if second {
				name += " (a connection's second request)"
			}
			t.Run(name, func(t *testing.T) { conformanceRow(t, hs, up, i, tc, second) })
		}
	}
}

// conformanceRow runs tc, as the second request of its connection when second is set.
func conformanceRow(t *testing.T, hs *harness, up *strictUpstream, i int, tc conformanceCase, second bool) {
	reply := tc.reply
	if reply == "" {
		reply = okReply
	}
	up.reset(reply)
	var first func()
	if second {
		first = func() { up.reset(reply) }
	}
	code, got := conformanceExchange(t, hs.proxy, hs.addr, tc.req, tc.req[:4] == "HEAD", first)
	if tc.code >= 0 && code != tc.code {
		t.Errorf("status %d, want %d; client got %q", code, tc.code, got)
	}
	canary := "canary-" + strconv.Itoa(i)
	ccode, cgot := conformanceExchange(t, hs.proxy, hs.addr, "GET /"+canary+" HTTP/1.1\r\nHost: x\r\n\r\n", false, nil)
	if ccode != 200 || !strings.HasSuffix(cgot, "\r\n\r\n"+canary) {
		t.Errorf("the canary on a fresh connection got %d %q, want its own response %q", ccode, cgot, canary)
	}
	upGot, upErrs := up.recorded()
	for _, s := range tc.upHas {
		if !strings.Contains(upGot, s) {
			t.Errorf("the application did not receive %q; it got %q", s, upGot)
		}
	}
	for _, s := range tc.upHasNot {
		if strings.Contains(upGot, s) {
			t.Errorf("the application received %q; it got %q", s, upGot)
		}
	}
	for _, s := range tc.clHasNot {
		if strings.Contains(got, s) || strings.Contains(cgot, s) {
			t.Errorf("the client received %q: %q, canary %q", s, got, cgot)
		}
	}
	if tc.noBareCR && (hasBareCR([]byte(got)) || hasBareCR([]byte(upGot))) {
		t.Errorf("a bare CR got through: client %q, application %q", got, upGot)
	}
	if len(upErrs) > 0 {
		t.Errorf("the strict application could not parse what it received: %v; it got %q", upErrs, upGot)
	}
}

// conformanceExchange sends req on a fresh connection, reads one response, closes the
// connection and waits until the proxy has finished with it (so that its upstream connection
// is back in the pool for the next exchange). It returns the status (0 when there was no
// response) and the bytes the client received. When first is set, req is the connection's
// second request: a canary goes first, and first is called once it is answered.
func conformanceExchange(t *testing.T, p *Proxy, addr, req string, head bool, first func()) (int, string) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	var raw bytes.Buffer
	br := bufio.NewReader(io.TeeReader(nc, &raw))
	if first != nil {
		io.WriteString(nc, "GET /canary-first HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("the first request: %v %v", res, err)
		}
		io.Copy(io.Discard, res.Body)
		raw.Reset()
		first()
	}
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	method := "GET"
	if head {
		method = "HEAD"
	}
	code := 0
	if res, err := http.ReadResponse(br, &http.Request{Method: method}); err == nil {
		code = res.StatusCode
		io.Copy(io.Discard, res.Body)
		// Whatever else arrives promptly is part of what the client got.
		nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		io.Copy(io.Discard, br)
	}
	nc.Close()
	waitNoConns(t, p)
	return code, raw.String()
}

// waitNoConns waits until p has finished all its client connections.
func waitNoConns(t *testing.T, p *Proxy) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		p.mu.Lock()
		n := len(p.conns)
		p.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d client connections still open", n)
		}
	}
}
