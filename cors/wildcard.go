package cors

import (
	"fmt"
	"strconv"
	"strings"
)

// wildcard is a compiled GEP-1767 origin pattern (allowOrigins[].wildcard).
//
// GEP-1767 (Gateway API's HTTPCORSFilter) writes origins as scheme://host[:port] where the host
// may begin with "*", "a greedy match to the left" over whole DNS labels, and where a missing
// port means the scheme's default. Browsers serialize the Origin without the default port, so
// matching compares ports after that normalization; "https://*.example.com" therefore matches
// "https://a.example.com" and "https://a.b.example.com:443" but neither "https://example.com"
// (one or more labels) nor "https://a.example.com:8443".
type wildcard struct {
	any    bool   // "*": every origin but "null"
	scheme string // "http" or "https"
	suffix string // "." + host, lower case; "" when the host is "*" alone
	port   string // "" for the scheme's default
}

// wildcardDefaultPorts are the ports a serialized origin leaves out, for the schemes GEP-1767
// allows.
var wildcardDefaultPorts = map[string]string{"http": "80", "https": "443"}

// parseWildcard compiles a wildcard entry, or explains in problem why it is not one.
func parseWildcard(s string) (w wildcard, problem string) {
	if s == "*" {
		return wildcard{any: true}, ""
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return w, `must be "*" or scheme://*.host[:port], such as "https://*.example.com"`
	}
	if _, known := wildcardDefaultPorts[scheme]; !known {
		return w, fmt.Sprintf(`must start with "http://" or "https://" (in lower case), not %q`, scheme+"://")
	}
	if i := strings.IndexAny(rest, "/?#@"); i >= 0 {
		return w, "must be only scheme://*.host[:port]: an Origin has no path, query, fragment or user info"
	}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		host, port = rest[:i], rest[i+1:]
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return w, fmt.Sprintf("has an invalid port %q: want 1-65535 without leading zeros", port)
		}
		if port == wildcardDefaultPorts[scheme] {
			port = ""
		}
	}
	w = wildcard{scheme: scheme, port: port}
	if host == "*" {
		return w, ""
	}
	tail, ok := strings.CutPrefix(host, "*.")
	if !ok {
		if strings.Contains(host, "*") {
			return w, `may have "*" only as the whole first label of the host ("*.example.com"), where it stands for one or more labels`
		}
		return w, fmt.Sprintf("has no wildcard: for exactly this origin use exact %q", scheme+"://"+rest)
	}
	for label := range strings.SplitSeq(tail, ".") {
		if problem := labelProblem(label); problem != "" {
			return w, problem
		}
	}
	w.suffix = "." + tail
	return w, ""
}

// labelProblem requires the lower-case ASCII form browsers put in an Origin: letters, digits and
// inner hyphens, 1-63 bytes. A non-ASCII name must be written in punycode (xn--...).
func labelProblem(label string) string {
	if label == "" || len(label) > 63 {
		return fmt.Sprintf("has an empty or overlong DNS label %q in the host", label)
	}
	for i := 0; i < len(label); i++ {
		switch c := label[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' && i > 0 && i < len(label)-1:
		case c >= 'A' && c <= 'Z':
			return fmt.Sprintf("must have the host in lower case, as browsers send it (%q)", strings.ToLower(label))
		case c >= 0x80:
			return "must have the host in ASCII, as browsers send it: write an internationalized name in punycode (xn--...)"
		default:
			return fmt.Sprintf("has an invalid character %q in the host label %q", c, label)
		}
	}
	return ""
}

// match reports whether origin is one of the origins the pattern stands for. It does not
// allocate: it is on the sidecar's request path.
func (w *wildcard) match(origin string) bool {
	if w.any {
		return origin != "null"
	}
	rest, ok := cutPrefixFold(origin, w.scheme+"://")
	if !ok || rest == "" {
		return false
	}
	host, port := rest, ""
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.HasSuffix(rest, "]") {
		host, port = rest[:i], rest[i+1:]
		if port == wildcardDefaultPorts[w.scheme] {
			port = ""
		} else if port == "" {
			return false
		}
	}
	if port != w.port {
		return false
	}
	if w.suffix == "" {
		return host != ""
	}
	n := len(host) - len(w.suffix)
	if n <= 0 || !asciiEqualFold(host[n:], w.suffix) {
		return false
	}
	return validLabels(host[:n])
}

// validLabels reports whether s is one or more dot-separated non-empty labels of host
// characters, so that nothing but subdomains can stand in for "*".
func validLabels(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.':
			if s[i-1] == '.' {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// cutPrefixFold is strings.CutPrefix with an ASCII case-insensitive comparison.
func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !asciiEqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

// asciiEqualFold compares ignoring ASCII case only. strings.EqualFold also folds Unicode
// ("ſ" equals "s", the Kelvin sign "k"), which no serialized origin contains: an Origin with
// them is not the host the pattern names.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// WildcardProblem explains why s is not a valid allowOrigins[].wildcard, or returns "" when it
// is one; the validator uses it to offer a wildcard only where one would be accepted.
func WildcardProblem(s string) string {
	_, problem := parseWildcard(s)
	return problem
}
