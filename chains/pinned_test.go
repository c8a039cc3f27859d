package chains

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pinItem is a test item: a name and its podSelector.
type pinItem struct {
	name string
	sel  *metav1.LabelSelector
}

func pinSel(item *pinItem) *metav1.LabelSelector { return item.sel }

func names(visit func(func(*pinItem))) []string {
	var out []string
	visit(func(it *pinItem) { out = append(out, it.name) })
	slices.Sort(out)
	return out
}

func TestPinned(t *testing.T) {
	in := func(key string, values ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: metav1.LabelSelectorOpIn, Values: values}
	}
	items := []*pinItem{
		{"web", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}},
		{"web-or-api", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{in("app", "web", "api")}}},
		// Pins app and tier: filed under tier, which no other item pins.
		{"web-front", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web", "tier": "front"}}},
		{"every-pod", nil},
		{"exists", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpExists}}}},
	}
	// allows of a selector pinning app to these values and leaving other keys free.
	appIs := func(values ...string) func(string) ([]string, bool) {
		return func(key string) ([]string, bool) {
			if key == "app" {
				return values, false
			}
			return nil, true
		}
	}
	onlyAbsent := func(key string) ([]string, bool) { return nil, key != "tier" }
	tests := []struct {
		name             string
		labels           map[string]string // MaySelect
		allows           func(string) ([]string, bool)
		selects, overlap []string
	}{
		{"web pod", map[string]string{"app": "web"}, appIs("web"),
			[]string{"every-pod", "exists", "web", "web-or-api"},
			[]string{"every-pod", "exists", "web", "web-front", "web-or-api"}},
		{"api pod", map[string]string{"app": "api", "tier": "front"}, appIs("api"),
			[]string{"every-pod", "exists", "web-front", "web-or-api"},
			[]string{"every-pod", "exists", "web-front", "web-or-api"}},
		{"web or api, once each", nil, appIs("web", "api"),
			[]string{"every-pod", "exists"},
			[]string{"every-pod", "exists", "web", "web-front", "web-or-api"}},
		{"no app value", nil, appIs(),
			[]string{"every-pod", "exists"},
			[]string{"every-pod", "exists", "web-front"}},
		{"tier absent", nil, onlyAbsent,
			[]string{"every-pod", "exists"},
			[]string{"every-pod", "exists", "web", "web-or-api"}},
	}
	check := func(t *testing.T, x *Pinned[*pinItem]) {
		for _, tt := range tests {
			sel := names(func(f func(*pinItem)) {
				_ = x.MaySelect(tt.labels, func(it *pinItem) error { f(it); return nil })
			})
			if !slices.Equal(sel, tt.selects) {
				t.Errorf("%s: MaySelect %v, want %v", tt.name, sel, tt.selects)
			}
			if got := names(func(f func(*pinItem)) { x.MayOverlap(tt.allows, f) }); !slices.Equal(got, tt.overlap) {
				t.Errorf("%s: MayOverlap %v, want %v", tt.name, got, tt.overlap)
			}
			if n := x.MayOverlapCount(tt.allows); n < len(tt.overlap) {
				t.Errorf("%s: MayOverlapCount %d, below the %d visited", tt.name, n, len(tt.overlap))
			}
		}
	}
	t.Run("bulk", func(t *testing.T) { check(t, NewPinned(pinSel, items)) })
	t.Run("added and removed", func(t *testing.T) {
		x := NewPinned(pinSel, []*pinItem(nil))
		extra := &pinItem{"extra", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"},
			MatchExpressions: []metav1.LabelSelectorRequirement{in("app", "web", "x")}}}
		for _, it := range slices.Concat(items[:2], []*pinItem{extra}, items[2:]) {
			x.Add(it)
		}
		if !x.Remove(extra) || x.Remove(extra) {
			t.Fatal("Remove: want true once, then false")
		}
		if x.Len() != len(items) {
			t.Fatalf("Len %d, want %d", x.Len(), len(items))
		}
		check(t, x)
		for _, it := range items {
			x.Remove(it)
		}
		if x.Len() != 0 || len(x.keys) != 0 || len(x.freq) != 0 {
			t.Fatalf("after removing everything: %d items, keys %v, freq %v", x.Len(), x.keys, x.freq)
		}
	})
}
