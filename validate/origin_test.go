package validate

import (
	"strings"
	"testing"
)

func TestExactOriginProblem(t *testing.T) {
	tests := []struct {
		origin string
		want   string // substring of the problem; "" = a serialized origin
	}{
		{"http://www.aaa.com", ""},
		{"https://a.example:8443", ""},
		{"http://[::1]:8080", ""},
		{"null", ""},
		{"chrome-extension://abcdef", ""},
		{"http://www.aaa.com/", "must not end with a slash"},
		{"HTTPS://Example.com:443/", `must not end with a slash: browsers send the origin without one (use "https://example.com")`},
		{"http://www.aaa.com/path", "must not have a path"},
		{"http://www.aaa.com?q", "must not have a path"},
		{"www.aaa.com", "must be a serialized origin"},
		{"*", "a wildcard is not an origin"},
		{"http://", "the host is empty"},
		{"http://user@a.com", "user info"},
		{"http://a.com:0", "invalid port"},
		{"http://a.com:080", "invalid port"},
		{"http://a.com:65536", "invalid port"},
		{"http://a.com:", "invalid port"},
		{"http://a.com:80", `default port 80 of http`},
		{"https://a.com:443", `(use "https://a.com")`},
		{"HTTP://WWW.AAA.COM", `(use "http://www.aaa.com")`},
		{"http://bücher.example", `(use "http://xn--bcher-kva.example")`},
		{"http://a b.com", "invalid character"},
		{"1http://a.com", "is not a URL scheme"},
	}
	for _, tt := range tests {
		got := exactOriginProblem(tt.origin)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("exactOriginProblem(%q) = %q, want %q", tt.origin, got, tt.want)
		}
	}
}

func TestPrefixCheck(t *testing.T) {
	tests := []struct {
		prefix        string
		problem, leak string // substrings; "" = none
	}{
		{"http://www.bbb.com", "", `also matches "http://www.bbb.com.evil.example"`},
		{"http://www.bbb.com:", "", ""},
		{"http://www.bbb.com:80", "", `no port boundary: it also matches "http://www.bbb.com:800"`},
		{"http://[::1]", "", ""},
		{"https://api.", "", `also matches "https://api.evil.example"`},
		{"https://", "", ""},
		{"http", "", ""},
		{"http://www.bbb.com/", "can never match", ""},
		{"http://WWW.bbb.com", "can never match", ""},
		{"HTTP://www.bbb.com", "can never match", ""},
	}
	for _, tt := range tests {
		problem, leak := prefixCheck(tt.prefix)
		if (tt.problem == "") != (problem == "") || !strings.Contains(problem, tt.problem) {
			t.Errorf("prefixCheck(%q) problem = %q, want %q", tt.prefix, problem, tt.problem)
		}
		if (tt.leak == "") != (leak == "") || !strings.Contains(leak, tt.leak) {
			t.Errorf("prefixCheck(%q) leak = %q, want %q", tt.prefix, leak, tt.leak)
		}
	}
}

func TestRegexRisks(t *testing.T) {
	tests := []struct {
		regex      string
		start, end bool
		dots       bool
		fix        string
	}{
		{`http.*://www.test.cn`, true, true, true, `^http.*://www\.test\.cn$`},
		{`^https://www\.test\.cn$`, false, false, false, ""},
		{`^https?://(www|api)\.test\.cn(:[0-9]+)?$`, false, false, false, ""},
		{`\Ahttps://a\.com\z`, false, false, false, ""},
		{`^https://a\.com$|^https://b\.com$`, false, false, false, ""},
		{`^https://a\.com|https://b\.com$`, true, true, false, `^(?:^https://a\.com|https://b\.com$)$`},
		{`^https://[a.]+\.com$`, false, false, false, ""}, // "." in a class is literal
		{`^https://.+\.com$`, false, false, false, ""},    // a repeated "." is a wildcard on purpose
		{`^https://a.com$`, false, false, true, `^https://a\.com$`},
		{`(https://a\.com)`, true, true, false, `^(https://a\.com)$`},
	}
	for _, tt := range tests {
		start, end, dots, fix := regexRisks(tt.regex)
		if start != tt.start || end != tt.end || dots != tt.dots || fix != tt.fix {
			t.Errorf("regexRisks(%q) = %v, %v, %v, %q; want %v, %v, %v, %q",
				tt.regex, start, end, dots, fix, tt.start, tt.end, tt.dots, tt.fix)
		}
	}
}
