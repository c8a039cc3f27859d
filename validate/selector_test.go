package validate

import (
	"math/rand/v2"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

func req(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
	return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
}

const (
	in           = metav1.LabelSelectorOpIn
	notIn        = metav1.LabelSelectorOpNotIn
	exists       = metav1.LabelSelectorOpExists
	doesNotExist = metav1.LabelSelectorOpDoesNotExist
)

func sel(matchLabels map[string]string, exprs ...metav1.LabelSelectorRequirement) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: matchLabels, MatchExpressions: exprs}
}

// seedPodSelector is the podSelector of the seed's PluginChain: matchLabels and an In on the
// same key.
var seedPodSelector = sel(map[string]string{"app": "pipy-ok"}, req("app", in, "pipy-ok"))

func TestJointlySatisfiable(t *testing.T) {
	tests := []struct {
		name string
		a, b *metav1.LabelSelector
		want bool
	}{
		{"nil and nil", nil, nil, true},
		{"empty and anything", sel(nil), sel(map[string]string{"a": "1"}), true},
		{"seed selector with itself", seedPodSelector, seedPodSelector, true},
		{"seed selector and a version", seedPodSelector, sel(map[string]string{"app": "pipy-ok", "version": "v1"}), true},
		{"seed selector and another app", seedPodSelector, sel(map[string]string{"app": "other"}), false},
		{"seed selector and app NotIn pipy-ok", seedPodSelector, sel(nil, req("app", notIn, "pipy-ok")), false},
		{"seed selector and app DoesNotExist", seedPodSelector, sel(nil, req("app", doesNotExist)), false},
		{"seed selector and app Exists", seedPodSelector, sel(nil, req("app", exists)), true},
		{"matchLabels and In on one key, contradicting", sel(map[string]string{"app": "a"}, req("app", in, "b")), nil, false},
		{"In a vs In b (disjoint teams)", sel(nil, req("team", in, "a")), sel(nil, req("team", in, "b")), false},
		{"In a,b vs In b,c", sel(nil, req("team", in, "a", "b")), sel(nil, req("team", in, "b", "c")), true},
		{"In a,b vs In b,c and NotIn b", sel(nil, req("team", in, "a", "b")), sel(nil, req("team", in, "b", "c"), req("team", notIn, "b")), false},
		{"In vs NotIn of all its values", sel(nil, req("team", in, "a", "b")), sel(nil, req("team", notIn, "b", "a")), false},
		{"In vs NotIn of some values", sel(nil, req("team", in, "a", "b")), sel(nil, req("team", notIn, "a")), true},
		{"Exists vs DoesNotExist", sel(nil, req("x", exists)), sel(nil, req("x", doesNotExist)), false},
		{"NotIn vs DoesNotExist", sel(nil, req("x", notIn, "1")), sel(nil, req("x", doesNotExist)), true},
		{"NotIn vs NotIn", sel(nil, req("x", notIn, "1")), sel(nil, req("x", notIn, "x", "x1")), true},
		{"Exists vs NotIn", sel(nil, req("x", exists)), sel(nil, req("x", notIn, "x")), true},
		{"DoesNotExist vs matchLabels", sel(nil, req("x", doesNotExist)), sel(map[string]string{"x": ""}), false},
		{"different keys", sel(map[string]string{"a": "1"}), sel(map[string]string{"b": "2"}), true},
		{"self-contradicting selector", sel(nil, req("a", exists), req("a", doesNotExist)), nil, false},
		{"empty value is a value", sel(map[string]string{"a": ""}), sel(nil, req("a", exists)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := compileSelector(tt.a)
			if err != nil {
				t.Fatal(err)
			}
			b, err := compileSelector(tt.b)
			if err != nil {
				t.Fatal(err)
			}
			got, witness := jointly(&a, &b, true)
			if got != tt.want {
				t.Fatalf("jointly = %v, want %v", got, tt.want)
			}
			if got2, _ := jointly(&b, &a, false); got2 != got {
				t.Fatalf("not symmetric: %v vs %v", got, got2)
			}
			if got {
				assertSelects(t, tt.a, witness)
				assertSelects(t, tt.b, witness)
			}
		})
	}
}

