package reconcile

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/validate"
)

// TestOneSelectionRule: for nil, empty and set selectors, and a chain in the pod's own or
// another namespace, validation, injection and Day-2 reconciliation agree on whether the chain
// selects the pod, and agree with package chains, through which all three decide.
//
//   - chains: Selection.Selects;
//   - inject: Injector.Resolve says the pod is selected;
//   - reconcile: chainScope lists the pod's namespace and its pod selector matches the pod, and
//     chainsOfPod (the status controller's mapping) names the chain;
//   - validate: a second chain with another CORS plugin, in the pod's namespace and selecting
//     exactly the pod's labels, conflicts with it.
func TestOneSelectionRule(t *testing.T) {
	const podNS, otherNS = "web", "ops"
	// As read from files: no kubernetes.io/metadata.name label; the rule adds it.
	web := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: podNS, Labels: map[string]string{"team": "x"}}}
	ops := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: otherNS}}
	labelsSel := func(kv ...string) *metav1.LabelSelector {
		s := &metav1.LabelSelector{MatchLabels: map[string]string{}}
		for i := 0; i < len(kv); i += 2 {
			s.MatchLabels[kv[i]] = kv[i+1]
		}
		return s
	}
	podSelectors := []namedSelector{
		{"nil", nil},
		{"empty", labelsSel()},
		{"app=a", labelsSel("app", "a")},
		{"app=b", labelsSel("app", "b")},
		{"app in (a,c)", &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "c"}}}}},
	}
	nsSelectors := []namedSelector{
		{"nil", nil},
		{"empty", labelsSel()},
		{"team=x", labelsSel("team", "x")},
		{"team=y", labelsSel("team", "y")},
		{"metadata.name=web", labelsSel(corev1.LabelMetadataName, podNS)},
		{"metadata.name=ops", labelsSel(corev1.LabelMetadataName, otherNS)},
	}
	plugins := []string{"cors-policy", "cors-b"}
	// The scope: pods the webhook is not called for are selected by no chain, for every
	// consumer of the rule alike.
	disabledWeb := web.DeepCopy()
	disabledWeb.Labels[contract.LabelNamespaceInject] = contract.NamespaceInjectDisabled
	for _, scope := range []struct {
		name      string
		skipped   []string
		ns        *corev1.Namespace
		podLabels map[string]string
		inScope   bool
	}{
		{"in scope", []string{"kube-system"}, web, map[string]string{"app": "a"}, true},
		{"pod's namespace excluded", []string{"kube-system", podNS}, web, map[string]string{"app": "a"}, false},
		{"pod's namespace labelled inject=disabled", nil, disabledWeb, map[string]string{"app": "a"}, false},
		{"pod labelled ignore=true", nil, web, map[string]string{"app": "a", contract.LabelIgnore: contract.LabelIgnoreTrue}, false},
	} {
		for _, clusterNS := range [][]string{nil, {otherNS}} {
			tenancy := chains.Tenancy{ClusterNamespaces: clusterNS, SkippedNamespaces: scope.skipped}
			t.Run(fmt.Sprintf("%s, cluster-chain namespaces %v", scope.name, clusterNS), func(t *testing.T) {
				selected := testOneSelectionRule(t, tenancy, plugins, scope.ns, ops, scope.podLabels, podSelectors, nsSelectors)
				switch {
				case !scope.inScope && selected > 0:
					t.Fatalf("%d rows select a pod the webhook is not called for", selected)
				case scope.inScope && (selected == 0 || selected == 2*len(podSelectors)*len(nsSelectors)):
					t.Fatalf("%d rows selected: the table does not discriminate", selected)
				}
			})
		}
	}
}

type namedSelector = struct {
	name string
	sel  *metav1.LabelSelector
}

// testOneSelectionRule checks every consumer of the rule against it, for a pod with podLabels in
// web, and returns how many rows select the pod.
func testOneSelectionRule(t *testing.T, tenancy chains.Tenancy, plugins []string, web, ops *corev1.Namespace, podLabels map[string]string, podSelectors, nsSelectors []namedSelector) int {
	const podNS, otherNS = "web", "ops"
	injector, err := inject.New(inject.Settings{SidecarImage: "img", CORSPlugins: plugins, Tenancy: tenancy})
	if err != nil {
		t.Fatal(err)
	}
	declared := []any{
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}},
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-b"}},
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: podNS, Name: "p", Labels: podLabels}}
	selected := 0
	for _, chainNS := range []string{podNS, otherNS} {
		for _, ps := range podSelectors {
			for _, nss := range nsSelectors {
				name := fmt.Sprintf("chain in %s, podSelector %s, namespaceSelector %s", chainNS, ps.name, nss.name)
				t.Run(name, func(t *testing.T) {
					chain := &v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: chainNS, Name: "chain"}}
					chain.Spec.Chains = []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-b"}}}
					chain.Spec.Selectors.PodSelector = ps.sel
					chain.Spec.Selectors.NamespaceSelector = nss.sel
					snap := clusterstate.NewSnapshot(append(slices.Clone(declared), web, ops, chain)...)

					want := injector.Selection().Selects(chain, podLabels, web)
					if want {
						selected++
					}

					// The server's Reader keeps a chains.Index, which injection and validation
					// read instead of listing: both answers must agree with the rule.
					indexed := clusterstate.IndexedSnapshot{Snapshot: snap, Index: chains.NewIndex(injector.Selection(), chain)}
					for _, r := range []clusterstate.Reader{snap, indexed} {
						res, err := injector.Resolve(pod, web, r)
						if err != nil {
							t.Fatal(err)
						}
						if res.Selected != want {
							t.Errorf("inject (%T): Selected = %v, chains says %v", r, res.Selected, want)
						}
					}

					namespaces, podSel := chainScope(injector.Selection(), chain, snap)
					if got := slices.Contains(namespaces, podNS) && podSel.Matches(labels.Set(podLabels)); got != want {
						t.Errorf("reconcile chainScope: %v (namespaces %v, pods %s), chains says %v", got, namespaces, podSel, want)
					}
					s := &statusReconciler{reader: snap, injector: injector}
					if got := len(s.chainsOfPod(context.Background(), pod)) == 1; got != want {
						t.Errorf("reconcile chainsOfPod: %v, chains says %v", got, want)
					}

					// Validation compares selectors, not this pod: the probe's pods conflict
					// when they are in scope, whatever this pod's own ignore label says.
					inScope := maps.Clone(podLabels)
					delete(inScope, contract.LabelIgnore)
					wantConflict := injector.Selection().Selects(chain, inScope, web)
					for _, r := range []clusterstate.Reader{snap, indexed} {
						errs, _ := validate.PluginChainCreate(r, probeChain(podNS), validate.Options{Plugins: chains.NewPlugins(plugins...), Tenancy: tenancy})
						conflict := slices.ContainsFunc(errs, func(e *field.Error) bool { return e.Origin == validate.OriginChainConflict })
						if conflict != wantConflict {
							t.Errorf("validate (%T): conflict = %v (%v), chains says %v", r, conflict, errs, wantConflict)
						}
					}
				})
			}
		}
	}
	return selected
}

// probeChain puts another CORS plugin than the chain under test on app=a pods of namespace ns.
func probeChain(ns string) *v1alpha1.PluginChain {
	probe := &v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "probe"}}
	probe.Spec.Chains = []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-policy"}}}
	probe.Spec.Selectors.PodSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}
	return probe
}
