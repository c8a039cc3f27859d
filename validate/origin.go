package validate

import (
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"golang.org/x/net/idna"
)

// The checks below are about what browsers actually send. An Origin header is a serialized
// origin: "null", or scheme "://" host [":" port], with scheme and host in lower case, the host
// in ASCII (IDNA/punycode), and the port omitted when it is the scheme's default. Nothing else
// ever appears in it, so an exact entry in another form can never match, and a prefix or regex
// that stops before the end of the host also matches hosts that merely start the same way.

// probeOrigins are origins no one configures on purpose: an entry that matches one of them
// matches (almost) any origin.
var probeOrigins = []string{"https://cors-webhook-probe.invalid", "http://cors-webhook-probe.invalid"}

// defaultPorts are the ports browsers leave out of the serialized origin.
var defaultPorts = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443"}

// exactOriginProblem explains why s is not a serialized origin, or returns "" when it is one.
// "null" is a serialized origin (and gets its own warning elsewhere).
func exactOriginProblem(s string) string {
	if s == "null" {
		return ""
	}
	if s == "*" {
		return `a wildcard is not an origin: to allow any origin use regex "^https?://" (without allowCredentials)`
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return `must be a serialized origin, scheme://host[:port], such as "https://www.example.com"`
	}
	if !isScheme(scheme) {
		return fmt.Sprintf("must be a serialized origin, scheme://host[:port]: %q is not a URL scheme", scheme)
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		canonical := canonicalOrigin(scheme, rest[:i])
		if rest[i:] == "/" {
			return fmt.Sprintf("must not end with a slash: browsers send the origin without one (use %q)", canonical)
		}
		return fmt.Sprintf("must not have a path, query or fragment: an Origin is only scheme://host[:port] (use %q)", canonical)
	}
	if strings.Contains(rest, "@") {
		return "must not contain user info: an Origin is only scheme://host[:port]"
	}
	host, port, hasPort := splitHostPort(rest)
	if host == "" {
		return "must be a serialized origin, scheme://host[:port]: the host is empty"
	}
	if problem := hostProblem(host); problem != "" {
		return problem
	}
	if hasPort {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || strings.TrimLeft(port, "0123456789") != "" {
			return fmt.Sprintf("has an invalid port %q: want 1-65535 without leading zeros", port)
		}
	}
	if canonical := canonicalOrigin(scheme, rest); canonical != s {
		switch {
		case hasPort && defaultPorts[strings.ToLower(scheme)] == port:
			return fmt.Sprintf("browsers omit the default port %s of %s from the Origin, so this never matches (use %q)", port, strings.ToLower(scheme), canonical)
		default:
			return fmt.Sprintf("browsers send the origin in lower case with an ASCII (punycode) host, so this never matches (use %q)", canonical)
		}
	}
	return ""
}

// canonicalOrigin is the serialized origin a browser sends for scheme and "host[:port]": lower
// case, an ASCII host, no default port.
func canonicalOrigin(scheme, hostPort string) string {
	scheme = strings.ToLower(scheme)
	host, port, hasPort := splitHostPort(hostPort)
	out := scheme + "://" + canonicalHost(host)
	if hasPort && port != "" && defaultPorts[scheme] != port {
		out += ":" + port
	}
	return out
}

// isScheme reports whether s is a URL scheme (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )).
func isScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// splitHostPort splits "host[:port]", keeping an IPv6 literal "[...]" whole.
func splitHostPort(s string) (host, port string, hasPort bool) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return s, "", false
		}
		host, rest := s[:end+1], s[end+1:]
		if p, ok := strings.CutPrefix(rest, ":"); ok {
			return host, p, true
		}
		if rest != "" {
			return host, rest, true // reported as a bad port
		}
		return host, "", false
	}
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// hostProblem rejects characters no host name or IP literal contains. Upper case and non-ASCII
// are left to the canonical-form comparison, which can suggest the right spelling.
func hostProblem(host string) string {
	if strings.HasPrefix(host, "[") {
		if !strings.HasSuffix(host, "]") || strings.Trim(host[1:len(host)-1], "0123456789abcdefABCDEF:.") != "" {
			return fmt.Sprintf("has an invalid IPv6 host %q", host)
		}
		return ""
	}
	for _, r := range host {
		if r < 0x80 && !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_') {
			return fmt.Sprintf("has an invalid character %q in the host", r)
		}
	}
	return ""
}

// canonicalHost is the host as a browser serializes it: lower case, IDNA (punycode) for
// non-ASCII names. When IDNA conversion fails, the lower-cased host is returned.
func canonicalHost(host string) string {
	if strings.HasPrefix(host, "[") {
		return strings.ToLower(host)
	}
	if ascii, err := idna.Lookup.ToASCII(host); err == nil {
		return ascii
	}
	return strings.ToLower(host)
}

