// Package chaingen generates random PluginChains for the property tests that compare the chain
// index with listing every chain (validate's and inject's).
package chaingen

import (
	"math/rand/v2"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// Gen generates random PluginChains over a small label vocabulary, so that their selectors
// often overlap: matchLabels, In/NotIn/Exists/DoesNotExist (and the odd invalid
// requirement), with or without a namespaceSelector, mounting one CORS plugin or another,
// none, or one in the wrong chain.
type Gen struct {
	Rng        *rand.Rand
	Namespaces []string // the values selectors give kubernetes.io/metadata.name
}

var (
	genKeys   = []string{"app", "tier", "team", corev1.LabelMetadataName}
	genValues = []string{"a", "b", "c"}
)

// Selector is a random label selector, nil or empty now and then.
func (g Gen) Selector() *metav1.LabelSelector {
	rng := g.Rng
	switch rng.IntN(10) {
	case 0:
		return nil
	case 1:
		return &metav1.LabelSelector{}
	}
	sel := &metav1.LabelSelector{}
	for range rng.IntN(3) {
		if sel.MatchLabels == nil {
			sel.MatchLabels = map[string]string{}
		}
		k := genKeys[rng.IntN(len(genKeys))]
		v := genValues[rng.IntN(len(genValues))]
		if k == corev1.LabelMetadataName {
			v = g.Namespaces[rng.IntN(len(g.Namespaces))]
		}
		sel.MatchLabels[k] = v
	}
	ops := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn,
		metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}
	for range rng.IntN(3) {
		r := metav1.LabelSelectorRequirement{Key: genKeys[rng.IntN(3)], Operator: ops[rng.IntN(len(ops))]}
		if r.Operator == metav1.LabelSelectorOpIn || r.Operator == metav1.LabelSelectorOpNotIn {
			for range 1 + rng.IntN(3) {
				r.Values = append(r.Values, genValues[rng.IntN(len(genValues))])
			}
		}
		if rng.IntN(40) == 0 { // an existing chain from before the webhook: invalid
			r.Operator = "Bogus"
		}
		sel.MatchExpressions = append(sel.MatchExpressions, r)
	}
	return sel
}

// Chain is a random PluginChain ns/name.
func (g Gen) Chain(ns, name string) *v1alpha1.PluginChain {
	rng := g.Rng
	plugins := []string{"cors-policy"}
	switch rng.IntN(8) {
	case 0, 1:
		plugins = []string{"cors-b"}
	case 2:
		plugins = []string{"token-auth"}
	case 3:
		plugins = []string{"token-auth", "cors-policy"}
	}
	chainName := v1alpha1.ChainInboundHTTP
	if rng.IntN(15) == 0 {
		chainName = v1alpha1.ChainOutboundHTTP
	}
	c := &v1alpha1.PluginChain{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.PluginChainSpec{
			Chains:    []v1alpha1.ChainPluginSpec{{Name: chainName, Plugins: plugins}},
			Selectors: v1alpha1.ChainSelectorSpec{PodSelector: g.Selector()},
		},
	}
	if rng.IntN(2) == 0 {
		if c.Spec.Selectors.NamespaceSelector = g.Selector(); c.Spec.Selectors.NamespaceSelector == nil {
			c.Spec.Selectors.NamespaceSelector = &metav1.LabelSelector{}
		}
	}
	return c
}

// Labels are random labels for a pod or a namespace.
func (g Gen) Labels() map[string]string {
	l := map[string]string{}
	for range g.Rng.IntN(4) {
		l[genKeys[g.Rng.IntN(3)]] = genValues[g.Rng.IntN(len(genValues))]
	}
	return l
}

// Subset is a random part of of.
func (g Gen) Subset(of []string) []string {
	var out []string
	for _, s := range of {
		if g.Rng.IntN(3) == 0 {
			out = append(out, s)
		}
	}
	return out
}
