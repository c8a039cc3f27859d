package webhook

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/contract"
)

// TestAdmissionNeverServesAStaleConfig: what the injector caches follows the informers. Once an
// update of a PluginConfig (compiled configs and policy JSON are cached by UID and
// resourceVersion) or of a Service (indexed by its selector) is in the informer's store, the
// very next admission answers with it; a PluginChain change reaches the chain index as soon as
// the informer's event handler has run.
func TestAdmissionNeverServesAStaleConfig(t *testing.T) {
	const ns = "ns-050" // benchPod's namespace
	config := func(rv, origin string) *v1alpha1.PluginConfig {
		return &v1alpha1.PluginConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cors", UID: "config-uid", ResourceVersion: rv},
			Spec: v1alpha1.PluginConfigSpec{
				Plugin:          "cors-policy",
				DestinationRefs: []corev1.ObjectReference{{Kind: "Service", Name: "web"}},
				Config:          runtime.RawExtension{Raw: []byte(`{"allowOrigins":[{"exact":"` + origin + `"}]}`)},
			},
		}
	}
	service := func(rv, app string, target intstr.IntOrString) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web", UID: "svc-uid", ResourceVersion: rv},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": app},
				Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: target, Protocol: corev1.ProtocolTCP}}},
		}
	}
	chain := func(rv, app string) *v1alpha1.PluginChain {
		c := &v1alpha1.PluginChain{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chain", UID: "chain-uid", ResourceVersion: rv},
			Spec: v1alpha1.PluginChainSpec{
				Chains:    []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-policy"}}},
				Selectors: v1alpha1.ChainSelectorSpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
			},
		}
		return c
	}
	c, watchers := startWatchedCache(t,
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy", UID: "plugin-uid", ResourceVersion: "1"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, UID: "ns-uid", ResourceVersion: "1"}},
		chain("1", "app-3"), config("1", "https://a.example"), service("1", "app-3", intstr.FromString("web")))
	h := newIndexedTestInjector(t, c)
	cr := newCacheReader(t, c)
	req := podReview(t, benchPod("app-3"), admissionv1.Create)
	admit := func() *corev1.Pod {
		t.Helper()
		resp := h.Handle(context.Background(), req)
		if !resp.Allowed {
			t.Fatalf("refused: %v", resp.Result)
		}
		if len(resp.Patch) == 0 {
			return nil
		}
		return applyPatch(t, req, resp)
	}
	// cached waits until the cache holds the object at rv: from then on, no admission may
	// answer with an older version.
	cached := func(obj client.Object, rv string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var got string
			switch obj.(type) {
			case *v1alpha1.PluginConfig:
				if o, _ := cr.PluginConfigsForService(ns, "web"); len(o) == 1 {
					got = o[0].ResourceVersion
				}
			case *corev1.Service:
				if o, _ := cr.Service(ns, "web"); o != nil {
					got = o.ResourceVersion
				}
			case *v1alpha1.PluginChain:
				if o, _ := cr.PluginChainsInNamespace(ns); len(o) == 1 {
					got = o[0].ResourceVersion
				}
			}
			if got == rv {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%T still at resourceVersion %q, want %q", obj, got, rv)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	policy := func(p *corev1.Pod) string {
		if p == nil {
			return "(not injected)"
		}
		return p.Annotations[contract.AnnotationPolicy]
	}

	// Warm every cache: the config compiled, the chain indexed.
	for range 3 {
		if got := policy(admit()); !strings.Contains(got, "https://a.example") || !strings.Contains(got, `"8080"`) {
			t.Fatalf("policy %s", got)
		}
	}
	steps := []struct {
		name  string
		obj   client.Object
		check func(*corev1.Pod) bool
	}{
		{"PluginConfig edited", config("2", "https://b.example"), func(p *corev1.Pod) bool {
			return strings.Contains(policy(p), "https://b.example") && !strings.Contains(policy(p), "https://a.example")
		}},
		{"Service retargeted", service("3", "app-3", intstr.FromInt32(9090)), func(p *corev1.Pod) bool {
			return strings.Contains(policy(p), `"9090"`) && p.Annotations[contract.AnnotationRedirectPorts] == "9090"
		}},
		// The Services index files a Service under its selector: a new selector moves it.
		{"Service reselected", service("31", "other", intstr.FromInt32(9090)), func(p *corev1.Pod) bool {
			return p != nil && !strings.Contains(policy(p), "example") && p.Annotations[contract.AnnotationRedirectPorts] == ""
		}},
		{"Service selects again", service("32", "app-3", intstr.FromInt32(9090)), func(p *corev1.Pod) bool {
			return strings.Contains(policy(p), "https://b.example") && p.Annotations[contract.AnnotationRedirectPorts] == "9090"
		}},
		// Policy JSON is cached by config version and port: a config back at its first
		// content under a new resourceVersion, then the same content on the same port.
		{"PluginConfig reverted", config("33", "https://a.example"), func(p *corev1.Pod) bool {
			return strings.Contains(policy(p), "https://a.example") && !strings.Contains(policy(p), "https://b.example")
		}},
		{"PluginConfig edited again", config("34", "https://b.example"), func(p *corev1.Pod) bool {
			return strings.Contains(policy(p), "https://b.example") && !strings.Contains(policy(p), "https://a.example")
		}},
		{"PluginChain reselected", chain("4", "other"), func(p *corev1.Pod) bool { return p == nil }},
		{"PluginChain back", chain("5", "app-3"), func(p *corev1.Pod) bool { return strings.Contains(policy(p), "https://b.example") }},
	}
	for _, s := range steps {
		watchers[reflect.TypeOf(s.obj)].Modify(s.obj)
		cached(s.obj, s.obj.GetResourceVersion())
		if _, isChain := s.obj.(*v1alpha1.PluginChain); isChain {
			// The chain index is updated by the informer's event handler,
			// which runs just after the store is updated: poll for that moment.
			deadline := time.Now().Add(10 * time.Second)
			for p := admit(); !s.check(p); p = admit() {
				if time.Now().After(deadline) {
					t.Fatalf("%s: admission still answers with %s", s.name, policy(p))
				}
				time.Sleep(time.Millisecond)
			}
			continue
		}
		if p := admit(); !s.check(p) {
			t.Fatalf("%s: the next admission answered with %s", s.name, policy(p))
		}
	}
}
