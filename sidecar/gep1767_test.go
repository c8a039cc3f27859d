package sidecar

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/internal/corstest"
)

// storeConfig loads one port's spec.config the way a sidecar loads its policy file.
func storeConfig(t *testing.T, hs *harness, config string) {
	t.Helper()
	pols, err := cors.ParsePodPolicy([]byte(`{"version":1,"ports":{"` + strconv.Itoa(hs.upPort) + `":` + config + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	hs.store.Store(pols)
}

// gepRow is one request through the sidecar: what the request carries, the CORS headers the
// answer must have (exactly), whether the application sees it, and, for browser-shaped
// requests, whether Fetch's checks pass on the answer.
type gepRow struct {
	rule   string
	config string
	method string
	origin string
	acrm   string
	acrh   []string // one field line each
	want   map[string]string
	toApp  bool
	// fetch, when set, is the script's request the row stands for; browserOK is the verdict
	// Fetch's preflight (or CORS) check must reach on the answer.
	fetch     *corstest.Fetch
	browserOK bool
	// verdictOnly rows check the browser's verdict, not the exact headers.
	verdictOnly bool
}

const (
	wildcardCfg    = `{"allowOrigins":[{"wildcard":"https://*.example.com"}],"allowMethods":["GET","PUT"]}`
	wildcardPort   = `{"allowOrigins":[{"wildcard":"https://*.example.com:8443"}]}`
	anyOriginCreds = `{"allowOrigins":[{"wildcard":"*"}],"allowCredentials":true,"allowMethods":["GET"]}`
	starCreds      = `{"allowOrigins":[{"exact":"https://app.example"}],"allowCredentials":true,"allowMethods":["*"],"allowHeaders":["*"],"exposeHeaders":["*","X-Trace"]}`
	starNoCreds    = `{"allowOrigins":[{"exact":"https://app.example"}],"allowMethods":["*"],"allowHeaders":["*"],"exposeHeaders":["*"]}`
	ignoreCfg      = `{"allowOrigins":[{"exact":"https://app.example"}],"allowMethods":["PUT"],"unmatchedPreflights":"Ignore"}`
	forwardCfg     = `{"allowOrigins":[{"exact":"https://app.example"}],"allowMethods":["PUT"],"unmatchedPreflights":"Forward"}`
)

// wptRow is WPT's preflightTest(…, withCredentials, allowMethod, allowHeader, useMethod,
// useHeader) from fetch/api/cors, turned into a sidecar config: the same script request, with
// the allowed method and header as the config lists them. WPT's server sends "*" literally, so
// its credentialed "*" rows fail in browsers; the sidecar echoes the request instead, and the
// same script requests succeed.
func wptRow(credentials bool, allowMethod, allowHeader, useMethod string, useHeaders []string, ok bool) gepRow {
	cfg := `{"allowOrigins":[{"exact":"https://app.example"}],"allowCredentials":` + strconv.FormatBool(credentials) +
		`,"allowMethods":["` + allowMethod + `"]`
	if allowHeader != "" {
		cfg += `,"allowHeaders":["` + allowHeader + `"]`
	}
	cfg += `}`
	f := &corstest.Fetch{Origin: "https://app.example", Method: useMethod, Headers: useHeaders, Credentials: credentials}
	return gepRow{
		rule:   "WPT preflight: credentials " + strconv.FormatBool(credentials) + ", allow " + allowMethod + "/" + allowHeader + ", use " + useMethod + "/" + strings.Join(useHeaders, ","),
		config: cfg, method: "OPTIONS", origin: f.Origin, acrm: useMethod, acrh: nonEmpty(f.RequestHeaders()),
		fetch: f, browserOK: ok, verdictOnly: true,
	}
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

func gepRows() []gepRow {
	return []gepRow{
		// GEP-1767 allowOrigins: "*." is a greedy match over one or more labels; a missing port is
		// the scheme's default; a match echoes the Origin.
		{rule: "wildcard: one label", config: wildcardCfg, method: "GET", origin: "https://a.example.com",
			want: map[string]string{cors.HeaderAllowOrigin: "https://a.example.com"}, toApp: true},
		{rule: "wildcard: several labels (greedy)", config: wildcardCfg, method: "GET", origin: "https://a.b.example.com",
			want: map[string]string{cors.HeaderAllowOrigin: "https://a.b.example.com"}, toApp: true},
		{rule: "wildcard: the bare domain is not a subdomain", config: wildcardCfg, method: "GET", origin: "https://example.com", toApp: true},
		{rule: "wildcard: default port written out", config: wildcardCfg, method: "GET", origin: "https://a.example.com:443",
			want: map[string]string{cors.HeaderAllowOrigin: "https://a.example.com:443"}, toApp: true},
		{rule: "wildcard: another port", config: wildcardCfg, method: "GET", origin: "https://a.example.com:8443", toApp: true},
		{rule: "wildcard: another scheme", config: wildcardCfg, method: "GET", origin: "http://a.example.com", toApp: true},
		{rule: "wildcard: a suffix that is not a label boundary", config: wildcardCfg, method: "GET", origin: "https://aexample.com", toApp: true},
		{rule: "wildcard: the pattern inside a longer host", config: wildcardCfg, method: "GET", origin: "https://a.example.com.evil.test", toApp: true},
		{rule: "wildcard: null", config: wildcardCfg, method: "GET", origin: "null", toApp: true},
		{rule: "wildcard: preflight", config: wildcardCfg, method: "OPTIONS", origin: "https://x.example.com", acrm: "PUT",
			want:  map[string]string{cors.HeaderAllowOrigin: "https://x.example.com", cors.HeaderAllowMethods: "GET,PUT"},
			fetch: &corstest.Fetch{Origin: "https://x.example.com", Method: "PUT"}, browserOK: true},
		{rule: "wildcard with a port: that port", config: wildcardPort, method: "GET", origin: "https://a.example.com:8443",
			want: map[string]string{cors.HeaderAllowOrigin: "https://a.example.com:8443"}, toApp: true},
		{rule: "wildcard with a port: the default port", config: wildcardPort, method: "GET", origin: "https://a.example.com", toApp: true},

		// GEP-1767: "*" origin with allowCredentials MUST NOT answer "*", but the request's Origin.
		{rule: "any origin with credentials echoes the origin", config: anyOriginCreds, method: "GET", origin: "https://site.test",
			want: map[string]string{cors.HeaderAllowOrigin: "https://site.test", cors.HeaderAllowCredentials: "true"}, toApp: true,
			fetch: &corstest.Fetch{Origin: "https://site.test", Method: "GET", Credentials: true}, browserOK: true},
		{rule: "any origin never matches null", config: anyOriginCreds, method: "GET", origin: "null", toApp: true},

		// GEP-1767 allowMethods/allowHeaders "*" with allowCredentials: the requested method and
		// headers, never "*"; the header is left out when the request names none.
		{rule: "credentialed * methods and headers echo the request", config: starCreds, method: "OPTIONS", origin: "https://app.example",
			acrm: "PATCH", acrh: []string{"content-type,x-test"},
			want: map[string]string{cors.HeaderAllowOrigin: "https://app.example", cors.HeaderAllowCredentials: "true",
				cors.HeaderExposeHeaders: "X-Trace", cors.HeaderAllowMethods: "PATCH", cors.HeaderAllowHeaders: "content-type,x-test"},
			fetch: &corstest.Fetch{Origin: "https://app.example", Method: "PATCH", Headers: []string{"Content-Type", "X-Test"}, Credentials: true}, browserOK: true},
		{rule: "credentialed * headers: several field lines", config: starCreds, method: "OPTIONS", origin: "https://app.example",
			acrm: "PUT", acrh: []string{"x-a", "x-b"},
			want: map[string]string{cors.HeaderAllowOrigin: "https://app.example", cors.HeaderAllowCredentials: "true",
				cors.HeaderExposeHeaders: "X-Trace", cors.HeaderAllowMethods: "PUT", cors.HeaderAllowHeaders: "x-a, x-b"}},
		{rule: "credentialed *: no access-control-request-*, no allow-methods/-headers", config: starCreds, method: "OPTIONS", origin: "https://app.example",
			want: map[string]string{cors.HeaderAllowOrigin: "https://app.example", cors.HeaderAllowCredentials: "true", cors.HeaderExposeHeaders: "X-Trace"}},
		{rule: "credentialed *: a request header list that is not tokens is not echoed", config: starCreds, method: "OPTIONS", origin: "https://app.example",
			acrm: "GET", acrh: []string{"x-a;b"},
			want: map[string]string{cors.HeaderAllowOrigin: "https://app.example", cors.HeaderAllowCredentials: "true",
				cors.HeaderExposeHeaders: "X-Trace", cors.HeaderAllowMethods: "GET"}},
		{rule: "credentialed * expose: never *", config: starCreds, method: "GET", origin: "https://app.example", toApp: true,
			want: map[string]string{cors.HeaderAllowOrigin: "https://app.example", cors.HeaderAllowCredentials: "true", cors.HeaderExposeHeaders: "X-Trace"}},
		{rule: "without credentials * is sent as it is", config: starNoCreds, method: "OPTIONS", origin: "https://app.example", acrm: "PATCH", acrh: []string{"x-test"},
			want:  map[string]string{cors.HeaderAllowOrigin: "https://app.example", cors.HeaderExposeHeaders: "*", cors.HeaderAllowMethods: "*", cors.HeaderAllowHeaders: "*"},
			fetch: &corstest.Fetch{Origin: "https://app.example", Method: "PATCH", Headers: []string{"X-Test"}}, browserOK: true},
		{rule: "without credentials * does not cover Authorization", config: starNoCreds, method: "OPTIONS", origin: "https://app.example", acrm: "GET", acrh: []string{"authorization"},
			want:  map[string]string{cors.HeaderAllowOrigin: "https://app.example", cors.HeaderExposeHeaders: "*", cors.HeaderAllowMethods: "*", cors.HeaderAllowHeaders: "*"},
			fetch: &corstest.Fetch{Origin: "https://app.example", Method: "GET", Headers: []string{"Authorization"}}, browserOK: false},

		// GEP-1767: a preflight from an origin that is not allowed must not reach the
		// application; unmatchedPreflights: Ignore answers it 200 without CORS headers.
		{rule: "Ignore: unlisted origin's preflight is answered at the sidecar", config: ignoreCfg, method: "OPTIONS", origin: "https://evil.test", acrm: "PUT",
			fetch: &corstest.Fetch{Origin: "https://evil.test", Method: "PUT"}, browserOK: false},
		{rule: "Ignore: an OPTIONS without access-control-request-method is no preflight", config: ignoreCfg, method: "OPTIONS", origin: "https://evil.test", toApp: true},
		{rule: "Ignore: an unlisted origin's GET still reaches the app", config: ignoreCfg, method: "GET", origin: "https://evil.test", toApp: true},
		{rule: "Ignore: a listed origin's preflight is answered as always", config: ignoreCfg, method: "OPTIONS", origin: "https://app.example", acrm: "PUT",
			want: map[string]string{cors.HeaderAllowOrigin: "https://app.example", cors.HeaderAllowMethods: "PUT"}},
		{rule: "Forward (FSM's default): unlisted origin's preflight reaches the app", config: forwardCfg, method: "OPTIONS", origin: "https://evil.test", acrm: "PUT", toApp: true},

		// WPT fetch/api/cors preflight star tests (see wptRow).
		wptRow(false, "get", "x-test", "GET", []string{"X-Test"}, true),
		wptRow(false, "*", "x-test", "SUPER", []string{"X-Test"}, true),
		wptRow(false, "*", "*", "OK", []string{"X-Test"}, true),
		wptRow(true, "*", "*", "OK", []string{"X-Test"}, true),
		wptRow(true, "*", "", "PUT", nil, true),
		wptRow(true, "PUT", "*", "PUT", nil, true),
		wptRow(true, "get", "*", "GET", []string{"X-Test"}, true),
		wptRow(true, "*", "*", "GET", []string{"X-Test"}, true),
		wptRow(true, "*", "*", "*", []string{"*"}, true),
		wptRow(true, "put", "*", "PUT", nil, false), // methods compare byte for byte
	}
}

// TestGEP1767 drives each row through the real sidecar, over HTTP/1.1 and h2c.
func TestGEP1767(t *testing.T) {
	var toApp atomic.Int64
	hs := newHarness(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		toApp.Add(1)
		pipyOK(w, r)
	}), false)
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	h2 := &http.Client{Transport: tr}

	for _, row := range gepRows() {
		t.Run(row.rule, func(t *testing.T) {
			storeConfig(t, hs, row.config)
			for _, proto := range []string{"HTTP/1.1", "h2c"} {
				before := toApp.Load()
				var (
					res  *http.Response
					body string
				)
				if proto == "HTTP/1.1" {
					hdr := []string{"Origin: " + row.origin}
					if row.acrm != "" {
						hdr = append(hdr, "Access-Control-Request-Method: "+row.acrm)
					}
					for _, v := range row.acrh {
						hdr = append(hdr, "Access-Control-Request-Headers: "+v)
					}
					res, body = dialRaw(t, hs.addr).roundTrip(row.method, "/", hdr...)
				} else {
					req, _ := http.NewRequest(row.method, "http://"+hs.addr+"/", nil)
					req.Header.Set("Origin", row.origin)
					if row.acrm != "" {
						req.Header.Set("Access-Control-Request-Method", row.acrm)
					}
					for _, v := range row.acrh {
						req.Header.Add("Access-Control-Request-Headers", v)
					}
					var err error
					if res, err = h2.Do(req); err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(res.Body)
					res.Body.Close()
					body = string(b)
				}
				want := row.want
				if want == nil {
					want = map[string]string{}
				}
				if got := corsHeaders(res.Header); !row.verdictOnly && !equalMaps(got, want) {
					t.Errorf("%s: CORS headers %v, want %v", proto, got, want)
				}
				if res.StatusCode != 200 {
					t.Errorf("%s: status %d, want 200", proto, res.StatusCode)
				}
				if reached := toApp.Load() != before; reached != row.toApp {
					t.Errorf("%s: reached the application: %v, want %v (body %q)", proto, reached, row.toApp, body)
				}
				if res.Header.Get("Vary") != "Origin" {
					t.Errorf("%s: vary %q, want Origin", proto, res.Header.Get("Vary"))
				}
				if row.fetch != nil {
					ok := row.fetch.CORSCheck(res.Header)
					if row.fetch.NeedsPreflight() {
						ok = row.fetch.PreflightAllows(res.StatusCode, res.Header)
					}
					if ok != row.browserOK {
						t.Errorf("%s: a browser would allow %+v: %v, want %v (headers %v)", proto, *row.fetch, ok, row.browserOK, corsHeaders(res.Header))
					}
				}
			}
		})
	}
}
