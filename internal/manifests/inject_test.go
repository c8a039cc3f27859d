package manifests

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cors-webhook/cors-webhook/inject"
)

const injectInput = `
apiVersion: plugin.flomesh.io/v1alpha1
kind: Plugin
metadata: {name: cors-policy}
spec: {priority: 165}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: web, namespace: shop}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {podSelector: {matchLabels: {app: web}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1, ports: [{containerPort: 8080}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: host, labels: {app: web}}
spec: {hostNetwork: true, containers: [{name: web, image: web:1}]}
---
apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec: {containers: [{name: web, image: web:1}]}
`

// TestInject: per document, the workload's injection (nil for the others); injected templates
// change in place, and namespaces the input does not set stay unset.
func TestInject(t *testing.T) {
	docs, err := Parse("input", []byte(injectInput))
	if err != nil {
		t.Fatal(err)
	}
	injector, err := inject.New(inject.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Inject(docs, "shop", injector)
	if err != nil {
		t.Fatal(err)
	}
	for i, tc := range []struct {
		id      string // "": no workload
		outcome inject.Outcome
		failed  bool
	}{
		{}, {}, {},
		{"Deployment shop/web", inject.Injected, false},
		{"Pod shop/host", inject.HostNetwork, true},
		{"Pod shop/other", inject.NotSelected, false},
	} {
		in := got[i]
		if tc.id == "" {
			if in != nil {
				t.Errorf("document %d: an injection of %s, want none", i, in.ID)
			}
			continue
		}
		if in == nil || in.ID != tc.id || in.Result.Outcome != tc.outcome || in.Failed() != tc.failed {
			t.Errorf("document %d: got %+v, want %s %s failed=%v", i, in, tc.id, tc.outcome, tc.failed)
		}
	}
	deployment := docs[3].Object
	if deployment.GetNamespace() != "" {
		t.Errorf("the Deployment's namespace became %q", deployment.GetNamespace())
	}
	if inits, _, _ := unstructured.NestedSlice(deployment.Object, "spec", "template", "spec", "initContainers"); len(inits) == 0 {
		t.Error("the Deployment's template was not injected in place")
	}
}
