package clusterstate

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

func TestSnapshot(t *testing.T) {
	meta := func(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
	ownChain := &v1alpha1.PluginChain{ObjectMeta: meta("pipy", "own")}
	wideChain := &v1alpha1.PluginChain{ObjectMeta: meta("pipy", "wide"), Spec: v1alpha1.PluginChainSpec{
		Selectors: v1alpha1.ChainSelectorSpec{NamespaceSelector: &metav1.LabelSelector{}},
	}}
	cfg := &v1alpha1.PluginConfig{ObjectMeta: meta("pipy", "cfg"), Spec: v1alpha1.PluginConfigSpec{
		Plugin: "cors-policy", DestinationRefs: []corev1.ObjectReference{{Kind: "Service", Name: "pipy-ok"}},
	}}
	svc := &corev1.Service{ObjectMeta: meta("pipy", "pipy-ok")}
	s := NewSnapshot(ownChain, wideChain, cfg, svc,
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pipy"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "curl"}})
	if s.Add(&corev1.Pod{}) {
		t.Error("Add accepted a Pod, a kind Reader does not serve")
	}
	// Adding an object again replaces it instead of listing it twice.
	replaced := ownChain.DeepCopy()
	replaced.Labels = map[string]string{"v": "2"}
	s.Add(replaced)

	count := func(n int, err error) int {
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		name      string
		got, want int
	}{
		{"chains in pipy", count(size(s.PluginChainsInNamespace("pipy"))), 2},
		{"chains in curl", count(size(s.PluginChainsInNamespace("curl"))), 0},
		{"wide chains", count(size(s.PluginChainsWithNamespaceSelector())), 1},
		{"configs for plugin", count(size(s.PluginConfigsForPlugin("pipy", "cors-policy"))), 1},
		{"configs for other plugin", count(size(s.PluginConfigsForPlugin("pipy", "other"))), 0},
		{"configs for service", count(size(s.PluginConfigsForService("pipy", "pipy-ok"))), 1},
		{"configs for other service", count(size(s.PluginConfigsForService("pipy", "other"))), 0},
		{"services", count(size(s.ServicesInNamespace("pipy"))), 1},
		{"namespaces", count(size(s.Namespaces())), 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, tc.got, tc.want)
		}
	}
	if chains, _ := s.PluginChainsInNamespace("pipy"); chains[0].Labels["v"] != "2" {
		t.Error("re-adding a chain did not replace it")
	}
	if p, _ := s.Plugin("cors-policy"); p == nil {
		t.Error("declared plugin not found")
	}
	if p, _ := s.Plugin("undeclared"); p != nil {
		t.Error("undeclared plugin found")
	}
	if got, _ := s.Service("pipy", "pipy-ok"); got != svc {
		t.Error("Service lookup failed")
	}
	if got, _ := s.Service("pipy", "missing"); got != nil {
		t.Error("missing Service found")
	}
	if ns, _ := s.Namespaces(); ns[0].Name != "curl" {
		t.Errorf("namespaces not sorted: first is %s", ns[0].Name)
	}
}

func size[T any](v []T, err error) (int, error) { return len(v), err }
