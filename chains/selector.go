package chains

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// NamespaceLabels are the labels a namespaceSelector is matched against: the namespace's
// labels plus kubernetes.io/metadata.name, which the API server sets on every namespace and
// files may leave out. It implements labels.Labels without copying the labels.
func NamespaceLabels(ns *corev1.Namespace) labels.Labels { return namespaceLabels{ns} }

type namespaceLabels struct{ ns *corev1.Namespace }

func (n namespaceLabels) Has(key string) bool { _, ok := n.Lookup(key); return ok }
func (n namespaceLabels) Get(key string) string {
	v, _ := n.Lookup(key)
	return v
}
func (n namespaceLabels) Lookup(key string) (string, bool) {
	if key == corev1.LabelMetadataName {
		return n.ns.Name, true
	}
	v, ok := n.ns.Labels[key]
	return v, ok
}

// labelSet is a plain label map as labels.Labels, without the copy labels.Set conversions make
// when the map is nil.
type labelSet map[string]string

func (l labelSet) Has(key string) bool            { _, ok := l[key]; return ok }
func (l labelSet) Get(key string) string          { return l[key] }
func (l labelSet) Lookup(k string) (string, bool) { v, ok := l[k]; return v, ok }

// selectorMatches applies a label selector with the semantics of
// metav1.LabelSelectorAsSelector, except for nil, which selects everything when nilAll and
// nothing otherwise (callers give nil its meaning). An invalid selector selects nothing.
//
// Converting a selector costs allocations and validation, and the admission hot path would pay
// it for every chain in the cluster on every pod. So a cheap, allocation-free pre-check rejects
// the selectors that cannot match; only the few that may match are converted, which keeps the
// apimachinery implementation the one that decides.
func selectorMatches(sel *metav1.LabelSelector, set labels.Labels, nilAll bool) bool {
	if sel == nil {
		return nilAll
	}
	if !mayMatch(sel, set) {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(set)
}

// mayMatch is false only when sel certainly does not select set: for every valid selector it
// agrees with the apimachinery selector, and for operators it does not know it says "maybe".
func mayMatch(sel *metav1.LabelSelector, set labels.Labels) bool {
	for k, v := range sel.MatchLabels {
		if got, ok := set.Lookup(k); !ok || got != v {
			return false
		}
	}
	for i := range sel.MatchExpressions {
		e := &sel.MatchExpressions[i]
		got, ok := set.Lookup(e.Key)
		switch e.Operator {
		case metav1.LabelSelectorOpIn:
			if !ok || !slices.Contains(e.Values, got) {
				return false
			}
		case metav1.LabelSelectorOpNotIn:
			if ok && slices.Contains(e.Values, got) {
				return false
			}
		case metav1.LabelSelectorOpExists:
			if !ok {
				return false
			}
		case metav1.LabelSelectorOpDoesNotExist:
			if ok {
				return false
			}
		}
	}
	return true
}
