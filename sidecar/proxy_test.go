package sidecar

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cors-webhook/cors-webhook/cors"
)

// seedConfig is the guide's PluginConfig.spec.config (examples/manifests/cors-policy-config.yaml), normalized.
const seedConfig = `{"allowCredentials":true,"allowHeaders":["X-Foo-Bar-1"],"allowMethods":["POST","GET","PATCH","DELETE"],` +
	`"allowOrigins":[{"regex":"http.*://www.test.cn"},{"exact":"http://www.aaa.com"},{"prefix":"http://www.bbb.com"}],` +
	`"exposeHeaders":["Content-Encoding","Kuma-Revision"],"maxAge":86400}`

func seedPolicy(t testing.TB, ports ...int) map[uint16]*cors.Policy {
	t.Helper()
	var parts []string
	for _, p := range ports {
		parts = append(parts, fmt.Sprintf("%q:%s", strconv.Itoa(p), seedConfig))
	}
	m, err := cors.ParsePodPolicy([]byte(`{"version":1,"ports":{` + strings.Join(parts, ",") + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// harness is a proxy in explicit mode in front of an upstream handler.
type harness struct {
	proxy    *Proxy
	addr     string // the proxy's address
	upAddr   string
	upPort   int
	store    *PolicyStore
	metrics  *Metrics
	upConns  atomic.Int64 // upstream connections accepted
	upServer *httptest.Server
}

func newHarness(t *testing.T, h http.Handler, withPolicy bool, mod ...func(*Config)) *harness {
	t.Helper()
	hs := &harness{store: &PolicyStore{}, metrics: &Metrics{}}
	up := httptest.NewUnstartedServer(h)
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			hs.upConns.Add(1)
		}
	}
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetHTTP1(true)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	t.Cleanup(up.Close)
	hs.upServer = up
	hs.upAddr = up.Listener.Addr().String()
	hs.upPort = up.Listener.Addr().(*net.TCPAddr).Port
	hs.start(t, withPolicy, mod...)
	return hs
}

func (hs *harness) start(t *testing.T, withPolicy bool, mod ...func(*Config)) {
	if withPolicy {
		hs.store.Store(seedPolicy(t, hs.upPort))
	} else {
		hs.store.Store(nil)
	}
	cfg := Config{Upstream: hs.upAddr, Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, m := range mod {
		m(&cfg)
	}
	p, err := New(cfg, hs.store, hs.metrics)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.proxy, hs.addr = p, ln.Addr().String()
	done := make(chan struct{})
	go func() { p.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		p.Shutdown(ctx)
		<-done
	})
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// pipyOK is the seed's application: 20 bytes, no Content-Type, no Date.
func pipyOK(w http.ResponseWriter, r *http.Request) {
	w.Header()["Date"] = nil
	w.Header()["Content-Type"] = nil
	io.Copy(io.Discard, r.Body)
	w.Write([]byte("Hi, I am PIPY-OK v1!"))
}

// proxyWithoutPolicy starts a proxy with cfg and no CORS policy, and returns its address; it is
// shut down when the test ends.
func proxyWithoutPolicy(t *testing.T, cfg Config) string {
	t.Helper()
	store := &PolicyStore{}
	store.Store(nil)
	p, err := New(cfg, store, &Metrics{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go p.Serve(ln)
	t.Cleanup(func() { p.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// rawConn is a client connection that writes bytes as given and reads responses one by one.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads one response to a request of the given method and its whole body.
func (rc *rawConn) read(method string) (*http.Response, string) {
	rc.t.Helper()
	res, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	if err != nil {
		rc.t.Fatalf("reading response: %v", err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil {
		rc.t.Fatalf("reading body: %v", err)
	}
	return res, string(b)
}

func (rc *rawConn) roundTrip(method, path string, hdr ...string) (*http.Response, string) {
	rc.t.Helper()
	rc.send(method + " " + path + " HTTP/1.1\r\nHost: pipy-ok\r\n" + strings.Join(hdr, "\r\n") + nl(hdr) + "\r\n")
	return rc.read(method)
}

func nl(h []string) string {
	if len(h) == 0 {
		return ""
	}
	return "\r\n"
}

// closed reports whether the peer closed the connection (EOF or a reset on read, not a timeout).
func (rc *rawConn) closed() bool {
	rc.c.SetReadDeadline(time.Now().Add(2 * time.Second))
	_, err := rc.br.ReadByte()
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

var corsNames = []string{cors.HeaderAllowOrigin, cors.HeaderAllowCredentials, cors.HeaderExposeHeaders,
	cors.HeaderAllowMethods, cors.HeaderAllowHeaders, cors.HeaderMaxAge}

func corsHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for _, n := range corsNames {
		if v := h.Values(n); len(v) > 0 {
			out[n] = strings.Join(v, " | ")
		}
	}
	return out
}

var (
	actualHeaders = map[string]string{
		cors.HeaderAllowOrigin:      "http://www.bbb.com",
		cors.HeaderAllowCredentials: "true",
		cors.HeaderExposeHeaders:    "Content-Encoding,Kuma-Revision",
	}
	preflightHeaders = map[string]string{
		cors.HeaderAllowOrigin:      "http://www.bbb.com",
		cors.HeaderAllowCredentials: "true",
		cors.HeaderExposeHeaders:    "Content-Encoding,Kuma-Revision",
		cors.HeaderAllowMethods:     "POST,GET,PATCH,DELETE",
		cors.HeaderAllowHeaders:     "X-Foo-Bar-1",
		cors.HeaderMaxAge:           "86400",
	}
)

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSeedRequests(t *testing.T) {
	var upstreamCalls atomic.Int64
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamCalls.Add(1)
		pipyOK(w, r)
	}), true)
	rc := dialRaw(t, hs.addr)

	res, body := rc.roundTrip("GET", "/", "Origin: http://www.bbb.com")
	if res.StatusCode != 200 || body != "Hi, I am PIPY-OK v1!" || res.ContentLength != 20 {
		t.Fatalf("GET: %d %q (length %d)", res.StatusCode, body, res.ContentLength)
	}
	if got := corsHeaders(res.Header); !equalMaps(got, actualHeaders) {
		t.Errorf("GET CORS headers = %v, want %v", got, actualHeaders)
	}
	if got := res.Header.Get("Connection"); got != "keep-alive" {
		t.Errorf("GET connection = %q, want keep-alive", got)
	}
	if got := res.Header.Get("Vary"); got != "Origin" {
		t.Errorf("GET vary = %q", got)
	}

	res, body = rc.roundTrip("OPTIONS", "/", "Origin: http://www.bbb.com")
	if res.StatusCode != 200 || body != "" || res.Header.Get("Content-Length") != "0" {
		t.Fatalf("OPTIONS: %d %q content-length %q", res.StatusCode, body, res.Header.Get("Content-Length"))
	}
	if got := corsHeaders(res.Header); !equalMaps(got, preflightHeaders) {
		t.Errorf("OPTIONS CORS headers = %v, want %v", got, preflightHeaders)
	}
	if got := res.Header.Get("Connection"); got != "keep-alive" {
		t.Errorf("OPTIONS connection = %q, want keep-alive", got)
	}
	if n := upstreamCalls.Load(); n != 1 {
		t.Errorf("upstream called %d times, want 1 (the preflight is answered by the proxy)", n)
	}
	if n := hs.metrics.Requests(uint16(hs.upPort), cors.Preflight); n != 1 {
		t.Errorf("preflight counter = %d", n)
	}
	if n := hs.metrics.Requests(uint16(hs.upPort), cors.Actual); n != 1 {
		t.Errorf("actual counter = %d", n)
	}
}

// TestOrigins walks the seed's three matchers (docs/design.md section 5) through the proxy.
func TestOrigins(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true)
	rc := dialRaw(t, hs.addr)
	for _, tc := range []struct {
		origin string
		match  bool
	}{
		{"http://www.bbb.com", true},              // prefix, equal
		{"http://www.bbb.com:8080", true},         // prefix
		{"http://www.bbb.com.evil.example", true}, // prefix without a host boundary (a warning at admission)
		{"https://www.bbb.com", false},            // prefix is on the whole origin
		{"http://www.bb.com", false},
		{"http://www.aaa.com", true},     // exact
		{"http://www.aaa.com:80", false}, // exact means equal
		{"http://www.aaa.comx", false},
		{"http://www.test.cn", true},            // regex
		{"https://www.test.cn", true},           // regex: http.* covers https
		{"http://wwwxtest.cn", true},            // regex: unescaped dots match anything
		{"ftp://http://www.test.cn.evil", true}, // regex: unanchored search, as FSM
		{"https://www.test.com", false},
		{"", false},
		{"null", false},
	} {
		hdr := []string{}
		if tc.origin != "" {
			hdr = append(hdr, "Origin: "+tc.origin)
		}
		for _, method := range []string{"GET", "OPTIONS", "POST"} {
			res, body := rc.roundTrip(method, "/", hdr...)
			got := corsHeaders(res.Header)
			var want map[string]string
			switch {
			case !tc.match:
				want = map[string]string{}
			case method == "OPTIONS":
				want = map[string]string{}
				for k, v := range preflightHeaders {
					want[k] = v
				}
				want[cors.HeaderAllowOrigin] = tc.origin
			default:
				want = map[string]string{}
				for k, v := range actualHeaders {
					want[k] = v
				}
				want[cors.HeaderAllowOrigin] = tc.origin
			}
			if !equalMaps(got, want) {
				t.Errorf("%s origin %q: CORS headers %v, want %v", method, tc.origin, got, want)
			}
			wantBody := "Hi, I am PIPY-OK v1!"
			if tc.match && method == "OPTIONS" {
				wantBody = ""
			}
			if res.StatusCode != 200 || body != wantBody {
				t.Errorf("%s origin %q: %d %q, want 200 %q", method, tc.origin, res.StatusCode, body, wantBody)
			}
			if v := res.Header.Get("Vary"); v != "Origin" {
				t.Errorf("%s origin %q: vary %q, want Origin (a policy is active)", method, tc.origin, v)
			}
		}
	}
}

func TestNoPolicyPassesThrough(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), false)
	rc := dialRaw(t, hs.addr)
	for _, m := range []string{"GET", "OPTIONS"} {
		res, body := rc.roundTrip(m, "/", "Origin: http://www.bbb.com")
		if res.StatusCode != 200 || body != "Hi, I am PIPY-OK v1!" {
			t.Errorf("%s: %d %q", m, res.StatusCode, body)
		}
		if got := corsHeaders(res.Header); len(got) != 0 || res.Header.Get("Vary") != "" {
			t.Errorf("%s: CORS headers %v vary %q on a port without policy", m, got, res.Header.Get("Vary"))
		}
	}
	if n := hs.metrics.Requests(uint16(hs.upPort), cors.PassThrough); n != 2 {
		t.Errorf("pass-through counter = %d, want 2", n)
	}
}

func TestApplicationHeaders(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		w.Header().Add("Vary", "Accept-Encoding")
		w.Header().Add("Vary", "Accept")
		w.Header().Set("X-App", "1")
		w.Header().Set("Connection", "close, X-App-Hop") // hop-by-hop: never forwarded
		w.Write([]byte("ok"))
	}), true)
	rc := dialRaw(t, hs.addr)
	res, _ := rc.roundTrip("GET", "/", "Origin: http://www.aaa.com")
	if got := res.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "http://www.aaa.com" {
		t.Errorf("actual: allow-origin %q, want the policy's value replacing the application's", got)
	}
	if got := res.Header.Values("Vary"); len(got) != 1 || got[0] != "Accept-Encoding, Accept, Origin" {
		t.Errorf("vary %q, want merged", got)
	}
	if res.Header.Get("X-App") != "1" {
		t.Error("application header lost")
	}
	if res.Header.Get("Connection") != "keep-alive" {
		t.Errorf("connection %q: the client connection's header is the proxy's", res.Header.Get("Connection"))
	}
	res, _ = rc.roundTrip("GET", "/", "Origin: http://other.example")
	if got := res.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "*" {
		t.Errorf("pass-through: allow-origin %q, want the application's", got)
	}
}

