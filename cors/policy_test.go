package cors

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

func mustCompile(t testing.TB, cfg *corsconfig.CORSConfig) *Policy {
	t.Helper()
	p, errs := Compile(cfg, field.NewPath("spec", "config"))
	if len(errs) > 0 {
		t.Fatalf("Compile: %v", errs)
	}
	return p
}

func origins(ms ...corsconfig.OriginMatcher) []corsconfig.OriginMatcher { return ms }

func exact(s string) corsconfig.OriginMatcher  { return corsconfig.OriginMatcher{Exact: s} }
func prefix(s string) corsconfig.OriginMatcher { return corsconfig.OriginMatcher{Prefix: s} }
func regex(s string) corsconfig.OriginMatcher  { return corsconfig.OriginMatcher{Regex: s} }

func ptr[T any](v T) *T { return &v }

func TestDecide(t *testing.T) {
	seed := seedPolicy(t)
	tests := []struct {
		name           string
		p              *Policy
		method, origin string
		want           Action
		match          int // index of the first matching entry, -1 for none
	}{
		{"regex matches https", seed, "GET", "https://www.test.cn", Actual, 0},
		{"regex matches http", seed, "GET", "http://www.test.cn", Actual, 0},
		{"regex is unanchored at the end", seed, "GET", "http://www.test.cn.evil", Actual, 0},
		{"regex is unanchored at the start", seed, "GET", "evil-http://www.test.cn", Actual, 0},
		// "://www" must follow "http": an extra byte before www does not match, anchored or not.
		{"regex still needs its literal parts", seed, "GET", "http://xwww.test.cn.evil", PassThrough, -1},
		{"regex dot matches any byte, as FSM's", seed, "GET", "http://wwwxtestxcn", Actual, 0},
		{"exact", seed, "GET", "http://www.aaa.com", Actual, 1},
		{"exact is not a prefix", seed, "GET", "http://www.aaa.com.evil.example", PassThrough, -1},
		{"exact is case-sensitive", seed, "GET", "http://WWW.AAA.COM", PassThrough, -1},
		{"prefix", seed, "POST", "http://www.bbb.com", Actual, 2},
		{"prefix matches a longer host too", seed, "GET", "http://www.bbb.com.evil.example", Actual, 2},
		{"prefix with port", seed, "GET", "http://www.bbb.com:8080", Actual, 2},
		{"preflight", seed, "OPTIONS", "http://www.aaa.com", Preflight, 1},
		{"method is case-sensitive", seed, "options", "http://www.aaa.com", Actual, 1},
		{"no Origin", seed, "GET", "", PassThrough, -1},
		{"no Origin on OPTIONS", seed, "OPTIONS", "", PassThrough, -1},
		{"non-matching origin", seed, "GET", "http://evil.example", PassThrough, -1},
		{"non-matching origin on OPTIONS", seed, "OPTIONS", "http://evil.example", PassThrough, -1},
		{"null origin", seed, "GET", "null", PassThrough, -1},
		{"nil policy", nil, "GET", "http://www.aaa.com", PassThrough, -1},
		{
			"first match in config order",
			mustCompile(t, &corsconfig.CORSConfig{AllowOrigins: origins(regex("example"), prefix("https://"), exact("https://a.example"))}),
			"GET", "https://a.example", Actual, 0,
		},
		{
			"later entries match when earlier ones do not",
			mustCompile(t, &corsconfig.CORSConfig{AllowOrigins: origins(regex("^https://b\\."), prefix("https://c"), exact("https://a.example"))}),
			"GET", "https://a.example", Actual, 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.p.Decide(Request{Method: tt.method, Origin: tt.origin})
			want := Decision{Action: tt.want}
			if tt.want != PassThrough {
				want.Origin = tt.origin
			}
			if d != want {
				t.Errorf("Decide(%q, %q) = %+v, want %+v", tt.method, tt.origin, d, want)
			}
			if got := tt.p.Match(tt.origin); got != tt.match {
				t.Errorf("Match(%q) = %d, want %d", tt.origin, got, tt.match)
			}
		})
	}
}

