package sidecar

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The sidecar's bounds (docs/injection.md, "Sidecar limits"), each pushed past with real sockets.

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
	}
}

// answeredWithin reports whether a response starts arriving on rc within d.
func (rc *rawConn) answeredWithin(d time.Duration) bool {
	rc.c.SetReadDeadline(time.Now().Add(d))
	defer rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := rc.br.Peek(1)
	return err == nil
}

// At MaxConns the proxy stops accepting: a further client waits (it is not accepted and dropped)
// and is served once a connection ends.
func TestConnectionCapBackpressure(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true, func(c *Config) { c.MaxConns = 2 })
	var held []*rawConn
	for range 2 {
		rc := dialRaw(t, hs.addr)
		if res, _ := rc.roundTrip("GET", "/"); res.StatusCode != 200 {
			t.Fatalf("status %d", res.StatusCode)
		}
		held = append(held, rc)
	}
	waiting := dialRaw(t, hs.addr) // the kernel completes the handshake; the proxy does not accept
	waiting.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if waiting.answeredWithin(300 * time.Millisecond) {
		t.Fatal("a third connection was served with MaxConns 2")
	}
	if n := hs.metrics.connsOpen.Load(); n != 2 {
		t.Errorf("%d connections open, want 2", n)
	}
	held[0].c.Close()
	if res, body := waiting.read("GET"); res.StatusCode != 200 || body != "Hi, I am PIPY-OK v1!" {
		t.Fatalf("the waiting connection got %d %q", res.StatusCode, body)
	}
}

// A client that stops reading a large response is dropped once a write stalls past the bound.
func TestStalledReaderIsDropped(t *testing.T) {
	big := strings.Repeat("x", 8<<20)
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, big)
	}), true, func(c *Config) {
		c.WriteTimeout = 200 * time.Millisecond
		c.MinWriteRate = 1 << 20
	})
	rc := dialRaw(t, hs.addr)
	rc.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	// The client reads nothing: the proxy fills the socket buffers, its write stalls, and the
	// bound ends the connection.
	waitFor(t, "the stalled connection ends", func() bool { return hs.metrics.connsOpen.Load() == 0 })

	// A reader that keeps up gets the whole response.
	rc = dialRaw(t, hs.addr)
	if res, body := rc.roundTrip("GET", "/"); res.StatusCode != 200 || len(body) != len(big) {
		t.Fatalf("status %d, %d bytes", res.StatusCode, len(body))
	}
}

// An application that does not answer gets the client a 504 after UpstreamTimeout, on HTTP/1.1
// and h2c; the connection stays usable; an answer that streams longer than the timeout after its
// head is not cut.
func TestUpstreamTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	release := make(chan struct{})
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/hang":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/slow":
			time.Sleep(timeout / 3) // the application's pace
			pipyOK(w, r)
		case "/stream":
			w.Write([]byte("head;"))
			w.(http.Flusher).Flush()
			time.Sleep(2 * timeout) // the application's pace, not synchronization
			w.Write([]byte("tail"))
		default:
			pipyOK(w, r)
		}
	}), true, func(c *Config) { c.UpstreamTimeout = timeout })
	defer close(release)

	rc := dialRaw(t, hs.addr)
	start := time.Now()
	res, body := rc.roundTrip("GET", "/hang", "Origin: http://www.bbb.com")
	if res.StatusCode != http.StatusGatewayTimeout || body != "upstream timed out\n" {
		t.Fatalf("hanging application: %d %q", res.StatusCode, body)
	}
	if took := time.Since(start); took < timeout {
		t.Errorf("504 after %v, before the timeout", took)
	}
	if got := corsHeaders(res.Header); !equalMaps(got, actualHeaders) {
		t.Errorf("504 without the CORS headers: %v", got)
	}
	if res, body := rc.roundTrip("GET", "/stream"); res.StatusCode != 200 || body != "head;tail" {
		t.Errorf("streamed answer: %d %q", res.StatusCode, body)
	}
	if res, _ := rc.roundTrip("GET", "/"); res.StatusCode != 200 {
		t.Errorf("after a 504: %d", res.StatusCode)
	}
	// The timeout counts from the request, not from when the connection began to idle.
	time.Sleep(2 * timeout) // the client's pace
	if res, _ := rc.roundTrip("GET", "/slow"); res.StatusCode != 200 {
		t.Errorf("a request after the client idled: %d", res.StatusCode)
	}

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	h2, err := (&http.Client{Transport: tr}).Get("http://" + hs.addr + "/hang")
	if err != nil {
		t.Fatal(err)
	}
	h2.Body.Close()
	if h2.StatusCode != http.StatusGatewayTimeout || h2.ProtoMajor != 2 {
		t.Errorf("h2c hanging application: %s %d", h2.Proto, h2.StatusCode)
	}
}