func TestRequestHeadersForwarded(t *testing.T) {
	var mu sync.Mutex
	var seen http.Header
	var seenHost, seenProto string
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen, seenHost, seenProto = r.Header.Clone(), r.Host, r.Proto
		mu.Unlock()
		w.Write([]byte("ok"))
	}), true)
	rc := dialRaw(t, hs.addr)
	rc.roundTrip("GET", "/x?y=1", "Origin: http://www.aaa.com", "X-Custom: a b", "Connection: keep-alive, X-Drop",
		"Keep-Alive: timeout=5", "Proxy-Connection: keep-alive", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA")
	mu.Lock()
	defer mu.Unlock()
	if seenHost != "pipy-ok" || seen.Get("X-Custom") != "a b" || seen.Get("Origin") != "http://www.aaa.com" {
		t.Errorf("upstream saw host %q headers %v", seenHost, seen)
	}
	for _, h := range []string{"Keep-Alive", "Proxy-Connection", "Upgrade", "Http2-Settings"} {
		if seen.Get(h) != "" {
			t.Errorf("hop-by-hop %s forwarded: %q", h, seen.Get(h))
		}
	}
	if seenProto != "HTTP/1.1" {
		t.Errorf("upstream proto %q: Upgrade: h2c must be ignored", seenProto)
	}
}

