//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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
	n, conflistBefore := startCNINode(t)
	c := n.Cluster

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

	var pods []corev1.Pod
	t.Run("pipy-ok rolls to injected pods without a capability", func(t *testing.T) {
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

	t.Run("the guide's commands", func(t *testing.T) {
		waitServiceEndpoints(t, n, "pipy", "pipy-ok", pods)
		runGuideCommands(t, n, seed)
	})

	t.Run("uninstalling the chart gives the conflist back", func(t *testing.T) { uninstallGivesConflistBack(t, n, conflistBefore) })
}

// startCNINode starts a real node with the chart in CNI mode (the node agent copies cors-cni to
// the node's own bin dir and chains it into its conflist) and returns it with the conflist as
// it was before.
func startCNINode(t *testing.T) (*framework.Node, []byte) {
	t.Helper()
	return startCNINodeWith(t, true)
}

// startCNINodeWith is startCNINode; with agentNow false, the node agent is scheduled nowhere
// until the node gets the label e2e-cni-agent=yes.
func startCNINodeWith(t *testing.T, agentNow bool) (*framework.Node, []byte) {
	t.Helper()
	images := guideImages(t)
	n := framework.StartNode(t, localcluster.NodeOptions{Images: images})
	ctx := context.Background()
	before, err := os.ReadFile(n.CNIConfFile())
	if err != nil {
		t.Fatal(err)
	}
	t.Run("chart with cni.enabled", func(t *testing.T) {
		started := time.Now()
		sets := []string{"cni.enabled=true", "cni.image.tag=" + guideImageTag, "cni.binDir=" + n.CNIBinDir(), "cni.confDir=" + n.CNIConfDir()}
		if !agentNow {
			installChartOnNode(t, n, append(sets, "cni.nodeSelector.e2e-cni-agent=yes")...)
			return
		}
		installChartOnNode(t, n, sets...)
		waitCNIAgentReady(ctx, t, n)
		t.Logf("chart installed and the cors-cni node agent Ready in %s", time.Since(started).Round(time.Millisecond))
		if err := conflistChains(n); err != nil {
			t.Error(err)
		}
		if _, err := os.Stat(filepath.Join(n.CNIBinDir(), cni.PluginType)); err != nil {
			t.Errorf("plugin binary: %v", err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	return n, before
}

// conflistChains says why the node's conflist does not chain cors-cni, or nil.
func conflistChains(n *framework.Node) error {
	data, err := os.ReadFile(n.CNIConfFile())
	if err != nil {
		return err
	}
	if holds, err := install.Holds(data); !holds || err != nil {
		return fmt.Errorf("the node's conflist does not chain %s (%v):\n%s", cni.PluginType, err, data)
	}
	return nil
}

// uninstallGivesConflistBack uninstalls the chart and waits until the node agent has taken the
// plugin out of the conflist, byte for byte as it was, and removed the binary.
func uninstallGivesConflistBack(t *testing.T, n *framework.Node, before []byte) {
	t.Helper()
	h, err := localcluster.NewHelm()
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if res, err := h.Run(ctx, n.Kubeconfig, "uninstall", realNodeRelease, "--namespace", realNodeNamespace, "--wait"); err != nil || res.ExitCode != 0 {
		t.Fatalf("helm uninstall: %v %s", err, res.Output())
	}
	framework.Eventually(t, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		data, err := os.ReadFile(n.CNIConfFile())
		if err != nil {
			return false, err.Error()
		}
		if string(data) != string(before) {
			return false, fmt.Sprintf("conflist is\n%s\nwant\n%s", data, before)
		}
		if _, err := os.Stat(filepath.Join(n.CNIBinDir(), cni.PluginType)); !os.IsNotExist(err) {
			return false, fmt.Sprintf("plugin binary still there (%v)", err)
		}
		return true, ""
	})
}

// applyGuide applies the guide's manifests, unchanged, in its order.
func applyGuide(t *testing.T, n *framework.Node, seed string) {
	t.Helper()
	for _, m := range []struct{ ns, file string }{{"", "ns.yaml"}, {"curl", "curl.yaml"}, {"pipy", "pipy-ok.pipy.yaml"}, {"", "cors.yaml"}, {"", "cors-policy-chain.yaml"}, {"", "cors-policy-config.yaml"}} {
		args := []string{"apply", "-f", filepath.Join(seed, "manifests", m.file)}
		if m.ns != "" {
			args = append(args, "-n", m.ns)
		}
		n.Cluster.MustKubectl(t, args...)
	}
}

// waitCNIPipyPods waits for the two pipy-ok pods injected in cni mode and Ready, other than
// those of exclude.
func waitCNIPipyPods(t *testing.T, n *framework.Node, timeout time.Duration, exclude []corev1.Pod) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	framework.Eventually(t, timeout, 250*time.Millisecond, func() (bool, string) {
		pods = pods[:0]
		for _, p := range cniInjectedPods(t, n, "pipy", "app=pipy-ok") {
			if !slices.ContainsFunc(exclude, func(o corev1.Pod) bool { return o.UID == p.UID }) {
				pods = append(pods, p)
			}
		}
		return len(pods) == 2, fmt.Sprintf("%d new pipy-ok pods injected in cni mode and Ready, want 2", len(pods))
	})
	return pods
}

// waitServiceEndpoints waits until the Service's EndpointSlices list exactly the pods' IPs as
// ready, and kube-proxy forwards to them: the guide's commands go through the Service VIP, and
// the pods just replaced others.
func waitServiceEndpoints(t *testing.T, n *framework.Node, ns, service string, pods []corev1.Pod) {
	t.Helper()
	var want []string
	for _, p := range pods {
		want = append(want, p.Status.PodIP)
	}
	slices.Sort(want)
	framework.Eventually(t, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		var eps discoveryv1.EndpointSliceList
		if err := n.Client.List(context.Background(), &eps, client.InNamespace(ns), client.MatchingLabels{discoveryv1.LabelServiceName: service}); err != nil {
			return false, err.Error()
		}
		var got []string
		for _, sl := range eps.Items {
			for _, e := range sl.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					got = append(got, e.Addresses...)
				}
			}
		}
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprintf("Service %s/%s has ready endpoints %v, want %v", ns, service, got, want)
	})
	curlPod := onlyPod(t, n, "curl", "app=curl")
	framework.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		res := n.Cluster.Kubectl(t, "exec", curlPod.Name, "-n", "curl", "-c", "curl", "--", "curl", "-s", "-m", "2", "-o", "/dev/null", fmt.Sprintf("http://%s.%s:8080", service, ns))
		return res.ExitCode == 0, res.Output()
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
	waitCNIAgentReadyWithin(ctx, t, n, 2*time.Minute)
}

