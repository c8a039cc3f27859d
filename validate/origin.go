package validate

import (
	"fmt"
	"net/netip"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"

	"golang.org/x/net/idna"

	"github.com/cors-webhook/cors-webhook/cors"
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
		return `a wildcard is not an origin: to allow any origin use regex '^https?://' (without allowCredentials)`
	}
	if list := originList(s); list != "" {
		return list
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
	if strings.Contains(host, "*") {
		if w := gepWildcard(scheme, host, port, hasPort); w != "" {
			return fmt.Sprintf("browsers never send %q: an exact entry has no wildcards; for one or more subdomain labels use wildcard %q", s, w)
		}
		return fmt.Sprintf("browsers never send %q: an exact entry has no wildcards; for any subdomain use regex %s",
			s, yamlQuote(wildcardRegex(scheme, host, port, hasPort, false)))
	}
	if problem := hostProblem(host); problem != "" {
		return problem
	}
	if _, problem := hostCanonical(host); problem != "" {
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
		case strings.HasPrefix(host, "["):
			return fmt.Sprintf("browsers send an IPv6 host in its shortest form (lower case, the longest run of zeros as \"::\", no dotted IPv4 part), so this never matches (use %q)", canonical)
		case endsInNumber(host):
			return fmt.Sprintf("browsers send an IPv4 host as four decimal numbers (they read a leading 0 as octal, 0x as hex, and fill in missing parts), so this never matches (use %q)", canonical)
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
	h, _ := hostCanonical(host)
	out := scheme + "://" + h
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
		if a, err := netip.ParseAddr(host[1 : len(host)-1]); err != nil || !a.Is6() {
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
// non-ASCII names. When IDNA conversion fails, the lower-cased host is returned. IP addresses
// are left to hostCanonical: a prefix may stop inside one.
func canonicalHost(host string) string {
	if strings.HasPrefix(host, "[") {
		return strings.ToLower(host)
	}
	if ascii, err := idna.Lookup.ToASCII(host); err == nil {
		return ascii
	}
	return strings.ToLower(host)
}

// hostCanonical is a whole host as the URL Standard's host parser and serializer leave it, the
// form the Origin header carries: an IPv6 literal compressed ([2001:db8::1], IPv4-mapped
// addresses in hex), a host ending in a number read as an IPv4 address (octal, hex and short
// forms, as browsers read them) in dotted decimal, any other name as canonicalHost. problem is
// set when browsers refuse the host (an IPv4 form out of range), so no Origin carries it.
func hostCanonical(host string) (canonical, problem string) {
	if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		a, err := netip.ParseAddr(host[1 : len(host)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			return strings.ToLower(host), fmt.Sprintf("has an invalid IPv6 host %q", host)
		}
		return "[" + serializeIPv6(a.As16()) + "]", ""
	}
	if endsInNumber(host) {
		ip, ok := parseWebIPv4(host)
		if !ok {
			return strings.ToLower(host), fmt.Sprintf("has a host %q that ends in a number but is no IPv4 address browsers accept: they refuse such URLs", host)
		}
		return ip, ""
	}
	return canonicalHost(host), ""
}

// serializeIPv6 writes an address as the URL Standard does: eight hexadecimal pieces without
// leading zeros, the first longest run of two or more zero pieces replaced by "::".
func serializeIPv6(b [16]byte) string {
	var pieces [8]uint16
	for i := range pieces {
		pieces[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	start, length := -1, 1
	for i := 0; i < 8; {
		if pieces[i] != 0 {
			i++
			continue
		}
		j := i
		for j < 8 && pieces[j] == 0 {
			j++
		}
		if j-i > length {
			start, length = i, j-i
		}
		i = j
	}
	var sb strings.Builder
	for i := 0; i < 8; i++ {
		if i == start {
			sb.WriteString("::")
			i += length - 1
			continue
		}
		if sb.Len() > 0 && !strings.HasSuffix(sb.String(), ":") {
			sb.WriteByte(':')
		}
		sb.WriteString(strconv.FormatUint(uint64(pieces[i]), 16))
	}
	return sb.String()
}

// endsInNumber is the URL Standard's "ends in a number" check: the last label (a trailing dot
// aside) is all digits or a 0x hexadecimal number, so browsers parse the host as IPv4.
func endsInNumber(host string) bool {
	labels := strings.Split(host, ".")
	if labels[len(labels)-1] == "" {
		if len(labels) == 1 {
			return false
		}
		labels = labels[:len(labels)-1]
	}
	last := labels[len(labels)-1]
	if last != "" && strings.Trim(last, "0123456789") == "" {
		return true
	}
	_, ok := parseWebIPv4Number(last)
	return ok
}

// parseWebIPv4 is the URL Standard's IPv4 parser: one to four parts, each decimal, octal
// (leading 0) or hexadecimal (0x), the last filling the remaining bytes.
func parseWebIPv4(host string) (string, bool) {
	parts := strings.Split(host, ".")
	if parts[len(parts)-1] == "" && len(parts) > 1 {
		parts = parts[:len(parts)-1]
	}
	if len(parts) > 4 {
		return "", false
	}
	nums := make([]uint64, len(parts))
	for i, p := range parts {
		n, ok := parseWebIPv4Number(p)
		if !ok {
			return "", false
		}
		nums[i] = n
	}
	for _, n := range nums[:len(nums)-1] {
		if n > 255 {
			return "", false
		}
	}
	last := nums[len(nums)-1]
	if last >= 1<<(8*(5-len(nums))) {
		return "", false
	}
	addr := last
	for i, n := range nums[:len(nums)-1] {
		addr += n << (8 * (3 - i))
	}
	return fmt.Sprintf("%d.%d.%d.%d", addr>>24, addr>>16&0xff, addr>>8&0xff, addr&0xff), true
}

// parseWebIPv4Number parses one part of an IPv4 host as browsers do.
func parseWebIPv4Number(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	base := 10
	switch {
	case len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X"):
		s, base = s[2:], 16
		if s == "" {
			return 0, true
		}
	case len(s) >= 2 && s[0] == '0':
		s, base = s[1:], 8
	}
	n, err := strconv.ParseUint(s, base, 64)
	if err != nil {
		// Too large for 64 bits (still a number): out of range either way.
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return 1 << 40, true
		}
		return 0, false
	}
	return n, true
}

// wildcardRegex is the regex for an origin written with "*" in its host ("*.example.com"):
// "*." at the start stands for one or more subdomain labels, any other "*" for part of a label.
// A prefix (anyPort) also allows any port; an exact entry keeps its port, if any.
func wildcardRegex(scheme, host, port string, hasPort, anyPort bool) string {
	host = strings.ToLower(host)
	var re strings.Builder
	re.WriteString("^" + regexp.QuoteMeta(strings.ToLower(scheme)) + "://")
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		re.WriteString(`([a-z0-9-]+\.)+`)
		host = rest
	}
	for i, part := range strings.Split(host, "*") {
		if i > 0 {
			re.WriteString("[a-z0-9-]+")
		}
		re.WriteString(regexp.QuoteMeta(canonicalHost(part)))
	}
	switch {
	case anyPort:
		re.WriteString("(:[0-9]+)?")
	case hasPort && port != "" && port != defaultPorts[strings.ToLower(scheme)]:
		re.WriteString(":" + regexp.QuoteMeta(port))
	}
	re.WriteString("$")
	return re.String()
}

// gepWildcard is the allowOrigins[].wildcard entry for an origin written with "*." before its
// host, in the form browsers send (lower case, punycode, no default port); "" when the
// wildcard field cannot express it (a "*" elsewhere, another scheme).
func gepWildcard(scheme, host, port string, hasPort bool) string {
	rest, ok := strings.CutPrefix(host, "*.")
	if !ok {
		return ""
	}
	scheme = strings.ToLower(scheme)
	w := scheme + "://*." + canonicalHost(rest)
	if hasPort && port != defaultPorts[scheme] {
		w += ":" + port
	}
	if cors.WildcardProblem(w) != "" {
		return ""
	}
	return w
}

// subdomainRegex recognizes the regexes people write for "any subdomain of one host" —
// scheme://, then ".*\.", ".+\." or "([a-z0-9-]+\.)+" and similar, then the host with its dots
// escaped or not, and optionally a fixed port — and returns the wildcard entry that says it
// without the regex's pitfalls, or "".
func subdomainRegex(pat string) string {
	pat = strings.TrimSuffix(strings.TrimPrefix(pat, "^"), "$")
	scheme, rest, ok := strings.Cut(pat, "://")
	if !ok || (scheme != "http" && scheme != "https") {
		return ""
	}
	for _, labels := range []string{`.*\.`, `.+\.`, `(.*\.)`, `(.+\.)`, `([a-z0-9-]+\.)+`, `[a-z0-9-]+\.`, `[^.]+\.`, `([^.]+\.)+`, `\w+\.`} {
		if host, ok := strings.CutPrefix(rest, labels); ok {
			host, port, hasPort := splitHostPort(strings.ReplaceAll(host, `\.`, "."))
			return gepWildcard(scheme, "*."+host, port, hasPort)
		}
	}
	return ""
}

// originList recognizes several origins in one entry, as nginx or a framework setting would
// list them ("https://a.example, https://b.example"), and says how to split them; "" when s
// is not such a list.
func originList(s string) string {
	parts := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == ';' })
	if len(parts) < 2 {
		return ""
	}
	entries := make([]string, len(parts))
	for i, p := range parts {
		if !strings.Contains(p, "://") {
			return ""
		}
		entries[i] = fmt.Sprintf("{exact: %q}", browserOrigin(p))
	}
	return fmt.Sprintf("is a list of %d origins: an entry matches one origin; split it into entries %s", len(parts), strings.Join(entries, ", "))
}

// browserOrigin is what a browser sends for a URL written as s (its path dropped), or s when
// it cannot tell.
func browserOrigin(s string) string {
	scheme, rest, _ := strings.Cut(s, "://")
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if !isScheme(scheme) || rest == "" {
		return s
	}
	return canonicalOrigin(scheme, rest)
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
		return "can never match: browsers send the scheme in lower case" + prefixFix(strings.ToLower(scheme)+"://"+rest), ""
	}
	if list := originList(p); list != "" {
		return "can never match: " + list, ""
	}
	if i := strings.IndexAny(rest, "/?#@"); i >= 0 {
		return "can never match: an Origin has no path, query, fragment or user info after the host" + prefixFix(scheme+"://"+rest[:i]), ""
	}
	host, port, hasPort := splitHostPort(rest)
	if strings.Contains(host, "*") {
		return fmt.Sprintf("can never match: browsers never send \"*\" in an Origin, and a prefix has no wildcards; for any subdomain use regex %s",
			yamlQuote(wildcardRegex(scheme, host, port, hasPort, true))), ""
	}
	if hasPort || strings.HasSuffix(host, "]") {
		// The host is complete: it must be in the form browsers send.
		if canonical, problem := hostCanonical(host); problem != "" {
			return "can never match: " + problem, ""
		} else if canonical != host && canonicalHost(host) == host {
			return "can never match: browsers send this host as " + canonical + prefixFix(scheme+"://"+canonical+strings.TrimPrefix(rest, host)), ""
		}
	}
	if !strings.HasPrefix(host, "[") && canonicalHost(host) != host {
		return "can never match: browsers send the host in lower case ASCII" + prefixFix(scheme+"://"+canonicalHost(host)+strings.TrimPrefix(rest, host)), ""
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
	return "", fmt.Sprintf("prefix %q has no host boundary: it also matches %q; %s", p, example, boundaryFix(p))
}

// boundaryFix says how to pin a prefix that stops inside a host to that host: an exact entry,
// or a regex that allows any port; both only when the host is one browsers send.
func boundaryFix(p string) string {
	if exactOriginProblem(p) != "" {
		return "list the origins as exact entries, or write an anchored regex"
	}
	return fmt.Sprintf("use exact %q or regex %s", p, yamlQuote("^"+regexp.QuoteMeta(p)+"(:[0-9]+)?$"))
}

// prefixFix is the " (use ...)" clause for a prefix repaired into fixed: fixed itself when it
// is sound, else what boundaryFix suggests for it, or nothing when fixed is no better.
func prefixFix(fixed string) string {
	problem, leak := prefixCheck(fixed)
	switch {
	case problem != "":
		return ""
	case leak != "":
		return " (" + boundaryFix(fixed) + ")"
	}
	return fmt.Sprintf(" (use %q)", fixed)
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
