package chains

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// TestSelectorMatchesAgreesWithApimachinery: the pre-check that keeps the admission hot path
// cheap must never change an answer. Every selector is tried on every label set.
func TestSelectorMatchesAgreesWithApimachinery(t *testing.T) {
	req := func(key string, op metav1.LabelSelectorOperator, values ...string) metav1.LabelSelectorRequirement {
		return metav1.LabelSelectorRequirement{Key: key, Operator: op, Values: values}
	}
	selectors := []*metav1.LabelSelector{
		{},
		{MatchLabels: map[string]string{"app": "web"}},
		{MatchLabels: map[string]string{"app": "web", "tier": "front"}},
		{MatchLabels: map[string]string{"app": ""}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpIn, "web", "api")}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpNotIn, "web")}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpExists)}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpDoesNotExist)}},
		{MatchLabels: map[string]string{"app": "web"}, MatchExpressions: []metav1.LabelSelectorRequirement{req("tier", metav1.LabelSelectorOpNotIn, "back")}},
		// Invalid selectors select nothing.
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpIn)}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpNotIn)}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpExists, "web")}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", "Near", "web")}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("bad key!", metav1.LabelSelectorOpDoesNotExist)}},
		{MatchExpressions: []metav1.LabelSelectorRequirement{req("app", metav1.LabelSelectorOpNotIn, "not a value!")}},
		{MatchLabels: map[string]string{"app": "not a value!"}},
	}
	sets := []map[string]string{
		nil,
		{"app": "web"},
		{"app": "api"},
		{"app": ""},
		{"app": "web", "tier": "front"},
		{"app": "web", "tier": "back"},
		{"tier": "front"},
	}
	for i, sel := range selectors {
		for _, set := range sets {
			t.Run(fmt.Sprintf("%d/%v", i, set), func(t *testing.T) {
				want := false
				if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
					want = s.Matches(labels.Set(set))
				}
				if got := selectorMatches(sel, labelSet(set), false); got != want {
					t.Errorf("selectorMatches(%v, %v) = %v, apimachinery says %v", sel, set, got, want)
				}
			})
		}
	}
	if selectorMatches(nil, labelSet{"app": "web"}, false) || !selectorMatches(nil, labelSet{"app": "web"}, true) {
		t.Error("a nil selector must select what the caller says")
	}
}

func TestSelectorMatchesDoesNotAllocateOnMismatch(t *testing.T) {
	sel := &metav1.LabelSelector{
		MatchLabels:      map[string]string{"app": "pipy-ok"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"pipy-ok"}}},
	}
	set := map[string]string{"app": "curl", "pod-template-hash": "abc"}
	if n := testing.AllocsPerRun(100, func() { selectorMatches(sel, labelSet(set), false) }); n != 0 {
		t.Errorf("%v allocations per mismatch, want 0", n)
	}
	c := &v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: "other", Name: "c"}}
	c.Spec.Selectors.PodSelector = sel
	c.Spec.Selectors.NamespaceSelector = &metav1.LabelSelector{}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	s := Selection{Tenancy: Tenancy{ClusterNamespaces: []string{"other"}}}
	if n := testing.AllocsPerRun(100, func() { s.Selects(c, set, ns) }); n != 0 {
		t.Errorf("%v allocations per mismatch, want 0", n)
	}
}
