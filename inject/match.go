package inject

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// selection is what the PluginChains say about one pod.
type selection struct {
	// chains are the matching chains that mount a declared CORS plugin, as "namespace/name".
	chains []string
	// plugins are the declared CORS plugins those chains mount, sorted and unique.
	plugins []string
	// undeclared explains matching chains whose CORS plugin has no Plugin declaration: they
	// have no effect, as in FSM, but a user wondering why a pod has no sidecar needs to know.
	undeclared []string
}

func (s *selection) selected() bool { return len(s.plugins) > 0 }

// selectChains finds the PluginChains that select a pod with these labels in namespace ns and
// mount a CORS plugin in inbound-http. It does not allocate for chains that do not match, which
// is almost every chain for almost every pod.
func (in *Injector) selectChains(podLabels map[string]string, ns *corev1.Namespace, r clusterstate.Reader) (selection, error) {
	var sel selection
	if src, ok := r.(IndexedChains); ok {
		ix, err := src.CORSChainIndex()
		if err != nil {
			return sel, fmt.Errorf("reading the PluginChain index: %w", err)
		}
		if ix != nil && ix.owner == in {
			if err := in.selectIndexed(ix, podLabels, ns, &sel, r); err != nil {
				return sel, err
			}
			return sel.sorted(), nil
		}
	}
	own, err := r.PluginChainsInNamespace(ns.Name)
	if err != nil {
		return sel, fmt.Errorf("listing the PluginChains of namespace %s: %w", ns.Name, err)
	}
	for _, c := range own {
		// Chains with a namespaceSelector are visited below, with every other such chain.
		if c.Spec.Selectors.NamespaceSelector != nil || !in.mountsCORS(c) {
			continue
		}
		if ps := c.Spec.Selectors.PodSelector; ps != nil && !selectorMatches(ps, podLabels) {
			continue
		}
		if err := in.addChain(&sel, c, r); err != nil {
			return sel, err
		}
	}
	wide, err := r.PluginChainsWithNamespaceSelector()
	if err != nil {
		return sel, fmt.Errorf("listing the PluginChains with a namespaceSelector: %w", err)
	}
	for _, c := range wide {
		if !in.mountsCORS(c) {
			continue
		}
		// Both cheap pre-checks first: in clusters where chains carry a namespaceSelector
		// that every namespace satisfies (the seed's style), only the podSelector tells
		// chains apart, and converting every namespaceSelector would dominate.
		nsSel, podSel := c.Spec.Selectors.NamespaceSelector, c.Spec.Selectors.PodSelector
		if !mayMatch(nsSel, ns.Labels) || (podSel != nil && !mayMatch(podSel, podLabels)) {
			continue
		}
		if !selectorMatches(nsSel, ns.Labels) || (podSel != nil && !selectorMatches(podSel, podLabels)) {
			continue
		}
		if err := in.addChain(&sel, c, r); err != nil {
			return sel, err
		}
	}
	return sel.sorted(), nil
}

// sorted makes the selection independent of the order chains were visited in.
func (s selection) sorted() selection {
	slices.Sort(s.chains)
	s.chains = slices.Compact(s.chains)
	slices.Sort(s.plugins)
	s.plugins = slices.Compact(s.plugins)
	slices.Sort(s.undeclared)
	s.undeclared = slices.Compact(s.undeclared)
	return s
}

// addChain adds c, a chain that mounts a CORS plugin and selects the pod, to sel with the
// CORS plugins it mounts that are declared.
func (in *Injector) addChain(sel *selection, c *v1alpha1.PluginChain, r clusterstate.Reader) error {
	key := c.Namespace + "/" + c.Name
	declared := false
	for _, chain := range c.Spec.Chains {
		if chain.Name != v1alpha1.ChainInboundHTTP {
			continue
		}
		for _, p := range chain.Plugins {
			if !in.corsPlugins[p] {
				continue
			}
			plugin, err := r.Plugin(p)
			if err != nil {
				return fmt.Errorf("reading Plugin %s: %w", p, err)
			}
			if plugin == nil {
				sel.undeclared = append(sel.undeclared, fmt.Sprintf("PluginChain %s mounts %s, but no Plugin %s is declared", key, p, p))
				continue
			}
			sel.plugins = append(sel.plugins, p)
			declared = true
		}
	}
	if declared {
		sel.chains = append(sel.chains, key)
	}
	return nil
}

// mountsCORS reports whether c lists a CORS plugin in inbound-http, the only mount point where
// this product acts. It is the cheapest test, so it runs before any selector.
func (in *Injector) mountsCORS(c *v1alpha1.PluginChain) bool {
	for _, chain := range c.Spec.Chains {
		if chain.Name != v1alpha1.ChainInboundHTTP {
			continue
		}
		for _, p := range chain.Plugins {
			if in.corsPlugins[p] {
				return true
			}
		}
	}
	return false
}

// selectorMatches reports whether a label selector selects a set of labels, with the semantics
// of metav1.LabelSelectorAsSelector: an empty selector selects everything, a nil one nothing,
// and an invalid one nothing.
//
// Converting a selector costs allocations and validation, and the admission hot path would pay
// it for every chain in the cluster on every pod. So a cheap, allocation-free pre-check rejects
// the selectors that cannot match; only the few that may match are converted, which keeps the
// apimachinery implementation the one that decides.
func selectorMatches(sel *metav1.LabelSelector, set map[string]string) bool {
	if sel == nil || !mayMatch(sel, set) {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		return false
	}
	return s.Matches(labels.Set(set))
}

// mayMatch is false only when sel certainly does not select set: for every valid selector it
// agrees with the apimachinery selector, and for operators it does not know it says "maybe".
func mayMatch(sel *metav1.LabelSelector, set map[string]string) bool {
	for k, v := range sel.MatchLabels {
		if got, ok := set[k]; !ok || got != v {
			return false
		}
	}
	for i := range sel.MatchExpressions {
		e := &sel.MatchExpressions[i]
		got, ok := set[e.Key]
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

// serviceSelects reports whether a Service's selector selects the pod's labels. A Service
// without a selector selects no pod (its endpoints are managed by hand).
func serviceSelects(svc *corev1.Service, podLabels map[string]string) bool {
	if len(svc.Spec.Selector) == 0 {
		return false
	}
	for k, v := range svc.Spec.Selector {
		if got, ok := podLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
