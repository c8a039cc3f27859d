//go:build linux

package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
	"github.com/cors-webhook/cors-webhook/sidecar/redirect"
)

const (
	realNodeRelease   = "cors-webhook"
	realNodeNamespace = "cors-system"
)

// TestGuideOnARealNode runs the seed guide on a real node: the chart installed with the images
// built from this commit (the webhook runs as pods), the guide's manifests applied unchanged
// in the guide's order, and its two curl commands run literally with kubectl exec through
// cluster DNS and the Service VIP.
func TestGuideOnARealNode(t *testing.T) {
	seed := mustExamplesDir(t)
	images := guideImages(t)
	n := framework.StartNode(t, localcluster.NodeOptions{Images: images})
	c := n.Cluster
	ctx := context.Background()

	t.Run("chart", func(t *testing.T) {
		started := time.Now()
		installChartOnNode(t, n)
		t.Logf("chart installed, webhook Deployments Available and caBundle filled in %s", time.Since(started).Round(time.Millisecond))
	})
	if t.Failed() {
		t.FailNow()
	}

	// The guide: workloads first, then the Plugin, the PluginChain and the PluginConfig.
	manifest := func(name string) string { return filepath.Join(seed, "manifests", name) }
	c.MustKubectl(t, "apply", "-f", manifest("ns.yaml"))
	c.MustKubectl(t, "apply", "-n", "curl", "-f", manifest("curl.yaml"))
	c.MustKubectl(t, "apply", "-n", "pipy", "-f", manifest("pipy-ok.pipy.yaml"))
	started := time.Now()
	c.MustKubectl(t, "wait", "--for=condition=ready", "pod", "-n", "curl", "-l", "app=curl", "--timeout=180s")
	c.MustKubectl(t, "wait", "--for=condition=ready", "pod", "-n", "pipy", "-l", "app=pipy-ok", "-l", "version=v1", "--timeout=180s")
	c.MustKubectl(t, "wait", "--for=condition=ready", "pod", "-n", "pipy", "-l", "app=pipy-ok", "-l", "version=v2", "--timeout=180s")
	t.Logf("guide workloads Ready in %s", time.Since(started).Round(time.Millisecond))
	curlPod := onlyPod(t, n, "curl", "app=curl")

	started = time.Now()
	c.MustKubectl(t, "apply", "-f", manifest("cors.yaml"))
	c.MustKubectl(t, "apply", "-f", manifest("cors-policy-chain.yaml"))
	c.MustKubectl(t, "apply", "-f", manifest("cors-policy-config.yaml"))

	var pipyPods []corev1.Pod
	t.Run("pipy-ok rolls to injected pods", func(t *testing.T) {
		for _, v := range []string{"v1", "v2"} {
			c.MustKubectl(t, "rollout", "status", "deployment/pipy-ok-"+v, "-n", "pipy", "--timeout=180s")
		}
		framework.Eventually(t, 60*time.Second, 200*time.Millisecond, func() (bool, string) {
			pipyPods = injectedPods(t, n, "pipy", "app=pipy-ok")
			if len(pipyPods) != 2 {
				return false, fmt.Sprintf("%d pipy-ok pods running injected and Ready, want 2", len(pipyPods))
			}
			return true, ""
		})
		t.Logf("PluginChain applied -> both pipy-ok pods injected and Ready in %s", time.Since(started).Round(time.Millisecond))
		out := c.MustKubectl(t, "get", "pods", "-n", "pipy", "-o", "wide").Stdout
		t.Logf("kubectl get pods -n pipy -o wide\n%s", out)
		for _, pod := range pipyPods {
			if !strings.Contains(out, pod.Name) || !podLineShows(out, pod.Name, "2/2", "Running") {
				t.Errorf("kubectl get pods does not show %s 2/2 Running:\n%s", pod.Name, out)
			}
			assertInjectedPod(t, &pod)
			assertRedirectTable(t, n, &pod)
			if logs := c.MustKubectl(t, "logs", "-n", pod.Namespace, pod.Name, "-c", contract.ContainerInit).Stdout; !strings.Contains(logs, "installed table inet "+redirect.DefaultTable) {
				t.Errorf("%s: %s logged %q", pod.Name, contract.ContainerInit, logs)
			} else {
				t.Logf("%s: %s exited 0 as the runtime's user %+v and logged: %s", pod.Name, contract.ContainerInit, initUser(&pod), strings.TrimSpace(logs))
			}
			assertSidecarMemoryLimit(t, n, &pod)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("the guide's commands", func(t *testing.T) { runGuideCommands(t, n, seed) })

	t.Run("helm test", func(t *testing.T) { helmTestInjects(t, n) })

	t.Run("the dashboard and alerts name only metrics that exist", func(t *testing.T) {
		checkMonitoringMetricsExist(t, n, pipyPods)
	})

	t.Run("a PluginConfig edit reaches the running sidecars", func(t *testing.T) {
		before := podIdentities(t, n, "pipy", "app=pipy-ok")
		patch := `{"spec":{"config":{"allowOrigins":[{"regex":"http.*://www.test.cn"},{"exact":"http://www.aaa.com"},{"prefix":"http://www.bbb.com"},{"exact":"http://www.ccc.com"}]}}}`
		edited := time.Now()
		c.MustKubectl(t, "patch", "pluginconfig", "cors-policy-config", "-n", "pipy", "--type=merge", "-p", patch)
		var propagation []time.Duration
		for _, pod := range pipyPods {
			url := fmt.Sprintf("http://%s:8080", pod.Status.PodIP)
			framework.Eventually(t, 30*time.Second, 50*time.Millisecond, func() (bool, string) {
				res := c.Kubectl(t, "exec", curlPod.Name, "-n", "curl", "-c", "curl", "--", "curl", "-ksi", url, "-H", "Origin: http://www.ccc.com")
				d, err := parseHTTPDump(res.Stdout)
				if err != nil {
					return false, res.Output()
				}
				return d.get("access-control-allow-origin") == "http://www.ccc.com", d.raw
			})
			propagation = append(propagation, time.Since(edited))
		}
		t.Logf("PluginConfig edit -> new origin allowed by every sidecar (through kubectl exec curl) in %s", slices.Max(propagation).Round(time.Millisecond))
		if after := podIdentities(t, n, "pipy", "app=pipy-ok"); !slices.Equal(before, after) {
			t.Errorf("the pods were replaced or restarted:\nbefore %v\nafter  %v", before, after)
		}
	})

	t.Run("admin-port probes", func(t *testing.T) {
		for _, pod := range pipyPods {
			for _, path := range []string{contract.StartupPath, contract.ReadinessPath} {
				url := fmt.Sprintf("http://%s:%d%s", pod.Status.PodIP, contract.DefaultAdminPort, path)
				res := c.Kubectl(t, "exec", curlPod.Name, "-n", "curl", "-c", "curl", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", url)
				if strings.TrimSpace(res.Stdout) != "200" {
					t.Errorf("%s: %q %s", url, res.Stdout, res.Stderr)
				}
			}
		}
	})

	t.Run("the kubelet serves only the API server", func(t *testing.T) {
		node := &corev1.Node{}
		if err := n.Client.Get(ctx, client.ObjectKey{Name: localcluster.NodeName}, node); err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("https://127.0.0.1:%d/pods", node.Status.DaemonEndpoints.KubeletEndpoint.Port)
		hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a client certificate: %s, want 401", url, resp.Status)
		}
	})

	t.Run("a rolling restart of the webhook fails no admission", func(t *testing.T) {
		rolloutRestartUnderAdmission(t, n)
	})

	t.Run("replicas with their own token volumes are answered from memory", func(t *testing.T) {
		replicasFromMemory(t, n)
	})

	t.Run("the curl pod is untouched", func(t *testing.T) {
		pod := &corev1.Pod{}
		if err := n.Client.Get(ctx, client.ObjectKey{Namespace: "curl", Name: curlPod.Name}, pod); err != nil {
			t.Fatal(err)
		}
		if pod.UID != curlPod.UID {
			t.Errorf("the curl pod was replaced")
		}
		if len(pod.Spec.InitContainers) != 0 || len(pod.Spec.Containers) != 1 {
			t.Errorf("the curl pod has containers added: %d init, %d", len(pod.Spec.InitContainers), len(pod.Spec.Containers))
		}
		for k := range pod.Annotations {
			if strings.HasPrefix(k, "cors-webhook.io/") {
				t.Errorf("the curl pod has annotation %s", k)
			}
		}
		for _, s := range pod.Status.ContainerStatuses {
			if s.RestartCount != 0 {
				t.Errorf("container %s restarted %d times", s.Name, s.RestartCount)
			}
		}
	})

	t.Run("the controller's ServiceAccount is refused a patch of a pod's image", func(t *testing.T) {
		controllerRefusedImagePatch(t, n)
	})
	// It rolls the curl Deployment.
	t.Run("a cluster-wide chain leaves kube-system and the release alone", func(t *testing.T) {
		clusterWideChainScope(t, n)
	})
	// Last: it restarts the controller with a failure limit of 1 and halts its rollouts.
	t.Run("a rollout whose canary fails stops with an Event", func(t *testing.T) {
		canaryFailureStopsRollouts(t, n)
	})
}

// clusterWideChainScope creates a PluginChain in the release namespace (a cluster-chain
// namespace) that selects every pod of every namespace, and waits until the controller has
// rolled the curl Deployment for it: by then it has seen the chain. The Deployments of
// kube-system (CoreDNS) and of the release, which the webhook is never called for, must not
// have been rolled nor their pods replaced.
func clusterWideChainScope(t *testing.T, n *framework.Node) {
	ctx := context.Background()
	untouched := map[string][]string{} // "namespace/deployment" -> its pods' UIDs
	for _, ns := range []string{"kube-system", realNodeNamespace} {
		var deps appsv1.DeploymentList
		if err := n.Client.List(ctx, &deps, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		for _, d := range deps.Items {
			untouched[ns+"/"+d.Name] = nil
		}
		untouched[ns+"/pods"] = podUIDs(t, n, ns)
	}
	if _, ok := untouched["kube-system/coredns"]; !ok {
		t.Fatalf("no CoreDNS Deployment in kube-system: %v", untouched)
	}
	res := n.Cluster.KubectlStdin(t, fmt.Sprintf(`
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: everywhere, namespace: %s}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {podSelector: {}, namespaceSelector: {}}
`, realNodeNamespace), "apply", "-f", "-")
	if res.ExitCode != 0 {
		t.Fatalf("kubectl apply: %s", res.Output())
	}
	t.Cleanup(func() {
		n.Cluster.Kubectl(t, "delete", "pluginchain", "everywhere", "-n", realNodeNamespace, "--ignore-not-found")
	})
	framework.Eventually(t, 90*time.Second, 250*time.Millisecond, func() (bool, string) {
		var d appsv1.Deployment
		if err := n.Client.Get(ctx, client.ObjectKey{Namespace: "curl", Name: "curl"}, &d); err != nil {
			return false, err.Error()
		}
		_, rolled := d.Spec.Template.Annotations["cors-webhook.io/restartedAt"]
		return rolled, "the controller has not rolled deployment curl/curl for the chain yet"
	})
	for key := range untouched {
		ns, name, _ := strings.Cut(key, "/")
		if name == "pods" {
			continue
		}
		var d appsv1.Deployment
		if err := n.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
			t.Fatal(err)
		}
		if v, rolled := d.Spec.Template.Annotations["cors-webhook.io/restartedAt"]; rolled {
			t.Errorf("deployment %s was rolled by the controller (restartedAt %s)", key, v)
		}
	}
	for _, ns := range []string{"kube-system", realNodeNamespace} {
		if now := podUIDs(t, n, ns); !slices.Equal(now, untouched[ns+"/pods"]) {
			t.Errorf("the pods of %s changed: %v, before %v", ns, now, untouched[ns+"/pods"])
		}
	}
}

// podUIDs are the UIDs of namespace ns's pods, sorted.
func podUIDs(t *testing.T, n *framework.Node, ns string) []string {
	t.Helper()
	var pods corev1.PodList
	if err := n.Client.List(context.Background(), &pods, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	var uids []string
	for _, p := range pods.Items {
		uids = append(uids, string(p.UID))
	}
	slices.Sort(uids)
	return uids
}

// runGuideCommands runs the guide's two `kubectl exec ... curl` commands literally, through
// cluster DNS and the Service VIP, and compares the answers with examples/expected.
func runGuideCommands(t *testing.T, n *framework.Node, seed string) {
	for _, tc := range []struct{ file, command string }{
		{"get-origin-bbb.txt", `kubectl exec ${curl_client} -n curl -c curl -- curl -ksi http://pipy-ok.pipy:8080 -H "Origin: http://www.bbb.com"`},
		{"options-origin-bbb.txt", `kubectl exec ${curl_client} -n curl -c curl -- curl -ksi http://pipy-ok.pipy:8080 -H "Origin: http://www.bbb.com" -X OPTIONS`},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(seed, "expected", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			want, err := parseHTTPDump(string(raw))
			if err != nil {
				t.Fatal(err)
			}
			// The Service balances over v1 and v2: ask until each has answered once (a
			// preflight is answered by the sidecar alone: once is enough).
			seen := map[string]bool{}
			answers := 1
			if want.body != "" {
				answers = 2
			}
			framework.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
				out := guideShell(t, n, tc.command)
				got, err := parseHTTPDump(out)
				if err != nil {
					return false, fmt.Sprintf("%v\n%s", err, out)
				}
				w := want
				w.body = strings.Replace(w.body, "v1", responderVersion(got.body), 1)
				if problems := compareToSeed(got, w); len(problems) > 0 {
					t.Fatalf("%s\ndiffers from %s:\n  %s\ngot:\n%s", tc.command, tc.file, strings.Join(problems, "\n  "), out)
				}
				seen[responderVersion(got.body)] = true
				return len(seen) == answers, fmt.Sprintf("answered by %v", seen)
			})
		})
	}
}

// installChartOnNode installs the chart with the images built from this commit, and waits
// until every Deployment of the release is Available and the webhook configurations carry the
// CA bundle the server wrote.
func installChartOnNode(t *testing.T, n *framework.Node, sets ...string) {
	t.Helper()
	args := []string{"--set", "image.tag=" + guideImageTag, "--set", "injector.sidecar.image.tag=" + guideImageTag}
	for _, set := range sets {
		args = append(args, "--set", set)
	}
	installReleaseOnNode(t, n, helmChartDir(t), args...)
}

// installReleaseOnNode installs chart (a folder or an oci:// reference) as the release, with
// args added to helm install, and waits as installChartOnNode does.
func installReleaseOnNode(t *testing.T, n *framework.Node, chart string, args ...string) {
	t.Helper()
	h, err := localcluster.NewHelm()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := h.Run(ctx, n.Kubeconfig, append([]string{"install", realNodeRelease, chart,
		"--namespace", realNodeNamespace, "--create-namespace"}, args...)...)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("helm install: %v %s", err, res.Output())
	}
	sel := client.MatchingLabels{"app.kubernetes.io/instance": realNodeRelease}
	framework.Eventually(t, 3*time.Minute, 250*time.Millisecond, func() (bool, string) {
		var deps appsv1.DeploymentList
		if err := n.Client.List(ctx, &deps, client.InNamespace(realNodeNamespace), sel); err != nil {
			return false, err.Error()
		}
		if len(deps.Items) == 0 {
			return false, "no Deployment of the release"
		}
		for _, d := range deps.Items {
			if !deploymentAvailable(&d) {
				return false, fmt.Sprintf("Deployment %s: %d/%d available, %d updated", d.Name, d.Status.AvailableReplicas, *d.Spec.Replicas, d.Status.UpdatedReplicas)
			}
		}
		return true, ""
	})
	framework.Eventually(t, time.Minute, 250*time.Millisecond, func() (bool, string) {
		var mwc admissionregistrationv1.MutatingWebhookConfigurationList
		var vwc admissionregistrationv1.ValidatingWebhookConfigurationList
		if err := n.Client.List(ctx, &mwc, sel); err != nil {
			return false, err.Error()
		}
		if err := n.Client.List(ctx, &vwc, sel); err != nil {
			return false, err.Error()
		}
		if len(mwc.Items) == 0 || len(vwc.Items) == 0 {
			return false, "webhook configurations missing"
		}
		for _, m := range mwc.Items {
			for _, w := range m.Webhooks {
				if len(w.ClientConfig.CABundle) == 0 {
					return false, "mutating webhook " + w.Name + " has no caBundle"
				}
			}
		}
		for _, v := range vwc.Items {
			for _, w := range v.Webhooks {
				if len(w.ClientConfig.CABundle) == 0 {
					return false, "validating webhook " + w.Name + " has no caBundle"
				}
			}
		}
		return true, ""
	})
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	if d.Generation != d.Status.ObservedGeneration || d.Status.UpdatedReplicas != *d.Spec.Replicas || d.Status.AvailableReplicas != *d.Spec.Replicas {
		return false
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// guideShell runs a command of the guide as its reader would, in bash with kubectl on PATH and
// curl_client set as the guide sets it.
func guideShell(t *testing.T, n *framework.Node, command string) string {
	t.Helper()
	script := `curl_client="$(kubectl get pod -n curl -l app=curl -o jsonpath='{.items[0].metadata.name}')"` + "\n" + command
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+n.Kubeconfig, "PATH="+n.BinDir+":"+os.Getenv("PATH"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	return string(out)
}

func responderVersion(body string) string {
	if strings.Contains(body, "v2") {
		return "v2"
	}
	return "v1"
}

func onlyPod(t *testing.T, n *framework.Node, ns, selector string) corev1.Pod {
	t.Helper()
	pods := listPods(t, n, ns, selector)
	if len(pods) != 1 {
		t.Fatalf("%d pods in %s with %s, want 1", len(pods), ns, selector)
	}
	return pods[0]
}

func listPods(t *testing.T, n *framework.Node, ns, selector string) []corev1.Pod {
	t.Helper()
	res := n.Cluster.MustKubectl(t, "get", "pods", "-n", ns, "-l", selector, "-o", "json")
	var list corev1.PodList
	if err := json.Unmarshal([]byte(res.Stdout), &list); err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// injectedPods are the pods of selector that carry the injection, are Ready and not
// terminating.
func injectedPods(t *testing.T, n *framework.Node, ns, selector string) []corev1.Pod {
	var out []corev1.Pod
	for _, p := range listPods(t, n, ns, selector) {
		if p.DeletionTimestamp == nil && len(p.Spec.InitContainers) == 2 && localcluster.IsPodReady(&p) {
			out = append(out, p)
		}
	}
	return out
}

// podLineShows reports whether the kubectl get line of pod shows every word.
func podLineShows(out, pod string, words ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 0 && fields[0] == pod {
			for _, w := range words {
				if !slices.Contains(fields, w) {
					return false
				}
			}
			return true
		}
	}
	return false
}

// assertInjectedPod checks what the kubelet reports of an injected pod: cors-init ran to
// completion, as the non-root user 65532 with NET_ADMIN alone, before the sidecar started; the
// native sidecar and the application run, ready, never restarted. With assertRedirectTable
// (its table is in the pod) this shows that the image's file capability gave the non-root
// cors-init what it needs on this kubelet and containerd.
func assertInjectedPod(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	assertNonRootInit(t, pod)
	var init, side *corev1.ContainerStatus
	for i := range pod.Status.InitContainerStatuses {
		s := &pod.Status.InitContainerStatuses[i]
		switch s.Name {
		case contract.ContainerInit:
			init = s
		case contract.ContainerSidecar:
			side = s
		}
	}
	if init == nil || init.State.Terminated == nil || init.State.Terminated.ExitCode != 0 || init.State.Terminated.Reason != "Completed" {
		t.Errorf("%s: %s did not complete: %+v", pod.Name, contract.ContainerInit, init)
		return
	}
	if side == nil || side.State.Running == nil || !side.Ready || side.Started == nil || !*side.Started {
		t.Errorf("%s: %s is not running and ready: %+v", pod.Name, contract.ContainerSidecar, side)
		return
	}
	if !side.State.Running.StartedAt.After(init.State.Terminated.FinishedAt.Add(-time.Second)) {
		t.Errorf("%s: the sidecar started at %s, before cors-init finished at %s", pod.Name, side.State.Running.StartedAt, init.State.Terminated.FinishedAt)
	}
	for _, s := range append(pod.Status.ContainerStatuses, *side) {
		if s.RestartCount != 0 || !s.Ready {
			t.Errorf("%s: container %s ready=%v restarts=%d", pod.Name, s.Name, s.Ready, s.RestartCount)
		}
	}
}

// assertNonRootInit checks cors-init's spec (the image's cors-init binary, user and group
// 65532, runAsNonRoot, only NET_ADMIN) and the user the runtime ran it as: the container status'
// user (SupplementalGroupsPolicy, GA in 1.35) is containerd's OCI spec of the container, which
// the process status, gone once the container exited, cannot be.
func assertNonRootInit(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	var spec *corev1.Container
	for i := range pod.Spec.InitContainers {
		if pod.Spec.InitContainers[i].Name == contract.ContainerInit {
			spec = &pod.Spec.InitContainers[i]
		}
	}
	if spec == nil {
		t.Errorf("%s: no %s container", pod.Name, contract.ContainerInit)
		return
	}
	sc := spec.SecurityContext
	if !slices.Equal(spec.Command, []string{contract.InitCommand}) || sc == nil ||
		sc.RunAsUser == nil || *sc.RunAsUser != 65532 || sc.RunAsGroup == nil || *sc.RunAsGroup != 65532 ||
		sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.Capabilities == nil ||
		!slices.Equal(sc.Capabilities.Add, []corev1.Capability{"NET_ADMIN"}) || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("%s: %s is not the non-root cors-init with NET_ADMIN alone: command %q, securityContext %+v", pod.Name, contract.ContainerInit, spec.Command, sc)
	}
	if u := initUser(pod); u == nil || u.UID != 65532 || u.GID != 65532 {
		t.Errorf("%s: the runtime reports %s ran as %+v, want uid and gid 65532", pod.Name, contract.ContainerInit, u)
	}
}

// initUser is the user the runtime reports for cors-init's container, or nil.
func initUser(pod *corev1.Pod) *corev1.LinuxContainerUser {
	for _, s := range pod.Status.InitContainerStatuses {
		if s.Name == contract.ContainerInit && s.User != nil {
			return s.User.Linux
		}
	}
	return nil
}

// assertRedirectTable checks that cors-init's nftables table is in the pod's network namespace.
func assertRedirectTable(t *testing.T, n *framework.Node, pod *corev1.Pod) {
	t.Helper()
	path, err := n.PodNetNS(context.Background(), pod.Namespace, pod.Name)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	conn, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == redirect.DefaultTable {
			return
		}
	}
	t.Errorf("%s: no nftables table %s in the pod's network namespace %s", pod.Name, redirect.DefaultTable, path)
}

// podIdentities are "name uid restarts" of the pods, sorted.
func podIdentities(t *testing.T, n *framework.Node, ns, selector string) []string {
	t.Helper()
	var out []string
	for _, p := range listPods(t, n, ns, selector) {
		restarts := int32(0)
		for _, s := range append(p.Status.InitContainerStatuses, p.Status.ContainerStatuses...) {
			restarts += s.RestartCount
		}
		out = append(out, fmt.Sprintf("%s %s %d", p.Name, p.UID, restarts))
	}
	slices.Sort(out)
	return out
}

// guideImageTag tags the product images built for the real-node tests.
const guideImageTag = "e2e"

// guideImages builds the images of the guide on a node (see localcluster.GuideImages).
func guideImages(t *testing.T) map[string]remote.Taggable {
	t.Helper()
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	images, err := localcluster.GuideImages(ctx, guideImageTag)
	if err != nil {
		t.Fatalf("building the images: %v", err)
	}
	t.Logf("%d images built in %s", len(images), time.Since(started).Round(time.Millisecond))
	return images
}

// replicasFromMemory creates the same selected pod for real until every serve replica has
// answered one of them from memory (dry runs are never kept, so the real ones fill the memo),
// then 20 times as server-side dry runs: the ServiceAccount admission plugin gives each its own
// token volume (kube-api-access-<random>), which the replica key masks, so the webhook answers
// them from memory, and the same: its replicas' cors_webhook_pod_answer_memo_total{result="hit"},
// read through the API server's pod proxy, grows by at least 15. The pods carry a scheduling
// gate, so the real ones never run.
func replicasFromMemory(t *testing.T, n *framework.Node) {
	ctx := context.Background()
	servePods := webhookPods(ctx, t, n)
	// hitsByPod reads each running serve replica's hits.
	hitsByPod := func() map[string]float64 {
		out := map[string]float64{}
		for _, pod := range servePods() {
			if pod.DeletionTimestamp != nil || pod.Status.Phase != corev1.PodRunning {
				continue
			}
			metrics := n.Cluster.MustKubectl(t, "get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:8080/proxy/metrics", pod.Namespace, pod.Name)).Stdout
			out[pod.Name] = metricValue(t, metrics, `cors_webhook_pod_answer_memo_total{result="hit"}`)
		}
		return out
	}
	hits := func() float64 {
		total := 0.0
		for _, v := range hitsByPod() {
			total += v
		}
		return total
	}
	replica := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "replica-", Namespace: "pipy", Labels: map[string]string{"app": "pipy-ok", "version": "v1"}},
			Spec: corev1.PodSpec{SchedulingGates: []corev1.PodSchedulingGate{{Name: "cors-webhook.io/e2e-hold"}},
				Containers: []corev1.Container{{Name: "app", Image: "flomesh/pipy:latest", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
		}
	}
	warm := hitsByPod()
	framework.Eventually(t, time.Minute, 100*time.Millisecond, func() (bool, string) {
		now := hitsByPod()
		cold := 0
		for name, v := range now {
			if v <= warm[name] {
				cold++
			}
		}
		if len(now) > 0 && cold == 0 {
			return true, ""
		}
		pod := replica()
		if err := n.Client.Create(ctx, pod); err != nil {
			return false, err.Error()
		}
		t.Cleanup(func() { _ = n.Client.Delete(context.Background(), pod, client.GracePeriodSeconds(0)) })
		return false, fmt.Sprintf("%d of %d serve replicas have not answered a real replica from memory yet", cold, len(now))
	})
	before := hits()
	tokens := map[string]bool{}
	var policy string
	for i := range 20 {
		pod := replica()
		if err := n.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			t.Fatal(err)
		}
		for _, v := range pod.Spec.Volumes {
			if strings.HasPrefix(v.Name, "kube-api-access-") {
				tokens[v.Name] = true
			}
		}
		got := pod.Annotations[contract.AnnotationPolicy]
		if i == 0 {
			policy = got
		}
		if !slices.Equal(initContainerNames(pod), []string{contract.ContainerInit, contract.ContainerSidecar}) || got != policy || got == "" {
			t.Errorf("replica %d: init containers %v, policy %s (the first: %s)", i, initContainerNames(pod), got, policy)
		}
	}
	if len(tokens) != 20 {
		t.Errorf("%d token volumes for 20 pods: want one of its own each", len(tokens))
	}
	if got := hits() - before; got < 15 {
		t.Errorf("%v of 20 replicas answered from memory, want at least 15", got)
	} else {
		t.Logf("20 replicas with %d token volumes of their own, %v answered from memory", len(tokens), got)
	}
}