func TestKeepAliveReusesUpstream(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true)
	for c := 0; c < 3; c++ {
		rc := dialRaw(t, hs.addr)
		for i := 0; i < 20; i++ {
			res, _ := rc.roundTrip("GET", "/", "Origin: http://www.bbb.com")
			if res.StatusCode != 200 {
				t.Fatal(res.Status)
			}
		}
		rc.c.Close()
	}
	// Sequential client connections hand their upstream connection back to the pool.
	deadline := time.Now().Add(2 * time.Second)
	if n := hs.upConns.Load(); n > 3 {
		t.Errorf("%d upstream connections for 60 requests on 3 sequential client connections", n)
	}
	_ = deadline
}

func TestBodies(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	sum := func(b []byte) string { s := sha256.Sum256(b); return fmt.Sprintf("%x", s[:8]) }
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		switch r.URL.Path {
		case "/sum":
			fmt.Fprintf(w, "%s %d %v", sum(b), len(b), r.TransferEncoding)
		case "/big":
			w.Write(big) // no Content-Length header: chunked
		case "/stream":
			for i := 0; i < 3; i++ {
				fmt.Fprintf(w, "event %d\n", i)
				w.(http.Flusher).Flush()
				time.Sleep(10 * time.Millisecond)
			}
		case "/nolength":
			w.Header().Set("Connection", "close") // HTTP/1.1 server: EOF-delimited needs close
			hj, _ := w.(http.Hijacker)
			c, bw, _ := hj.Hijack()
			bw.WriteString("HTTP/1.1 200 OK\r\nX-Framing: eof\r\n\r\nuntil the end")
			bw.Flush()
			c.Close()
		case "/204":
			w.WriteHeader(204)
		case "/304":
			w.WriteHeader(304)
		default:
			w.Header().Set("Content-Length", "5")
			w.Write([]byte("hello"))
		}
	}), true)

	t.Run("small content-length", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		rc.send("POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nOrigin: http://www.aaa.com\r\n\r\nhello")
		res, body := rc.read("POST")
		if want := fmt.Sprintf("%s 5 []", sum([]byte("hello"))); body != want {
			t.Errorf("body %q, want %q", body, want)
		}
		if res.Header.Get(cors.HeaderAllowOrigin) != "http://www.aaa.com" {
			t.Error("no CORS on POST")
		}
	})
	t.Run("large content-length", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		rc.send("POST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n")
		rc.send(string(big))
		_, body := rc.read("POST")
		if want := fmt.Sprintf("%s %d []", sum(big), len(big)); body != want {
			t.Errorf("body %q, want %q", body, want)
		}
		// and the connection still works
		if _, body := rc.roundTrip("GET", "/"); body != "hello" {
			t.Errorf("after a large body: %q", body)
		}
	})
	t.Run("chunked request", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		rc.send("POST /sum HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
		_, body := rc.read("POST")
		if want := fmt.Sprintf("%s 11 [chunked]", sum([]byte("hello world"))); body != want {
			t.Errorf("body %q, want %q", body, want)
		}
	})
	t.Run("expect 100-continue", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		rc.send("POST /sum HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " + strconv.Itoa(len(big)) + "\r\n\r\n")
		res, err := http.ReadResponse(rc.br, nil)
		if err != nil || res.StatusCode != 100 {
			t.Fatalf("want 100 Continue first, got %v %v", res, err)
		}
		rc.send(string(big))
		_, body := rc.read("POST")
		if want := fmt.Sprintf("%s %d []", sum(big), len(big)); body != want {
			t.Errorf("body %q, want %q", body, want)
		}
	})
	t.Run("chunked response", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		res, body := rc.roundTrip("GET", "/big", "Origin: http://www.bbb.com")
		if body != string(big) || len(res.TransferEncoding) != 1 {
			t.Errorf("big body: %d bytes, transfer-encoding %v", len(body), res.TransferEncoding)
		}
		if res.Header.Get(cors.HeaderAllowOrigin) != "http://www.bbb.com" {
			t.Error("no CORS on a chunked response")
		}
	})
	t.Run("streamed response arrives before it ends", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		rc.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
		res, err := http.ReadResponse(rc.br, nil)
		if err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(res.Body).ReadString('\n')
		if err != nil || line != "event 0\n" {
			t.Errorf("first event %q %v", line, err)
		}
	})
	t.Run("eof-delimited response", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		res, body := rc.roundTrip("GET", "/nolength", "Origin: http://www.bbb.com")
		if body != "until the end" || !res.Close {
			t.Errorf("body %q close %v", body, res.Close)
		}
		if !rc.closed() {
			t.Error("client connection not closed after an EOF-delimited response")
		}
	})
	t.Run("no body", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		for _, tc := range []struct{ method, path string }{{"HEAD", "/"}, {"GET", "/204"}, {"GET", "/304"}, {"GET", "/"}} {
			res, body := rc.roundTrip(tc.method, tc.path)
			if tc.path == "/" && tc.method == "GET" && body != "hello" || tc.path != "/" && body != "" {
				t.Errorf("%s %s: %d %q", tc.method, tc.path, res.StatusCode, body)
			}
		}
	})
	t.Run("pipelined", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /sum HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhiOPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: http://www.aaa.com\r\n\r\n")
		if _, body := rc.read("GET"); body != "hello" {
			t.Errorf("1: %q", body)
		}
		if _, body := rc.read("POST"); !strings.HasSuffix(body, " 2 []") {
			t.Errorf("2: %q", body)
		}
		if res, _ := rc.read("OPTIONS"); res.Header.Get(cors.HeaderMaxAge) != "86400" {
			t.Errorf("3: %v", res.Header)
		}
	})
	t.Run("http/1.0", func(t *testing.T) {
		rc := dialRaw(t, hs.addr)
		rc.send("GET / HTTP/1.0\r\nOrigin: http://www.aaa.com\r\n\r\n")
		res, body := rc.read("GET")
		if body != "hello" || !res.Close || res.Header.Get(cors.HeaderAllowOrigin) == "" {
			t.Errorf("%q %v", body, res.Header)
		}
		if !rc.closed() {
			t.Error("HTTP/1.0 without keep-alive: connection left open")
		}
		rc = dialRaw(t, hs.addr)
		rc.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
		if res, body := rc.read("GET"); body != "hello" || res.Header.Get("Connection") != "keep-alive" {
			t.Errorf("HTTP/1.0 keep-alive: %q %v", body, res.Header)
		}
	})
}

