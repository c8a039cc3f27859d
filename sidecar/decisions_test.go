package sidecar

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/cors-webhook/cors-webhook/cors"
)

func TestCORSOutcome(t *testing.T) {
	seed := seedPolicy(t, 8080)[8080]
	ignore, err := cors.ParsePodPolicy([]byte(`{"version":1,"ports":{"8080":{"allowOrigins":[{"exact":"http://www.bbb.com"}],"unmatchedPreflights":"Ignore"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		pol  *cors.Policy
		req  cors.Request
		want string // "" when the request is not counted
	}{
		{"no Origin is no CORS request", seed, cors.Request{Method: "GET"}, ""},
		{"no Origin, no policy", nil, cors.Request{Method: "OPTIONS"}, ""},
		{"listed origin, GET", seed, cors.Request{Method: "GET", Origin: "http://www.bbb.com"}, "origin-matched"},
		{"unlisted origin, GET", seed, cors.Request{Method: "GET", Origin: "http://evil.example"}, "origin-unmatched"},
		{"listed origin, preflight", seed, cors.Request{Method: "OPTIONS", Origin: "http://www.bbb.com", RequestMethod: "POST"}, "preflight-answered"},
		{"listed origin, OPTIONS without a request method (FSM answers it)", seed, cors.Request{Method: "OPTIONS", Origin: "http://www.bbb.com"}, "preflight-answered"},
		{"unlisted origin, preflight forwarded", seed, cors.Request{Method: "OPTIONS", Origin: "http://evil.example", RequestMethod: "POST"}, "preflight-denied"},
		{"unlisted origin, preflight answered empty (Ignore)", ignore[8080], cors.Request{Method: "OPTIONS", Origin: "http://evil.example", RequestMethod: "POST"}, "preflight-denied"},
		{"unlisted origin, OPTIONS that is no preflight", seed, cors.Request{Method: "OPTIONS", Origin: "http://evil.example"}, "origin-unmatched"},
		{"a port without policy, GET", nil, cors.Request{Method: "GET", Origin: "http://www.bbb.com"}, "origin-unmatched"},
		{"a port without policy, preflight", nil, cors.Request{Method: "OPTIONS", Origin: "http://www.bbb.com", RequestMethod: "GET"}, "preflight-denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, ok := corsOutcomeOf(&tc.req, tc.pol.Decide(tc.req))
			got := ""
			if ok {
				got = corsOutcomeLabels[o]
			}
			if got != tc.want {
				t.Errorf("outcome %q, want %q", got, tc.want)
			}
		})
	}
}

// TestCORSDecisionsCounted sends requests through the proxy on HTTP/1.1 and h2c, to a port with
// the seed's policy and to one without, and reads the counters back from /metrics.
func TestCORSDecisionsCounted(t *testing.T) {
	for _, withPolicy := range []bool{true, false} {
		t.Run("policy "+strconv.FormatBool(withPolicy), func(t *testing.T) {
			hs := newHarness(t, http.HandlerFunc(pipyOK), withPolicy)
			rc := dialRaw(t, hs.addr)
			rc.roundTrip("GET", "/")
			rc.roundTrip("GET", "/", "Origin: http://www.bbb.com")
			rc.roundTrip("GET", "/", "Origin: http://evil.example")
			rc.roundTrip("OPTIONS", "/", "Origin: http://www.bbb.com", "Access-Control-Request-Method: POST")
			rc.roundTrip("OPTIONS", "/", "Origin: http://evil.example", "Access-Control-Request-Method: POST")

			tr := &http.Transport{Protocols: new(http.Protocols)}
			tr.Protocols.SetUnencryptedHTTP2(true)
			defer tr.CloseIdleConnections()
			req, _ := http.NewRequest("OPTIONS", "http://"+hs.addr+"/", nil)
			req.Header.Set("Origin", "http://www.bbb.com")
			req.Header.Set("Access-Control-Request-Method", "PUT")
			res, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()

			policy := "none"
			want := map[string]uint64{"preflight-answered": 0, "preflight-denied": 3, "origin-matched": 0, "origin-unmatched": 2}
			if withPolicy {
				policy = "configured"
				want = map[string]uint64{"preflight-answered": 2, "preflight-denied": 1, "origin-matched": 1, "origin-unmatched": 1}
			}
			var b bytes.Buffer
			if err := hs.metrics.WritePrometheus(&b); err != nil {
				t.Fatal(err)
			}
			for o := range numCORSOutcomes {
				label := corsOutcomeLabels[o]
				if got := hs.metrics.corsDecisions(uint16(hs.upPort), withPolicy, o); got != want[label] {
					t.Errorf("%s: %d, want %d", label, got, want[label])
				}
				line := `cors_sidecar_cors_decisions_total{port="` + strconv.Itoa(hs.upPort) + `",policy="` + policy + `",outcome="` + label + `"} ` + strconv.FormatUint(want[label], 10) + "\n"
				if !strings.Contains(b.String(), line) {
					t.Errorf("/metrics lacks %q", line)
				}
			}
		})
	}
}
