package validate

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/examples"
)

// The guide's objects (examples/).
var (
	seedChainYAML  = examples.Manifest(examples.PluginChain)
	seedConfigYAML = examples.Manifest(examples.PluginConfig)
)

func mustYAML[T any](t testing.TB, y string) *T {
	t.Helper()
	var out T
	if err := yaml.UnmarshalStrict([]byte(y), &out); err != nil {
		t.Fatalf("test YAML: %v\n%s", err, y)
	}
	return &out
}

func seedChain(t testing.TB) *v1alpha1.PluginChain {
	return mustYAML[v1alpha1.PluginChain](t, seedChainYAML)
}

func seedConfig(t testing.TB) *v1alpha1.PluginConfig {
	return mustYAML[v1alpha1.PluginConfig](t, seedConfigYAML)
}

func corsPlugin(name string) *v1alpha1.Plugin {
	return &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1alpha1.PluginSpec{Priority: 165}}
}

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// fsmNamespace is a namespace labelled as `fsm namespace add` labels it (the seed's ns.yaml).
func fsmNamespace(name string) *corev1.Namespace {
	return namespace(name, map[string]string{"openservicemesh.io/monitored-by": "fsm"})
}

func service(ns, name string, selector map[string]string, targetPorts ...intstr.IntOrString) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Selector: selector}}
	for i, tp := range targetPorts {
		s.Spec.Ports = append(s.Spec.Ports, corev1.ServicePort{Port: int32(8080 + i), TargetPort: tp})
	}
	return s
}

// seedServices are the Services of the seed's pipy-ok.pipy.yaml in namespace pipy.
func seedServices() []any {
	return []any{
		service("pipy", "pipy-ok", map[string]string{"app": "pipy-ok"}, intstr.FromInt32(8080)),
		service("pipy", "pipy-ok-v1", map[string]string{"app": "pipy-ok", "version": "v1"}, intstr.FromInt32(8080)),
		service("pipy", "pipy-ok-v2", map[string]string{"app": "pipy-ok", "version": "v2"}, intstr.FromInt32(8080)),
	}
}

// wantErr is an expected field error: its path, and a substring of its message ("" for any).
type wantErr struct {
	field    string
	contains string
}

// checkResult asserts that errs are exactly the wanted ones (by path and message substring, in
// any order) and that every wanted warning substring appears in some warning. With
// exactWarnings, the number of warnings must also match.
func checkResult(t *testing.T, errs field.ErrorList, warnings []string, want []wantErr, wantWarnings []string, exactWarnings bool) {
	t.Helper()
	used := make([]bool, len(errs))
	for _, w := range want {
		found := false
		for i, e := range errs {
			if !used[i] && e.Field == w.field && strings.Contains(e.Error(), w.contains) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("missing error at %s containing %q", w.field, w.contains)
		}
	}
	for i, e := range errs {
		if !used[i] {
			t.Errorf("unexpected error: %v", e)
		}
	}
	for _, w := range wantWarnings {
		found := false
		for _, got := range warnings {
			if strings.Contains(got, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("missing warning containing %q", w)
		}
	}
	if exactWarnings && len(warnings) != len(wantWarnings) {
		t.Errorf("got %d warnings, want %d", len(warnings), len(wantWarnings))
	}
	if t.Failed() {
		for _, e := range errs {
			t.Logf("error:   %v", e)
		}
		for _, w := range warnings {
			t.Logf("warning: %s", w)
		}
	}
}

type corev1ObjectReference = corev1.ObjectReference
