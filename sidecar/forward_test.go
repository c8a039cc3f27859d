package sidecar

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// TestForwardingContract: what the application sees of a proxied request (docs/injection.md,
// "Forwarding contract"), identical on HTTP/1.1 and h2c.
func TestForwardingContract(t *testing.T) {
	type seen struct {
		peer, xff, xfp, xfh, te string
	}
	var mu sync.Mutex
	var got seen
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		got = seen{host, strings.Join(r.Header.Values("X-Forwarded-For"), " | "), strings.Join(r.Header.Values("X-Forwarded-Proto"), " | "),
			r.Header.Get("X-Forwarded-Host"), strings.Join(r.Header.Values("Te"), " | ")}
		mu.Unlock()
		io.WriteString(w, "ok")
	}), true)

	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	defer h2.CloseIdleConnections()
	h1 := &http.Transport{}
	defer h1.CloseIdleConnections()

	for _, tc := range []struct {
		name   string
		hdr    http.Header
		want   seen
		h1Only bool // HTTP/2 allows no TE but "trailers" (RFC 9113 §8.2.2): the h2c server refuses it with 400
	}{
		{"no forwarding fields", nil,
			seen{peer: "127.0.0.6", xff: "127.0.0.1", xfp: "http"}, false},
		{"client's fields", http.Header{"X-Forwarded-For": {"203.0.113.7", "10.0.0.1, 10.0.0.2"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"example.com"}},
			seen{peer: "127.0.0.6", xff: "203.0.113.7, 10.0.0.1, 10.0.0.2, 127.0.0.1", xfp: "http", xfh: "example.com"}, false},
		{"TE trailers", http.Header{"Te": {"trailers"}},
			seen{peer: "127.0.0.6", xff: "127.0.0.1", xfp: "http", te: "trailers"}, false},
		{"TE with codings and trailers", http.Header{"Te": {"gzip, trailers"}},
			seen{peer: "127.0.0.6", xff: "127.0.0.1", xfp: "http", te: "trailers"}, true},
		{"TE without trailers", http.Header{"Te": {"deflate"}},
			seen{peer: "127.0.0.6", xff: "127.0.0.1", xfp: "http"}, true},
	} {
		for _, proto := range []string{"HTTP/1.1", "h2c"} {
			tr := h1
			if proto == "h2c" {
				if tc.h1Only {
					continue
				}
				tr = h2
			}
			req, _ := http.NewRequest("GET", "http://"+hs.addr+"/", nil)
			for k, v := range tc.hdr {
				req.Header[k] = v
			}
			res, err := tr.RoundTrip(req)
			if err != nil {
				t.Fatalf("%s %s: %v", tc.name, proto, err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 200 || string(body) != "ok" {
				t.Fatalf("%s %s: %s %q", tc.name, proto, res.Status, body)
			}
			mu.Lock()
			if got != tc.want {
				t.Errorf("%s over %s: the application saw %+v, want %+v", tc.name, proto, got, tc.want)
			}
			mu.Unlock()
		}
	}
}