func TestAppendHeaders(t *testing.T) {
	const o = "https://a.example"
	tests := []struct {
		name                string
		cfg                 *corsconfig.CORSConfig
		actual, preflight   []Header
		passThroughNoChange bool
	}{
		{
			name:      "origins only",
			cfg:       &corsconfig.CORSConfig{AllowOrigins: origins(exact(o))},
			actual:    []Header{{HeaderAllowOrigin, o}},
			preflight: []Header{{HeaderAllowOrigin, o}},
		},
		{
			name: "everything",
			cfg: &corsconfig.CORSConfig{
				AllowOrigins: origins(exact(o)), AllowCredentials: true,
				ExposeHeaders: []string{"X-A", "X-B"}, AllowMethods: []string{"GET", "PUT"},
				AllowHeaders: []string{"X-C", "X-D"}, MaxAge: ptr(intstr.FromString("90m")),
			},
			actual: []Header{{HeaderAllowOrigin, o}, {HeaderAllowCredentials, "true"}, {HeaderExposeHeaders, "X-A,X-B"}},
			preflight: []Header{
				{HeaderAllowOrigin, o}, {HeaderAllowCredentials, "true"}, {HeaderExposeHeaders, "X-A,X-B"},
				{HeaderAllowMethods, "GET,PUT"}, {HeaderAllowHeaders, "X-C,X-D"}, {HeaderMaxAge, "5400"},
			},
		},
		{
			name: "no credentials, empty lists and zero maxAge send nothing",
			cfg: &corsconfig.CORSConfig{
				AllowOrigins: origins(exact(o)), ExposeHeaders: []string{}, AllowMethods: []string{"GET"},
				MaxAge: ptr(intstr.FromInt32(0)),
			},
			actual:    []Header{{HeaderAllowOrigin, o}},
			preflight: []Header{{HeaderAllowOrigin, o}, {HeaderAllowMethods, "GET"}},
		},
		{
			name:      "sub-second maxAge sends nothing",
			cfg:       &corsconfig.CORSConfig{AllowOrigins: origins(exact(o)), MaxAge: ptr(intstr.FromString("500ms"))},
			actual:    []Header{{HeaderAllowOrigin, o}},
			preflight: []Header{{HeaderAllowOrigin, o}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := mustCompile(t, tt.cfg)
			if got := p.AppendHeaders(nil, p.Decide(Request{Method: "GET", Origin: o})); !reflect.DeepEqual(got, tt.actual) {
				t.Errorf("actual headers = %v, want %v", got, tt.actual)
			}
			if got := p.AppendHeaders(nil, p.Decide(Request{Method: "OPTIONS", Origin: o})); !reflect.DeepEqual(got, tt.preflight) {
				t.Errorf("preflight headers = %v, want %v", got, tt.preflight)
			}
			if got := p.AppendHeaders(nil, p.Decide(Request{Method: "GET", Origin: "https://other.example"})); got != nil {
				t.Errorf("pass-through headers = %v, want none", got)
			}
		})
	}

	t.Run("appends after existing headers", func(t *testing.T) {
		p := seedPolicy(t)
		dst := []Header{{"x-existing", "1"}}
		got := p.AppendHeaders(dst, p.Decide(Request{Method: "GET", Origin: "http://www.aaa.com"}))
		if len(got) != 4 || got[0] != dst[0] || got[1] != (Header{HeaderAllowOrigin, "http://www.aaa.com"}) {
			t.Errorf("AppendHeaders = %v", got)
		}
	})
	t.Run("nil policy", func(t *testing.T) {
		var p *Policy
		if got := p.AppendHeaders(nil, Decision{Action: Actual, Origin: o}); got != nil {
			t.Errorf("nil policy appended %v", got)
		}
	})
	t.Run("callers cannot write into the policy", func(t *testing.T) {
		p := seedPolicy(t)
		d := p.Decide(Request{Method: "OPTIONS", Origin: "http://www.aaa.com"})
		a := p.AppendHeaders(nil, d)
		for i := range a {
			a[i].Value = "clobbered"
		}
		if got := p.AppendHeaders(nil, d); got[1].Value != "true" {
			t.Errorf("policy was modified through a returned slice: %v", got)
		}
	})
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  *corsconfig.CORSConfig
		errs []wantErr
	}{
		{name: "nil config", cfg: nil, errs: []wantErr{{field.ErrorTypeRequired, "spec.config", nil}}},
		{
			name: "no origins",
			cfg:  &corsconfig.CORSConfig{AllowMethods: []string{"GET"}},
			errs: []wantErr{{field.ErrorTypeRequired, "spec.config.allowOrigins", []string{"at least one origin matcher"}}},
		},
		{
			name: "empty origins",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: []corsconfig.OriginMatcher{}},
			errs: []wantErr{{field.ErrorTypeRequired, "spec.config.allowOrigins", nil}},
		},
		{
			name: "entry with no matcher",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(exact("x"), corsconfig.OriginMatcher{})},
			errs: []wantErr{{field.ErrorTypeRequired, "spec.config.allowOrigins[1]", []string{"exactly one of exact, prefix, regex or wildcard"}}},
		},
		{
			name: "entry with two matchers",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(corsconfig.OriginMatcher{Exact: "x", Regex: "y"})},
			errs: []wantErr{{field.ErrorTypeForbidden, "spec.config.allowOrigins[0].regex", []string{"may not be set together with exact"}}},
		},
		{
			name: "entry with three matchers",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(corsconfig.OriginMatcher{Exact: "x", Prefix: "p", Regex: "y"})},
			errs: []wantErr{
				{field.ErrorTypeForbidden, "spec.config.allowOrigins[0].prefix", nil},
				{field.ErrorTypeForbidden, "spec.config.allowOrigins[0].regex", nil},
			},
		},
		{
			name: "regex syntax error",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(exact("x"), regex("http://(a"))},
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigins[1].regex", []string{`"http://(a"`, "missing closing )"}}},
		},
		{
			name: "lookahead",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(regex(`^https://(?=.*\.example$)`))},
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigins[0].regex", []string{"lookahead (?=...) is not supported by RE2"}}},
		},
		{
			name: "negative lookahead",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(regex(`^https://(?!evil)`))},
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigins[0].regex", []string{"negative lookahead (?!...) is not supported by RE2"}}},
		},
		{
			name: "lookbehind",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(regex(`(?<=https://)a`))},
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigins[0].regex", []string{"lookbehind (?<=...) is not supported by RE2"}}},
		},
		{
			name: "negative lookbehind",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(regex(`(?<!http://)a`))},
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigins[0].regex", []string{"negative lookbehind (?<!...) is not supported by RE2"}}},
		},
		{
			name: "backreference",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(regex(`^(https?)://\1`))},
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigins[0].regex", []string{`backreference \1 is not supported by RE2`}}},
		},
		{
			name: "named backreference",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(regex(`^(?<s>https?)://\k<s>`))},
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigins[0].regex", []string{`named backreference \k<...> is not supported by RE2`}}},
		},
		{
			name: "header values must be tokens",
			cfg: &corsconfig.CORSConfig{
				AllowOrigins: origins(exact("x")), AllowMethods: []string{"GET", "PUT\r\nX-Evil: 1"},
				AllowHeaders: []string{""}, ExposeHeaders: []string{"X A"},
			},
			errs: []wantErr{
				{field.ErrorTypeInvalid, "spec.config.allowMethods[1]", []string{"an HTTP method token"}},
				{field.ErrorTypeInvalid, "spec.config.allowHeaders[0]", []string{"a header field name"}},
				{field.ErrorTypeInvalid, "spec.config.exposeHeaders[0]", []string{"a header field name"}},
			},
		},
		{
			name: "bad maxAge",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(exact("x")), MaxAge: ptr(intstr.FromString("1.5d"))},
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.maxAge", []string{`"1.5d"`, "days must be a whole number"}}},
		},
		{
			name: "negative maxAge",
			cfg:  &corsconfig.CORSConfig{AllowOrigins: origins(exact("x")), MaxAge: ptr(intstr.FromInt32(-1))},
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.maxAge", []string{"Invalid value: -1", "must not be negative"}}},
		},
		{
			name: "all errors at once",
			cfg: &corsconfig.CORSConfig{
				AllowOrigins: origins(corsconfig.OriginMatcher{}, regex("(?=x)")), MaxAge: ptr(intstr.FromString("abc")),
			},
			errs: []wantErr{
				{field.ErrorTypeRequired, "spec.config.allowOrigins[0]", nil},
				{field.ErrorTypeInvalid, "spec.config.allowOrigins[1].regex", nil},
				{field.ErrorTypeInvalid, "spec.config.maxAge", nil},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, errs := Compile(tt.cfg, field.NewPath("spec", "config"))
			checkErrs(t, errs, tt.errs)
			if p != nil {
				t.Errorf("Compile returned a policy with errors")
			}
		})
	}
}

