package validate

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/internal/chaingen"
)

// TestChainIndexFindsWhatListingFinds: for random clusters, tenancies and new chains,
// validating a PluginChain through the chains.Index gives exactly the errors and warnings,
// witnesses included, that comparing it with every chain of the namespaces it reaches gives;
// also when the index was kept up to date one change at a time.
func TestChainIndexFindsWhatListingFinds(t *testing.T) {
	g := chaingen.Gen{Rng: rand.New(rand.NewPCG(17, 5)), Namespaces: []string{"a", "b", "c", "d", "e", "gone"}}
	existing := g.Namespaces[:5] // "gone" is named by selectors and chains, but does not exist
	var conflicts, overlaps, clean int
	for round := range 300 {
		objs := []any{corsPlugin("cors-policy")}
		for _, ns := range existing {
			objs = append(objs, namespace(ns, g.Labels()))
		}
		var list []*v1alpha1.PluginChain
		for i := range 5 + g.Rng.IntN(30) {
			c := g.Chain(g.Namespaces[g.Rng.IntN(len(g.Namespaces))], fmt.Sprintf("c%d", i))
			list = append(list, c)
			objs = append(objs, c)
		}
		snap := clusterstate.NewSnapshot(objs...)
		opts := Options{Plugins: chains.NewPlugins("cors-policy", "cors-b"),
			Tenancy: chains.Tenancy{ClusterNamespaces: g.Subset(g.Namespaces), SkippedNamespaces: g.Subset(g.Namespaces)}}
		bulk := clusterstate.IndexedSnapshot{Snapshot: snap, Index: chains.NewIndex(opts.selection(), list...)}
		stepwise := clusterstate.IndexedSnapshot{Snapshot: snap, Index: stepwiseIndex(g, opts.selection(), list)}
		if ix, _ := opts.selection().IndexOf(bulk); ix != bulk.Index {
			t.Fatal("validation would not read the index")
		}

		for n := range 20 {
			var errs field.ErrorList
			var warnings []string
			validateOn := func(r clusterstate.Reader, g chaingen.Gen) (field.ErrorList, []string) {
				if n%4 == 3 { // an update of an existing chain, which is not compared with itself
					old := list[g.Rng.IntN(len(list))]
					c := g.Chain(old.Namespace, old.Name)
					return PluginChainUpdate(r, c, old, opts)
				}
				c := g.Chain(g.Namespaces[g.Rng.IntN(len(g.Namespaces))], "new")
				return PluginChainCreate(r, c, opts)
			}
			// The same random chain for each Reader.
			seed := g.Rng.Uint64()
			for i, r := range []clusterstate.Reader{snap, bulk, stepwise} {
				gotErrs, gotWarnings := validateOn(r, chaingen.Gen{Rng: rand.New(rand.NewPCG(seed, 0)), Namespaces: g.Namespaces})
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
func stepwiseIndex(g chaingen.Gen, sel chains.Selection, list []*v1alpha1.PluginChain) *chains.Index {
	ix := chains.NewIndex(sel)
	for _, i := range g.Rng.Perm(len(list)) {
		c := list[i]
		switch g.Rng.IntN(4) {
		case 0:
			ix.Set(g.Chain(c.Namespace, c.Name)) // an earlier version
		case 1:
			ix.Set(g.Chain(c.Namespace, c.Name+"-deleted"))
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
