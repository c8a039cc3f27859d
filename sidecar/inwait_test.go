package sidecar

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestServeInWait: after a connection's first request, its simple requests are served inside
// one poller wait (serveInWait), or by the event loop; whatever those paths do not serve must
// reach the plain path intact, and nothing may be left waiting for the idle timeout.
func TestServeInWait(t *testing.T) {
	bothPaths(t, testServeInWait)
}

func testServeInWait(t *testing.T, path func(*Config)) {
	arrived, release := make(chan struct{}), make(chan struct{})
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow":
			arrived <- struct{}{}
			<-release
		case "/big":
			w.Write(bytes.Repeat([]byte("0123456789abcdef"), 1<<20))
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Write([]byte(r.Method + " " + r.URL.Path + " " + string(body)))
	}), true, path, func(c *Config) { c.IdleTimeout = time.Minute })

	for _, tc := range []struct {
		name string
		run  func(t *testing.T, rc *rawConn)
	}{
		{"requests sent in one write, more than a read takes, are answered in order", func(t *testing.T, rc *rawConn) {
			var reqs strings.Builder
			const n = 200 // 7 KB: the reads that fill the buffer leave the rest on the socket
			for i := range n {
				fmt.Fprintf(&reqs, "GET /%03d HTTP/1.1\r\nHost: x\r\n\r\n", i)
			}
			rc.send(reqs.String())
			rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			for i := range n {
				if _, body := rc.read("GET"); body != fmt.Sprintf("GET /%03d ", i) {
					t.Fatalf("answer %d: %q", i, body)
				}
			}
		}},
		{"a request sent while the previous one is in flight is answered at once", func(t *testing.T, rc *rawConn) {
			rc.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
			// The proxy is waiting for the application when the next request arrives: its
			// readiness must not be lost (it would then wait for the idle timeout, a minute).
			<-arrived
			rc.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
			release <- struct{}{}
			rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, body := rc.read("GET"); body != "GET /slow " {
				t.Errorf("first answer %q", body)
			}
			if _, body := rc.read("GET"); body != "GET /next " {
				t.Errorf("second answer %q", body)
			}
		}},
		{"a response larger than the socket buffers", func(t *testing.T, rc *rawConn) {
			rc.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
			if _, body := rc.read("GET"); body != strings.Repeat("0123456789abcdef", 1<<20) {
				t.Errorf("got %d bytes, want 16 MiB of the pattern", len(body))
			}
		}},
		{"a head that arrives in pieces", func(t *testing.T, rc *rawConn) {
			rc.send("GET /pieces HTTP/1.1\r\nHo")
			waitFor(t, "the proxy reading the head's first piece", func() bool { return activeConns(hs.proxy) == 1 })
			rc.send("st: x\r\n\r\n")
			if _, body := rc.read("GET"); body != "GET /pieces " {
				t.Errorf("got %q", body)
			}
		}},
		{"a request with a body", func(t *testing.T, rc *rawConn) {
			rc.send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
			if _, body := rc.read("POST"); body != "POST /body hello" {
				t.Errorf("got %q", body)
			}
		}},
		{"a chunked body that arrives after its head", func(t *testing.T, rc *rawConn) {
			rc.send("POST /chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
			rc.send("5\r\nhello\r\n0\r\n\r\n")
			if _, body := rc.read("POST"); body != "POST /chunked hello" {
				t.Errorf("got %q", body)
			}
		}},
		{"a preflight", func(t *testing.T, rc *rawConn) {
			res, _ := rc.roundTrip("OPTIONS", "/", "Origin: http://www.bbb.com", "Access-Control-Request-Method: GET")
			if !equalMaps(corsHeaders(res.Header), preflightHeaders) {
				t.Errorf("preflight headers %v", corsHeaders(res.Header))
			}
		}},
		{"a malformed request gets 400 and the connection closes", func(t *testing.T, rc *rawConn) {
			rc.send("GET / HTTP/1.1\r\nHost : x\r\n\r\n")
			if res, _ := rc.read("GET"); res.StatusCode != 400 {
				t.Errorf("status %d", res.StatusCode)
			}
			if !rc.closed() {
				t.Error("the connection stayed open")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := dialRaw(t, hs.addr)
			for i := 0; i < 2; i++ { // the first request takes the plain path, the second enters the wait
				if res, body := rc.roundTrip("GET", "/warm"); res.StatusCode != 200 || body != "GET /warm " {
					t.Fatalf("warm-up: %d %q", res.StatusCode, body)
				}
			}
			tc.run(t, rc)
			if strings.Contains(tc.name, "closes") {
				return
			}
			if res, body := rc.roundTrip("GET", "/after"); res.StatusCode != 200 || body != "GET /after " {
				t.Errorf("the request after: %d %q", res.StatusCode, body)
			}
		})
	}
}

// activeConns counts p's client connections in the middle of a request.
func activeConns(p *Proxy) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for c := range p.conns {
		if c.state.Load() == stateActive {
			n++
		}
	}
	return n
}

// TestReuseCheck: an application connection whose peer closed it or sent bytes nobody asked for
// is not used for the next request, whether the socket check runs or the request could be
// retried (usable).
func TestReuseCheck(t *testing.T) {
	bothPaths(t, testReuseCheck)
}

func testReuseCheck(t *testing.T, path func(*Config)) {
	for _, tc := range []struct {
		name   string
		first  string // the request that leaves the application connection idle
		reply  string // the application's answer to it
		after  string // what the application does once the answer is read: "close" or bytes to send
		next   string // the next request
		method string
	}{
		{"a POST after the application closed", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "close",
			"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi", "POST"},
		{"a GET after the application closed", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "close",
			"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET"},
		{"a GET after a body sent to a HEAD", "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 43\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET"},
		{"a GET after a 204 with a body", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 204 No Content\r\n\r\n",
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "GET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			var accepted atomic.Int64
			afterDone := make(chan struct{}, 1)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					n := accepted.Add(1)
					go func() {
						defer c.Close()
						br := bufio.NewReader(c)
						for {
							req, err := http.ReadRequest(br)
							if err != nil {
								return
							}
							io.Copy(io.Discard, req.Body)
							if n > 1 {
								io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
								continue
							}
							io.WriteString(c, tc.reply)
							if tc.after == "close" {
								c.Close()
							} else {
								time.Sleep(10 * time.Millisecond) // a separate, later segment
								io.WriteString(c, tc.after)
							}
							afterDone <- struct{}{}
						}
					}()
				}
			}()
			cfg := Config{Upstream: ln.Addr().String()}
			path(&cfg)
			rc := dialRaw(t, proxyWithoutPolicy(t, cfg))
			rc.send(tc.first)
			rc.read(strings.Fields(tc.first)[0])
			<-afterDone
			rc.send(tc.next)
			res, body := rc.read(tc.method)
			if res.StatusCode != 200 || body != "fresh" {
				t.Errorf("next request: %d %q, want 200 \"fresh\" from a new connection", res.StatusCode, body)
			}
			if n := accepted.Load(); n != 2 {
				t.Errorf("%d application connections, want 2", n)
			}
		})
	}
}
