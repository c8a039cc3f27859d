package chains

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/contract"
)

// lister is a Lister over a fixed list of chains.
type lister []*v1alpha1.PluginChain

func (l lister) PluginChainsInNamespace(ns string) ([]*v1alpha1.PluginChain, error) {
	return slices.DeleteFunc(slices.Clone(l), func(c *v1alpha1.PluginChain) bool { return c.Namespace != ns }), nil
}

func (l lister) PluginChainsWithNamespaceSelector() ([]*v1alpha1.PluginChain, error) {
	return slices.DeleteFunc(slices.Clone(l), func(c *v1alpha1.PluginChain) bool { return c.Spec.Selectors.NamespaceSelector == nil }), nil
}

// indexedLister is a lister that keeps an Index.
type indexedLister struct {
	lister
	ix *Index
}

func (l indexedLister) ChainIndex() (*Index, error) { return l.ix, nil }

// randomChains are chains in a few namespaces, with and without selectors, mounting a CORS
// plugin or not.
func randomChains(rng *rand.Rand, namespaces []string, n int) []*v1alpha1.PluginChain {
	sel := func() *metav1.LabelSelector {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return &metav1.LabelSelector{}
		}
		return &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprint(rng.IntN(3))}}
	}
	var out []*v1alpha1.PluginChain
	for i := range n {
		plugin := DefaultPlugin
		if rng.IntN(4) == 0 {
			plugin = "token-auth"
		}
		c := chain(namespaces[rng.IntN(len(namespaces))], sel(), sel(), v1alpha1.ChainPluginSpec{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{plugin}})
		c.Name = fmt.Sprintf("c%d", i)
		out = append(out, c)
	}
	return out
}

// TestIndexAgreesWithTheRule: for random chains and pods, the chains the Index visits as
// selecting a pod are exactly those Selection.Acts accepts among all chains, and its
// Candidates of a namespace are those of the listing, which hold every chain that acts there.
func TestIndexAgreesWithTheRule(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	names := []string{"a", "b", "ops", "kube-system"}
	sel := Selection{Tenancy: Tenancy{ClusterNamespaces: []string{"ops"}, SkippedNamespaces: []string{"kube-system"}}}
	acting := 0
	for round := range 100 {
		all := randomChains(rng, names, 20)
		ix := NewIndex(sel, all...)
		if ix.Len() != len(all) {
			t.Fatalf("round %d: %d filed, want %d", round, ix.Len(), len(all))
		}
		indexed := indexedLister{lister(all), ix}
		for _, name := range names {
			ns := namespace(name, map[string]string{"team": fmt.Sprint(rng.IntN(2))})
			pod := map[string]string{"app": fmt.Sprint(rng.IntN(3))}
			var want, got []string
			for _, c := range all {
				if sel.Acts(c, pod, ns) {
					want = append(want, Key(c))
				}
			}
			if err := ix.Selecting(pod, ns, func(c *v1alpha1.PluginChain) error { got = append(got, Key(c)); return nil }); err != nil {
				t.Fatal(err)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("round %d, pod %v in %s: index selects %v, the rule %v", round, pod, name, got, want)
			}
			acting += len(want)
			listed, _ := sel.Candidates(lister(all), name)
			fromIndex, _ := sel.Candidates(indexed, name)
			keys := func(l []*v1alpha1.PluginChain) []string {
				var out []string
				for _, c := range l {
					out = append(out, Key(c))
				}
				slices.Sort(out)
				return out
			}
			if !slices.Equal(keys(listed), keys(fromIndex)) {
				t.Fatalf("round %d, namespace %s: candidates listed %v, from the index %v", round, name, keys(listed), keys(fromIndex))
			}
			for _, k := range want {
				if !slices.Contains(keys(listed), k) {
					t.Fatalf("round %d: %s acts in %s but is no candidate", round, k, name)
				}
			}
		}
	}
	if acting < 100 {
		t.Fatalf("only %d chains acted: the generator does not discriminate", acting)
	}
}

// TestIndexOfAnotherRuleIsNotUsed: an Index answers for the rule it was filed under only.
func TestIndexOfAnotherRuleIsNotUsed(t *testing.T) {
	sel := Selection{}
	r := indexedLister{nil, NewIndex(Selection{Plugins: NewPlugins("other")})}
	if ix, _ := sel.IndexOf(r); ix != nil {
		t.Fatal("an index of other CORS plugins was used")
	}
	r.ix = NewIndex(Selection{Plugins: NewPlugins(DefaultPlugin)})
	if ix, _ := sel.IndexOf(r); ix == nil {
		t.Fatal("an index of the default CORS plugins, named, was not used")
	}
}

// TestExplainAgreesWithActs: Explain says ReasonSelected exactly when the chain acts on the
// pod and is not ignored, and every reason has a sentence.
func TestExplainAgreesWithActs(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	names := []string{"a", "b", "ops", "kube-system"}
	sel := Selection{Tenancy: Tenancy{ClusterNamespaces: []string{"ops"}, SkippedNamespaces: []string{"kube-system"}}}
	seen := map[Reason]bool{}
	for range 2000 {
		c := randomChains(rng, names, 1)[0]
		podNS := namespace(names[rng.IntN(len(names))], map[string]string{"team": fmt.Sprint(rng.IntN(2))})
		chainNS := namespace(c.Namespace, nil)
		if rng.IntN(4) == 0 {
			chainNS.Labels = map[string]string{contract.LabelNamespaceInject: contract.NamespaceInjectDisabled}
		}
		pod := map[string]string{"app": fmt.Sprint(rng.IntN(3))}
		r := sel.Explain(c, pod, podNS, chainNS)
		seen[r] = true
		want := sel.Acts(c, pod, podNS) && (c.Namespace == podNS.Name || !sel.IgnoresIn(c, chainNS))
		if (r == ReasonSelected) != want {
			t.Fatalf("Explain = %s, acts = %v, for %s in %s, pod %v in %s", r, want, Key(c), c.Namespace, pod, podNS.Name)
		}
		if _, ok := Reasons[r]; !ok {
			t.Fatalf("reason %s has no sentence", r)
		}
	}
	for r := range Reasons {
		if !seen[r] {
			t.Errorf("reason %s never explained: the generator misses a case", r)
		}
	}
}
