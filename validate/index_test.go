package validate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// chainGen generates random PluginChains over a small label vocabulary, so that their
// selectors often overlap: matchLabels, In/NotIn/Exists/DoesNotExist (and the odd invalid
// requirement), with or without a namespaceSelector, mounting one CORS plugin or another,
// none, or one in the wrong chain.
type chainGen struct {
	rng        *rand.Rand
	namespaces []string
}

var (
	genKeys   = []string{"app", "tier", "team", corev1.LabelMetadataName}
	genValues = []string{"a", "b", "c"}
)

func (g chainGen) selector() *metav1.LabelSelector {
	rng := g.rng
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
			v = g.namespaces[rng.IntN(len(g.namespaces))]
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

func (g chainGen) chain(ns, name string) *v1alpha1.PluginChain {
	rng := g.rng
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
			Selectors: v1alpha1.ChainSelectorSpec{PodSelector: g.selector()},
		},
	}
	if rng.IntN(2) == 0 {
		if c.Spec.Selectors.NamespaceSelector = g.selector(); c.Spec.Selectors.NamespaceSelector == nil {
			c.Spec.Selectors.NamespaceSelector = &metav1.LabelSelector{}
		}
	}
	return c
}

func (g chainGen) labels() map[string]string {
	l := map[string]string{}
	for range g.rng.IntN(4) {
		l[genKeys[g.rng.IntN(3)]] = genValues[g.rng.IntN(len(genValues))]
	}
	return l
}

func (g chainGen) subset(of []string) []string {
	var out []string
	for _, s := range of {
		if g.rng.IntN(3) == 0 {
			out = append(out, s)
		}
	}
	return out
}

// TestChainIndexFindsWhatListingFinds: for random clusters, tenancies and new chains,
// validating a PluginChain through the chains.Index gives exactly the errors and warnings,
// witnesses included, that comparing it with every chain of the namespaces it reaches gives;
// also when the index was kept up to date one change at a time.
func TestChainIndexFindsWhatListingFinds(t *testing.T) {
	g := chainGen{rng: rand.New(rand.NewPCG(17, 5)), namespaces: []string{"a", "b", "c", "d", "e", "gone"}}
	existing := g.namespaces[:5] // "gone" is named by selectors and chains, but does not exist
	var conflicts, overlaps, clean int
	for round := range 300 {
		objs := []any{corsPlugin("cors-policy")}
		for _, ns := range existing {
			objs = append(objs, namespace(ns, g.labels()))
		}
		var list []*v1alpha1.PluginChain
		for i := range 5 + g.rng.IntN(30) {
			c := g.chain(g.namespaces[g.rng.IntN(len(g.namespaces))], fmt.Sprintf("c%d", i))
			list = append(list, c)
			objs = append(objs, c)
		}
		snap := clusterstate.NewSnapshot(objs...)
		opts := Options{Plugins: chains.NewPlugins("cors-policy", "cors-b"),
			Tenancy: chains.Tenancy{ClusterNamespaces: g.subset(g.namespaces), SkippedNamespaces: g.subset(g.namespaces)}}
		bulk := clusterstate.IndexedSnapshot{Snapshot: snap, Index: chains.NewIndex(opts.selection(), list...)}
		stepwise := clusterstate.IndexedSnapshot{Snapshot: snap, Index: stepwiseIndex(g, opts.selection(), list)}
		if ix, _ := opts.selection().IndexOf(bulk); ix != bulk.Index {
			t.Fatal("validation would not read the index")
		}

		for n := range 20 {
			var errs field.ErrorList
			var warnings []string
			validateOn := func(r clusterstate.Reader, g chainGen) (field.ErrorList, []string) {
				if n%4 == 3 { // an update of an existing chain, which is not compared with itself
					old := list[g.rng.IntN(len(list))]
					c := g.chain(old.Namespace, old.Name)
					return PluginChainUpdate(r, c, old, opts)
				}
				c := g.chain(g.namespaces[g.rng.IntN(len(g.namespaces))], "new")
				return PluginChainCreate(r, c, opts)
			}
			// The same random chain for each Reader.
			seed := g.rng.Uint64()
			for i, r := range []clusterstate.Reader{snap, bulk, stepwise} {
				gotErrs, gotWarnings := validateOn(r, chainGen{rng: rand.New(rand.NewPCG(seed, 0)), namespaces: g.namespaces})
				if i == 0 {
					errs, warnings = gotErrs, gotWarnings
					continue
				}
				if diff := cmp.Diff(errs, gotErrs); diff != "" {
					t.Fatalf("round %d case %d, reader %d: errors differ (-listing +index):\n%s", round, n, i, diff)
				}
				if diff := cmp.Diff(warnings, gotWarnings); diff != "" {
					t.Fatalf("round %d case %d, reader %d: warnings differ (-listing +index):\n%s", round, n, i, diff)
				}
			}
			switch {
			case slices.ContainsFunc(errs, func(e *field.Error) bool { return e.Field == "spec.selectors" }):
				conflicts++
			case slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "overlaps PluginChain") }):
				overlaps++
			case len(errs) == 0:
				clean++
			}
		}
	}
	// The generator must exercise every outcome, or the agreement means little.
	t.Logf("conflicts %d, overlaps %d, accepted without overlap %d", conflicts, overlaps, clean)
	if conflicts < 300 || overlaps < 300 || clean < 300 {
		t.Fatalf("too few cases of some outcome: conflicts %d, overlaps %d, clean %d", conflicts, overlaps, clean)
	}
}

