package cors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

// JSON field names of the CORS config, as FSM's cors-policy plugin reads them.
const (
	fieldAllowOrigins     = "allowOrigins"
	fieldAllowMethods     = "allowMethods"
	fieldAllowHeaders     = "allowHeaders"
	fieldExposeHeaders    = "exposeHeaders"
	fieldAllowCredentials = "allowCredentials"
	fieldMaxAge           = "maxAge"

	fieldUnmatchedPreflights = "unmatchedPreflights"

	fieldExact    = "exact"
	fieldPrefix   = "prefix"
	fieldRegex    = "regex"
	fieldWildcard = "wildcard"
)

// configFields and matcherFields list the known fields, sorted, for error messages and
// did-you-mean suggestions.
var (
	configFields  = []string{fieldAllowCredentials, fieldAllowHeaders, fieldAllowMethods, fieldAllowOrigins, fieldExposeHeaders, fieldMaxAge, fieldUnmatchedPreflights}
	matcherFields = []string{fieldExact, fieldPrefix, fieldRegex, fieldWildcard}
)

// Decode strictly decodes a CORS plugin config (the raw JSON of PluginConfig.spec.config).
//
// It is strict because FSM silently ignores what it does not know: a misspelt field such as
// "allowOrigin" would leave CORS off with no hint why. Every unknown field is reported at its
// own path (fldPath.Child(name), or fldPath.Child("allowOrigins").Index(i).Child(name)) with a
// "did you mean" suggestion when a known field is close; field names are case-sensitive, as in
// Kubernetes' strict decoding. A value of the wrong JSON type is reported at its path; null
// counts as absent. Empty or null raw is a Required error at fldPath.
//
// Decode checks only the shape; [Compile] checks the meaning (non-empty allowOrigins, regex
// syntax, maxAge, ...). All shape errors are collected; when there are any, the returned config
// is nil.
func Decode(raw []byte, fldPath *field.Path) (*corsconfig.CORSConfig, field.ErrorList) {
	if k := jsonKind(raw); k == kindNone || k == kindNull {
		return nil, field.ErrorList{field.Required(fldPath, "a CORS config is required")}
	}
	members, errs := objectMembers(raw, fldPath, false)
	if len(errs) > 0 {
		return nil, errs
	}
	cfg := &corsconfig.CORSConfig{}
	for _, m := range members {
		p := fldPath.Child(m.name)
		if !slices.Contains(configFields, m.name) {
			errs = append(errs, unknownField(p, m.name, configFields))
			continue
		}
		if jsonKind(m.raw) == kindNull {
			continue // null is absent, as in Kubernetes
		}
		switch m.name {
		case fieldAllowOrigins:
			var origins []corsconfig.OriginMatcher
			origins, errs = decodeOrigins(m.raw, p, errs)
			cfg.AllowOrigins = origins
		case fieldAllowMethods:
			cfg.AllowMethods, errs = decodeStrings(m.raw, p, errs)
		case fieldAllowHeaders:
			cfg.AllowHeaders, errs = decodeStrings(m.raw, p, errs)
		case fieldExposeHeaders:
			cfg.ExposeHeaders, errs = decodeStrings(m.raw, p, errs)
		case fieldAllowCredentials:
			if jsonKind(m.raw) != kindBool {
				errs = append(errs, typeError(p, m.raw, "boolean"))
				continue
			}
			cfg.AllowCredentials = bytes.Equal(bytes.TrimSpace(m.raw), []byte("true"))
		case fieldMaxAge:
			var v *intstr.IntOrString
			v, errs = decodeMaxAge(m.raw, p, errs)
			cfg.MaxAge = v
		case fieldUnmatchedPreflights:
			errs = decodeString(m.raw, p, &cfg.UnmatchedPreflights, errs)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

func decodeOrigins(raw json.RawMessage, p *field.Path, errs field.ErrorList) ([]corsconfig.OriginMatcher, field.ErrorList) {
	if jsonKind(raw) != kindArray {
		return nil, append(errs, typeError(p, raw, "array"))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, append(errs, field.Invalid(p, field.OmitValueType{}, err.Error()))
	}
	out := make([]corsconfig.OriginMatcher, 0, len(items))
	for i, item := range items {
		ip := p.Index(i)
		if jsonKind(item) != kindObject {
			errs = append(errs, field.TypeInvalid(ip, badValue(item),
				fmt.Sprintf("must be of type object, with one of %q, %q, %q or %q, got %s", fieldExact, fieldPrefix, fieldRegex, fieldWildcard, jsonKind(item))))
			continue
		}
		members, merrs := objectMembers(item, ip, false)
		if len(merrs) > 0 {
			errs = append(errs, merrs...)
			continue
		}
		var m corsconfig.OriginMatcher
		for _, mm := range members {
			mp := ip.Child(mm.name)
			var dst *string
			switch mm.name {
			case fieldExact:
				dst = &m.Exact
			case fieldPrefix:
				dst = &m.Prefix
			case fieldRegex:
				dst = &m.Regex
			case fieldWildcard:
				dst = &m.Wildcard
			default:
				errs = append(errs, unknownField(mp, mm.name, matcherFields))
				continue
			}
			errs = decodeString(mm.raw, mp, dst, errs)
		}
		out = append(out, m)
	}
	return out, errs
}

// decodeString sets *dst from a JSON string; null leaves it unset.
func decodeString(raw json.RawMessage, p *field.Path, dst *string, errs field.ErrorList) field.ErrorList {
	switch jsonKind(raw) {
	case kindNull:
	case kindString:
		if err := json.Unmarshal(raw, dst); err != nil {
			errs = append(errs, field.Invalid(p, field.OmitValueType{}, err.Error()))
		}
	default:
		errs = append(errs, typeError(p, raw, "string"))
	}
	return errs
}

func decodeStrings(raw json.RawMessage, p *field.Path, errs field.ErrorList) ([]string, field.ErrorList) {
	if jsonKind(raw) != kindArray {
		return nil, append(errs, typeError(p, raw, "array"))
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, append(errs, field.Invalid(p, field.OmitValueType{}, err.Error()))
	}
	out := make([]string, 0, len(items))
	for i, item := range items {
		if jsonKind(item) != kindString {
			errs = append(errs, typeError(p.Index(i), item, "string"))
			continue
		}
		var s string
		if err := json.Unmarshal(item, &s); err != nil {
			errs = append(errs, field.Invalid(p.Index(i), field.OmitValueType{}, err.Error()))
			continue
		}
		out = append(out, s)
	}
	return out, errs
}

// decodeMaxAge accepts a JSON string or an integral JSON number that fits in int32 (the range
// of intstr); whether the value means anything is left to ParseMaxAge at Compile.
func decodeMaxAge(raw json.RawMessage, p *field.Path, errs field.ErrorList) (*intstr.IntOrString, field.ErrorList) {
	switch jsonKind(raw) {
	case kindString:
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, append(errs, field.Invalid(p, field.OmitValueType{}, err.Error()))
		}
		v := intstr.FromString(s)
		return &v, errs
	case kindNumber:
		text := string(bytes.TrimSpace(raw))
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			var numErr *strconv.NumError
			if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
				return nil, append(errs, field.Invalid(p, json.Number(text), "is out of range"))
			}
			return nil, append(errs, field.Invalid(p, json.Number(text),
				`must be a whole number of seconds or a duration string such as "24h"`))
		}
		if n > math.MaxInt32 || n < math.MinInt32 {
			return nil, append(errs, field.Invalid(p, n, fmt.Sprintf("is out of range (at most %d seconds)", math.MaxInt32)))
		}
		v := intstr.FromInt32(int32(n))
		return &v, errs
	default:
		return nil, append(errs, typeError(p, raw, "string or integer"))
	}
}

