package e2e

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestFailOpenBackstop installs the chart with its defaults (the pod webhook fails open after
// 3 s) and runs the server with the Deployment's arguments, then takes the webhook away: first
// frozen (it accepts connections and never answers), then down (connection refused). Pods are
// still created, in the namespace a PluginChain selects and in an unrelated one, without the
// sidecar. When the webhook is back, the reconciler rolls the selected Deployment and its new
// pod has the sidecar within 60 s; the unrelated Deployment is left alone.
func TestFailOpenBackstop(t *testing.T) {
	const (
		release, ns = "cors-webhook", "cors-system"
		fullname    = "cors-webhook"
		selected    = "failopen-shop"
		unrelated   = "failopen-other"
	)
	chart := helmChartDir(t)
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{ControllerManager: true})
	port := helmFreePort(t)
	helmInstall(t, c, chart, release, ns, "--set", "plugin.declare=true",
		"--set", fmt.Sprintf("webhook.devURL=https://127.0.0.1:%d", port))
	// The controller runs throughout, as in a cluster where only admission is down: it must
	// not roll the selected workload while the webhook does not answer.
	ctrl := helmStartController(t, c, bin, ns, fullname+"-controller")
	metricsAddr := localAddr(t)
	srv := helmStartServe(t, c, bin, ns, fullname, port, "--metrics-bind-address="+metricsAddr)
	helmWaitCABundle(t, c, fullname, nil)
	dayTwoKubelet(t, c, selected, unrelated)

	t.Run("the serving certificate's expiry is a metric", func(t *testing.T) {
		want := fmt.Sprintf("cors_webhook_serving_certificate_expiry_timestamp_seconds %g", float64(certsServedLeaf(t, srv.addr).NotAfter.Unix()))
		metrics := (&serveProcess{metricsAddr: metricsAddr}).get(t, "/metrics")
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, dayTwoGrep(metrics, "cors_webhook_serving"))
		}
	})

	res := c.KubectlStdin(t, namespaceManifest(selected)+namespaceManifest(unrelated)+selectedWebManifests(selected), "apply", "-f", "-")
	if res.ExitCode != 0 {
		t.Fatalf("kubectl apply: %s", res.Output())
	}
	probe := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"probe","namespace":%q,"labels":{"app":"web"}},"spec":{"containers":[{"name":"web","image":"web","ports":[{"containerPort":8080}]}]}}`, selected)
	// The server sees the chain within moments: a server-side dry run shows when.
	framework.Eventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		res := c.KubectlStdin(t, probe, "create", "--dry-run=server", "-o", "json", "-f", "-")
		return res.ExitCode == 0 && strings.Contains(res.Stdout, `"cors-sidecar"`), "not injected yet: " + res.Output()
	})

	// Frozen: the webhook's port accepts connections and never answers.
	if err := srv.srv.Stop(); err != nil {
		t.Fatal(err)
	}
	frozen := freezePort(t, fmt.Sprintf("127.0.0.1:%d", port))
	t.Run("a frozen webhook delays a pod creation by the 3 s timeout, no more", func(t *testing.T) {
		pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"bare","namespace":%q},"spec":{"containers":[{"name":"app","image":"app"}]}}`, unrelated)
		start := time.Now()
		res := c.KubectlStdin(t, pod, "create", "-f", "-")
		took := time.Since(start)
		if res.ExitCode != 0 {
			t.Fatalf("pod creation failed while the webhook was frozen: %s", res.Output())
		}
		if frozen.count() == 0 {
			t.Errorf("the API server never called the frozen webhook")
		}
		if took > 8*time.Second {
			t.Errorf("pod creation took %s with the webhook frozen, want about 3 s (podTimeoutSeconds)", took)
		}
		t.Logf("kubectl create pod with the webhook frozen: %s", took.Round(10*time.Millisecond))
	})
	frozen.close()

	// Down: connection refused. The ReplicaSet controller creates the pods of both Deployments.
	deployment := func(namespace, app string) string {
		return fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[2]s, namespace: %[1]s}
spec:
  selector: {matchLabels: {app: %[2]s}}
  template:
    metadata: {labels: {app: %[2]s}}
    spec: {containers: [{name: %[2]s, image: %[2]s, ports: [{containerPort: 8080}]}]}