// webhookPods returns a function listing the pods of the webhook's Deployment (cors-webhook
// serve), those being deleted included.
func webhookPods(ctx context.Context, t *testing.T, n *framework.Node) func() []corev1.Pod {
	dep := &appsv1.Deployment{}
	if err := n.Client.Get(ctx, client.ObjectKey{Namespace: realNodeNamespace, Name: realNodeRelease}, dep); err != nil {
		t.Fatal(err)
	}
	return func() []corev1.Pod {
		var pods corev1.PodList
		if err := n.Client.List(ctx, &pods, client.InNamespace(realNodeNamespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels)); err != nil {
			t.Fatal(err)
		}
		return pods.Items
	}
}

// rolloutRestartUnderAdmission restarts the webhook's Deployment (kubectl rollout restart) while
// pods that the guide's chain selects are created in a loop (server-side dry runs, so that
// admission runs without the node starting them), and requires every one to come back with the
// sidecar: the pod webhook fails open, so an admission that failed during the restart would show
// as a pod without it.
func rolloutRestartUnderAdmission(t *testing.T, n *framework.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	n.Cluster.MustKubectl(t, "rollout", "restart", "deployment/"+realNodeRelease, "-n", realNodeNamespace)
	done := make(chan localcluster.Result, 1)
	go func() {
		res, _ := n.Cluster.RunKubectl(ctx, "", "rollout", "status", "deployment/"+realNodeRelease, "-n", realNodeNamespace, "--timeout=3m")
		done <- res
	}()
	servePods := webhookPods(ctx, t, n)
	// The loop lasts until the rollout is done and the old pods are gone: they keep serving
	// through their shutdown delay after the new ones are Available.
	draining := func() bool {
		return slices.ContainsFunc(servePods(), func(p corev1.Pod) bool { return p.DeletionTimestamp != nil })
	}
	started := time.Now()
	var created, missed int
	var firstMiss string
	for rolled := false; ; {
		if !rolled {
			select {
			case res := <-done:
				if res.ExitCode != 0 {
					t.Fatalf("kubectl rollout status: %s", res.Output())
				}
				rolled = true
			default:
			}
		}
		if rolled && created%20 == 0 && !draining() {
			break
		}
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{GenerateName: "admission-probe-", Namespace: "pipy", Labels: map[string]string{"app": "pipy-ok", "version": "v1"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "flomesh/pipy:latest",
				Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
		}
		if err := n.Client.Create(ctx, pod, client.DryRunAll); err != nil {
			t.Fatalf("pod creation %d failed during the webhook's rolling restart: %v", created+1, err)
		}
		created++
		if !slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == contract.ContainerSidecar }) {
			if missed++; firstMiss == "" {
				firstMiss = fmt.Sprintf("creation %d at %s", created, time.Since(started).Round(time.Millisecond))
			}
		}
	}
	t.Logf("rolling restart of deployment/%s, until its old pods were gone: %d pod creations in %s, %d without the sidecar", realNodeRelease, created, time.Since(started).Round(time.Millisecond), missed)
	if created < 10 {
		t.Errorf("only %d pod creations during the restart: the loop did not exercise it", created)
	}
	if missed > 0 {
		t.Errorf("%d of %d pods admitted during the rolling restart lack the sidecar (first: %s): admission failed and the webhook failed open", missed, created, firstMiss)
	}
}
