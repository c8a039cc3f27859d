package cors

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

// Response header names, lower-case as the seed's expected responses show them.
const (
	HeaderAllowOrigin      = "access-control-allow-origin"
	HeaderAllowCredentials = "access-control-allow-credentials"
	HeaderExposeHeaders    = "access-control-expose-headers"
	HeaderAllowMethods     = "access-control-allow-methods"
	HeaderAllowHeaders     = "access-control-allow-headers"
	HeaderMaxAge           = "access-control-max-age"
)

// Action is what the sidecar does with a request.
type Action uint8

const (
	// PassThrough forwards the request unchanged and adds no access-control-* header: there is
	// no policy, no Origin, or the Origin matches no allowOrigins entry.
	PassThrough Action = iota
	// Preflight answers the request at the sidecar (200, empty body, preflight headers) without
	// calling the upstream: a matching Origin on an OPTIONS request, as FSM does.
	Preflight
	// Actual forwards the request and adds the actual-response headers to the upstream's answer.
	Actual
)

// String names the action, for logs and test failures.
func (a Action) String() string {
	switch a {
	case PassThrough:
		return "PassThrough"
	case Preflight:
		return "Preflight"
	case Actual:
		return "Actual"
	default:
		return "Action(" + strconv.Itoa(int(a)) + ")"
	}
}

// Request is what [Policy.Decide] reads of a request: its method and the request headers of
// the CORS protocol, each "" when absent. The strings may point into the caller's buffers:
// the Decision keeps them only until the response is written.
type Request struct {
	Method string
	Origin string
	// RequestMethod and RequestHeaders are access-control-request-method and
	// access-control-request-headers (several field lines joined with ","), which a credentialed
	// "*" echoes and which mark an OPTIONS request as a CORS preflight.
	RequestMethod, RequestHeaders string
}

// Decision is the outcome of [Policy.Decide] for one request. It is a small value so the
// sidecar can keep it on the stack between reading the request and writing the response.
type Decision struct {
	Action Action
	// Origin is the request's Origin, echoed in access-control-allow-origin. Empty for
	// PassThrough, and for a Preflight that answers an unlisted Origin under
	// unmatchedPreflights: Ignore (200 without any access-control-* header).
	Origin string
	// allowMethod and allowHeaders replace a "*" of allowMethods/allowHeaders when credentials
	// are allowed (browsers take "*" literally then); "" leaves the header out, as GEP-1767
	// asks when the request did not name a method or headers.
	allowMethod, allowHeaders string
}

// Header is one response header to set. Name is lower-case, as the seed shows it.
type Header struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type matchKind uint8

const (
	matchExact matchKind = iota
	matchPrefix
	matchRegex
	matchWildcard
)

type matcher struct {
	kind matchKind
	s    string
	re   *regexp.Regexp
	wc   wildcard
	// lits are substrings every match of re contains (see requiredLiterals): a cheap reject
	// before running the regexp, which is by far the most expensive part of Decide.
	lits []string
}

func (m *matcher) match(origin string) bool {
	switch m.kind {
	case matchExact:
		return origin == m.s
	case matchPrefix:
		return strings.HasPrefix(origin, m.s)
	case matchWildcard:
		return m.wc.match(origin)
	default:
		for _, l := range m.lits {
			if !strings.Contains(origin, l) {
				return false
			}
		}
		return m.re.MatchString(origin)
	}
}

// Policy is a compiled CORS config: the origin matchers and the precomputed header values. It
// is immutable after [Compile] and safe for concurrent use, so the sidecar can swap policies
// atomically on reload while requests are in flight. A nil *Policy is valid and passes
// everything through, which is the state of a port without a PluginConfig.
type Policy struct {
	cfg *corsconfig.CORSConfig // normalized

	// matchers in config order, for Match.
	matchers []matcher
	// cheap holds the exact and prefix matchers, costly the regex ones: Decide only needs to
	// know whether any entry matches, so it tries the cheap ones first.
	cheap, costly []matcher

	// actual and preflight are the headers after access-control-allow-origin, in the seed's order.
	actual, preflight []Header
	// echoMethodAt and echoHeadersAt index the entries of preflight whose value is the
	// request's (a "*" with allowCredentials), or are -1.
	echoMethodAt, echoHeadersAt int
	// ignoreUnmatched answers preflights from unlisted origins (unmatchedPreflights: Ignore).
	ignoreUnmatched bool
}

// Config returns a copy of the normalized config the policy was compiled from (nil for a nil
// policy), so callers can show or re-serialize exactly what is enforced.
func (p *Policy) Config() *corsconfig.CORSConfig {
	if p == nil {
		return nil
	}
	return cloneConfig(p.cfg)
}

