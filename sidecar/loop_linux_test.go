package sidecar

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// loopHarness is newHarness with the event loops on (a missing loop fails the test: it must not
// pass by serving on goroutines).
func loopHarness(t *testing.T, h http.Handler, mod ...func(*Config)) (*harness, *eventLoops) {
	t.Helper()
	atLeastTwoProcs(t)
	hs := newHarness(t, h, true, mod...)
	if hs.proxy.loops == nil {
		t.Fatal("the proxy has no event loops")
	}
	return hs, hs.proxy.loops
}

// mixedApp answers what TestEventLoopMixedTraffic asks: small and large bodies, chunked ones, a
// slow one, and the request's own body back.
func mixedApp(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	switch {
	case strings.HasPrefix(r.URL.Path, "/big/"):
		w.Write([]byte(strings.Repeat(r.URL.Path, 64<<10/len(r.URL.Path))))
	case strings.HasPrefix(r.URL.Path, "/chunked/"):
		for range 3 {
			io.WriteString(w, r.URL.Path)
			w.(http.Flusher).Flush()
		}
	case strings.HasPrefix(r.URL.Path, "/slow/"):
		time.Sleep(20 * time.Millisecond)
		io.WriteString(w, r.URL.Path)
	default:
		io.WriteString(w, r.Method+" "+r.URL.Path+" "+string(body))
	}
}

// TestEventLoopMixedTraffic: many connections at once send every kind of request, so that the
// loops serve some and hand the others back to goroutines (a body, a large or chunked answer, a
// head in pieces, a preflight), and take them again; every answer must be the right one, in
// order, and nothing may be lost between the loops and the goroutines.
func TestEventLoopMixedTraffic(t *testing.T) {
	hs, loops := loopHarness(t, http.HandlerFunc(mixedApp))
	const conns, reqs = 24, 80
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- mixedClient(t, hs.addr, i, reqs)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if a, b := loops.adopted.Load(), loops.handedBack.Load(); a < conns || b < conns {
		t.Errorf("the loops took %d connections and handed back %d: want both at least %d", a, b, conns)
	}
	// Each loop and the goroutines' pool keep idle application connections of their own; a
	// client holds one only while its request is out, so each pool needs at most one per client.
	if n, most := int(hs.upConns.Load()), conns*(len(loops.all)+1); n > most {
		t.Errorf("%d application connections for %d clients, want at most %d", n, conns, most)
	}
}

