package validate

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Label selectors are compared exactly, not by sampling: two selectors overlap when some label
// set satisfies both. A metav1.LabelSelector is a conjunction of per-key requirements
// (matchLabels k=v is "k In (v)"), and requirements on different keys are independent, so the
// conjunction of two selectors is satisfiable exactly when, for every key, the requirements of
// both selectors on that key can hold together. Per key that is a small decision over
//
//	in      the value must be one of these (matchLabels and In, intersected)
//	notIn   the value, if the key is present, must be none of these (NotIn)
//	exists  the key must be present (Exists, and implied by In)
//	absent  the key must be absent (DoesNotExist)
//
// which is decided below without enumerating label sets, and yields a witness: a label set that
// both selectors select.

// keyReq is everything a selector requires of one label key.
type keyReq struct {
	key   string
	hasIn bool
	in    []string // sorted, deduplicated; meaningful when hasIn
	notIn []string // sorted, deduplicated
	// exists is set by Exists only; In implies presence by itself.
	exists bool
	absent bool
}

// constraints is a compiled label selector: one keyReq per key, sorted by key. The zero value
// selects every label set (a nil or empty selector).
type constraints struct {
	reqs []keyReq
}

// errEmptyIn is returned for an In/NotIn without values, which metav1.LabelSelectorAsSelector
// also rejects.
var errEmptyIn = errors.New("values must be non-empty for In and NotIn")

// compileSelector turns a selector into per-key constraints. A nil selector means "select
// everything" here; callers that give nil another meaning (a nil namespaceSelector is the
// chain's own namespace) handle that before. Errors are the ones LabelSelectorAsSelector would
// report on the structure (unknown operator, missing or extra values); label syntax is checked
// by the callers that report field errors.
func compileSelector(sel *metav1.LabelSelector) (constraints, error) {
	if sel == nil || len(sel.MatchLabels)+len(sel.MatchExpressions) == 0 {
		return constraints{}, nil
	}
	reqs := make([]keyReq, 0, len(sel.MatchLabels)+len(sel.MatchExpressions))
	find := func(key string) *keyReq {
		for i := range reqs {
			if reqs[i].key == key {
				return &reqs[i]
			}
		}
		reqs = append(reqs, keyReq{key: key})
		return &reqs[len(reqs)-1]
	}
	for k, v := range sel.MatchLabels {
		find(k).restrictIn([]string{v})
	}
	for _, e := range sel.MatchExpressions {
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			if len(e.Values) == 0 {
				return constraints{}, fmt.Errorf("key %q: %w", e.Key, errEmptyIn)
			}
			find(e.Key).restrictIn(sortedSet(e.Values))
		case metav1.LabelSelectorOpNotIn:
			if len(e.Values) == 0 {
				return constraints{}, fmt.Errorf("key %q: %w", e.Key, errEmptyIn)
			}
			r := find(e.Key)
			r.notIn = unionSorted(r.notIn, sortedSet(e.Values))
		case metav1.LabelSelectorOpExists:
			if len(e.Values) > 0 {
				return constraints{}, fmt.Errorf("key %q: values must be empty for Exists", e.Key)
			}
			find(e.Key).exists = true
		case metav1.LabelSelectorOpDoesNotExist:
			if len(e.Values) > 0 {
				return constraints{}, fmt.Errorf("key %q: values must be empty for DoesNotExist", e.Key)
			}
			find(e.Key).absent = true
		default:
			return constraints{}, fmt.Errorf("%q is not a valid label selector operator", e.Operator)
		}
	}
	slices.SortFunc(reqs, func(a, b keyReq) int { return strings.Compare(a.key, b.key) })
	return constraints{reqs: reqs}, nil
}

// pin returns the constraints of "key = value": what a concrete label, such as the
// kubernetes.io/metadata.name label every namespace carries, requires.
func pin(key, value string) constraints {
	return constraints{reqs: []keyReq{{key: key, hasIn: true, in: []string{value}}}}
}

func (r *keyReq) restrictIn(values []string) {
	if !r.hasIn {
		r.hasIn, r.in = true, values
		return
	}
	r.in = intersectSorted(r.in, values)
}

// jointlyWith decides whether some label set satisfies both c, which must be satisfiable on its
// own, and a selector that is not compiled (nil selects everything; structurally invalid
// selects nothing). A selector of matchLabels only, by far the most common, is decided without
// compiling or allocating: it pins values, so the conjunction holds exactly when c admits each.
func (c *constraints) jointlyWith(sel *metav1.LabelSelector) bool {
	if sel == nil {
		return true
	}
	if len(sel.MatchExpressions) == 0 {
		for k, v := range sel.MatchLabels {
			if !c.admits(k, v) {
				return false
			}
		}
		return true
	}
	other, err := compileSelector(sel)
	if err != nil {
		return false
	}
	ok, _ := jointly(c, &other, false)
	return ok
}