// Match returns the index of the first allowOrigins entry that matches origin, in config order,
// or -1. It exists for logs and tests ("matched allowOrigins[2]"); Decide does not need the
// index and is faster.
func (p *Policy) Match(origin string) int {
	if p == nil || origin == "" {
		return -1
	}
	for i := range p.matchers {
		if p.matchers[i].match(origin) {
			return i
		}
	}
	return -1
}

// matches reports whether any entry matches. Which entry matches first does not change the
// decision, so the cheap matchers are tried before the regexes.
func (p *Policy) matches(origin string) bool {
	for i := range p.cheap {
		if p.cheap[i].match(origin) {
			return true
		}
	}
	for i := range p.costly {
		if p.costly[i].match(origin) {
			return true
		}
	}
	return false
}

// Decide classifies a request by its method and Origin header: PassThrough when the policy is
// nil, the origin is empty or matches no entry; Preflight for a matching OPTIONS request (any
// OPTIONS, with or without Access-Control-Request-Method, as FSM does); Actual otherwise.
// The method is compared case-sensitively, as HTTP methods are.
//
// Under unmatchedPreflights: Ignore, a CORS preflight (OPTIONS with an Origin and an
// access-control-request-method) from an origin no entry matches is a Preflight with an empty
// Origin: answered at the sidecar without CORS headers, so it never reaches the application.
//
// Decide is on the sidecar's per-request path and does not allocate.
func (p *Policy) Decide(r Request) Decision {
	switch {
	case p == nil || r.Origin == "":
		return Decision{}
	case !p.matches(r.Origin):
		if p.ignoreUnmatched && r.Method == "OPTIONS" && r.RequestMethod != "" {
			return Decision{Action: Preflight}
		}
		return Decision{}
	case r.Method != "OPTIONS":
		return Decision{Action: Actual, Origin: r.Origin}
	case p.echoMethodAt < 0 && p.echoHeadersAt < 0:
		return Decision{Action: Preflight, Origin: r.Origin}
	}
	return p.echo(&r)
}

// echo is the preflight decision of a policy with a credentialed "*": the requested method and
// headers, when they are tokens. Kept out of Decide so that the common path stays small.
func (p *Policy) echo(r *Request) Decision {
	d := Decision{Action: Preflight, Origin: r.Origin}
	if p.echoMethodAt >= 0 && isToken(r.RequestMethod) {
		d.allowMethod = r.RequestMethod
	}
	if p.echoHeadersAt >= 0 && isTokenList(r.RequestHeaders) {
		d.allowHeaders = r.RequestHeaders
	}
	return d
}

// AppendHeaders appends the response headers for d to dst and returns the extended slice. It
// does not allocate when dst has room (at most 6 headers): all values except the echoed origin
// are computed at Compile.
//
// Preflight: access-control-allow-origin, -allow-credentials (when allowCredentials),
// -expose-headers, -allow-methods, -allow-headers (each joined with "," and only when
// non-empty), -max-age (seconds, only when > 0), in this order, which is the seed's.
// Actual: access-control-allow-origin, -allow-credentials, -expose-headers under the same
// conditions. PassThrough (and a nil policy): nothing. Vary is not included; see [MergeVary].
//
// With allowCredentials, browsers read "*" as a literal name, so (GEP-1767) a "*" in
// allowMethods or allowHeaders makes the preflight answer with the requested method or headers
// instead of the list, and leaves the header out when the request named none; a "*" in
// exposeHeaders is left out of the list.
func (p *Policy) AppendHeaders(dst []Header, d Decision) []Header {
	if p == nil || d.Origin == "" {
		return dst
	}
	switch d.Action {
	case Preflight:
	case Actual:
		dst = append(dst, Header{Name: HeaderAllowOrigin, Value: d.Origin})
		return append(dst, p.actual...)
	default:
		return dst
	}
	dst = append(dst, Header{Name: HeaderAllowOrigin, Value: d.Origin})
	if p.echoMethodAt < 0 && p.echoHeadersAt < 0 {
		return append(dst, p.preflight...)
	}
	for i, h := range p.preflight {
		switch i {
		case p.echoMethodAt:
			h.Value = d.allowMethod
		case p.echoHeadersAt:
			h.Value = d.allowHeaders
		}
		if h.Value != "" {
			dst = append(dst, h)
		}
	}
	return dst
}

// MaxHeaders is the most headers AppendHeaders appends for one decision; a dst with this
// capacity never grows.
const MaxHeaders = 6

