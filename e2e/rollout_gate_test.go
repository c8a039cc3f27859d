package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestRolloutGateStopsAfterAFailedCanary: two namespaces each run a Deployment created before
// its PluginChain, so both need a rollout. Injected pods never start here (the kubelet
// stand-in leaves pods with the sidecar Pending, as a lost file capability or a policy engine
// would), so the real Deployment controller reports ProgressDeadlineExceeded on the first
// rollout. With --rollout-failure-limit=1 the controller rolls that canary only, reports its
// failure with an Event and the failure metric, and tells the other workload why it is not
// rolled.
func TestRolloutGateStopsAfterAFailedCanary(t *testing.T) {
	seed := filepath.Join(mustExamplesDir(t), "manifests")
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{
		ControllerManager: true,
		Webhook: envtest.WebhookInstallOptions{
			MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{podInjectionWebhook()},
		},
	})
	startServe(t, c, bin, "--sidecar-image", "registry.example/cors-sidecar:e2e")
	ctl := startController(t, c, bin, "--sidecar-image", "registry.example/cors-sidecar:e2e", "--rollout-failure-limit", "1")
	namespaces := []string{"gate-a", "gate-b"}
	dayTwoKubeletIf(t, c, func(p *corev1.Pod) bool { return !slices.Contains(initContainerNames(p), "cors-sidecar") }, namespaces...)

	c.MustKubectl(t, "apply", "-f", filepath.Join(seed, "cors.yaml"))
	for _, ns := range namespaces {
		c.MustKubectl(t, "create", "namespace", ns)
		if res := c.KubectlStdin(t, gateDeployment, "apply", "-n", ns, "-f", "-"); res.ExitCode != 0 {
			t.Fatal(res.Output())
		}
	}
	for _, ns := range namespaces {
		dayTwoReadyPod(t, c, ns, client.MatchingLabels{"app": "web"})
		framework.Eventually(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
			d := gateGet(t, c, ns)
			return d.Status.AvailableReplicas == 1, fmt.Sprintf("%s/web: %d available", ns, d.Status.AvailableReplicas)
		})
	}
	for _, ns := range namespaces {
		if res := c.KubectlStdin(t, gateChain, "apply", "-n", ns, "-f", "-"); res.ExitCode != 0 {
			t.Fatal(res.Output())
		}
	}

	canary, other := gateCanary(t, c, namespaces, 60*time.Second)
	start := time.Now()
	dayTwoWaitEvent(t, c, canary, "Deployment", "web", "CORSRolloutFailed", "ProgressDeadlineExceeded")
	t.Logf("canary %s/web failed %s after its rollout (progressDeadlineSeconds 3)", canary, time.Since(start).Round(100*time.Millisecond))
	dayTwoWaitEvent(t, c, other, "Deployment", "web", "CORSRolloutHalted", "rollouts are stopped after 1 failed rollout(s)")
	if v := gateGet(t, c, other).Spec.Template.Annotations[dayTwoRestartedAtKey]; v != "" {
		t.Errorf("%s/web rolled after the canary failed: %s", other, v)
	}
	metrics := ctl.get(t, "/metrics")
	for _, want := range []string{`cors_webhook_reconcile_rollout_failures_total{kind="Deployment"} 1`, "cors_webhook_reconcile_rollouts_halted 1", `cors_webhook_reconcile_rollouts_total{kind="Deployment"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q:\n%s", want, dayTwoGrep(metrics, "cors_webhook_reconcile_rollout"))
		}
	}
}

// gateCanary waits until the controller has rolled exactly one of the two namespaces' web
// Deployments, the canary, and fails if it rolls both; it returns the canary's namespace and the
// other.
func gateCanary(t *testing.T, c *framework.Cluster, namespaces []string, timeout time.Duration) (canary, other string) {
	t.Helper()
	framework.Eventually(t, timeout, 200*time.Millisecond, func() (bool, string) {
		var rolled []string
		for _, ns := range namespaces {
			if gateGet(t, c, ns).Spec.Template.Annotations[dayTwoRestartedAtKey] != "" {
				rolled = append(rolled, ns)
			}
		}
		if len(rolled) > 1 {
			t.Fatalf("both Deployments rolled while the canary had not become healthy: %v", rolled)
		}
		if len(rolled) == 1 {
			canary = rolled[0]
		}
		return canary != "", "no rollout yet"
	})
	other = namespaces[0]
	if other == canary {
		other = namespaces[1]
	}
	return canary, other
}

func gateGet(t *testing.T, c *framework.Cluster, namespace string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := c.Client.Get(t.Context(), client.ObjectKey{Namespace: namespace, Name: "web"}, d); err != nil {
		t.Fatal(err)
	}
	return d
}

// gateDeployment fails fast (3 s) when its new pods do not become available. Its container
// runs on a real node too (the guide's stand-in pipy image), within a 64 Mi LimitRange
// (realNodeGateWorkload).
const gateDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  progressDeadlineSeconds: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: flomesh/pipy:latest
        ports: [{name: http, containerPort: 8080}]
        resources:
          requests: {memory: 16Mi}
          limits: {memory: 32Mi}
        command:
        - pipy
        - -e
        - |
          pipy()
          .listen(8080)
          .serveHTTP(new Message('gate'))
`

const gateChain = `apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata:
  name: cors
spec:
  chains:
    - name: inbound-http
      plugins: [cors-policy]
  selectors:
    podSelector:
      matchLabels: {app: web}
`
