package inject

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/internal/chaingen"
)

// TestChainIndexAgreesWithListing: for random chains, namespaces and pods, selecting chains
// through the index, built at once or change by change, gives exactly what listing and
// evaluating every chain gives.
func TestChainIndexAgreesWithListing(t *testing.T) {
	nsNames := []string{"a", "b", "c", "ops"} // chains in ops, the cluster-chain namespace, reach others
	g := chaingen.Gen{Rng: rand.New(rand.NewPCG(1, 2)), Namespaces: nsNames}
	rng := g.Rng
	in := newInjector(t)
	selected := 0
	for round := range 50 {
		var objs []any
		objs = append(objs, objects(t, seedPlugin)...)
		for _, ns := range nsNames {
			objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: g.Labels()}})
		}
		var list []*v1alpha1.PluginChain
		for i := range 12 {
			c := g.Chain(nsNames[rng.IntN(len(nsNames))], fmt.Sprintf("c%d", i))
			list = append(list, c)
			objs = append(objs, c)
		}
		snap := clusterstate.NewSnapshot(objs...)
		indexed := clusterstate.IndexedSnapshot{Snapshot: snap, Index: chains.NewIndex(in.Selection(), list...)}
		// The same chains filed change by change, as the informer's handler files them: in
		// random order, some first in an earlier version (another namespace reach, selector or
		// plugin), some deleted and added again, plus chains that come and go.
		changed := chains.NewIndex(in.Selection())
		for _, i := range rng.Perm(len(list)) {
			c := list[i]
			if rng.IntN(3) == 0 {
				earlier := c.DeepCopy()
				earlier.Spec.Selectors.PodSelector = g.Selector()
				if rng.IntN(2) == 0 {
					earlier.Spec.Selectors.NamespaceSelector = &metav1.LabelSelector{}
				} else {
					earlier.Spec.Selectors.NamespaceSelector = nil
				}
				changed.Set(earlier)
			}
			if rng.IntN(4) == 0 {
				changed.Set(c)
				changed.Delete(c.Namespace, c.Name)
			}
			changed.Set(c)
			if rng.IntN(4) == 0 {
				gone := c.DeepCopy()
				gone.Name += "-gone"
				changed.Set(gone)
				changed.Delete(gone.Namespace, gone.Name)
			}
		}
		changed.Delete("a", "never-filed")
		if changed.Len() != indexed.Index.Len() {
			t.Fatalf("round %d: %d chains filed change by change, %d at once", round, changed.Len(), indexed.Index.Len())
		}
		incremental := clusterstate.IndexedSnapshot{Snapshot: snap, Index: changed}
		for p := range 40 {
			ns, _ := snap.Namespace(nsNames[rng.IntN(len(nsNames))])
			podLabels := g.Labels()
			want, err := in.selectChains(podLabels, ns, snap)
			if err != nil {
				t.Fatal(err)
			}
			got, err := in.selectChains(podLabels, ns, indexed)
			if err != nil {
				t.Fatal(err)
			}
			if want.selected() {
				selected++
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(selection{})); diff != "" {
				t.Fatalf("round %d pod %d in %s with %v: index differs (-listing +index):\n%s", round, p, ns.Name, podLabels, diff)
			}
			got, err = in.selectChains(podLabels, ns, incremental)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got, cmp.AllowUnexported(selection{})); diff != "" {
				t.Fatalf("round %d pod %d in %s with %v: index filed change by change differs (-listing +index):\n%s", round, p, ns.Name, podLabels, diff)
			}
		}
	}
	// The random cases must exercise both answers.
	if selected < 400 || selected > 1600 {
		t.Errorf("%d of 2000 random pods selected: the generator no longer tests both sides", selected)
	}
}

// TestChainIndexOfAnotherRuleIsIgnored: an index filed under another rule (other CORS plugins,
// another tenancy) answers for that rule, so the injector lists chains instead.
func TestChainIndexOfAnotherRuleIsIgnored(t *testing.T) {
	in := newInjector(t)
	snap := clusterstate.NewSnapshot(objects(t, seed...)...)
	// An index of no chains, of another rule: using it would select nothing.
	other := in.Selection()
	other.Plugins = chains.NewPlugins("cors-policy")
	r := clusterstate.IndexedSnapshot{Snapshot: snap, Index: chains.NewIndex(other)}
	res := injectInto(t, in, pod(t, podPipyV1), seed...)
	ns, _ := snap.Namespace("pipy")
	got, err := in.Inject(pod(t, podPipyV1), ns, r)
	if err != nil {
		t.Fatal(err)
	}
	if got.Outcome != Injected || res.Outcome != Injected {
		t.Errorf("outcomes %s and %s, want injected", got.Outcome, res.Outcome)
	}
}

// seedStyleChains are n chains shaped like the guide's: a namespaceSelector, one app each.
func seedStyleChains(n int) []*v1alpha1.PluginChain {
	var list []*v1alpha1.PluginChain
	for i := range n {
		list = append(list, &v1alpha1.PluginChain{
			ObjectMeta: metav1.ObjectMeta{Namespace: fmt.Sprintf("ns-%d", i%100), Name: fmt.Sprintf("c%d", i)},
			Spec: v1alpha1.PluginChainSpec{
				Chains: []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-policy"}}},
				Selectors: v1alpha1.ChainSelectorSpec{
					PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", i)}},
					NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"mesh": "fsm"}},
				},
			},
		})
	}
	return list
}

// BenchmarkChainIndexChange: what one PluginChain change costs the index among 1,000 chains,
// filed in place, against building the index again.
func BenchmarkChainIndexChange(b *testing.B) {
	in := newInjector(b)
	list := seedStyleChains(1000)
	b.Run("set", func(b *testing.B) {
		ix := chains.NewIndex(in.Selection(), list...)
		changed := list[500].DeepCopy()
		for i := 0; b.Loop(); i++ {
			changed.Spec.Selectors.PodSelector.MatchLabels["app"] = fmt.Sprintf("app-%d", i%2000)
			ix.Set(changed.DeepCopy())
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		for b.Loop() {
			chains.NewIndex(in.Selection(), list...)
		}
	})
}

func TestSelectIndexedDoesNotAllocateForUnselectedPods(t *testing.T) {
	in := newInjector(t)
	ix := chains.NewIndex(in.Selection(), seedStyleChains(1000)...)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "ns-5", Labels: map[string]string{"mesh": "fsm", corev1.LabelMetadataName: "ns-5"}}}
	podLabels := map[string]string{"app": "batch", "pod-template-hash": "abc"}
	snap := clusterstate.NewSnapshot()
	if n := testing.AllocsPerRun(100, func() {
		var sel selection
		if err := in.selectIndexed(ix, podLabels, ns, &sel, snap); err != nil || sel.selected() {
			t.Fatal(err, sel)
		}
	}); n != 0 {
		t.Errorf("%v allocations per unselected pod, want 0", n)
	}
}