// Compile checks what the data path needs and builds an immutable, concurrency-safe Policy.
//
// It requires a non-empty allowOrigins; each entry must set exactly one of exact, prefix and
// regex (an empty string counts as unset, so "" can never silently match everything); regexes
// must compile with Go's regexp (RE2) and the error names JavaScript-only constructs such as
// lookahead, which FSM's script accepts but RE2 does not; allowMethods must be HTTP tokens and
// allowHeaders/exposeHeaders header field names (tokens), because they are written verbatim
// into response headers; maxAge must parse (see [ParseMaxAge]). Errors carry paths below
// fldPath, e.g. spec.config.allowOrigins[1].regex for fldPath = field.NewPath("spec", "config").
//
// CompileRaw decodes (see [Decode]) and compiles a raw CORS config, PluginConfig.spec.config:
// the one way injection, the Day-2 status and `describe` read a PluginConfig. Validation
// decodes and compiles in two steps, to check its limits in between.
func CompileRaw(raw []byte, fldPath *field.Path) (*Policy, field.ErrorList) {
	cfg, errs := Decode(raw, fldPath)
	if len(errs) > 0 {
		return nil, errs
	}
	return Compile(cfg, fldPath)
}

// Compile reports all errors it finds and returns a nil Policy when there are any.
func Compile(cfg *corsconfig.CORSConfig, fldPath *field.Path) (*Policy, field.ErrorList) {
	if cfg == nil {
		return nil, field.ErrorList{field.Required(fldPath, "a CORS config is required")}
	}
	var errs field.ErrorList
	p := &Policy{}

	originsPath := fldPath.Child(fieldAllowOrigins)
	if len(cfg.AllowOrigins) == 0 {
		errs = append(errs, field.Required(originsPath,
			fmt.Sprintf("at least one origin matcher (%s, %s, %s or %s) is required", fieldExact, fieldPrefix, fieldRegex, fieldWildcard)))
	}
	for i, o := range cfg.AllowOrigins {
		m, merrs := compileMatcher(o, originsPath.Index(i))
		errs = append(errs, merrs...)
		if len(merrs) > 0 {
			continue
		}
		p.matchers = append(p.matchers, m)
		if m.kind == matchRegex || m.kind == matchWildcard {
			p.costly = append(p.costly, m)
		} else {
			p.cheap = append(p.cheap, m)
		}
	}

	errs = append(errs, checkTokens(cfg.AllowMethods, fldPath.Child(fieldAllowMethods), "an HTTP method token")...)
	errs = append(errs, checkTokens(cfg.AllowHeaders, fldPath.Child(fieldAllowHeaders), "a header field name")...)
	errs = append(errs, checkTokens(cfg.ExposeHeaders, fldPath.Child(fieldExposeHeaders), "a header field name")...)

	switch cfg.UnmatchedPreflights {
	case "", corsconfig.UnmatchedPreflightsForward:
	case corsconfig.UnmatchedPreflightsIgnore:
		p.ignoreUnmatched = true
	default:
		errs = append(errs, field.NotSupported(fldPath.Child(fieldUnmatchedPreflights), cfg.UnmatchedPreflights,
			[]string{corsconfig.UnmatchedPreflightsForward, corsconfig.UnmatchedPreflightsIgnore}))
	}

	var maxAge time.Duration
	if cfg.MaxAge != nil {
		d, problem := parseMaxAge(*cfg.MaxAge)
		if problem != "" {
			errs = append(errs, field.Invalid(fldPath.Child(fieldMaxAge), intOrStringValue(*cfg.MaxAge), problem))
		}
		maxAge = d
	}
	if len(errs) > 0 {
		return nil, errs
	}

	norm, err := Normalize(cfg)
	if err != nil { // cannot happen: maxAge parsed above
		return nil, field.ErrorList{field.InternalError(fldPath, err)}
	}
	p.cfg = norm

	var common []Header
	expose := cfg.ExposeHeaders
	if cfg.AllowCredentials {
		common = append(common, Header{Name: HeaderAllowCredentials, Value: "true"})
		expose = slices.DeleteFunc(slices.Clone(expose), func(h string) bool { return h == "*" })
	}
	if len(expose) > 0 {
		common = append(common, Header{Name: HeaderExposeHeaders, Value: strings.Join(expose, ",")})
	}
	p.actual = common
	p.preflight = append([]Header(nil), common...)
	p.echoMethodAt, p.echoHeadersAt = -1, -1
	echo := func(vals []string) bool { return cfg.AllowCredentials && slices.Contains(vals, "*") }
	if len(cfg.AllowMethods) > 0 {
		if echo(cfg.AllowMethods) {
			p.echoMethodAt = len(p.preflight)
		}
		p.preflight = append(p.preflight, Header{Name: HeaderAllowMethods, Value: strings.Join(cfg.AllowMethods, ",")})
	}
	if len(cfg.AllowHeaders) > 0 {
		if echo(cfg.AllowHeaders) {
			p.echoHeadersAt = len(p.preflight)
		}
		p.preflight = append(p.preflight, Header{Name: HeaderAllowHeaders, Value: strings.Join(cfg.AllowHeaders, ",")})
	}
	if secs := int64(maxAge / time.Second); secs > 0 {
		p.preflight = append(p.preflight, Header{Name: HeaderMaxAge, Value: strconv.FormatInt(secs, 10)})
	}
	// Full-capacity slices: an append to them by a caller can never write into the policy.
	p.actual = p.actual[:len(p.actual):len(p.actual)]
	p.preflight = p.preflight[:len(p.preflight):len(p.preflight)]
	return p, nil
}