// mixedClient sends reqs requests of every kind on one connection and checks each answer.
func mixedClient(t *testing.T, addr string, id, reqs int) error {
	rc := dialRaw(t, addr)
	defer rc.c.Close()
	rnd := rand.New(rand.NewPCG(uint64(id), 1))
	for j := range reqs {
		path := fmt.Sprintf("/c%d/r%d", id, j)
		rc.c.SetDeadline(time.Now().Add(10 * time.Second))
		var method, want string
		switch k := rnd.IntN(8); k {
		case 0:
			method, want = "POST", "POST "+path+" hello"
			rc.send("POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
		case 1:
			method, want = "GET", strings.Repeat("/big"+path, 64<<10/len("/big"+path))
			rc.send("GET /big" + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		case 2:
			method, want = "GET", strings.Repeat("/chunked"+path, 3)
			rc.send("GET /chunked" + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		case 3:
			method, want = "GET", "GET "+path+" "
			rc.send("GET " + path + " HTTP/1.1\r\nHo")
			time.Sleep(time.Millisecond)
			rc.send("st: x\r\n\r\n")
		case 4:
			method, want = "OPTIONS", ""
			rc.send("OPTIONS " + path + " HTTP/1.1\r\nHost: x\r\nOrigin: http://www.bbb.com\r\nAccess-Control-Request-Method: POST\r\n\r\n")
		case 5:
			// Two requests in one write: the second is answered after the first.
			method, want = "GET", "GET "+path+"/b "
			rc.send("GET " + path + "/a HTTP/1.1\r\nHost: x\r\n\r\nGET " + path + "/b HTTP/1.1\r\nHost: x\r\n\r\n")
			if res, body := rc.read("GET"); res.StatusCode != 200 || body != "GET "+path+"/a " {
				return fmt.Errorf("connection %d request %d (pipelined, first): %d %q", id, j, res.StatusCode, body)
			}
		case 6:
			method, want = "GET", "/slow"+path
			rc.send("GET /slow" + path + " HTTP/1.1\r\nHost: x\r\n\r\n")
		default:
			method, want = "GET", "GET "+path+" "
			rc.send("GET " + path + " HTTP/1.1\r\nHost: x\r\nOrigin: http://www.bbb.com\r\n\r\n")
		}
		res, body := rc.read(method)
		if res.StatusCode != 200 || body != want {
			return fmt.Errorf("connection %d request %d (%s): %d %.80q, want 200 %.80q", id, j, method, res.StatusCode, body, want)
		}
	}
	return nil
}

// TestEventLoopSlowReader: a client that sends requests and does not read the answers fills its
// socket; the loop keeps what the socket did not take and hands the connection to a goroutine,
// which writes it out once the client reads, bounded as any write. Every answer arrives, in
// order.
func TestEventLoopSlowReader(t *testing.T) {
	hs, loops := loopHarness(t, http.HandlerFunc(mixedApp))
	rc := dialRaw(t, hs.addr)
	rc.roundTrip("GET", "/first") // the loop takes the connection after its first request
	waitFor(t, "the loop taking the connection", func() bool { return loops.adopted.Load() == 1 })
	const n = 4000 // about 12 MB of answers: more than the socket buffers hold
	pad := strings.Repeat("p", 2800)
	go func() {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "GET /%04d/%s HTTP/1.1\r\nHost: x\r\n\r\n", i, pad)
		}
		io.WriteString(rc.c, b.String())
	}()
	waitFor(t, "the loop handing the connection back", func() bool { return loops.handedBack.Load() >= 1 })
	rc.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	for i := range n {
		want := fmt.Sprintf("GET /%04d/%s ", i, pad)
		if _, body := rc.read("GET"); body != want {
			t.Fatalf("answer %d: %.40q", i, body)
		}
	}
}

// TestEventLoopTimeouts: the loop keeps the idle timeout of the connections it holds and the
// application's response-head timeout of the requests it sent, to within loopTick.
func TestEventLoopTimeouts(t *testing.T) {
	hs, loops := loopHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/stuck":
			time.Sleep(2 * time.Second)
		case "/big":
			w.Write(make([]byte, 64<<10))
			return
		}
		io.WriteString(w, "ok")
	}), func(c *Config) {
		c.IdleTimeout = 400 * time.Millisecond
		c.UpstreamTimeout = 300 * time.Millisecond
	})

	rc := dialRaw(t, hs.addr)
	rc.roundTrip("GET", "/")
	waitFor(t, "the loop taking the connection", func() bool { return loops.adopted.Load() == 1 })
	start := time.Now()
	res, body := rc.roundTrip("GET", "/stuck")
	if took := time.Since(start); res.StatusCode != 504 || took < 300*time.Millisecond || took > 300*time.Millisecond+2*loopTick {
		t.Errorf("a stuck application: %d %q after %v, want 504 after 300ms (+ up to %v)", res.StatusCode, body, took, 2*loopTick)
	}
	if loops.handedBack.Load() != 0 {
		t.Errorf("the 504 was not the loop's: %d connections handed back", loops.handedBack.Load())
	}
	start = time.Now()
	if !rc.closed() {
		t.Fatal("an idle connection is still open after 2s")
	}
	if took := time.Since(start); took < 400*time.Millisecond-loopTick {
		t.Errorf("an idle connection closed after %v, want 400ms (within %v)", took, loopTick)
	}

	// A connection that goes from a goroutine to a loop and back within a second keeps its idle
	// timeout on its new socket.
	rc = dialRaw(t, hs.addr)
	rc.roundTrip("GET", "/")
	rc.roundTrip("GET", "/big") // handed back: an answer larger than the loop relays
	for range loopReturnAfter {
		rc.roundTrip("GET", "/") // on the goroutine, which arms its idle deadline
	}
	back := loops.handedBack.Load()
	rc.roundTrip("GET", "/") // the loop's again
	rc.roundTrip("GET", "/big")
	if loops.handedBack.Load() == back {
		t.Fatal("the loop did not hand the connection back for a large answer")
	}
	if !rc.closed() {
		t.Error("a connection handed back twice is still open after 2s idle, past the 400ms idle timeout")
	}
}

// TestEventLoopShutdown: Shutdown closes the idle connections the loops hold at once, lets a
// request in flight finish, and returns once the loops have stopped.
func TestEventLoopShutdown(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	hs, loops := loopHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		io.WriteString(w, "ok")
	}))
	idle, busy := dialRaw(t, hs.addr), dialRaw(t, hs.addr)
	idle.roundTrip("GET", "/")
	busy.roundTrip("GET", "/")
	waitFor(t, "the loops taking both connections", func() bool { return loops.adopted.Load() == 2 })
	busy.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-arrived

	done := make(chan error, 1)
	go func() { done <- hs.proxy.Shutdown(context.Background()) }()
	if !idle.closed() {
		t.Error("an idle connection of the loop's is still open during Shutdown")
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	release <- struct{}{}
	if res, body := busy.read("GET"); res.StatusCode != 200 || body != "ok" || !res.Close {
		t.Errorf("the request in flight: %d %q, close %v; want 200 \"ok\", closing", res.StatusCode, body, res.Close)
	}
	if err := <-done; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	for _, l := range loops.all {
		if l.running() {
			t.Error("a loop still runs after Shutdown returned")
		}
	}
}
