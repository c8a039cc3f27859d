package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestControlPlaneRunsWorkloads shows the local control plane is a real one: with
// kube-controller-manager, a Deployment applied with kubectl becomes a ReplicaSet and a Pod
// (Pending, as no kubelet runs), and the server reports the pinned Kubernetes version.
func TestControlPlaneRunsWorkloads(t *testing.T) {
	c := framework.Start(t, localcluster.Options{ControllerManager: true})

	version, err := c.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if version != "v1.37.2" {
		t.Errorf("server version %q, want v1.37.2 (bin/ built without `make tools` ldflags?)", version)
	}

	c.MustKubectl(t, "create", "namespace", "workloads")
	c.MustKubectl(t, "create", "deployment", "web", "-n", "workloads", "--image=example.invalid/web:1", "--replicas=2")

	framework.Eventually(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
		pods := &corev1.PodList{}
		if err := c.Client.List(context.Background(), pods, client.InNamespace("workloads")); err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 2, fmt.Sprintf("%d pods, want 2", len(pods.Items))
	})
}