func compileMatcher(o corsconfig.OriginMatcher, p *field.Path) (matcher, field.ErrorList) {
	const exactlyOne = "exactly one of " + fieldExact + ", " + fieldPrefix + ", " + fieldRegex + " or " + fieldWildcard
	var set []string
	if o.Exact != "" {
		set = append(set, fieldExact)
	}
	if o.Prefix != "" {
		set = append(set, fieldPrefix)
	}
	if o.Regex != "" {
		set = append(set, fieldRegex)
	}
	if o.Wildcard != "" {
		set = append(set, fieldWildcard)
	}
	switch len(set) {
	case 0:
		return matcher{}, field.ErrorList{field.Required(p, exactlyOne+" must be set (and non-empty)")}
	case 1:
	default:
		var errs field.ErrorList
		for _, name := range set[1:] {
			errs = append(errs, field.Forbidden(p.Child(name),
				fmt.Sprintf("may not be set together with %s: an allowOrigins entry has %s; use separate entries", set[0], exactlyOne)))
		}
		return matcher{}, errs
	}
	switch {
	case o.Exact != "":
		return matcher{kind: matchExact, s: o.Exact}, nil
	case o.Prefix != "":
		return matcher{kind: matchPrefix, s: o.Prefix}, nil
	case o.Wildcard != "":
		w, problem := parseWildcard(o.Wildcard)
		if problem != "" {
			return matcher{}, field.ErrorList{field.Invalid(p.Child(fieldWildcard), o.Wildcard, problem)}
		}
		return matcher{kind: matchWildcard, s: o.Wildcard, wc: w}, nil
	}
	re, err := regexp.Compile(o.Regex)
	if err != nil {
		detail := err.Error()
		if js := jsOnlyConstruct(o.Regex); js != "" {
			detail = js + " is not supported by RE2 (Go regexp), although FSM's JavaScript RegExp accepts it; rewrite the pattern without it (" + detail + ")"
		}
		return matcher{}, field.ErrorList{field.Invalid(p.Child(fieldRegex), o.Regex, detail)}
	}
	return matcher{kind: matchRegex, s: o.Regex, re: re, lits: regexLiterals(o.Regex)}, nil
}

// regexLiterals returns the literal substrings every match of pattern must contain.
func regexLiterals(pattern string) []string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	return requiredLiterals(re.Simplify(), nil)
}

// requiredLiterals appends to dst the literals that every match of re contains: the
// case-sensitive literal parts of a concatenation, looking through captures and repetitions
// that occur at least once. Anything optional or alternative contributes nothing, so the result
// is a necessary condition only. Literals holding U+FFFD are left out, because the regexp
// matches that rune against invalid UTF-8 bytes that do not contain its encoding.
func requiredLiterals(re *syntax.Regexp, dst []string) []string {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase != 0 || slices.Contains(re.Rune, utf8.RuneError) {
			return dst
		}
		return append(dst, string(re.Rune))
	case syntax.OpCapture, syntax.OpPlus:
		return requiredLiterals(re.Sub[0], dst)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			return requiredLiterals(re.Sub[0], dst)
		}
	case syntax.OpConcat:
		for _, sub := range re.Sub {
			dst = requiredLiterals(sub, dst)
		}
	}
	return dst
}