func waitCNIAgentReadyWithin(ctx context.Context, t *testing.T, n *framework.Node, timeout time.Duration) {
	t.Helper()
	framework.Eventually(t, timeout, 100*time.Millisecond, func() (bool, string) {
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

// TestCNIConflistRewritten: another writer replaces the node's conflist (as a network plugin
// upgrading itself does: a new file renamed over the old one, without cors-cni). The node
// agent chains the plugin again within 10 s, pods created afterwards are redirected and answer
// the guide's commands, and uninstalling the chart leaves the conflist as it was.
func TestCNIConflistRewritten(t *testing.T) {
	seed := mustExamplesDir(t)
	n, before := startCNINode(t)
	c := n.Cluster
	applyGuide(t, n, seed)
	old := waitCNIPipyPods(t, n, 180*time.Second, nil)

	t.Run("another writer replaces the conflist", func(t *testing.T) {
		tmp := filepath.Join(n.CNIConfDir(), ".other-writer")
		if err := os.WriteFile(tmp, before, 0o600); err != nil {
			t.Fatal(err)
		}
		replaced := time.Now()
		if err := os.Rename(tmp, n.CNIConfFile()); err != nil {
			t.Fatal(err)
		}
		framework.Eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
			if err := conflistChains(n); err != nil {
				return false, err.Error()
			}
			return true, ""
		})
		t.Logf("cors-cni chained again %s after the conflist was replaced", time.Since(replaced).Round(time.Millisecond))
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("new pods are redirected", func(t *testing.T) {
		c.MustKubectl(t, "delete", "pod", "-n", "pipy", "-l", "app=pipy-ok", "--wait=false")
		pods := waitCNIPipyPods(t, n, 180*time.Second, old)
		for _, pod := range pods {
			assertRedirectTable(t, n, &pod)
		}
		waitServiceEndpoints(t, n, "pipy", "pipy-ok", pods)
		runGuideCommands(t, n, seed)
	})

	t.Run("uninstalling the chart gives the conflist back", func(t *testing.T) { uninstallGivesConflistBack(t, n, before) })
}

// TestCNINodeAgentLate: the guide's pods are injected in cni mode while the node agent is not
// running yet (its DaemonSet selects no node), so their sandboxes have no redirect (the first
// one rolled: rollouts are health-gated, and it never becomes healthy). They never
// answer the application's port: the sidecar's startup probe (a connection to that port) fails,
// so neither the sidecar nor the application starts. Once the agent is Ready the controller
// deletes them (Event RedirectMissing) and their workloads' new pods, made with the plugin,
// are redirected: within 60 s.
func TestCNINodeAgentLate(t *testing.T) {
	seed := mustExamplesDir(t)
	n, _ := startCNINodeWith(t, false)
	c := n.Cluster
	ctx := context.Background()
	applyGuide(t, n, seed)
	c.MustKubectl(t, "rollout", "status", "deployment/curl", "-n", "curl", "--timeout=180s")
	curlPod := onlyPod(t, n, "curl", "app=curl")

	var stranded []corev1.Pod
	t.Run("pods made before the agent never serve without the sidecar", func(t *testing.T) {
		framework.Eventually(t, 120*time.Second, 250*time.Millisecond, func() (bool, string) {
			stranded = stranded[:0]
			for _, p := range listPods(t, n, "pipy", "app=pipy-ok") {
				if p.DeletionTimestamp == nil && p.Annotations[contract.AnnotationRedirectMode] == contract.RedirectModeCNI && p.Status.PodIP != "" {
					stranded = append(stranded, p)
				}
			}
			// Rollouts are health-gated: the first workload rolled (the canary) never becomes
			// healthy here, so the second waits; one stranded pod is what there is to watch.
			return len(stranded) >= 1, "no pipy-ok pod injected in cni mode with an IP yet"
		})
		// For 20 s (two thirds of the sidecar's startup budget), ask each pod's application
		// port directly: nothing may answer, and no container but the sidecar may have started.
		deadline := time.Now().Add(20 * time.Second)
		asked := 0
		for time.Now().Before(deadline) {
			for _, p := range stranded {
				res := c.Kubectl(t, "exec", curlPod.Name, "-n", "curl", "-c", "curl", "--", "curl", "-s", "-m", "2", "-o", "/dev/null", "-w", "%{http_code}", fmt.Sprintf("http://%s:8080", p.Status.PodIP))
				asked++
				if res.ExitCode == 0 {
					t.Fatalf("%s answered on its application port without its redirect: %s", p.Name, res.Stdout)
				}
			}
			for _, p := range listPods(t, n, "pipy", "app=pipy-ok") {
				if p.Annotations[contract.AnnotationRedirectMode] != contract.RedirectModeCNI {
					continue // the guide's pods from before the chain: not selected then, still serving until replaced
				}
				for _, s := range p.Status.ContainerStatuses {
					if s.State.Running != nil || s.State.Terminated != nil {
						t.Fatalf("%s: application container %s started without its redirect", p.Name, s.Name)
					}
				}
				if localcluster.IsPodReady(&p) {
					t.Fatalf("%s is Ready without its redirect", p.Name)
				}
			}
		}
		t.Logf("%d requests to the stranded pods' application port in 20 s: none answered", asked)
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("repaired within 60 s of the agent becoming Ready", func(t *testing.T) {
		c.MustKubectl(t, "label", "node", localcluster.NodeName, "e2e-cni-agent=yes")
		waitCNIAgentReadyWithin(ctx, t, n, 2*time.Minute)
		ready := time.Now()
		pods := waitCNIPipyPods(t, n, 60*time.Second, stranded)
		t.Logf("node agent Ready -> both pipy-ok pods recreated with their redirect and Ready in %s", time.Since(ready).Round(time.Millisecond))
		for _, pod := range pods {
			assertRedirectTable(t, n, &pod)
		}
		for _, v := range []string{"v1", "v2"} {
			c.MustKubectl(t, "rollout", "status", "deployment/pipy-ok-"+v, "-n", "pipy", "--timeout=120s")
		}
		events := c.MustKubectl(t, "get", "events", "-n", "pipy", "--field-selector", "reason=RedirectMissing", "-o", "name").Stdout
		if got := len(strings.Fields(events)); got < len(stranded) {
			t.Errorf("%d RedirectMissing Events in pipy, want one per stranded pod (%d)", got, len(stranded))
		}
		waitServiceEndpoints(t, n, "pipy", "pipy-ok", cniInjectedPods(t, n, "pipy", "app=pipy-ok"))
		runGuideCommands(t, n, seed)
	})
}