func TestBadRequests(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true, func(c *Config) {
		c.MaxHeaderBytes = 4 << 10
		c.HeaderTimeout = 200 * time.Millisecond
	})
	for _, tc := range []struct {
		name, req string
		code      int
	}{
		{"garbage", "hello\r\n\r\n", 400},
		{"no version", "GET /\r\n\r\n", 400},
		{"http/2 line", "GET / HTTP/2.0\r\n\r\n", 505},
		{"space before colon", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 400},
		{"cl and te", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"two lengths", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
		{"bad length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400},
		{"te not chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400},
		{"headers too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n", 431},
		{"header timeout", "GET / HTTP/1.1\r\nHost: x\r\n", 408},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, hs.addr)
			rc.send(tc.req)
			res, _ := rc.read("GET")
			if res.StatusCode != tc.code || !res.Close {
				t.Errorf("status %d close %v, want %d and connection: close", res.StatusCode, res.Close, tc.code)
			}
			if !rc.closed() {
				t.Error("connection left open after a rejected request")
			}
		})
	}
	// A long header line within the limit is fine even though it exceeds the read buffer.
	rc := dialRaw(t, hs.addr)
	if res, body := rc.roundTrip("GET", "/", "X-Long: "+strings.Repeat("b", 3500), "Origin: http://www.bbb.com"); res.StatusCode != 200 || body == "" {
		t.Errorf("long header: %d %q", res.StatusCode, body)
	}
}

