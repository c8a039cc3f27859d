package cors

import (
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

func TestWildcardSyntax(t *testing.T) {
	for _, tt := range []struct {
		wildcard, problem string
	}{
		{"*", ""},
		{"https://*.example.com", ""},
		{"http://*.example.com:8080", ""},
		{"https://*.example.com:443", ""}, // the default port, as GEP-1767 allows writing it
		{"https://*", ""},
		{"https://*.xn--bcher-kva.example", ""},
		{"https://example.com", `has no wildcard: for exactly this origin use exact "https://example.com"`},
		{"*.example.com", `must be "*" or scheme://*.host[:port]`},
		{"ftp://*.example.com", `must start with "http://" or "https://"`},
		{"HTTPS://*.example.com", `must start with "http://" or "https://"`},
		{"https://*.Example.com", `in lower case, as browsers send it ("example")`},
		{"https://*.bücher.example", "punycode"},
		{"https://api-*.example.com", `may have "*" only as the whole first label`},
		{"https://*.*.example.com", `invalid character '*'`},
		{"https://a.*.example.com", `may have "*" only as the whole first label`},
		{"https://*.example.com/", "an Origin has no path"},
		{"https://*.example.com:0", `invalid port "0"`},
		{"https://*.example.com:08443", `invalid port "08443"`},
		{"https://*.example..com", "empty or overlong DNS label"},
		{"https://*.-example.com", `invalid character '-'`},
	} {
		got := WildcardProblem(tt.wildcard)
		if (tt.problem == "") != (got == "") || !strings.Contains(got, tt.problem) {
			t.Errorf("WildcardProblem(%q) = %q, want %q", tt.wildcard, got, tt.problem)
		}
	}
}

func TestWildcardMatch(t *testing.T) {
	for _, tt := range []struct {
		wildcard string
		yes, no  []string
	}{
		{"https://*.example.com",
			[]string{"https://a.example.com", "https://a.b.example.com", "https://a.example.com:443", "https://A.Example.COM", "https://x_y.example.com"},
			[]string{"https://example.com", "https://.example.com", "https://a..example.com", "https://a.example.com:8443", "https://a.example.com:",
				"http://a.example.com", "https://aexample.com", "https://a.example.com.evil", "https://a/b.example.com", "null", ""}},
		{"http://*.example.com:8080",
			[]string{"http://a.example.com:8080"},
			[]string{"http://a.example.com", "http://a.example.com:80", "http://a.example.com:18080"}},
		{"https://*",
			[]string{"https://a", "https://a.b.c", "https://[::1]"},
			[]string{"http://a", "https://a:8443", "https://"}},
		{"*", []string{"https://a", "http://x:1", "chrome-extension://abc"}, []string{"null"}},
	} {
		w, problem := parseWildcard(tt.wildcard)
		if problem != "" {
			t.Fatalf("%q: %s", tt.wildcard, problem)
		}
		for _, o := range tt.yes {
			if !w.match(o) {
				t.Errorf("%q does not match %q", tt.wildcard, o)
			}
		}
		for _, o := range tt.no {
			if w.match(o) {
				t.Errorf("%q matches %q", tt.wildcard, o)
			}
		}
	}
}

// TestCredentialedStarEcho: with allowCredentials a "*" answers with the request's method and
// headers (GEP-1767), validated as tokens, and allocation-free like every Decide.
func TestCredentialedStarEcho(t *testing.T) {
	cfg := &corsconfig.CORSConfig{
		AllowOrigins:     []corsconfig.OriginMatcher{{Wildcard: "https://*.example.com"}},
		AllowMethods:     []string{"GET", "*"},
		AllowHeaders:     []string{"*"},
		ExposeHeaders:    []string{"*"},
		AllowCredentials: true,
	}
	p, errs := Compile(cfg, field.NewPath("spec", "config"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, tt := range []struct {
		acrm, acrh string
		want       []Header
	}{
		{"PUT", "x-a, x-b", []Header{{HeaderAllowOrigin, "https://a.example.com"}, {HeaderAllowCredentials, "true"},
			{HeaderAllowMethods, "PUT"}, {HeaderAllowHeaders, "x-a, x-b"}}},
		{"", "", []Header{{HeaderAllowOrigin, "https://a.example.com"}, {HeaderAllowCredentials, "true"}}},
		{"P T", "x-a\r\nx: y", []Header{{HeaderAllowOrigin, "https://a.example.com"}, {HeaderAllowCredentials, "true"}}},
		{"GET", ", x-a", []Header{{HeaderAllowOrigin, "https://a.example.com"}, {HeaderAllowCredentials, "true"},
			{HeaderAllowMethods, "GET"}, {HeaderAllowHeaders, ", x-a"}}}, // empty list elements are ignored (RFC 9110)
		{"GET", " , ", []Header{{HeaderAllowOrigin, "https://a.example.com"}, {HeaderAllowCredentials, "true"}, {HeaderAllowMethods, "GET"}}},
	} {
		r := Request{Method: "OPTIONS", Origin: "https://a.example.com", RequestMethod: tt.acrm, RequestHeaders: tt.acrh}
		var d Decision
		if n := testing.AllocsPerRun(50, func() { d = p.Decide(r) }); n != 0 {
			t.Errorf("Decide allocates %v times", n)
		}
		if got := p.AppendHeaders(nil, d); !equalHeaders(got, tt.want) {
			t.Errorf("%q %q: %v, want %v", tt.acrm, tt.acrh, got, tt.want)
		}
	}
	// The actual response never exposes "*" with credentials.
	got := p.AppendHeaders(nil, p.Decide(Request{Method: "GET", Origin: "https://a.example.com"}))
	if want := []Header{{HeaderAllowOrigin, "https://a.example.com"}, {HeaderAllowCredentials, "true"}}; !equalHeaders(got, want) {
		t.Errorf("actual: %v, want %v", got, want)
	}
}

func TestUnmatchedPreflights(t *testing.T) {
	base := corsconfig.CORSConfig{AllowOrigins: []corsconfig.OriginMatcher{{Exact: "https://app.example"}}}
	for _, tt := range []struct {
		mode string
		req  Request
		want Decision
	}{
		{"", Request{Method: "OPTIONS", Origin: "https://evil.test", RequestMethod: "PUT"}, Decision{}},
		{"Forward", Request{Method: "OPTIONS", Origin: "https://evil.test", RequestMethod: "PUT"}, Decision{}},
		{"Ignore", Request{Method: "OPTIONS", Origin: "https://evil.test", RequestMethod: "PUT"}, Decision{Action: Preflight}},
		{"Ignore", Request{Method: "OPTIONS", Origin: "https://evil.test"}, Decision{}},
		{"Ignore", Request{Method: "GET", Origin: "https://evil.test", RequestMethod: "PUT"}, Decision{}},
		{"Ignore", Request{Method: "OPTIONS", RequestMethod: "PUT"}, Decision{}},
		{"Ignore", Request{Method: "OPTIONS", Origin: "https://app.example", RequestMethod: "PUT"}, Decision{Action: Preflight, Origin: "https://app.example"}},
	} {
		cfg := base
		cfg.UnmatchedPreflights = tt.mode
		p, errs := Compile(&cfg, nil)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		d := p.Decide(tt.req)
		if d != tt.want {
			t.Errorf("%s %+v: %+v, want %+v", tt.mode, tt.req, d, tt.want)
		}
		if tt.want.Action == Preflight && tt.want.Origin == "" {
			if h := p.AppendHeaders(nil, d); len(h) != 0 {
				t.Errorf("an ignored preflight gets headers %v", h)
			}
		}
	}
	cfg := base
	cfg.UnmatchedPreflights = "Reject"
	if _, errs := Compile(&cfg, field.NewPath("spec", "config")); len(errs) != 1 || errs[0].Field != "spec.config.unmatchedPreflights" || errs[0].Type != field.ErrorTypeNotSupported {
		t.Errorf("unmatchedPreflights: Reject: %v", errs)
	}
	// Forward is the default and normalizes away, so the annotation of a config that spells it
	// out is the one it had before the field existed.
	cfg.UnmatchedPreflights = "Forward"
	if norm, _ := Normalize(&cfg); norm.UnmatchedPreflights != "" {
		t.Errorf("normalized Forward = %q", norm.UnmatchedPreflights)
	}
}

func equalHeaders(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// FuzzWildcardMatch checks the allocation-free matcher against the regex that states GEP-1767's
// rule for scheme://*.host[:port]: one or more labels before the host, case-insensitive, the
// scheme's default port optional, any other port exactly.
func FuzzWildcardMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"https://*.example.com", "https://a.example.com"},
		{"https://*.example.com", "https://a.b.example.com:443"},
		{"https://*.example.com", "https://example.com"},
		{"https://*.example.com", "https://a..example.com"},
		{"https://*.example.com", "HTTPS://A.EXAMPLE.COM"},
		{"http://*.example.com:8080", "http://a.example.com:8080"},
		{"http://*.example.com:8080", "http://a.example.com:80"},
		{"https://*.example.com", "https://a.example.com:"},
		{"https://*.example.com", "https://a_b.example.com"},
		{"https://*.ks.example", "https://a.\u212a\u017f.example"}, // Kelvin sign and long s fold to k and s in Unicode only
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, pattern, origin string) {
		w, problem := parseWildcard(pattern)
		if problem != "" || w.any || w.suffix == "" {
			return
		}
		port := "(:" + wildcardDefaultPorts[w.scheme] + ")?"
		if w.port != "" {
			port = ":" + w.port
		}
		ref := regexp.MustCompile(`^` + w.scheme + `://([a-z0-9_-]+\.)+` + regexp.QuoteMeta(w.suffix[1:]) + port + `$`)
		lower := []byte(origin) // ASCII case only: browsers send nothing else
		for i, c := range lower {
			if 'A' <= c && c <= 'Z' {
				lower[i] = c + 'a' - 'A'
			}
		}
		if got, want := w.match(origin), ref.Match(lower); got != want {
			t.Fatalf("%q matching %q: %v, the reference %s says %v", pattern, origin, got, ref, want)
		}
	})
}