// jsOnlyConstruct names the first JavaScript RegExp construct in pat that RE2 lacks, or "".
// Character classes are skipped, since "(?=" inside [...] is literal.
func jsOnlyConstruct(pat string) string {
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		if c == '\\' {
			if i+1 < len(pat) && !inClass {
				n := pat[i+1]
				switch {
				case n >= '1' && n <= '9':
					return `backreference \` + string(n)
				case n == 'k' && i+2 < len(pat) && pat[i+2] == '<':
					return `named backreference \k<...>`
				}
			}
			i++ // skip the escaped byte
			continue
		}
		if inClass {
			if c == ']' {
				inClass = false
			}
			continue
		}
		if c == '[' {
			inClass = true
			if i+1 < len(pat) && pat[i+1] == '^' {
				i++
			}
			if i+1 < len(pat) && pat[i+1] == ']' {
				i++ // a leading ']' is literal
			}
			continue
		}
		if c != '(' {
			continue
		}
		rest := pat[i:]
		switch {
		case strings.HasPrefix(rest, "(?="):
			return "lookahead (?=...)"
		case strings.HasPrefix(rest, "(?!"):
			return "negative lookahead (?!...)"
		case strings.HasPrefix(rest, "(?<="):
			return "lookbehind (?<=...)"
		case strings.HasPrefix(rest, "(?<!"):
			return "negative lookbehind (?<!...)"
		}
	}
	return ""
}

// checkTokens requires every value to be an RFC 9110 token, so that joined values can be
// written into a response header as they are (no CR/LF, no separators that change meaning).
func checkTokens(vals []string, p *field.Path, what string) field.ErrorList {
	var errs field.ErrorList
	for i, v := range vals {
		if !isToken(v) {
			errs = append(errs, field.Invalid(p.Index(i), v, "must be "+what+" (an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~)"))
		}
	}
	return errs
}

// isTokenList reports whether s is a comma-separated list of at least one token (optional
// whitespace around the commas; empty elements, which RFC 9110 says to ignore, allowed), the
// form of access-control-request-headers. Only such a value is echoed, so a request can never
// put anything else into a response header.
func isTokenList(s string) bool {
	tokens := 0
	for {
		item, rest, more := strings.Cut(s, ",")
		switch item = strings.Trim(item, " \t"); {
		case item == "":
		case isToken(item):
			tokens++
		default:
			return false
		}
		if !more {
			return tokens > 0
		}
		s = rest
	}
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func intOrStringValue(v intstr.IntOrString) any {
	if v.Type == intstr.Int {
		return int64(v.IntVal)
	}
	return v.StrVal
}

// Normalize returns the canonical form of cfg that the pod annotation carries: the same
// origins and lists in the same order (no sorting: order is meaningful to the header values and
// to first-match), empty lists as nil, and maxAge rewritten as whole seconds
// (intstr.FromInt32), or nil when it is 0 or absent. Equivalent inputs ("24h", "1d", 86400,
// "86400") therefore json.Marshal to identical bytes, which keeps the annotation stable and
// spares pods needless updates. The result shares no memory with cfg.
//
// Normalize fails only on a nil config or an unparsable maxAge; it does not otherwise validate
// (see [Compile]).
func Normalize(cfg *corsconfig.CORSConfig) (*corsconfig.CORSConfig, error) {
	if cfg == nil {
		return nil, errors.New("cors: cannot normalize a nil config")
	}
	out := cloneConfig(cfg)
	if out.UnmatchedPreflights == corsconfig.UnmatchedPreflightsForward {
		out.UnmatchedPreflights = "" // the default: the annotation stays what it was before the field
	}
	out.MaxAge = nil
	if cfg.MaxAge != nil {
		d, err := ParseMaxAge(*cfg.MaxAge)
		if err != nil {
			return nil, err
		}
		if secs := int32(d / time.Second); secs > 0 {
			v := intstr.FromInt32(secs)
			out.MaxAge = &v
		}
	}
	return out, nil
}

// cloneConfig deep-copies cfg with empty lists as nil.
func cloneConfig(cfg *corsconfig.CORSConfig) *corsconfig.CORSConfig {
	out := &corsconfig.CORSConfig{
		AllowMethods:        cloneStrings(cfg.AllowMethods),
		AllowHeaders:        cloneStrings(cfg.AllowHeaders),
		ExposeHeaders:       cloneStrings(cfg.ExposeHeaders),
		AllowCredentials:    cfg.AllowCredentials,
		UnmatchedPreflights: cfg.UnmatchedPreflights,
	}
	if len(cfg.AllowOrigins) > 0 {
		out.AllowOrigins = append([]corsconfig.OriginMatcher(nil), cfg.AllowOrigins...)
	}
	if cfg.MaxAge != nil {
		v := *cfg.MaxAge
		out.MaxAge = &v
	}
	return out
}

func cloneStrings(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return append([]string(nil), s...)
}
