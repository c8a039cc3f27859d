package inject

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// ChainIndex is a precompiled, immutable view of the PluginChains that mount a CORS plugin in
// inbound-http, for the admission hot path. Without it, every pod admission lists every chain
// with a namespaceSelector and evaluates its selectors; FSM-style chains all carry one (the
// seed's does), so with thousands of chains that is milliseconds per pod.
//
// The index compiles every selector once, and files each chain under one label its
// podSelector requires (a matchLabels pair, or the values of an In expression), choosing the
// least shared one. A pod is then checked only against the chains filed under its own labels,
// plus the few whose podSelector requires no particular label value.
//
// Build it with [Injector.IndexChains] whenever the chains change; a Reader that keeps one
// offers it through [IndexedChains].
type ChainIndex struct {
	owner *Injector
	// own are the chains without a namespaceSelector, by their namespace: they select pods of
	// that namespace only.
	own map[string]*anchored
	// wide are the chains with a namespaceSelector.
	wide anchored
}

// IndexedChains is implemented by Readers that keep a ChainIndex up to date (the webhook
// server's, fed by the informer of PluginChains). Inject and Resolve use it instead of listing
// PluginChains from the Reader.
type IndexedChains interface {
	// CORSChainIndex returns the current index. It must have been built by the Injector
	// that asks; otherwise the Injector ignores it.
	CORSChainIndex() (*ChainIndex, error)
}

type indexedChain = chains.Compiled

// anchored files chains by one label requirement of their podSelector.
type anchored struct {
	byLabel    map[string]map[string][]*indexedChain // label key -> value -> chains
	unanchored []*indexedChain                       // podSelector requires no label value
}

// IndexChains builds the index of chains (the cluster's PluginChains, in any order) for in's
// CORS plugins. Chains that mount no CORS plugin in inbound-http are left out; chains with an
// invalid selector select nothing, as with the apimachinery conversion.
func (in *Injector) IndexChains(list []*v1alpha1.PluginChain) *ChainIndex {
	ix := &ChainIndex{owner: in, own: map[string]*anchored{}}
	ownEntries := map[string][]*indexedChain{}
	var wideEntries []*indexedChain
	for _, c := range list {
		if !in.selection.Plugins.Mounts(c) {
			continue
		}
		e, ok := in.selection.Compile(c)
		if !ok {
			continue
		}
		if !e.OwnNamespaceOnly() {
			wideEntries = append(wideEntries, e)
			continue
		}
		ownEntries[c.Namespace] = append(ownEntries[c.Namespace], e)
	}
	for ns, entries := range ownEntries {
		ix.own[ns] = newAnchored(entries)
	}
	ix.wide = *newAnchored(wideEntries)
	return ix
}

// anchor is a requirement of a podSelector that pins a label to one of a few values: only
// pods with such a label can match.
type anchor struct {
	key    string
	values []string
}

func anchorsOf(ps *metav1.LabelSelector) []anchor {
	if ps == nil {
		return nil
	}
	var out []anchor
	for k, v := range ps.MatchLabels {
		out = append(out, anchor{k, []string{v}})
	}
	for _, e := range ps.MatchExpressions {
		if e.Operator == metav1.LabelSelectorOpIn && len(e.Values) > 0 {
			out = append(out, anchor{e.Key, e.Values})
		}
	}
	// A deterministic choice among equal costs, whatever the map order.
	slices.SortStableFunc(out, func(x, y anchor) int { return strings.Compare(x.key, y.key) })
	return out
}

func newAnchored(entries []*indexedChain) *anchored {
	a := &anchored{byLabel: map[string]map[string][]*indexedChain{}}
	// Count how many chains require each label value, to file each chain under its rarest.
	type pair struct{ key, value string }
	freq := map[pair]int{}
	for _, e := range entries {
		for _, an := range anchorsOf(e.Chain.Spec.Selectors.PodSelector) {
			for _, v := range an.values {
				freq[pair{an.key, v}]++
			}
		}
	}
	for _, e := range entries {
		var best *anchor
		bestCost := 0
		ans := anchorsOf(e.Chain.Spec.Selectors.PodSelector)
		for i := range ans {
			cost := 0
			for _, v := range ans[i].values {
				cost += freq[pair{ans[i].key, v}]
			}
			if best == nil || cost < bestCost {
				best, bestCost = &ans[i], cost
			}
		}
		if best == nil {
			a.unanchored = append(a.unanchored, e)
			continue
		}
		values := a.byLabel[best.key]
		if values == nil {
			values = map[string][]*indexedChain{}
			a.byLabel[best.key] = values
		}
		for _, v := range slices.Compact(slices.Sorted(slices.Values(best.values))) {
			values[v] = append(values[v], e)
		}
	}
	return a
}

// selectIndexed is the chain matching of selectChains over an index: the same answer without
// listing chains. It does not allocate unless a chain matches.
func (in *Injector) selectIndexed(ix *ChainIndex, podLabels map[string]string, ns *corev1.Namespace, sel *selection, r clusterstate.Reader) error {
	groups := [2]*anchored{ix.own[ns.Name], &ix.wide}
	for _, a := range groups {
		if a == nil {
			continue
		}
		for k, v := range podLabels {
			for _, e := range a.byLabel[k][v] {
				if err := in.visitIndexed(e, podLabels, ns, sel, r); err != nil {
					return err
				}
			}
		}
		for _, e := range a.unanchored {
			if err := in.visitIndexed(e, podLabels, ns, sel, r); err != nil {
				return err
			}
		}
	}
	return nil
}

func (in *Injector) visitIndexed(e *indexedChain, podLabels map[string]string, ns *corev1.Namespace, sel *selection, r clusterstate.Reader) error {
	if !e.Selects(podLabels, ns) {
		return nil
	}
	return in.addChain(sel, e.Chain, ns, r)
}