// stepwiseIndex reaches an index of list through Set and Delete, in random order, with
// earlier versions of chains, replaced, and chains that are deleted again.
func stepwiseIndex(g chainGen, sel chains.Selection, list []*v1alpha1.PluginChain) *chains.Index {
	ix := chains.NewIndex(sel)
	for _, i := range g.rng.Perm(len(list)) {
		c := list[i]
		switch g.rng.IntN(4) {
		case 0:
			ix.Set(g.chain(c.Namespace, c.Name)) // an earlier version
		case 1:
			ix.Set(g.chain(c.Namespace, c.Name+"-deleted"))
		}
		ix.Set(c)
	}
	for _, c := range list {
		ix.Delete(c.Namespace, c.Name+"-deleted")
	}
	ix.Set(list[0]) // the same object again
	return ix
}

func TestCompareKeys(t *testing.T) {
	names := []string{"", "a", "a-x", "a.b", "a/b", "ab", "b", "a0", "z"}
	for _, ans := range names {
		for _, an := range names {
			for _, bns := range names {
				for _, bn := range names {
					if got, want := compareKeys(ans, an, bns, bn), strings.Compare(key(ans, an), key(bns, bn)); got != want {
						t.Fatalf("compareKeys(%q, %q, %q, %q) = %d, want %d", ans, an, bns, bn, got, want)
					}
				}
			}
		}
	}
}

// TestConfinedChainConflictsOnlyWhereItsSelectorReaches: a tenant's chain with a
// namespaceSelector is confined to its own namespace, and reaches even that one only when the
// selector matches its labels; so it conflicts with a chain of its namespace that puts another
// CORS plugin on the same pods only then, through the index as through listing (the case of
// e2e's "deleting is never blocked").
func TestConfinedChainConflictsOnlyWhereItsSelectorReaches(t *testing.T) {
	opts := Options{Plugins: chains.NewPlugins("cors-policy", "cors-b")}
	own := &v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: "teams", Name: "team-b"}}
	own.Spec.Chains = []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-b"}}}
	own.Spec.Selectors.PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "b"}}
	confined := &v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: "teams", Name: "web-everywhere"}}
	confined.Spec.Chains = []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-policy"}}}
	confined.Spec.Selectors.PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "edge"}}
	confined.Spec.Selectors.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}}
	for _, tc := range []struct {
		labels   map[string]string
		conflict bool
	}{{nil, false}, {map[string]string{"tier": "web"}, true}} {
		snap := clusterstate.NewSnapshot(corsPlugin("cors-policy"), corsPlugin("cors-b"), namespace("teams", tc.labels), own)
		indexed := clusterstate.IndexedSnapshot{Snapshot: snap, Index: chains.NewIndex(opts.selection(), own)}
		for _, r := range []clusterstate.Reader{snap, indexed} {
			errs, _ := PluginChainCreate(r, confined, opts)
			if got := slices.ContainsFunc(errs, func(e *field.Error) bool { return e.Origin == OriginChainConflict }); got != tc.conflict {
				t.Errorf("namespace labels %v, reader %T: conflict %v, want %v (%v)", tc.labels, r, got, tc.conflict, errs)
			}
		}
	}
}