func TestJSOnlyConstruct(t *testing.T) {
	tests := []struct{ pat, want string }{
		{`(?=a)`, "lookahead (?=...)"},
		{`a(?!b)`, "negative lookahead (?!...)"},
		{`(?<=a)b`, "lookbehind (?<=...)"},
		{`(?<!a)b`, "negative lookbehind (?<!...)"},
		{`(a)\2`, `backreference \2`},
		{`(?<n>a)\k<n>`, `named backreference \k<...>`},
		{`\\1`, ""},   // an escaped backslash followed by 1
		{`[(?=]`, ""}, // literal inside a class
		{`[\1]`, ""},  // not a backreference inside a class
		{`[]](?=x)`, "lookahead (?=...)"},
		{`(a`, ""},
	}
	for _, tt := range tests {
		if got := jsOnlyConstruct(tt.pat); got != tt.want {
			t.Errorf("jsOnlyConstruct(%q) = %q, want %q", tt.pat, got, tt.want)
		}
	}
}

func TestParseMaxAge(t *testing.T) {
	tests := []struct {
		name string
		in   intstr.IntOrString
		want time.Duration
		err  string
	}{
		{"hours", intstr.FromString("24h"), 24 * time.Hour, ""},
		{"minutes", intstr.FromString("90m"), 90 * time.Minute, ""},
		{"mixed units", intstr.FromString("1h30m"), 90 * time.Minute, ""},
		{"seconds unit", intstr.FromString("600s"), 10 * time.Minute, ""},
		{"days", intstr.FromString("2d"), 48 * time.Hour, ""},
		{"zero days", intstr.FromString("0d"), 0, ""},
		{"integer seconds", intstr.FromInt32(3600), time.Hour, ""},
		{"numeric string seconds", intstr.FromString("3600"), time.Hour, ""},
		{"zero", intstr.FromInt32(0), 0, ""},
		{"zero string", intstr.FromString("0"), 0, ""},
		{"sub-second truncated", intstr.FromString("1500ms"), time.Second, ""},
		{"below a second is zero", intstr.FromString("999ms"), 0, ""},
		{"largest", intstr.FromString("2147483647"), MaxMaxAge, ""},
		{"negative integer", intstr.FromInt32(-1), 0, "must not be negative"},
		{"negative string", intstr.FromString("-1"), 0, "must not be negative"},
		{"negative duration", intstr.FromString("-1h"), 0, "must not be negative"},
		{"negative days", intstr.FromString("-2d"), 0, "must not be negative"},
		{"garbage", intstr.FromString("abc"), 0, `invalid maxAge "abc": want a Go duration`},
		{"fractional days", intstr.FromString("1.5d"), 0, "days must be a whole number"},
		{"days plus hours", intstr.FromString("1d12h"), 0, "days must be a whole number"},
		{"bare d", intstr.FromString("d"), 0, "days must be a whole number"},
		{"empty", intstr.FromString(""), 0, "is empty"},
		{"space", intstr.FromString(" 60"), 0, "want a Go duration"},
		{"too many seconds", intstr.FromString("2147483648"), 0, "too large"},
		{"too many days", intstr.FromString("24856d"), 0, "too large"},
		{"huge digits", intstr.FromString("99999999999999999999999"), 0, "too large"},
		{"too long a duration", intstr.FromString("600000h"), 0, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMaxAge(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseMaxAge(%v) = %v, %v; want error containing %q", tt.in.String(), got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseMaxAge(%v) = %v, %v; want %v", tt.in.String(), got, err, tt.want)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	base := func(maxAge *intstr.IntOrString) *corsconfig.CORSConfig {
		return &corsconfig.CORSConfig{
			AllowOrigins: origins(regex("r"), exact("e"), prefix("p")),
			AllowMethods: []string{"POST", "GET"}, AllowCredentials: true, MaxAge: maxAge,
		}
	}
	want := `{"allowOrigins":[{"regex":"r"},{"exact":"e"},{"prefix":"p"}],"allowMethods":["POST","GET"],"allowCredentials":true,"maxAge":86400}`
	for _, in := range []*corsconfig.CORSConfig{
		base(ptr(intstr.FromString("24h"))),
		base(ptr(intstr.FromString("1d"))),
		base(ptr(intstr.FromString("1440m"))),
		base(ptr(intstr.FromString("86400"))),
		base(ptr(intstr.FromString("86400500ms"))),
		base(ptr(intstr.FromInt32(86400))),
		func() *corsconfig.CORSConfig {
			c := base(ptr(intstr.FromString("24h")))
			c.AllowHeaders, c.ExposeHeaders = []string{}, []string{}
			return c
		}(),
	} {
		n, err := Normalize(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(n)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != want {
			t.Errorf("Normalize(maxAge %s) marshals to\n%s\nwant\n%s", in.MaxAge.String(), b, want)
		}
		// Idempotent.
		n2, err := Normalize(n)
		if err != nil || !reflect.DeepEqual(n, n2) {
			t.Errorf("Normalize is not idempotent: %+v, %v", n2, err)
		}
	}

	t.Run("zero and absent maxAge are nil", func(t *testing.T) {
		for _, m := range []*intstr.IntOrString{nil, ptr(intstr.FromInt32(0)), ptr(intstr.FromString("0s")), ptr(intstr.FromString("10ms"))} {
			n, err := Normalize(base(m))
			if err != nil || n.MaxAge != nil {
				t.Errorf("Normalize(maxAge %v).MaxAge = %v, %v; want nil", m, n.MaxAge, err)
			}
		}
	})
	t.Run("shares no memory with the input", func(t *testing.T) {
		in := base(ptr(intstr.FromInt32(5)))
		n, err := Normalize(in)
		if err != nil {
			t.Fatal(err)
		}
		in.AllowOrigins[0].Regex = "changed"
		in.AllowMethods[0] = "changed"
		if n.AllowOrigins[0].Regex != "r" || n.AllowMethods[0] != "POST" {
			t.Errorf("Normalize result aliases its input: %+v", n)
		}
	})
	t.Run("errors", func(t *testing.T) {
		if _, err := Normalize(nil); err == nil {
			t.Error("Normalize(nil) succeeded")
		}
		if _, err := Normalize(base(ptr(intstr.FromString("abc")))); err == nil {
			t.Error("Normalize with a bad maxAge succeeded")
		}
	})
}

func TestPolicyConfig(t *testing.T) {
	p := seedPolicy(t)
	cfg := p.Config()
	if cfg.MaxAge == nil || *cfg.MaxAge != intstr.FromInt32(86400) {
		t.Errorf("Config().MaxAge = %v, want 86400 (normalized)", cfg.MaxAge)
	}
	cfg.AllowMethods[0] = "changed"
	if p.Config().AllowMethods[0] != "POST" {
		t.Error("Config() returns memory shared with the policy")
	}
	var nilPolicy *Policy
	if nilPolicy.Config() != nil {
		t.Error("nil policy has a config")
	}
}

func TestActionString(t *testing.T) {
	for a, want := range map[Action]string{PassThrough: "PassThrough", Preflight: "Preflight", Actual: "Actual", 9: "Action(9)"} {
		if got := a.String(); got != want {
			t.Errorf("Action(%d).String() = %q, want %q", a, got, want)
		}
	}
}

func TestMergeVary(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "Origin"},
		{"   ", "Origin"},
		{"Origin", "Origin"},
		{"origin", "origin"},
		{"Accept-Encoding", "Accept-Encoding, Origin"},
		{"Accept-Encoding, ORIGIN", "Accept-Encoding, ORIGIN"},
		{"Accept-Encoding,Origin ,User-Agent", "Accept-Encoding,Origin ,User-Agent"},
		{"*", "*"},
		{"Accept, *", "Accept, *"},
		{"Accept-Encoding, ", "Accept-Encoding, Origin"},
		{"X-Origin", "X-Origin, Origin"},
		{"Origins", "Origins, Origin"},
	}
	for _, tt := range tests {
		if got := MergeVary(tt.in); got != tt.want {
			t.Errorf("MergeVary(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHotPathDoesNotAllocate pins the sidecar's per-request budget: deciding and building the
// headers must not allocate, whichever matcher kind decides.
func TestHotPathDoesNotAllocate(t *testing.T) {
	p := seedPolicy(t)
	dst := make([]Header, 0, MaxHeaders)
	cases := []struct{ name, method, origin string }{
		{"no match", "GET", "http://evil.example"},
		{"no origin", "GET", ""},
		{"exact", "GET", "http://www.aaa.com"},
		{"prefix", "GET", "http://www.bbb.com"},
		{"regex", "GET", "https://www.test.cn"},
		{"preflight", "OPTIONS", "http://www.bbb.com"},
	}
	for _, c := range cases {
		if raceEnabled && c.name == "regex" {
			continue // make unit runs this test without the race detector too (ALLOC_TESTS)
		}
		var d Decision
		if n := testing.AllocsPerRun(100, func() { d = p.Decide(Request{Method: c.method, Origin: c.origin}) }); n != 0 {
			t.Errorf("Decide(%s) allocates %v times per run", c.name, n)
		}
		if n := testing.AllocsPerRun(100, func() { dst = p.AppendHeaders(dst[:0], d) }); n != 0 {
			t.Errorf("AppendHeaders(%s) allocates %v times per run", c.name, n)
		}
		if n := testing.AllocsPerRun(100, func() { _ = p.Match(c.origin) }); n != 0 {
			t.Errorf("Match(%s) allocates %v times per run", c.name, n)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _ = MergeVary("Accept-Encoding, Origin") }); n != 0 {
		t.Errorf("MergeVary with Origin present allocates %v times per run", n)
	}
}

// TestConcurrentUse exercises one Policy from many goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	p := seedPolicy(t)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dst := make([]Header, 0, MaxHeaders)
			for i := 0; i < 1000; i++ {
				for _, o := range []string{"https://www.test.cn", "http://www.aaa.com", "http://evil"} {
					dst = p.AppendHeaders(dst[:0], p.Decide(Request{Method: "OPTIONS", Origin: o}))
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkDecideNoMatch(b *testing.B) {
	p := seedPolicy(b)
	b.ReportAllocs()
	for b.Loop() {
		if p.Decide(Request{Method: "GET", Origin: "http://evil.example"}).Action != PassThrough {
			b.Fatal("matched")
		}
	}
}

func BenchmarkDecideMatch(b *testing.B) {
	p := seedPolicy(b)
	for _, c := range []struct{ name, origin string }{
		{"exact", "http://www.aaa.com"},
		{"prefix", "http://www.bbb.com"},
		{"regex", "https://www.test.cn"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if p.Decide(Request{Method: "GET", Origin: c.origin}).Action != Actual {
					b.Fatal("no match")
				}
			}
		})
	}
}

func BenchmarkAppendHeaders(b *testing.B) {
	p := seedPolicy(b)
	dst := make([]Header, 0, MaxHeaders)
	for _, c := range []struct {
		name string
		d    Decision
	}{
		{"actual", p.Decide(Request{Method: "GET", Origin: "http://www.bbb.com"})},
		{"preflight", p.Decide(Request{Method: "OPTIONS", Origin: "http://www.bbb.com"})},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				dst = p.AppendHeaders(dst[:0], c.d)
			}
		})
	}
}

func TestRegexLiterals(t *testing.T) {
	tests := []struct {
		pat  string
		want []string
	}{
		{`http.*://www.test.cn`, []string{"http", "://www", "test", "cn"}},
		{`^https://([a-z]+\.)?example\.com$`, []string{"https://", "example.com"}},
		{`(?i)example`, nil},
		{`a|b`, nil},
		{`(ab)+c?`, []string{"ab"}},
		{`x{2,3}y*`, []string{"x", "x"}},
		{`\x{FFFD}ok`, nil}, // one literal with U+FFFD: left out
	}
	for _, tt := range tests {
		if got := regexLiterals(tt.pat); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("regexLiterals(%q) = %q, want %q", tt.pat, got, tt.want)
		}
	}
}

// TestRegexPrefilterIsExact checks that the literal prefilter never changes a regex's answer.
func TestRegexPrefilterIsExact(t *testing.T) {
	patterns := []string{
		`http.*://www.test.cn`, `^https://([a-z]+\.)?example\.com$`, `(?i)EXAMPLE`, `a|b`, `(ab)+c?`,
		`x{2,3}y*`, `\x{FFFD}ok`, `^$`, `.`, `\.evil\b`, `(?:foo|bar)baz`, `[0-9]+\.cn`, `日本`,
	}
	origins := []string{
		"", "https://www.test.cn", "http://www.test.cn.evil", "http://xwww.test.cn", "https://a.example.com",
		"https://example.com", "HTTPS://EXAMPLE.COM", "abc", "xxy", "xy", "\xffok", "ok", "http://a.evil",
		"foobaz", "barbaz", "fobaz", "http://10.cn", "https://日本.example",
	}
	for _, pat := range patterns {
		re := regexp.MustCompile(pat)
		m := matcher{kind: matchRegex, s: pat, re: re, lits: regexLiterals(pat)}
		for _, o := range origins {
			if got, want := m.match(o), re.MatchString(o); got != want {
				t.Errorf("pattern %q, origin %q: prefiltered match = %v, regexp = %v", pat, o, got, want)
			}
		}
	}
}
