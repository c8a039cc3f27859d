package e2e

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestTenancyAndPodSecurity runs `cors-webhook serve --cluster-chain-namespaces ops` against a
// real API server (Pod Security admission on, as by default) and controller-manager:
//
//   - a tenant chain with namespaceSelector {} is accepted with a warning, injects pods of its
//     own namespace and nothing elsewhere, and its status names its own namespace only;
//   - a chain in the designated namespace ops reaches other namespaces;
//   - in a namespace enforcing Pod Security baseline, a pod that chain selects is created
//     without the sidecar (injecting it would have made the API server refuse it), with a
//     Warning event on its ReplicaSet; a Deployment that ran before the chain is not rolled,
//     while its twin in a namespace without Pod Security is, and the chain's status says why.
func TestTenancyAndPodSecurity(t *testing.T) {
	seed := filepath.Join(mustExamplesDir(t), "manifests")
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{
		ControllerManager: true,
		Webhook: envtest.WebhookInstallOptions{
			MutatingWebhooks:   []*admissionregistrationv1.MutatingWebhookConfiguration{podInjectionWebhook()},
			ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{pluginValidationWebhook()},
		},
	})
	injectorArgs := []string{"--sidecar-image", "registry.example/cors-sidecar:e2e", "--cluster-chain-namespaces", "ops"}
	startServe(t, c, bin, injectorArgs...)
	startController(t, c, bin, injectorArgs...)
	dayTwoKubelet(t, c, "tenant-a", "web", "psa", "priv")

	apply := func(t *testing.T, manifest string) string {
		t.Helper()
		res := c.KubectlStdin(t, manifest, "apply", "-f", "-")
		if res.ExitCode != 0 {
			t.Fatalf("kubectl apply: exit %d\n%s", res.ExitCode, res.Output())
		}
		return res.Stderr
	}
	apply(t, `
apiVersion: v1
kind: Namespace
metadata: {name: ops}
---
apiVersion: v1
kind: Namespace
metadata: {name: tenant-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {cors: "on"}}
---
apiVersion: v1
kind: Namespace
metadata: {name: psa, labels: {cors: "on", pod-security.kubernetes.io/enforce: baseline}}
---
apiVersion: v1
kind: Namespace
metadata: {name: priv, labels: {cors: "on"}}
`)
	c.MustKubectl(t, "apply", "-f", filepath.Join(seed, "cors.yaml"))
	deployment := func(ns, name, app string) string {
		return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
  selector: {matchLabels: {app: ` + app + `}}
  template:
    metadata: {labels: {app: ` + app + `}}
    spec: {containers: [{name: app, image: app}]}
`
	}
	// Workloads that run before any chain: only the Day-2 reconciler can give them the sidecar.
	apply(t, deployment("psa", "late", "late")+"---"+deployment("priv", "late", "late"))
	dayTwoReadyPod(t, c, "psa", client.MatchingLabels{"app": "late"})
	dayTwoReadyPod(t, c, "priv", client.MatchingLabels{"app": "late"})
	setsBefore := dayTwoReplicaSets(t, c, "psa")

	t.Run("a tenant's namespaceSelector {} is accepted with a warning", func(t *testing.T) {
		stderr := apply(t, `
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: everywhere, namespace: tenant-a}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {namespaceSelector: {}, podSelector: {matchLabels: {app: tenant}}}
`)
		if want := `Warning: spec.selectors.namespaceSelector: selects namespaces other than "tenant-a", but only PluginChains in the cluster-chain namespaces (ops) act beyond their own namespace`; !strings.Contains(stderr, want) {
			t.Errorf("kubectl stderr lacks %q:\n%s", want, stderr)
		}
	})
	stderr := apply(t, `
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: cors-on, namespace: ops}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors:
    namespaceSelector: {matchLabels: {cors: "on"}}
    podSelector: {matchExpressions: [{key: app, operator: In, values: [admin, late, psa]}]}
`)
	if strings.Contains(stderr, "Warning:") {
		t.Errorf("the designated namespace's chain got a warning:\n%s", stderr)
	}
	apply(t, deployment("tenant-a", "tenant", "tenant")+"---"+deployment("web", "tenant", "tenant")+"---"+deployment("web", "admin", "admin"))

	t.Run("the tenant chain injects its own namespace only", func(t *testing.T) {
		own := waitForPod(t, c, "tenant-a", client.MatchingLabels{"app": "tenant"})
		if got := initContainerNames(own); !slices.Equal(got, []string{"cors-sidecar"}) {
			t.Errorf("tenant-a pod: init containers %v, want [cors-sidecar] (no port to redirect)", got)
		}
		assertUntouched(t, waitForPod(t, c, "web", client.MatchingLabels{"app": "tenant"}))
		dayTwoWaitStatus(t, c, "pluginchain", "tenant-a", "everywhere", "Active", "selects 1 pod(s) in namespace tenant-a: 1 injected")
		chain := &v1alpha1.PluginChain{}
		if err := c.Client.Get(t.Context(), client.ObjectKey{Namespace: "tenant-a", Name: "everywhere"}, chain); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(chain.Status.Reason, "web") {
			t.Errorf("the tenant's status mentions another namespace: %q", chain.Status.Reason)
		}
	})

	t.Run("the designated namespace's chain reaches other namespaces", func(t *testing.T) {
		pod := waitForPod(t, c, "web", client.MatchingLabels{"app": "admin"})
		if got := initContainerNames(pod); !slices.Contains(got, "cors-sidecar") {
			t.Errorf("web/admin pod: init containers %v, want the sidecar", got)
		}
	})

	t.Run("a Pod Security baseline namespace: created, not injected, event, no rollout", func(t *testing.T) {
		apply(t, deployment("psa", "new", "psa"))
		assertUntouched(t, waitForPod(t, c, "psa", client.MatchingLabels{"app": "psa"}))
		framework.Eventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
			res := c.Kubectl(t, "get", "events", "-n", "psa", "--field-selector", "reason=CORSInjectionSkipped",
				"-o", "jsonpath={range .items[*]}{.type} {.involvedObject.kind}/{.involvedObject.name}: {.message}{\"\\n\"}{end}")
			out := res.Output()
			return strings.Contains(out, "Warning ReplicaSet/new-") && strings.Contains(out, `namespace psa enforces Pod Security "baseline"`), "events: " + out
		})

		// The twin in priv rolls: the reconciler has acted on the chain. psa/late does not.
		pod := dayTwoWaitRolledOut(t, c, "priv", "late", client.MatchingLabels{"app": "late"})
		if got := initContainerNames(&pod); !slices.Equal(got, []string{"cors-sidecar"}) {
			t.Errorf("priv/late after its rollout: init containers %v", got)
		}
		dayTwoWaitStatus(t, c, "pluginchain", "ops", "cors-on", "Active", "2 never injected: their namespace enforces Pod Security baseline or restricted")
		if got := dayTwoReplicaSets(t, c, "psa"); got != setsBefore+1 { // +1: psa/new
			t.Errorf("psa has %d ReplicaSets, want %d: late was rolled", got, setsBefore+1)
		}
		late := dayTwoReadyPod(t, c, "psa", client.MatchingLabels{"app": "late"})
		assertUntouched(t, &late)
	})
}
