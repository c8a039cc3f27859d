// Package e2e holds end-to-end tests: they start a real kube-apiserver (and, where needed,
// kube-controller-manager, the webhook server, network namespaces) and drive it with the real
// kubectl. They fail, never skip, when something they need is missing.
package e2e

import (
	"fmt"
	"os"
	"testing"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

func mustExamplesDir(t testing.TB) string {
	t.Helper()
	dir, err := localcluster.ExamplesDir()
	if err != nil {
		t.Fatalf("the examples are needed: %v", err)
	}
	return dir
}

// TestMain removes the binaries the tests built once they all ran.
func TestMain(m *testing.M) {
	code := m.Run()
	framework.RemoveBuiltBinaries()
	os.Exit(code)
}

// namespaceManifest is a Namespace named name, as one document of a stream.
func namespaceManifest(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: %s}\n---\n", name)
}

// selectedWebManifests are the smallest setup that injects a pod labelled app=web in namespace
// ns: a Service web (http 80 -> 8080) selecting it, a PluginChain web mounting cors-policy for
// it and a PluginConfig web allowing http://www.aaa.com.
func selectedWebManifests(ns string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: web, namespace: %[1]s}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {podSelector: {matchLabels: {app: web}}}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginConfig
metadata: {name: web, namespace: %[1]s}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: web}]
  config: {allowOrigins: [{exact: "http://www.aaa.com"}]}
`, ns)
}
