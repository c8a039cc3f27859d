package validate

import (
	"strings"
	"testing"
)

// exactOriginTests are exact allowOrigins entries and what is wrong with them (a substring of
// the problem; "" for a serialized origin). TestSuggestedFixesValidateClean also runs every fix
// their messages suggest.
var exactOriginTests = []struct {
	origin string
	want   string
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
	// IP hosts: browsers send the URL Standard's serialization.
	{"http://192.168.0.1", ""},
	{"http://[::ffff:c000:201]", ""},
	{"http://[2001:db8:0:0:0:0:0:1]", `IPv6 host in its shortest form (lower case, the longest run of zeros as "::", no dotted IPv4 part), so this never matches (use "http://[2001:db8::1]")`},
	{"http://[2001:DB8::1]:8080", `(use "http://[2001:db8::1]:8080")`},
	{"http://[1:0:0:2:0:0:0:3]", `(use "http://[1:0:0:2::3]")`},
	{"http://[::ffff:192.0.2.1]", `(use "http://[::ffff:c000:201]")`},
	{"http://[1::2::3]", "invalid IPv6 host"},
	{"http://[fe80::1%25eth0]", "invalid IPv6 host"},
	{"http://010.0.0.1", `leading 0 as octal, 0x as hex, and fill in missing parts), so this never matches (use "http://8.0.0.1")`},
	{"http://10.1", `(use "http://10.0.0.1")`},
	{"http://0x7f.0.0.1:8080", `(use "http://127.0.0.1:8080")`},
	{"http://2130706433", `(use "http://127.0.0.1")`},
	{"http://256.0.0.1", "no IPv4 address browsers accept"},
	{"http://1.2.3.4.5", "no IPv4 address browsers accept"},
	{"http://08.0.0.1", "no IPv4 address browsers accept"},
	// Wildcards and lists.
	{"https://*.example.com", `an exact entry has no wildcards; for one or more subdomain labels use wildcard "https://*.example.com"`},
	{"HTTPS://*.Example.com:443", `use wildcard "https://*.example.com"`},
	{"http://*.bücher.example:8080", `use wildcard "http://*.xn--bcher-kva.example:8080"`},
	{"ws://*.example.com", `use regex '^ws://([a-z0-9-]+\.)+example\.com$'`}, // GEP-1767 knows http and https only
	{"https://api-*.Example.com:8443", `use regex '^https://api-[a-z0-9-]+\.example\.com:8443$'`},
	{"https://a.example, https://b.example", `is a list of 2 origins: an entry matches one origin; split it into entries {exact: "https://a.example"}, {exact: "https://b.example"}`},
	{"https://a.example,HTTPS://B.example/", `split it into entries {exact: "https://a.example"}, {exact: "https://b.example"}`},
	{"http://a.example http://b.example:80", `split it into entries {exact: "http://a.example"}, {exact: "http://b.example"}`},
}

func TestExactOriginProblem(t *testing.T) {
	for _, tt := range exactOriginTests {
		got := exactOriginProblem(tt.origin)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("exactOriginProblem(%q) = %q, want %q", tt.origin, got, tt.want)
		}
	}
}

// prefixTests are prefix allowOrigins entries with their problem (an error) and leak (a
// warning), as substrings; "" for none.
var prefixTests = []struct {
	prefix        string
	problem, leak string
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
	{"https://*.example.com", `can never match: browsers never send "*" in an Origin, and a prefix has no wildcards; for any subdomain use regex '^https://([a-z0-9-]+\.)+example\.com(:[0-9]+)?$'`, ""},
	{"https://a.example,https://b.example", `can never match: is a list of 2 origins`, ""},
	{"http://010.0.0.1:", `can never match: browsers send this host as 8.0.0.1 (use "http://8.0.0.1:")`, ""},
	{"http://[2001:db8:0:0:0:0:0:1]", `(use "http://[2001:db8::1]")`, ""},
	{"http://10.0.", "", `also matches "http://10.0.evil.example"`},
	{"http://192.168.0.1:", "", ""},
}

func TestPrefixCheck(t *testing.T) {
	for _, tt := range prefixTests {
		problem, leak := prefixCheck(tt.prefix)
		if (tt.problem == "") != (problem == "") || !strings.Contains(problem, tt.problem) {
			t.Errorf("prefixCheck(%q) problem = %q, want %q", tt.prefix, problem, tt.problem)
		}
		if (tt.leak == "") != (leak == "") || !strings.Contains(leak, tt.leak) {
			t.Errorf("prefixCheck(%q) leak = %q, want %q", tt.prefix, leak, tt.leak)
		}
	}
}

// regexRiskTests are regex entries with what regexRisks finds in them.
var regexRiskTests = []struct {
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

func TestRegexRisks(t *testing.T) {
	for _, tt := range regexRiskTests {
		start, end, dots, fix := regexRisks(tt.regex)
		if start != tt.start || end != tt.end || dots != tt.dots || fix != tt.fix {
			t.Errorf("regexRisks(%q) = %v, %v, %v, %q; want %v, %v, %v, %q",
				tt.regex, start, end, dots, fix, tt.start, tt.end, tt.dots, tt.fix)
		}
	}
}