// assertSelects checks a witness with apimachinery's own selector semantics (nil selects all
// here, as a nil podSelector does).
func assertSelects(t *testing.T, s *metav1.LabelSelector, set map[string]string) {
	t.Helper()
	if s == nil {
		return
	}
	ls, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	if !ls.Matches(labels.Set(set)) {
		t.Fatalf("witness %s is not selected by %s", formatLabels(set), ls)
	}
}

// TestJointlyExhaustive compares the decision with brute force over every label set on a small
// universe, for random selectors using all four operators and matchLabels. With keys k0,k1 and
// values v0..v2 in the selectors, assigning each key "absent", a value of the universe, or one
// value outside it ("other") covers every case, so brute force is the exact answer.
func TestJointlyExhaustive(t *testing.T) {
	keys := []string{"k0", "k1"}
	values := []string{"v0", "v1", "v2"}
	assign := append([]string{"", "other"}, values...) // "" = absent
	rng := rand.New(rand.NewPCG(1, 2))
	randomSelector := func() *metav1.LabelSelector {
		s := &metav1.LabelSelector{}
		if rng.IntN(3) == 0 {
			s.MatchLabels = map[string]string{keys[rng.IntN(2)]: values[rng.IntN(3)]}
		}
		for n := rng.IntN(4); n > 0; n-- {
			k := keys[rng.IntN(2)]
			var vals []string
			for _, v := range values {
				if rng.IntN(2) == 0 {
					vals = append(vals, v)
				}
			}
			if len(vals) == 0 {
				vals = []string{values[rng.IntN(3)]}
			}
			switch rng.IntN(4) {
			case 0:
				s.MatchExpressions = append(s.MatchExpressions, req(k, in, vals...))
			case 1:
				s.MatchExpressions = append(s.MatchExpressions, req(k, notIn, vals...))
			case 2:
				s.MatchExpressions = append(s.MatchExpressions, req(k, exists))
			default:
				s.MatchExpressions = append(s.MatchExpressions, req(k, doesNotExist))
			}
		}
		return s
	}
	for i := 0; i < 20000; i++ {
		sa, sb := randomSelector(), randomSelector()
		la, _ := metav1.LabelSelectorAsSelector(sa)
		lb, _ := metav1.LabelSelectorAsSelector(sb)
		want := false
		for _, x := range assign {
			for _, y := range assign {
				set := labels.Set{}
				if x != "" {
					set["k0"] = x
				}
				if y != "" {
					set["k1"] = y
				}
				if la.Matches(set) && lb.Matches(set) {
					want = true
				}
			}
		}
		a, _ := compileSelector(sa)
		b, _ := compileSelector(sb)
		got, witness := jointly(&a, &b, true)
		if b.satisfiable() && b.jointlyWith(sa) != want {
			t.Fatalf("selectors %s and %s: jointlyWith = %v, brute force = %v", la, lb, !want, want)
		}
		if got != want {
			t.Fatalf("selectors %s and %s: jointly = %v, brute force = %v", la, lb, got, want)
		}
		if got && (!la.Matches(labels.Set(witness)) || !lb.Matches(labels.Set(witness))) {
			t.Fatalf("selectors %s and %s: witness %s does not match both", la, lb, formatLabels(witness))
		}
	}
}

func TestCompileSelectorErrors(t *testing.T) {
	for _, s := range []*metav1.LabelSelector{
		sel(nil, req("a", in)),
		sel(nil, req("a", notIn)),
		sel(nil, req("a", exists, "x")),
		sel(nil, req("a", doesNotExist, "x")),
		sel(nil, req("a", "Gt", "1")),
	} {
		if _, err := compileSelector(s); err == nil {
			t.Errorf("compileSelector(%v) succeeded", s)
		}
		if _, err := metav1.LabelSelectorAsSelector(s); err == nil {
			t.Errorf("LabelSelectorAsSelector(%v) succeeded: compileSelector must not be stricter", s)
		}
	}
}