// A tunnel stays open while bytes move either way and closes after TunnelIdleTimeout without.
func TestTunnelIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	rc := dialRaw(t, proxyWithoutPolicy(t, Config{Upstream: connectEcho(t), TunnelIdleTimeout: idle}))
	rc.send("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n")
	if res, err := http.ReadResponse(rc.br, &http.Request{Method: "CONNECT"}); err != nil || res.StatusCode != 200 {
		t.Fatalf("%v %v", res, err)
	}
	// Traffic for three idle timeouts keeps it open.
	var lastByte time.Time
	for start := time.Now(); time.Since(start) < 3*idle; time.Sleep(idle / 4) { // the client's pace
		rc.send("ping\n")
		if line, err := rc.br.ReadString('\n'); line != "ping\n" {
			t.Fatalf("after %v of traffic: %q %v", time.Since(start), line, err)
		}
		lastByte = time.Now()
	}
	if !rc.closed() {
		t.Fatal("an idle tunnel is still open after 2s")
	}
	if took := time.Since(lastByte); took < idle {
		t.Errorf("closed after %v of idleness, before the timeout", took)
	}
}

// A client idle between requests holds no application connection: it is back in the pool, and
// another client's request takes it. (The event loops keep a pool each: bothPaths checks they
// share out their connections the same way, TestEventLoopMixedTraffic that they bound them.)
func TestIdleClientReturnsAppConnection(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true, func(c *Config) { c.NoEventLoop = true })
	a, b := dialRaw(t, hs.addr), dialRaw(t, hs.addr)
	for range 3 {
		for _, rc := range []*rawConn{a, b} {
			if res, _ := rc.roundTrip("GET", "/"); res.StatusCode != 200 {
				t.Fatalf("status %d", res.StatusCode)
			}
		}
	}
	if n := hs.upConns.Load(); n != 1 {
		t.Errorf("%d application connections for two clients taking turns, want 1", n)
	}
	hs.proxy.pool.mu.Lock()
	idle := 0
	if l := hs.proxy.pool.idle[hs.upAddr]; l != nil {
		idle = len(l.conns)
	}
	hs.proxy.pool.mu.Unlock()
	if idle != 1 {
		t.Errorf("%d idle application connections in the pool while both clients idle, want 1", idle)
	}
}

// Request heads over 8 KiB take one of MaxLargeHeads slots while they are read and served; when
// none is free a further one gets 503, and small heads are not affected.
func TestLargeHeadsBounded(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true, func(c *Config) { c.MaxLargeHeads = 2 })
	big := "X-Big: " + strings.Repeat("a", 10<<10)
	var slow []*rawConn
	for range 2 {
		rc := dialRaw(t, hs.addr)
		rc.send("GET / HTTP/1.1\r\nHost: x\r\n" + big) // and the rest never comes
		slow = append(slow, rc)
	}
	waitFor(t, "both slow large heads hold a slot", func() bool { return len(hs.proxy.largeHeads) == 2 })
	if res, body := dialRaw(t, hs.addr).roundTrip("GET", "/", big); res.StatusCode != 503 {
		t.Errorf("a third large head: %d %q, want 503", res.StatusCode, body)
	}
	if res, _ := dialRaw(t, hs.addr).roundTrip("GET", "/", "X-Small: b"); res.StatusCode != 200 {
		t.Errorf("a small head: %d", res.StatusCode)
	}
	// A slow one completes: its slot is back once its request is done.
	slow[0].send("\r\n\r\n")
	if res, _ := slow[0].read("GET"); res.StatusCode != 200 {
		t.Errorf("the completed large head: %d", res.StatusCode)
	}
	waitFor(t, "the slot is back", func() bool { return len(hs.proxy.largeHeads) == 1 })
	if res, _ := dialRaw(t, hs.addr).roundTrip("GET", "/", big); res.StatusCode != 200 {
		t.Errorf("a large head with a slot free: %d", res.StatusCode)
	}
}

// At most a quarter of MaxConns are HTTP/2: a further h2c connection waits for one to end,
// while HTTP/1.1 clients are still served.
func TestH2CShareOfConnections(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true, func(c *Config) { c.MaxConns = 4 })
	h2c := func() *http.Transport {
		tr := &http.Transport{Protocols: new(http.Protocols)}
		tr.Protocols.SetUnencryptedHTTP2(true)
		t.Cleanup(tr.CloseIdleConnections)
		return tr
	}
	get := func(tr *http.Transport) error {
		res, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("http://" + hs.addr + "/")
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.ProtoMajor != 2 {
			return fmt.Errorf("%s %s", res.Proto, res.Status)
		}
		return nil
	}
	first, second := h2c(), h2c()
	if err := get(first); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- get(second) }()
	select {
	case err := <-done:
		t.Fatalf("a second h2c connection was served with one HTTP/2 slot (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if res, _ := dialRaw(t, hs.addr).roundTrip("GET", "/"); res.StatusCode != 200 {
		t.Errorf("HTTP/1.1 while h2c waits: %d", res.StatusCode)
	}
	first.CloseIdleConnections()
	if err := <-done; err != nil {
		t.Errorf("the waiting h2c connection: %v", err)
	}
}

func TestMaxConnsFor(t *testing.T) {
	for _, tc := range []struct {
		limit int64
		want  int
	}{
		{math.MaxInt64, 4096},
		{120795956, 2334}, // 90% of 128 Mi, as the injected sidecar sets it
		{32 << 20, 256},
		{1 << 40, 16384},
	} {
		if got := MaxConnsFor(tc.limit); got != tc.want {
			t.Errorf("MaxConnsFor(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}
