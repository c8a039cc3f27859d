package manifests

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cors-webhook/cors-webhook/examples"
	"github.com/cors-webhook/cors-webhook/inject"
)

// Two pods beside the guide's workloads: one the guide's chain selects but cannot be injected,
// one it does not select; neither sets its namespace.
const extraPods = `
apiVersion: v1
kind: Pod
metadata: {name: host, labels: {app: pipy-ok}}
spec: {hostNetwork: true, containers: [{name: web, image: web:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec: {containers: [{name: web, image: web:1}]}
`

// TestInject: one Injection per workload (none for the other documents), injected templates
// changed in place, and namespaces the input does not set left unset.
func TestInject(t *testing.T) {
	var input string
	for _, name := range []string{examples.Namespaces, examples.Plugin, examples.PluginChain, examples.PluginConfig, examples.PipyOK} {
		input += examples.Manifest(name) + "\n---\n"
	}
	docs, err := Parse("input", []byte(input+extraPods))
	if err != nil {
		t.Fatal(err)
	}
	injector, err := inject.New(inject.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Inject(docs, "pipy", injector)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		outcome inject.Outcome
		failed  bool
	}{
		"Deployment pipy/pipy-ok-v1": {inject.Injected, false},
		"Deployment pipy/pipy-ok-v2": {inject.Injected, false},
		"Pod pipy/host":              {inject.HostNetwork, true},
		"Pod pipy/other":             {inject.NotSelected, false},
	}
	for i, in := range got {
		if kind := docs[i].Object.GetKind(); kind != "Pod" && kind != "Deployment" { // the input's only workloads
			if in != nil {
				t.Errorf("%s: an injection of %s, want none", docs[i].Where(), in.ID)
			}
			continue
		}
		w, ok := want[in.ID]
		if !ok || in.Result.Outcome != w.outcome || in.Failed() != w.failed {
			t.Errorf("%s: %s %s failed=%v, want %+v", docs[i].Where(), in.ID, in.Result.Outcome, in.Failed(), w)
		}
		delete(want, in.ID)
		if in.Result.Outcome == inject.Injected {
			if inits, _, _ := unstructured.NestedSlice(docs[i].Object.Object, "spec", "template", "spec", "initContainers"); len(inits) == 0 {
				t.Errorf("%s: the template was not injected in place", in.ID)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("no injection of %v", want)
	}
	if ns := docs[len(docs)-1].Object.GetNamespace(); ns != "" {
		t.Errorf("a pod's namespace became %q in the output", ns)
	}
}