func TestUpstreamDown(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true)
	hs.upServer.Close()
	rc := dialRaw(t, hs.addr)
	for i := 0; i < 2; i++ { // the connection survives a 502
		res, body := rc.roundTrip("GET", "/", "Origin: http://www.bbb.com")
		if res.StatusCode != 502 || body != "upstream unavailable\n" {
			t.Fatalf("%d %q", res.StatusCode, body)
		}
		if res.Header.Get(cors.HeaderAllowOrigin) != "http://www.bbb.com" || res.Header.Get("Connection") != "keep-alive" {
			t.Errorf("502 headers %v", res.Header)
		}
	}
	// Preflights do not need the application.
	if res, _ := rc.roundTrip("OPTIONS", "/", "Origin: http://www.bbb.com"); res.StatusCode != 200 {
		t.Errorf("preflight with the application down: %d", res.StatusCode)
	}
}

// TestStaleUpstreamConnection: an application that closes a kept-alive connection without
// saying so must not cost a client request.
func TestStaleUpstreamConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				if _, err := http.ReadRequest(br); err != nil {
					return
				}
				// One response, keep-alive implied, then close: the next request on this
				// connection finds it dead.
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			}()
		}
	}()
	rc := dialRaw(t, proxyWithoutPolicy(t, Config{Upstream: ln.Addr().String()}))
	for i := 0; i < 5; i++ {
		res, body := rc.roundTrip("GET", "/")
		if res.StatusCode != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
	}
	if accepted.Load() < 5 {
		t.Errorf("accepted %d", accepted.Load())
	}
}

