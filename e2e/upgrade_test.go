package e2e

import (
	"fmt"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestSidecarUpgradeReachesRunningPods: pods injected with sidecar v1.0.0 carry that version;
// after the webhook and the controller are upgraded to sidecar v1.1.0 with
// --roll-outdated-sidecars, the controller rolls the Deployment and its new pods run v1.1.0.
// kube-controller-manager replaces the pods; a test goroutine marks them Ready (no kubelet).
func TestSidecarUpgradeReachesRunningPods(t *testing.T) {
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{
		ControllerManager: true,
		Webhook: envtest.WebhookInstallOptions{
			MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{podInjectionWebhook()},
		},
	})
	const ns, image = "upgrade", "registry.example/cors-sidecar:"
	old := []string{"--sidecar-image", image + "v1.0.0"}
	serve, ctrl := startServe(t, c, bin, old...), startController(t, c, bin, old...)
	dayTwoKubelet(t, c, ns)
	if res := c.KubectlStdin(t, `
apiVersion: v1
kind: Namespace
metadata: {name: upgrade}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: Plugin
metadata: {name: cors-policy}
spec: {priority: 165, pipyscript: "(() => {})()"}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: web, namespace: upgrade}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {podSelector: {matchLabels: {app: web}}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: upgrade}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: upgrade}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web, ports: [{containerPort: 8080}]}]}
`, "apply", "-f", "-"); res.ExitCode != 0 {
		t.Fatalf("kubectl apply: %s", res.Output())
	}
	web := client.MatchingLabels{"app": "web"}
	sidecarOf := func() (version, img string, n int) {
		pods := dayTwoActivePods(t, c, ns, web)
		if len(pods) == 0 {
			return "", "", 0
		}
		p := pods[0]
		for _, ic := range p.Spec.InitContainers {
			if ic.Name == contract.ContainerSidecar {
				img = ic.Image
			}
		}
		return p.Annotations[contract.AnnotationSidecarVersion], img, len(pods)
	}
	framework.Eventually(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		v, img, n := sidecarOf()
		return n == 1 && v == "v1.0.0" && img == image+"v1.0.0", fmt.Sprintf("%d pods, sidecar-version %q, image %q", n, v, img)
	})

	t.Log("upgrading serve and controller to sidecar v1.1.0, controller with --roll-outdated-sidecars")
	serve.stop()
	ctrl.stop()
	upgraded := []string{"--sidecar-image", image + "v1.1.0"}
	startServe(t, c, bin, upgraded...)
	startController(t, c, bin, append(upgraded, "--roll-outdated-sidecars")...)
	framework.Eventually(t, 90*time.Second, 200*time.Millisecond, func() (bool, string) {
		d := &appsv1.Deployment{}
		if err := c.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "web"}, d); err != nil {
			return false, err.Error()
		}
		v, img, n := sidecarOf()
		done := d.Status.ObservedGeneration == d.Generation && d.Status.UpdatedReplicas == 1 && d.Status.Replicas == 1 && n == 1
		return done && v == "v1.1.0" && img == image+"v1.1.0", fmt.Sprintf("%d pods, sidecar-version %q, image %q; deployment %+v", n, v, img, d.Status)
	})
	dayTwoWaitEvent(t, c, ns, "Deployment", "web", "CORSRollout", "older than version v1.1.0")
}