// member is one name/value pair of a JSON object, in document order.
type member struct {
	name string
	raw  json.RawMessage
}

// objectMembers splits a JSON object into its members, in order. Unlike encoding/json it keeps
// duplicate names visible (and reports them), so "last one wins" can never hide a setting.
// Member paths are p.Child(name), or p.Key(name) when keyed (maps such as ports).
func objectMembers(raw []byte, p *field.Path, keyed bool) ([]member, field.ErrorList) {
	if k := jsonKind(raw); k != kindObject {
		if k == kindInvalid {
			return nil, field.ErrorList{field.Invalid(p, field.OmitValueType{}, "is not valid JSON")}
		}
		return nil, field.ErrorList{typeError(p, raw, "object")}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	syntaxErr := func(err error) field.ErrorList {
		return field.ErrorList{field.Invalid(p, field.OmitValueType{}, "invalid JSON: "+err.Error())}
	}
	if _, err := dec.Token(); err != nil { // '{'
		return nil, syntaxErr(err)
	}
	var (
		members []member
		errs    field.ErrorList
		seen    = map[string]bool{}
	)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, syntaxErr(err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, syntaxErr(fmt.Errorf("object key %v is not a string", tok))
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, syntaxErr(err)
		}
		if seen[name] {
			dp := p.Child(name)
			if keyed {
				dp = p.Key(name)
			}
			e := field.Duplicate(dp, name)
			e.Detail = "the field appears more than once in the object"
			errs = append(errs, e)
			continue
		}
		seen[name] = true
		members = append(members, member{name: name, raw: v})
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, syntaxErr(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, syntaxErr(errors.New("unexpected data after the object"))
	}
	return members, errs
}

// unknownField reports a field the decoder does not know, suggesting the closest known one.
func unknownField(p *field.Path, name string, known []string) *field.Error {
	detail := fmt.Sprintf("unknown field %q", name)
	if s := suggest(name, known); s != "" {
		detail += fmt.Sprintf(", did you mean %q?", s)
	} else {
		detail += "; known fields: " + strings.Join(known, ", ")
	}
	return field.Invalid(p, field.OmitValueType{}, detail)
}

// suggest returns the known name closest to name when it is a plausible typo: equal ignoring
// case, or within edit distance 2 (compared case-insensitively). Ties go to the earlier name.
func suggest(name string, known []string) string {
	best, bestDist := "", 3
	ln := strings.ToLower(name)
	for _, k := range known {
		if strings.EqualFold(name, k) {
			return k
		}
		if d := editDistance(ln, strings.ToLower(k)); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

type kind string

const (
	kindNone    kind = "nothing"
	kindInvalid kind = "invalid JSON"
	kindNull    kind = "null"
	kindBool    kind = "boolean"
	kindNumber  kind = "number"
	kindString  kind = "string"
	kindArray   kind = "array"
	kindObject  kind = "object"
)

// jsonKind classifies a JSON value by its first byte; it does not validate the rest.
func jsonKind(raw []byte) kind {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return kindNone
	}
	switch c := raw[0]; {
	case c == '{':
		return kindObject
	case c == '[':
		return kindArray
	case c == '"':
		return kindString
	case c == 't' || c == 'f':
		return kindBool
	case c == 'n':
		return kindNull
	case c == '-' || (c >= '0' && c <= '9'):
		return kindNumber
	default:
		return kindInvalid
	}
}

// typeError reports a value of the wrong JSON type, the way Kubernetes' schema validation words it.
func typeError(p *field.Path, raw []byte, want string) *field.Error {
	return field.TypeInvalid(p, badValue(raw), fmt.Sprintf("must be of type %s, got %s", want, jsonKind(raw)))
}

// badValue renders scalars as themselves and omits composite values, which would only clutter
// the message.
func badValue(raw []byte) any {
	switch jsonKind(raw) {
	case kindString:
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	case kindNumber:
		return json.Number(bytes.TrimSpace(raw))
	case kindBool:
		return bytes.Equal(bytes.TrimSpace(raw), []byte("true"))
	case kindNull:
		return "null"
	}
	return field.OmitValueType{}
}
