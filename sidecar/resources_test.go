package sidecar

import (
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A connection that never sends a byte is closed after the header timeout, not held for the
// (much longer) idle timeout.
func TestSilentConnectionGetsHeaderTimeout(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true, func(c *Config) {
		c.HeaderTimeout = 200 * time.Millisecond
		c.IdleTimeout = time.Minute
	})
	rc := dialRaw(t, hs.addr)
	start := time.Now()
	if !rc.closed() {
		t.Fatal("a silent connection is still open after 2s")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("closed after %v, want about the header timeout", d)
	}
}

// A request body that trickles in is cut off by the body timeout, whether it would be read whole
// (small) or streamed.
func TestSlowBodyTimesOut(t *testing.T) {
	hs := newHarness(t, http.HandlerFunc(pipyOK), true, func(c *Config) {
		c.BodyTimeout = 300 * time.Millisecond
	})
	for _, length := range []int{100, 1 << 20} {
		rc := dialRaw(t, hs.addr)
		rc.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + strconv.Itoa(length) + "\r\n\r\na")
		start := time.Now()
		for !rc.closedWithin(100 * time.Millisecond) {
			if time.Since(start) > 3*time.Second {
				t.Fatalf("content-length %d: a body that stopped is still read after 3s", length)
			}
			rc.send("b") // one byte every 100ms
		}
	}
}

// An idle connection keeps only small buffers after a large request head.
func TestIdleConnectionReleasesLargeBuffers(t *testing.T) {
	// The goroutine path, whose connection the test can read while it idles; the event loop
	// trims the same way (trim).
	hs := newHarness(t, http.HandlerFunc(pipyOK), true, func(c *Config) { c.NoEventLoop = true })
	rc := dialRaw(t, hs.addr)
	if res, _ := rc.roundTrip("GET", "/", "X-Big: "+strings.Repeat("a", 60<<10), "Origin: http://www.bbb.com"); res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	hs.proxy.mu.Lock()
	var conns []*clientConn
	for c := range hs.proxy.conns {
		conns = append(conns, c)
	}
	hs.proxy.mu.Unlock()
	if len(conns) != 1 {
		t.Fatalf("%d connections", len(conns))
	}
	c := conns[0]
	for deadline := time.Now().Add(5 * time.Second); c.state.Load() != stateIdle; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the connection did not go idle")
		}
	}
	n := retainedBytes(c)
	// End the connection as Shutdown does: its deadline, set here, orders the reads above before
	// the connection's own cleanup (for the race detector).
	c.closeIfIdle(c.nc)
	if n > 16<<10 {
		t.Errorf("an idle connection holds %d bytes of buffers after a 60 KiB request head", n)
	}
}

// retainedBytes is what a client connection holds in buffers of its own between requests.
func retainedBytes(c *clientConn) int {
	return cap(c.head) + cap(c.scratch) + cap(c.out.b) + cap(c.origin) + cap(c.upgrade) + cap(c.vary) +
		cap(c.xff) + cap(c.cp.big) + cap(c.cp.scratch)
}

// closedWithin reports whether the peer closed the connection within d (skipping any response).
func (rc *rawConn) closedWithin(d time.Duration) bool {
	rc.c.SetReadDeadline(time.Now().Add(d))
	defer rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		if _, err := rc.br.ReadByte(); err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout())
		}
	}
}