// admits reports whether the constraints on key allow the value v.
func (c *constraints) admits(key, v string) bool {
	i, found := slices.BinarySearchFunc(c.reqs, key, func(r keyReq, k string) int { return strings.Compare(r.key, k) })
	if !found {
		return true
	}
	r := &c.reqs[i]
	return !r.absent && (!r.hasIn || containsSorted(r.in, v)) && !containsSorted(r.notIn, v)
}

// allows says which values of key c allows, as chains.Pinned.MayOverlap asks: anyValue when
// c does not pin the key, else the values of its In set (none when the key must be absent).
// NotIn narrows the In set further; the exact comparison that follows decides that.
func (c *constraints) allows(key string) (values []string, anyValue bool) {
	i, found := slices.BinarySearchFunc(c.reqs, key, func(r keyReq, k string) int { return strings.Compare(r.key, k) })
	if !found {
		return nil, true
	}
	switch r := &c.reqs[i]; {
	case r.absent:
		return nil, false
	case r.hasIn:
		return r.in, false
	}
	return nil, true
}

// satisfiable reports whether some label set satisfies the constraints alone.
func (c *constraints) satisfiable() bool {
	ok, _ := jointly(c, &constraints{}, false)
	return ok
}

// jointly decides whether some label set satisfies both a and b. With witness, it also returns
// such a set (only the keys either selector mentions); without, it does not allocate.
func jointly(a, b *constraints, witness bool) (bool, map[string]string) {
	var out map[string]string
	if witness {
		out = map[string]string{}
	}
	i, j := 0, 0
	for i < len(a.reqs) || j < len(b.reqs) {
		var x, y *keyReq
		switch {
		case j >= len(b.reqs) || (i < len(a.reqs) && a.reqs[i].key < b.reqs[j].key):
			x = &a.reqs[i]
			i++
		case i >= len(a.reqs) || b.reqs[j].key < a.reqs[i].key:
			x = &b.reqs[j]
			j++
		default:
			x, y = &a.reqs[i], &b.reqs[j]
			i++
			j++
		}
		value, present, ok := solveKey(x, y)
		if !ok {
			return false, nil
		}
		if witness && present {
			out[x.key] = value
		}
	}
	return true, out
}

// solveKey decides the requirements of one key (y may be nil) and picks a value for the
// witness: present=false means the key is left out of the label set.
func solveKey(x, y *keyReq) (value string, present, ok bool) {
	absent, exists := x.absent, x.exists || x.hasIn
	if y != nil {
		absent = absent || y.absent
		exists = exists || y.exists || y.hasIn
	}
	excluded := func(v string) bool {
		return containsSorted(x.notIn, v) || (y != nil && containsSorted(y.notIn, v))
	}
	if absent {
		// DoesNotExist holds only with the key absent; NotIn holds then too, In and Exists never.
		return "", false, !exists
	}
	var candidates, other []string
	both := x.hasIn && y != nil && y.hasIn
	switch {
	case both:
		candidates, other = x.in, y.in
	case x.hasIn:
		candidates = x.in
	case y != nil && y.hasIn:
		candidates = y.in
	}
	if x.hasIn || (y != nil && y.hasIn) {
		for _, v := range candidates {
			if (!both || containsSorted(other, v)) && !excluded(v) {
				return v, true, true
			}
		}
		return "", false, false
	}
	// Only Exists and NotIn remain: any value outside the finite excluded sets satisfies both
	// (and with NotIn alone the key could also be absent; a value makes the witness clearer).
	return freeValue(excluded), true, true
}

// freeValue returns a readable label value for which excluded is false; it terminates because
// excluded is true for finitely many values.
func freeValue(excluded func(string) bool) string {
	if !excluded("x") {
		return "x"
	}
	for n := 1; ; n++ {
		if v := "x" + strconv.Itoa(n); !excluded(v) {
			return v
		}
	}
}

func sortedSet(vals []string) []string {
	out := slices.Clone(vals)
	slices.Sort(out)
	return slices.Compact(out)
}

func containsSorted(sorted []string, v string) bool {
	_, found := slices.BinarySearch(sorted, v)
	return found
}

func intersectSorted(a, b []string) []string {
	out := []string{} // non-nil: an empty intersection is "no value allowed"
	for _, v := range a {
		if containsSorted(b, v) {
			out = append(out, v)
		}
	}
	return out
}

func unionSorted(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// formatLabels renders a label set as "{a=1,b=2}" with sorted keys, or "{}" when empty.
func formatLabels(set map[string]string) string {
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(set[k])
	}
	b.WriteByte('}')
	return b.String()
}
