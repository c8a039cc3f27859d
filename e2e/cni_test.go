//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/cni"
	"github.com/cors-webhook/cors-webhook/cni/install"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestCNIModeRestrictedNamespace runs the guide on a real node with the chart in CNI mode
// (cni.enabled=true: the cors-cni node agent chains the plugin into the node's conflist) and
// the guide's two namespaces enforcing Pod Security restricted. The guide's manifests go in in
// its order; its pod templates, refused by restricted as they are, get the securityContext a
// tenant of such a namespace must write (the patch below), nothing else. Both pipy-ok pods then
// run 2/2 with the sidecar, no container of theirs holds a capability, the redirect is in their
// network namespace, and the guide's two curl commands answer as the guide shows. Uninstalling
// the chart gives the conflist back byte for byte.
func TestCNIModeRestrictedNamespace(t *testing.T) {
	seed := mustExamplesDir(t)
	images := guideImages(t)
	n := framework.StartNode(t, localcluster.NodeOptions{Images: images})
	c := n.Cluster
	ctx := context.Background()
	conflistBefore, err := os.ReadFile(n.CNIConfFile())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("chart with cni.enabled", func(t *testing.T) {
		started := time.Now()
		installChartOnNode(t, n, "cni.enabled=true", "cni.image.tag="+guideImageTag,
			"cni.binDir="+n.CNIBinDir(), "cni.confDir="+n.CNIConfDir())
		waitCNIAgentReady(ctx, t, n)
		t.Logf("chart installed and the cors-cni node agent Ready in %s", time.Since(started).Round(time.Millisecond))
		data, err := os.ReadFile(n.CNIConfFile())
		if err != nil {
			t.Fatal(err)
		}
		if holds, err := install.Holds(data); !holds || err != nil {
			t.Errorf("the node's conflist does not chain %s (%v):\n%s", cni.PluginType, err, data)
		}
		if _, err := os.Stat(filepath.Join(n.CNIBinDir(), cni.PluginType)); err != nil {
			t.Errorf("plugin binary: %v", err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	manifest := func(name string) string { return filepath.Join(seed, "manifests", name) }
	c.MustKubectl(t, "apply", "-f", manifest("ns.yaml"))
	c.MustKubectl(t, "label", "namespace", "curl", "pipy", "pod-security.kubernetes.io/enforce=restricted")
	c.MustKubectl(t, "apply", "-n", "curl", "-f", manifest("curl.yaml"))
	c.MustKubectl(t, "apply", "-n", "pipy", "-f", manifest("pipy-ok.pipy.yaml"))
	for _, d := range []struct{ ns, name, container string }{{"curl", "curl", "curl"}, {"pipy", "pipy-ok-v1", "pipy"}, {"pipy", "pipy-ok-v2", "pipy"}} {
		c.MustKubectl(t, "patch", "deployment", d.name, "-n", d.ns, "--type=strategic", "-p", restrictedPatch(d.container))
	}
	started := time.Now()
	c.MustKubectl(t, "rollout", "status", "deployment/curl", "-n", "curl", "--timeout=180s")
	for _, v := range []string{"v1", "v2"} {
		c.MustKubectl(t, "rollout", "status", "deployment/pipy-ok-"+v, "-n", "pipy", "--timeout=180s")
	}
	t.Logf("guide workloads (restricted securityContext) Ready in %s", time.Since(started).Round(time.Millisecond))

	started = time.Now()
	c.MustKubectl(t, "apply", "-f", manifest("cors.yaml"))
	c.MustKubectl(t, "apply", "-f", manifest("cors-policy-chain.yaml"))
	c.MustKubectl(t, "apply", "-f", manifest("cors-policy-config.yaml"))

	t.Run("pipy-ok rolls to injected pods without a capability", func(t *testing.T) {
		var pods []corev1.Pod
		framework.Eventually(t, 180*time.Second, 250*time.Millisecond, func() (bool, string) {
			pods = cniInjectedPods(t, n, "pipy", "app=pipy-ok")
			return len(pods) == 2, fmt.Sprintf("%d pipy-ok pods injected in cni mode and Ready, want 2", len(pods))
		})
		for _, v := range []string{"v1", "v2"} {
			c.MustKubectl(t, "rollout", "status", "deployment/pipy-ok-"+v, "-n", "pipy", "--timeout=180s")
		}
		t.Logf("PluginChain applied -> both pipy-ok pods injected (cni mode) and Ready in %s", time.Since(started).Round(time.Millisecond))
		out := c.MustKubectl(t, "get", "pods", "-n", "pipy", "-o", "wide").Stdout
		t.Logf("kubectl get pods -n pipy -o wide\n%s", out)
		for _, pod := range pods {
			if !podLineShows(out, pod.Name, "2/2", "Running") {
				t.Errorf("kubectl get pods does not show %s 2/2 Running:\n%s", pod.Name, out)
			}
			for _, cs := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
				for _, ctr := range cs {
					if sc := ctr.SecurityContext; sc != nil && sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
						t.Errorf("%s: container %s adds capabilities %v", pod.Name, ctr.Name, sc.Capabilities.Add)
					}
				}
			}
			for _, s := range append(pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses...) {
				if s.RestartCount != 0 || !s.Ready {
					t.Errorf("%s: container %s ready=%v restarts=%d", pod.Name, s.Name, s.Ready, s.RestartCount)
				}
			}
			assertRedirectTable(t, n, &pod)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("the guide's commands", func(t *testing.T) { runGuideCommands(t, n, seed) })

	t.Run("uninstalling the chart gives the conflist back", func(t *testing.T) {
		h, err := localcluster.NewHelm()
		if err != nil {
			t.Fatal(err)
		}
		defer h.Close()
		hctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		if res, err := h.Run(hctx, n.Kubeconfig, "uninstall", realNodeRelease, "--namespace", realNodeNamespace, "--wait"); err != nil || res.ExitCode != 0 {
			t.Fatalf("helm uninstall: %v %s", err, res.Output())
		}
		framework.Eventually(t, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
			data, err := os.ReadFile(n.CNIConfFile())
			if err != nil {
				return false, err.Error()
			}
			if string(data) != string(conflistBefore) {
				return false, fmt.Sprintf("conflist is\n%s\nwant\n%s", data, conflistBefore)
			}
			if _, err := os.Stat(filepath.Join(n.CNIBinDir(), cni.PluginType)); !os.IsNotExist(err) {
				return false, fmt.Sprintf("plugin binary still there (%v)", err)
			}
			return true, ""
		})
	})
}

// restrictedPatch gives a pod template, and its container, the securityContext Pod Security
// restricted asks of a tenant's own pods.
func restrictedPatch(container string) string {
	return fmt.Sprintf(`{"spec":{"template":{"spec":{`+
		`"securityContext":{"runAsNonRoot":true,"runAsUser":65532,"runAsGroup":65532,"seccompProfile":{"type":"RuntimeDefault"}},`+
		`"containers":[{"name":%q,"securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}}}`, container)
}

// cniInjectedPods are the pods of selector injected in cni mode (the sidecar alone, the mode
// annotation), Ready and not terminating.
func cniInjectedPods(t *testing.T, n *framework.Node, ns, selector string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range listPods(t, n, ns, selector) {
		inits := p.Spec.InitContainers
		if p.DeletionTimestamp == nil && len(inits) == 1 && inits[0].Name == contract.ContainerSidecar &&
			p.Annotations[contract.AnnotationRedirectMode] == contract.RedirectModeCNI && localcluster.IsPodReady(&p) {
			out = append(out, p)
		}
	}
	return out
}

// waitCNIAgentReady waits until the release's cors-cni DaemonSet has every pod Ready.
func waitCNIAgentReady(ctx context.Context, t *testing.T, n *framework.Node) {
	t.Helper()
	framework.Eventually(t, 2*time.Minute, 250*time.Millisecond, func() (bool, string) {
		var list appsv1.DaemonSetList
		if err := n.Client.List(ctx, &list, client.InNamespace(realNodeNamespace), client.MatchingLabels{"app.kubernetes.io/component": "cni"}); err != nil {
			return false, err.Error()
		}
		if len(list.Items) != 1 {
			return false, fmt.Sprintf("%d cni DaemonSets", len(list.Items))
		}
		st := list.Items[0].Status
		ready := st.DesiredNumberScheduled > 0 && st.NumberReady == st.DesiredNumberScheduled && st.ObservedGeneration == list.Items[0].Generation
		return ready, fmt.Sprintf("DaemonSet %s: %d/%d ready", list.Items[0].Name, st.NumberReady, st.DesiredNumberScheduled)
	})
}
