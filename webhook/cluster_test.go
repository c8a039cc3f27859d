package webhook

import (
	"context"
	"fmt"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/internal/cachetest"
	"github.com/cors-webhook/cors-webhook/validate"
)

// startCache and startWatchedCache are cachetest's, bound to this package's tests.
func startCache(t testing.TB, objs ...client.Object) cache.Cache { return cachetest.Start(t, objs...) }

func startWatchedCache(t testing.TB, objs ...client.Object) (cache.Cache, map[reflect.Type]*watch.FakeWatcher) {
	return cachetest.StartWatched(t, objs...)
}

// newCacheReader is a CacheReader over c whose chains.Index files chains by the rule of
// newTestInjector's injector.
func newCacheReader(t testing.TB, c cache.Cache) *clusterstate.CacheReader {
	t.Helper()
	return newCacheReaderFor(t, c, newTestInjector(t, nil).injector.Selection())
}

// newCacheReaderFor is a CacheReader over c whose chains.Index files chains by sel.
func newCacheReaderFor(t testing.TB, c cache.Cache, sel chains.Selection) *clusterstate.CacheReader {
	t.Helper()
	r, err := clusterstate.NewCacheReader(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.IndexChains(sel); err != nil {
		t.Fatal(err)
	}
	return r
}

func selector(labels map[string]string) *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: labels}
}

func chain(ns, name, plugin string, pods, namespaces *metav1.LabelSelector) *v1alpha1.PluginChain {
	return &v1alpha1.PluginChain{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.PluginChainSpec{
			Chains:    []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{plugin}}},
			Selectors: v1alpha1.ChainSelectorSpec{PodSelector: pods, NamespaceSelector: namespaces},
		},
	}
}

func pluginConfig(ns, name, plugin string, services ...string) *v1alpha1.PluginConfig {
	c := &v1alpha1.PluginConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	c.Spec.Plugin = plugin
	for _, s := range services {
		c.Spec.DestinationRefs = append(c.Spec.DestinationRefs, corev1.ObjectReference{Kind: "Service", Name: s})
	}
	return c
}

// clusterOf10k is the benchmark's cluster: 1,000 namespaces (labels team=t0..t9, env=prod|dev)
// with 10 PluginChains each, all putting cors-policy in inbound-http. In each namespace, chain
// j selects app=app-j; in every tenth namespace, chain 0 is instead cluster-wide (a
// namespaceSelector team=tK), so 100 chains (1%) reach beyond their namespace.
func clusterOf10k() []client.Object {
	objs := []client.Object{&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}}}
	for i := range 1000 {
		ns := fmt.Sprintf("ns-%04d", i)
		env := "dev"
		if i%2 == 0 {
			env = "prod"
		}
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
			"team": fmt.Sprintf("t%d", i%10), "env": env, corev1.LabelMetadataName: ns,
		}}})
		for j := range 10 {
			c := chain(ns, fmt.Sprintf("chain-%d", j), "cors-policy", selector(map[string]string{"app": fmt.Sprintf("app-%d", j)}), nil)
			if j == 0 && i%10 == 0 {
				c.Spec.Selectors.PodSelector = selector(map[string]string{"app": fmt.Sprintf("global-%d", i)})
				c.Spec.Selectors.NamespaceSelector = selector(map[string]string{"team": fmt.Sprintf("t%d", i/10%10)})
			}
			objs = append(objs, c)
		}
	}
	return objs
}

// BenchmarkPluginChainCreate validates one PluginChain against 10,000 existing chains in 1,000
// namespaces through the server's cache-backed Reader (see docs/benchmarks.md): "indexed" as the
// server does, through the Reader's chains.Index, and "listing" through a Reader that
// hides the index, so validation compares the chain with every chain that can reach the same
// namespaces.
func BenchmarkPluginChainCreate(b *testing.B) {
	r := newCacheReader(b, startCache(b, clusterOf10k()...))
	opts := validate.Options{Plugins: chains.NewPlugins("cors-policy", "cors-b")}
	// As in BenchmarkAdmissionReport: the new chain's namespace and those of the cluster-wide
	// chains are cluster-chain namespaces.
	clusterWide := opts
	clusterWide.Tenancy.ClusterNamespaces = []string{"ns-0501"}
	for i := 0; i < 1000; i += 10 {
		clusterWide.Tenancy.ClusterNamespaces = append(clusterWide.Tenancy.ClusterNamespaces, fmt.Sprintf("ns-%04d", i))
	}
	inInfo := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"new-app"}}}}
	prod := selector(map[string]string{"env": "prod"})
	cases := []struct {
		name         string
		chain        *v1alpha1.PluginChain
		opts         validate.Options
		wantErrors   int
		wantWarnings int
	}{
		// The common case: a chain for its own namespace, among the 10 chains there and the
		// 100 cluster-wide ones.
		{"own-namespace", chain("ns-0501", "new", "cors-policy", inInfo, nil), opts, 0, 0},
		// A conflict, with the witness computed and the error built (and cors-b is not declared).
		{"own-namespace-conflict", chain("ns-0501", "new", "cors-b", selector(map[string]string{"app": "app-3"}), nil), opts, 1, 1},
		// A namespaceSelector matching half the namespaces, in a namespace that confines it to
		// its own (and warns so).
		{"namespace-selector", chain("ns-0501", "new", "cors-policy", inInfo, prod), opts, 0, 1},
		// The same chain in a cluster-chain namespace: it reaches 500 namespaces, 4,500 local
		// chains and the 100 cluster-wide ones.
		{"cluster-wide", chain("ns-0501", "new", "cors-policy", inInfo, prod), clusterWide, 0, 0},
		// ... and overlaps the 500 chains on app=app-3 there (five witnesses, then "and 495 more").
		{"cluster-wide-overlapping", chain("ns-0501", "new", "cors-policy", selector(map[string]string{"app": "app-3"}), prod), clusterWide, 0, 6},
		// ... or, pinning a label no chain pins, overlaps every one of them.
		{"cluster-wide-unpinned", chain("ns-0501", "new", "cors-policy", selector(map[string]string{"tier": "web"}), prod), clusterWide, 0, 6},
	}
	readers := []struct {
		name string
		r    clusterstate.Reader
	}{{"indexed", r}, {"listing", struct{ clusterstate.Reader }{r}}}
	for _, rd := range readers {
		for _, tc := range cases {
			b.Run(rd.name+"/"+tc.name, func(b *testing.B) {
				errs, warnings := validate.PluginChainCreate(rd.r, tc.chain, tc.opts)
				if len(errs) != tc.wantErrors || len(warnings) != tc.wantWarnings {
					b.Fatalf("got %d errors, %d warnings, want %d, %d: %v %q", len(errs), len(warnings), tc.wantErrors, tc.wantWarnings, errs, warnings)
				}
				b.ReportAllocs()
				for b.Loop() {
					validate.PluginChainCreate(rd.r, tc.chain, tc.opts)
				}
			})
		}
	}
}