func TestUpgradeTunnel(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "websocket" {
			http.Error(w, "want upgrade", 400)
			return
		}
		c, bw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		defer c.Close()
		bw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nwelcome\n")
		bw.Flush()
		io.Copy(c, bw.Reader) // echo
	}), true)
	rc := dialRaw(t, hs.addr)
	rc.send("GET /ws HTTP/1.1\r\nHost: x\r\nOrigin: http://www.bbb.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	res, err := http.ReadResponse(rc.br, nil)
	if err != nil || res.StatusCode != 101 {
		t.Fatalf("%v %v", res, err)
	}
	if res.Header.Get("Upgrade") != "websocket" || !strings.EqualFold(res.Header.Get("Connection"), "upgrade") {
		t.Errorf("101 headers %v", res.Header)
	}
	line, _ := rc.br.ReadString('\n')
	if line != "welcome\n" {
		t.Errorf("first tunnelled bytes %q", line)
	}
	rc.send("ping\n")
	if line, _ := rc.br.ReadString('\n'); line != "ping\n" {
		t.Errorf("echo %q", line)
	}
}

func TestH2CPriorKnowledge(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Proto", r.Proto)
		pipyOK(w, r)
	}), true)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	for _, method := range []string{"GET", "OPTIONS", "GET"} {
		req, _ := http.NewRequest(method, "http://"+hs.addr+"/", nil)
		req.Header.Set("Origin", "http://www.bbb.com")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 {
			t.Errorf("client got %s", res.Proto)
		}
		want := actualHeaders
		if method == "OPTIONS" {
			want = preflightHeaders
			if len(body) != 0 {
				t.Errorf("preflight body %q", body)
			}
		} else if string(body) != "Hi, I am PIPY-OK v1!" || res.Header.Get("X-Proto") != "HTTP/2.0" {
			t.Errorf("%s: %q upstream proto %q", method, body, res.Header.Get("X-Proto"))
		}
		if got := corsHeaders(res.Header); !equalMaps(got, want) {
			t.Errorf("%s: CORS %v, want %v", method, got, want)
		}
		if res.Header.Get("Vary") != "Origin" {
			t.Errorf("%s: vary %q", method, res.Header.Get("Vary"))
		}
	}
}