`, namespace, app)
	}
	if res := c.KubectlStdin(t, deployment(selected, "web")+"---"+deployment(unrelated, "other"), "apply", "-f", "-"); res.ExitCode != 0 {
		t.Fatalf("kubectl apply with the webhook down: %s", res.Output())
	}
	var unrelatedPod corev1.Pod
	t.Run("with the webhook down, pods are created in both namespaces, without the sidecar", func(t *testing.T) {
		web := dayTwoReadyPod(t, c, selected, client.MatchingLabels{"app": "web"})
		if containsSidecarPod(&web) {
			t.Fatalf("%s has the sidecar although the webhook was down", web.Name)
		}
		unrelatedPod = dayTwoReadyPod(t, c, unrelated, client.MatchingLabels{"app": "other"})
		assertUntouched(t, &unrelatedPod)
	})
	t.Run("while the webhook is down, the controller holds the rollout back", func(t *testing.T) {
		framework.Eventually(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
			return strings.Contains(ctrl.QuietLog(), "rollout waits for the pod webhook to answer"), "the controller has not held a rollout back yet"
		})
		d := &appsv1.Deployment{}
		if err := c.Client.Get(t.Context(), client.ObjectKey{Namespace: selected, Name: "web"}, d); err != nil {
			t.Fatal(err)
		}
		if v, ok := d.Spec.Template.Annotations[dayTwoRestartedAtKey]; ok {
			t.Errorf("the selected Deployment was rolled while the webhook was down: %s=%s", dayTwoRestartedAtKey, v)
		}
	})
	if t.Failed() {
		return
	}

	// Back: the controller, which waited for the webhook to answer, rolls the selected Deployment.
	back := time.Now()
	helmStartServe(t, c, bin, ns, fullname, port)
	t.Run("when it is back, the selected workload rolls and its new pods have the sidecar within 60 s", func(t *testing.T) {
		var took time.Duration
		framework.Eventually(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
			pods := dayTwoActivePods(t, c, selected, client.MatchingLabels{"app": "web"})
			if len(pods) == 0 {
				return false, "no pod of web"
			}
			for i := range pods {
				if !containsSidecarPod(&pods[i]) {
					return false, fmt.Sprintf("pod %s has no sidecar (init containers %v)", pods[i].Name, initContainerNames(&pods[i]))
				}
			}
			took = time.Since(back)
			return true, ""
		})
		t.Logf("every pod of %s/web has the sidecar %s after the webhook came back (the controller probes the webhook every 5 s)", selected, took.Round(100*time.Millisecond))
	})
	t.Run("the unrelated workload is untouched", func(t *testing.T) {
		d := &appsv1.Deployment{}
		if err := c.Client.Get(t.Context(), client.ObjectKey{Namespace: unrelated, Name: "other"}, d); err != nil {
			t.Fatal(err)
		}
		if v, ok := d.Spec.Template.Annotations[dayTwoRestartedAtKey]; ok {
			t.Errorf("the unrelated Deployment was rolled: %s=%s", dayTwoRestartedAtKey, v)
		}
		pods := dayTwoActivePods(t, c, unrelated, client.MatchingLabels{"app": "other"})
		if len(pods) != 1 || pods[0].UID != unrelatedPod.UID {
			t.Errorf("the unrelated pod was replaced: %d pods", len(pods))
		}
		for i := range pods {
			assertUntouched(t, &pods[i])
		}
	})
}

func containsSidecarPod(pod *corev1.Pod) bool {
	return slices.Contains(initContainerNames(pod), "cors-sidecar")
}

// frozenPort accepts TCP connections and never answers, as a hung webhook server would.
type frozenPort struct {
	ln       net.Listener
	mu       sync.Mutex
	conns    []net.Conn
	accepted int
	wg       sync.WaitGroup
}

func freezePort(t *testing.T, addr string) *frozenPort {
	t.Helper()
	var ln net.Listener
	// The stopped server's socket may linger a moment.
	framework.Eventually(t, 10*time.Second, 100*time.Millisecond, func() (bool, string) {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil, fmt.Sprint(err)
	})
	f := &frozenPort{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, conn)
			f.accepted++
			f.mu.Unlock()
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *frozenPort) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accepted
}

// close stops listening and drops every held connection; it is idempotent.
func (f *frozenPort) close() {
	_ = f.ln.Close()
	f.wg.Wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		_ = c.Close()
	}
	f.conns = nil
}