// prefixCheck classifies a prefix entry: problem is an error (the prefix can never match a
// serialized origin), leak a security warning (the prefix does not end at a host or port
// boundary, so it also matches other hosts), both empty when the prefix is bounded or pins no
// host at all (a scheme-wide wildcard such as "https://", reported only with allowCredentials).
func prefixCheck(p string) (problem, leak string) {
	scheme, rest, ok := strings.Cut(p, "://")
	if !ok || rest == "" {
		return "", ""
	}
	if strings.ToLower(scheme) != scheme || !isScheme(scheme) {
		if !isScheme(scheme) {
			return fmt.Sprintf("can never match: %q is not a URL scheme", scheme), ""
		}
		return fmt.Sprintf("can never match: browsers send the scheme in lower case (use %q)", strings.ToLower(scheme)+"://"+rest), ""
	}
	if i := strings.IndexAny(rest, "/?#@"); i >= 0 {
		return fmt.Sprintf("can never match: an Origin has no path, query, fragment or user info after the host (use %q)", scheme+"://"+rest[:i]), ""
	}
	host, port, hasPort := splitHostPort(rest)
	if !strings.HasPrefix(host, "[") && canonicalHost(host) != host {
		return fmt.Sprintf("can never match: browsers send the host in lower case ASCII (use %q)", scheme+"://"+canonicalHost(host)+strings.TrimPrefix(rest, host)), ""
	}
	switch {
	case hasPort && port == "":
		return "", "" // "scheme://host:" allows exactly the ports of that host
	case hasPort:
		return "", fmt.Sprintf("prefix %q has no port boundary: it also matches %q; use exact for each port", p, p+"0")
	case strings.HasSuffix(host, "]"):
		return "", "" // an IPv6 literal ends the host by itself
	}
	example := p + ".evil.example"
	if strings.HasSuffix(p, ".") || strings.HasSuffix(p, "-") {
		example = p + "evil.example"
	}
	fix := fmt.Sprintf("use exact %q", p)
	if !strings.HasSuffix(host, ".") && !strings.HasSuffix(host, "-") {
		fix += " or regex " + yamlQuote("^"+regexp.QuoteMeta(p)+"(:[0-9]+)?$")
	}
	return "", fmt.Sprintf("prefix %q has no host boundary: it also matches %q; %s", p, example, fix)
}

// regexRisks reports how a regex (that compiles) lets through origins its author likely did
// not mean: unanchored (the sidecar searches the Origin, as FSM does, so "a.com" also matches
// "https://a.com.evil.example") and an unescaped "." (which matches any character). fix is the
// pattern with both repaired, when it compiles.
func regexRisks(pat string) (unanchoredStart, unanchoredEnd, dots bool, fix string) {
	re, err := syntax.Parse(pat, syntax.Perl)
	if err != nil {
		return false, false, false, ""
	}
	unanchoredStart, unanchoredEnd = !anchoredAt(re, true), !anchoredAt(re, false)
	escaped, dots := escapeDots(pat)
	fixed := escaped
	if unanchoredStart || unanchoredEnd {
		if hasTopLevelAlternation(fixed) {
			fixed = "(?:" + fixed + ")"
		}
		if unanchoredStart {
			fixed = "^" + fixed
		}
		if unanchoredEnd {
			fixed += "$"
		}
	}
	if _, err := regexp.Compile(fixed); err != nil || fixed == pat {
		fixed = ""
	}
	return unanchoredStart, unanchoredEnd, dots, fixed
}

// anchoredAt reports whether every match of re must begin (start) or end (!start) at the text
// boundary: the first (last) element is ^ or \A ($ or \z) on every alternative.
func anchoredAt(re *syntax.Regexp, start bool) bool {
	switch re.Op {
	case syntax.OpBeginText, syntax.OpBeginLine:
		return start
	case syntax.OpEndText, syntax.OpEndLine:
		return !start
	case syntax.OpCapture:
		return anchoredAt(re.Sub[0], start)
	case syntax.OpConcat:
		if len(re.Sub) == 0 {
			return false
		}
		if start {
			return anchoredAt(re.Sub[0], start)
		}
		return anchoredAt(re.Sub[len(re.Sub)-1], start)
	case syntax.OpAlternate:
		for _, sub := range re.Sub {
			if !anchoredAt(sub, start) {
				return false
			}
		}
		return len(re.Sub) > 0
	}
	return false
}

// escapeDots escapes every "." that is outside a character class and not repeated (".*",
// ".+", ".?", ".{n}" are kept: they are wildcards on purpose), reporting whether there was one.
func escapeDots(pat string) (string, bool) {
	var b strings.Builder
	found := false
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		switch {
		case c == '\\':
			b.WriteByte(c)
			if i+1 < len(pat) {
				i++
				b.WriteByte(pat[i])
			}
			continue
		case inClass:
			if c == '[' && strings.HasPrefix(pat[i:], "[:") {
				if end := strings.Index(pat[i+2:], ":]"); end >= 0 {
					b.WriteString(pat[i : i+2+end+2])
					i += 2 + end + 1
					continue
				}
			}
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			b.WriteByte(c)
			if i+1 < len(pat) && pat[i+1] == '^' {
				i++
				b.WriteByte('^')
			}
			if i+1 < len(pat) && pat[i+1] == ']' {
				i++
				b.WriteByte(']')
			}
			continue
		case c == '.':
			if i+1 < len(pat) && strings.IndexByte("*+?{", pat[i+1]) >= 0 {
				break
			}
			found = true
			b.WriteString(`\.`)
			continue
		}
		b.WriteByte(c)
	}
	return b.String(), found
}

// hasTopLevelAlternation reports whether pat has a "|" outside groups and classes, so that
// anchors must wrap the whole pattern in a group.
func hasTopLevelAlternation(pat string) bool {
	depth, inClass := 0, false
	for i := 0; i < len(pat); i++ {
		switch c := pat[i]; {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
			if i+1 < len(pat) && pat[i+1] == '^' {
				i++
			}
			if i+1 < len(pat) && pat[i+1] == ']' {
				i++
			}
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == '|' && depth == 0:
			return true
		}
	}
	return false
}

// yamlQuote quotes a regex the way it can be pasted into YAML: single quotes keep backslashes
// literal, where Go's %q would double them.
func yamlQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
