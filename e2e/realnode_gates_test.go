//go:build linux

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// The real-node versions of two of issue 28's guarantees that TestRolloutGateStopsAfterAFailedCanary
// and TestHelmControllerAdmissionPolicy prove on envtest: subtests of TestGuideOnARealNode, so
// they share its cluster and the chart it installed.

// controllerRefusedImagePatch patches, as the controller's ServiceAccount, the image of the
// guide's curl pod: RBAC allows the controller to patch pods, the chart's
// ValidatingAdmissionPolicy refuses every change but the policy annotation.
func controllerRefusedImagePatch(t *testing.T, n *framework.Node) {
	curl := onlyPod(t, n, "curl", "app=curl")
	cfg := rest.CopyConfig(n.Cluster.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + realNodeNamespace + ":" + realNodeRelease + "-controller"}
	controller, err := client.New(cfg, client.Options{Scheme: localcluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	const refused = "the cors-webhook controller may change only the cors-webhook.io/policy annotation of a pod"
	patch := client.RawPatch(types.StrategicMergePatchType,
		[]byte(`{"spec":{"containers":[{"name":"`+curl.Spec.Containers[0].Name+`","image":"registry.example/evil:1"}]}}`))
	err = controller.Patch(t.Context(), &curl, patch)
	if err == nil || !strings.Contains(err.Error(), refused) {
		t.Fatalf("the controller's patch of pod curl/%s's image: %v, want a refusal saying %q", curl.Name, err, refused)
	}
	t.Logf("refused: %v", err)
	after := onlyPod(t, n, "curl", "app=curl")
	if after.UID != curl.UID || after.Spec.Containers[0].Image != curl.Spec.Containers[0].Image {
		t.Errorf("pod curl changed: %s %s, before %s %s", after.UID, after.Spec.Containers[0].Image, curl.UID, curl.Spec.Containers[0].Image)
	}
}

// canaryFailureStopsRollouts restarts the controller with --rollout-failure-limit=1 (helm
// upgrade), so that its next rollout is a canary, then selects two running Deployments in two
// namespaces whose LimitRange refuses the injected containers (their 128 Mi limit is over the
// namespace's 64 Mi maximum): a policy engine refusing the pod, for real. The API server refuses
// the canary's new pods, its Deployment reports ProgressDeadlineExceeded, the controller records
// CORSRolloutFailed on it and CORSRolloutHalted on the other, which it never rolls.
func canaryFailureStopsRollouts(t *testing.T, n *framework.Node) {
	ctx := context.Background()
	c := n.Cluster
	namespaces := []string{"gate-a", "gate-b"}
	for _, ns := range namespaces {
		c.MustKubectl(t, "create", "namespace", ns)
		if res := c.KubectlStdin(t, realNodeGateWorkload, "apply", "-n", ns, "-f", "-"); res.ExitCode != 0 {
			t.Fatal(res.Output())
		}
	}
	for _, ns := range namespaces {
		c.MustKubectl(t, "rollout", "status", "deployment/web", "-n", ns, "--timeout=180s")
	}

	h, err := localcluster.NewHelm()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	hctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	res, err := h.Run(hctx, n.Kubeconfig, "upgrade", realNodeRelease, helmChartDir(t), "--namespace", realNodeNamespace,
		"--reuse-values", "--set", "controller.rolloutFailureLimit=1")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("helm upgrade: %v %s", err, res.Output())
	}
	c.MustKubectl(t, "rollout", "status", "deployment/"+realNodeRelease+"-controller", "-n", realNodeNamespace, "--timeout=180s")

	for _, ns := range namespaces {
		if res := c.KubectlStdin(t, gateChain, "apply", "-n", ns, "-f", "-"); res.ExitCode != 0 {
			t.Fatal(res.Output())
		}
	}
	start := time.Now()
	canary, other := gateCanary(t, c, namespaces, 2*time.Minute) // the new controller may take the lease first
	t.Logf("canary %s/web rolled %s after the chains", canary, time.Since(start).Round(100*time.Millisecond))
	dayTwoWaitEvent(t, c, canary, "Deployment", "web", "CORSRolloutFailed", "ProgressDeadlineExceeded")
	dayTwoWaitEvent(t, c, other, "Deployment", "web", "CORSRolloutHalted", "rollouts are stopped after 1 failed rollout(s)")
	if v := gateGet(t, c, other).Spec.Template.Annotations[dayTwoRestartedAtKey]; v != "" {
		t.Errorf("%s/web rolled after the canary failed: %s", other, v)
	}
	// What refused the canary's pods: the API server, for the injected containers' limit.
	var rsList appsv1.ReplicaSetList
	if err := n.Client.List(ctx, &rsList, client.InNamespace(canary)); err != nil {
		t.Fatal(err)
	}
	for _, rs := range rsList.Items {
		for _, cond := range rs.Status.Conditions {
			if cond.Type == appsv1.ReplicaSetReplicaFailure {
				t.Logf("ReplicaSet %s: %s", rs.Name, cond.Message)
			}
		}
	}
	if pods := listPods(t, n, other, "app=web"); len(pods) != 1 || len(pods[0].Spec.InitContainers) != 0 || pods[0].Status.Phase != corev1.PodRunning {
		t.Errorf("%s's pods changed: %s", other, fmt.Sprint(podNames(pods)))
	}
}

// assertSidecarMemoryLimit checks that the running sidecar took its Go memory limit from the
// container's memory limit: the kubelet resolved GOMEMLIMIT's resourceFieldRef, and the proxy
// kept a tenth of it as headroom (its start line says "memory_limit").
func assertSidecarMemoryLimit(t *testing.T, n *framework.Node, pod *corev1.Pod) {
	t.Helper()
	var limit int64
	for _, c := range pod.Spec.InitContainers {
		if c.Name == contract.ContainerSidecar {
			limit = c.Resources.Limits.Memory().Value()
		}
	}
	if limit == 0 {
		t.Fatalf("%s: the sidecar has no memory limit", pod.Name)
	}
	want := fmt.Sprintf(`"memory_limit":"%d"`, limit-limit/10)
	logs := n.Cluster.MustKubectl(t, "logs", "-n", pod.Namespace, pod.Name, "-c", contract.ContainerSidecar).Stdout
	if !strings.Contains(logs, want) {
		t.Errorf("%s: the sidecar's log lacks %s (90%% of its %d-byte limit):\n%s", pod.Name, want, limit, logs)
	}
}

func podNames(pods []corev1.Pod) []string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Name)
	}
	return names
}

// realNodeGateWorkload is a LimitRange under the injected containers' memory limit and
// gateDeployment, which fits it.
const realNodeGateWorkload = `apiVersion: v1
kind: LimitRange
metadata: {name: small}
spec:
  limits:
  - type: Container
    max: {memory: 64Mi}
---
` + gateDeployment