func TestPolicySwapOnLiveConnection(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true)
	rc := dialRaw(t, hs.addr)
	if res, _ := rc.roundTrip("GET", "/", "Origin: http://www.bbb.com"); res.Header.Get(cors.HeaderAllowOrigin) == "" {
		t.Fatal("no CORS before the swap")
	}
	m, err := cors.ParsePodPolicy([]byte(fmt.Sprintf(`{"version":1,"ports":{"%d":{"allowOrigins":[{"exact":"http://new.example"}]}}}`, hs.upPort)))
	if err != nil {
		t.Fatal(err)
	}
	hs.store.Store(m)
	if res, _ := rc.roundTrip("GET", "/", "Origin: http://www.bbb.com"); res.Header.Get(cors.HeaderAllowOrigin) != "" {
		t.Error("old policy still applied on a kept-alive connection")
	}
	if res, _ := rc.roundTrip("GET", "/", "Origin: http://new.example"); res.Header.Get(cors.HeaderAllowOrigin) != "http://new.example" {
		t.Error("new policy not applied")
	}
}

func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		pipyOK(w, r)
	}), true)
	idle := dialRaw(t, hs.addr)
	idle.roundTrip("GET", "/")
	busy := dialRaw(t, hs.addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-started

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shutdownDone <- hs.proxy.Shutdown(ctx)
	}()
	if !idle.closed() {
		t.Error("idle connection not closed by Shutdown")
	}
	// The listener is closed: new connections are refused.
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.Dial("tcp", hs.addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("listener still accepting after Shutdown")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-shutdownDone:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	res, body := busy.read("GET")
	if res.StatusCode != 200 || body != "Hi, I am PIPY-OK v1!" || !res.Close {
		t.Errorf("in-flight request: %d %q close %v", res.StatusCode, body, res.Close)
	}
	if err := <-shutdownDone; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func BenchmarkProxy(b *testing.B) {
	up := httptest.NewServer(http.HandlerFunc(pipyOK))
	defer up.Close()
	store := &PolicyStore{}
	store.Store(seedPolicy(b, up.Listener.Addr().(*net.TCPAddr).Port))
	p, _ := New(Config{Upstream: up.Listener.Addr().String()}, store, &Metrics{})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go p.Serve(ln)
	defer p.Shutdown(context.Background())
	c, _ := net.Dial("tcp", ln.Addr().String())
	defer c.Close()
	br := bufio.NewReader(c)
	req := []byte("GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://www.bbb.com\r\n\r\n")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Write(req)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// connectEcho is an upstream that answers one CONNECT with 200 and then echoes the tunnel;
// it returns the upstream's address.
func connectEcho(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != "CONNECT" {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 Connection Established\r\n\r\n")
		io.Copy(c, br) // echo
	}()
	return ln.Addr().String()
}

func TestConnectTunnel(t *testing.T) {
	rc := dialRaw(t, proxyWithoutPolicy(t, Config{Upstream: connectEcho(t)}))
	rc.send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	res, err := http.ReadResponse(rc.br, &http.Request{Method: "CONNECT"})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %v", res, err)
	}
	rc.send("through\n")
	if line, _ := rc.br.ReadString('\n'); line != "through\n" {
		t.Errorf("tunnelled %q", line)
	}
	rc.c.Close() // a tunnel holds Shutdown until it ends
}

// TestWebSocket runs a real WebSocket handshake and messages through the proxy.
func TestWebSocket(t *testing.T) {
	upgrader := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, append([]byte("echo: "), msg...)); err != nil {
				return
			}
		}
	}), true)
	hdr := http.Header{"Origin": {"http://www.bbb.com"}}
	c, res, err := websocket.DefaultDialer.Dial("ws://"+hs.addr+"/ws", hdr)
	if err != nil {
		t.Fatalf("dial through the proxy: %v (%v)", err, res)
	}
	defer c.Close()
	if res.Header.Get(cors.HeaderAllowOrigin) != "http://www.bbb.com" {
		t.Errorf("101 without CORS headers: %v", res.Header)
	}
	for _, msg := range []string{"one", strings.Repeat("x", 100<<10)} {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != "echo: "+msg {
			t.Fatalf("echo of %d bytes: %d bytes, %v", len(msg), len(got), err)
		}
	}
}
