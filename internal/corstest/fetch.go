// Package corstest models what a browser does with CORS response headers, so that tests can
// say "Chromium would allow this" about an answer without starting a browser. It follows the
// Fetch Standard's CORS check and CORS-preflight fetch, the algorithms WPT's fetch/api/cors
// tests exercise; e2e/browser_test.go checks the same answers in a real Chromium.
package corstest

import (
	"net/http"
	"slices"
	"strings"
)

// Fetch describes the cross-origin request a script makes.
type Fetch struct {
	Origin string
	// Method is the request's method after Fetch's normalization (fetch() upper-cases only
	// DELETE, GET, HEAD, OPTIONS, POST and PUT).
	Method string
	// Headers are the names of the request headers the script sets.
	Headers []string
	// Credentials is credentials: "include".
	Credentials bool
}

// NeedsPreflight reports whether the browser sends a preflight first: a method other than
// GET, HEAD and POST, or a header that is not CORS-safelisted (simplified: only Accept,
// Accept-Language, Content-Language and Content-Type are treated as safelisted).
func (f Fetch) NeedsPreflight() bool {
	return !safelistedMethod(f.Method) || len(f.unsafeHeaders()) > 0
}

// RequestHeaders is the access-control-request-headers value the browser sends: the
// non-safelisted names, lower case, sorted, joined with ",".
func (f Fetch) RequestHeaders() string {
	return strings.Join(f.unsafeHeaders(), ",")
}

func (f Fetch) unsafeHeaders() []string {
	var out []string
	for _, h := range f.Headers {
		switch l := strings.ToLower(h); l {
		case "accept", "accept-language", "content-language", "content-type":
		default:
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func safelistedMethod(m string) bool { return m == "GET" || m == "HEAD" || m == "POST" }

// CORSCheck is Fetch's CORS check of a response (a preflight's or the actual one's): exactly one
// access-control-allow-origin, "*" only without credentials, otherwise byte-equal to the origin;
// with credentials, access-control-allow-credentials must be "true".
func (f Fetch) CORSCheck(h http.Header) bool {
	acao := h.Values("Access-Control-Allow-Origin")
	if len(acao) != 1 {
		return false
	}
	if acao[0] == "*" {
		return !f.Credentials
	}
	if acao[0] != f.Origin {
		return false
	}
	return !f.Credentials || h.Get("Access-Control-Allow-Credentials") == "true"
}

// PreflightAllows is the browser's verdict on a preflight response: the status is ok, the CORS
// check passes, the method is listed (byte for byte), safelisted, or covered by "*" without
// credentials, and every non-safelisted header is listed (case-insensitively) or covered by
// "*" without credentials (never Authorization).
func (f Fetch) PreflightAllows(status int, h http.Header) bool {
	if status < 200 || status > 299 || !f.CORSCheck(h) {
		return false
	}
	methods := list(h.Values("Access-Control-Allow-Methods"))
	if !slices.Contains(methods, f.Method) && !safelistedMethod(f.Method) &&
		!(slices.Contains(methods, "*") && !f.Credentials) {
		return false
	}
	allowed := list(h.Values("Access-Control-Allow-Headers"))
	for _, name := range f.unsafeHeaders() {
		ok := slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, name) })
		if !ok && (f.Credentials || name == "authorization" || !slices.Contains(allowed, "*")) {
			return false
		}
	}
	return true
}

// Exposed reports whether a script may read response header name: a safelisted response
// header, or one listed in access-control-expose-headers ("*" counts only without credentials).
func (f Fetch) Exposed(h http.Header, name string) bool {
	switch strings.ToLower(name) {
	case "cache-control", "content-language", "content-length", "content-type", "expires", "last-modified", "pragma":
		return true
	}
	exposed := list(h.Values("Access-Control-Expose-Headers"))
	if slices.Contains(exposed, "*") && !f.Credentials {
		return true
	}
	return slices.ContainsFunc(exposed, func(e string) bool { return strings.EqualFold(e, name) })
}

// list parses header values as Fetch does: comma-separated, whitespace trimmed, empty items
// dropped.
func list(values []string) []string {
	var out []string
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			if item = strings.TrimSpace(item); item != "" {
				out = append(out, item)
			}
		}
	}
	return out
}
