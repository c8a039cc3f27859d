package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/discovery"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

func (d *demo) titleOfStep1() string {
	if d.local {
		return "Start a one-node cluster on this machine (control plane, containerd, kubelet, kube-proxy, CoreDNS)"
	}
	return "Use the cluster of $KUBECONFIG (the local node is skipped)"
}

// step1Cluster starts the local node, or connects to $KUBECONFIG's cluster.
func (d *demo) step1Cluster() error {
	if !d.local {
		return d.connectToCluster()
	}
	fmt.Fprintln(d.out, "building the images: cors-webhook and cors-sidecar from this repository, CoreDNS from bin/,")
	fmt.Fprintln(d.out, "and test stand-ins for pause, flomesh/pipy:latest and curlimages/curl:latest ...")
	start := time.Now()
	images, err := localcluster.GuideImages(d.ctx, demoImageTag)
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "%d images built in %s; in-process registries serve them to containerd as docker.io, ghcr.io\n"+
		"and registry.k8s.io mirrors, so the guide's manifests apply unchanged\n", len(images), time.Since(start).Round(100*time.Millisecond))
	fmt.Fprintf(d.out, "starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd, kubelet,\n"+
		"kube-proxy (nftables) and CoreDNS from %s ...\n", d.rel(filepath.Dir(d.kubectlBin)))
	opts := localcluster.NodeOptions{Images: images}
	if os.Getenv("DEMO_VERBOSE") != "" {
		opts.Output = os.Stderr
	}
	node, err := localcluster.StartNode(d.ctx, opts)
	if err != nil {
		return err
	}
	d.node = node
	d.client = node.Client
	d.onCleanup("deleted the pods, stopped the node and the control plane, and put the host back as it was", node.Stop)
	version, err := node.ServerVersion()
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "Kubernetes %s at %s; node %s Ready, cluster DNS up (in %s)\n",
		version, node.Config.Host, localcluster.NodeName, node.Timings.Total.Round(100*time.Millisecond))
	d.fact("one-node cluster on this machine: Kubernetes %s from bin/, containerd v2 + runc, pods on %s, Services on %s", version, localcluster.NodePodCIDR, localcluster.NodeServiceCIDR)
	return d.show("get", "nodes", "-o", "wide")
}

// connectToCluster uses $KUBECONFIG's cluster, after checking that the demo would not touch
// anything it did not create.
func (d *demo) connectToCluster() error {
	cfg, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("KUBECONFIG=%s: %w", d.kubeconfig, err)
	}
	if d.client, err = client.New(cfg, client.Options{Scheme: localcluster.Scheme}); err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return fmt.Errorf("reaching the cluster of KUBECONFIG=%s: %w", d.kubeconfig, err)
	}
	fmt.Fprintf(d.out, "cluster at %s, Kubernetes %s\n", cfg.Host, v.GitVersion)
	d.fact("cluster: %s (Kubernetes %s), from KUBECONFIG", cfg.Host, v.GitVersion)
	d.note("Skipped: the local node; the chart's Deployment and the guide's pods run on the cluster's nodes.")

	// The demo creates these and deletes them at the end: refuse to start if any exists.
	var exist []string
	for _, ns := range []string{"curl", "pipy", releaseNamespace} {
		err := d.client.Get(d.ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
		if err == nil {
			exist = append(exist, "namespace "+ns)
		} else if !apierrors.IsNotFound(err) {
			return err
		}
	}
	err = d.client.Get(d.ctx, client.ObjectKey{Name: "cors-policy"}, &v1alpha1.Plugin{})
	if err == nil {
		exist = append(exist, "Plugin cors-policy")
	} else if !apierrors.IsNotFound(err) && !isNoKind(err) {
		return err
	}
	for kind, obj := range map[string]client.Object{
		"ValidatingWebhookConfiguration": &admissionregistrationv1.ValidatingWebhookConfiguration{},
		"MutatingWebhookConfiguration":   &admissionregistrationv1.MutatingWebhookConfiguration{},
	} {
		if err := d.client.Get(d.ctx, client.ObjectKey{Name: release}, obj); err == nil {
			exist = append(exist, kind+" "+release)
		}
	}
	if len(exist) > 0 {
		return fmt.Errorf("the demo creates and at the end deletes these, which already exist in the cluster: %s; remove them, or run `make demo` without KUBECONFIG", strings.Join(exist, ", "))
	}
	return d.show("get", "nodes")
}

// isNoKind reports that the API server does not know the kind (its CRD is not installed).
func isNoKind(err error) bool { return meta.IsNoMatchError(err) }

// step2Install installs the chart and waits for its webhook pods; on the local node with the
// images built in step 1.
func (d *demo) step2Install() error {
	chart, err := localcluster.ChartDir()
	if err != nil {
		return err
	}
	args := []string{"install", release, d.rel(chart), "--namespace", releaseNamespace, "--create-namespace",
		"--set", "certs.mode=self-signed",
		"--set", "validation.corsPlugins={cors-policy," + demoStrictPlugin + "}"}
	if d.local {
		args = append(args, "--set", "image.tag="+demoImageTag, "--set", "injector.sidecar.image.tag="+demoImageTag)
		d.note("image.tag and injector.sidecar.image.tag name the images built in step 1; cors-strict is a\n" +
			"second CORS plugin name, for step 6.")
	} else {
		args = append(args, strings.Fields(os.Getenv("DEMO_HELM_ARGS"))...)
		d.note("cors-strict is a second CORS plugin name, for step 6. DEMO_HELM_ARGS adds arguments (e.g. image values).")
	}
	args = append(args, "--wait", "--timeout", "5m")
	fmt.Fprintf(d.out, "$ helm %s\n", shellJoin(args))
	if !d.local { // locally, the cluster is discarded as a whole
		d.onCleanup("uninstalled the Helm release "+release+" and deleted namespace "+releaseNamespace, d.helmUninstall)
	}
	res, err := d.helmRun(args...)
	if err != nil {
		return err
	}
	out := res.Output()
	if i := strings.Index(out, "NOTES:"); i >= 0 {
		out = out[:i] + "(NOTES omitted: see charts/cors-webhook/templates/NOTES.txt)\n"
	}
	fmt.Fprint(d.out, out)
	if res.ExitCode != 0 {
		return fmt.Errorf("helm install: exit %d", res.ExitCode)
	}
	d.fact("Helm chart %s installed as release %s in namespace %s, certs.mode=self-signed", d.rel(chart), release, releaseNamespace)
	if err := d.show("get", "pods", "-n", releaseNamespace, "-o", "wide"); err != nil {
		return err
	}

	// The controller's leader creates the webhook's CA and writes it into both configurations.
	if err := d.waitFor("the webhook's CA in both webhook configurations (caBundle)", 60*time.Second, d.caBundlesFilled); err != nil {
		return err
	}
	if err := d.show("get", "validatingwebhookconfigurations,mutatingwebhookconfigurations", release); err != nil {
		return err
	}
	return d.show("get", "secret", release+"-tls", "-n", releaseNamespace)
}

func (d *demo) caBundlesFilled() (bool, string, error) {
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := d.client.Get(d.ctx, client.ObjectKey{Name: release}, vwc); err != nil {
		return false, "", err
	}
	if err := d.client.Get(d.ctx, client.ObjectKey{Name: release}, mwc); err != nil {
		return false, "", err
	}
	var bundles [][]byte
	for _, w := range vwc.Webhooks {
		bundles = append(bundles, w.ClientConfig.CABundle)
	}
	for _, w := range mwc.Webhooks {
		bundles = append(bundles, w.ClientConfig.CABundle)
	}
	filled := 0
	for _, b := range bundles {
		if len(b) > 0 && bytes.Equal(b, bundles[0]) {
			filled++
		}
	}
	return filled == len(bundles), fmt.Sprintf("%d of %d webhooks have it", filled, len(bundles)), nil
}

func (d *demo) helmRun(args ...string) (localcluster.Result, error) {
	return d.helm.Run(d.ctx, d.helmKubeconfig(), args...)
}

// helmKubeconfig is the embedded cluster's kubeconfig, or "" for helm to read $KUBECONFIG
// itself (which may list several files).
func (d *demo) helmKubeconfig() string {
	if d.local {
		return d.node.Kubeconfig
	}
	return ""
}

func (d *demo) helmUninstall() error {
	res, err := d.helm.Run(context.Background(), d.helmKubeconfig(), "uninstall", release, "--namespace", releaseNamespace, "--wait", "--timeout", "3m")
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("helm uninstall: exit %d: %s", res.ExitCode, res.Output())
	}
	res, err = d.kubectlBG("delete", "namespace", releaseNamespace, "--ignore-not-found", "--wait=true", "--timeout=3m")
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("kubectl delete namespace %s: %s", releaseNamespace, res.Output())
	}
	return nil
}

// step3Guide does what the guide's "Deploy demo services", "Declaring a plugin", "Setting up
// plugin-chain" and "Setting up plugin configuration" sections do, in their order, with the
// seed's manifests unchanged.
func (d *demo) step3Guide() error {
	if !d.local {
		d.onCleanup("deleted the Plugin cors-policy and the namespaces curl and pipy", d.deleteGuideObjects)
	}
	for _, w := range []struct{ ns, manifest string }{{"curl", "curl.yaml"}, {"pipy", "pipy-ok.pipy.yaml"}} {
		if err := d.show("create", "namespace", w.ns); err != nil {
			return err
		}
		fmt.Fprintf(d.out, "# fsm namespace add %s: label it as FSM's CLI does (the PluginChain's namespaceSelector needs it)\n", w.ns)
		if err := d.show("label", "namespace", w.ns, "openservicemesh.io/monitored-by=fsm"); err != nil {
			return err
		}
		if err := d.show("apply", "-n", w.ns, "-f", d.manifest(w.manifest)); err != nil {
			return err
		}
	}

	fmt.Fprintln(d.out, "\n# Wait for pods to be up and ready")
	waits := [][]string{
		{"-n", "curl", "-l", "app=curl"},
		{"-n", "pipy", "-l", "app=pipy-ok", "-l", "version=v1"},
		{"-n", "pipy", "-l", "app=pipy-ok", "-l", "version=v2"},
	}
	// kubectl wait fails while no pod exists yet (the guide sleeps 2s first); wait for them.
	if err := d.waitFor("the Deployments' pods to exist", 60*time.Second, func() (bool, string, error) {
		var missing []string
		for _, w := range []struct{ ns, deploy string }{{"curl", "curl"}, {"pipy", "pipy-ok-v1"}, {"pipy", "pipy-ok-v2"}} {
			dep := &appsv1.Deployment{}
			if err := d.client.Get(d.ctx, client.ObjectKey{Namespace: w.ns, Name: w.deploy}, dep); err != nil {
				return false, "", err
			}
			pods, err := d.pods(w.ns, dep.Spec.Selector.MatchLabels)
			if err != nil {
				return false, "", err
			}
			if len(pods) == 0 {
				missing = append(missing, w.deploy)
			}
		}
		if len(missing) > 0 {
			return false, "no pod yet: " + strings.Join(missing, ", "), nil
		}
		return true, "curl, pipy-ok-v1 and pipy-ok-v2 have theirs", nil
	}); err != nil {
		return err
	}
	for _, w := range waits {
		if err := d.show(append([]string{"wait", "--for=condition=ready", "pod"}, append(w, "--timeout=180s")...)...); err != nil {
			return err
		}
	}
	if err := d.show("get", "pods", "-n", "pipy"); err != nil {
		return err
	}
	d.note("Not injected: no PluginChain exists yet.")

	fmt.Fprintln(d.out, "\n# Declaring a plugin")
	if err := d.show("apply", "-f", d.manifest("cors.yaml")); err != nil {
		return err
	}
	for _, m := range []struct{ title, file string }{
		{"Setting up plugin-chain", "cors-policy-chain.yaml"},
		{"Setting up plugin configuration", "cors-policy-config.yaml"},
	} {
		fmt.Fprintf(d.out, "\n# %s\n", m.title)
		raw, err := os.ReadFile(filepath.Join(d.seed, "manifests", m.file))
		if err != nil {
			return err
		}
		display := fmt.Sprintf("# (the guide's heredoc: %s)\n", d.manifest(m.file))
		if err := d.showStdin(display, string(raw), "apply", "-f", "-"); err != nil {
			return err
		}
	}
	d.note("The warnings come from the validating webhook: the guide's config is legal, but risky.")

	fmt.Fprintln(d.out)
	d.note("The pipy-ok pods ran before the chain existed, so admission could not inject them. The\n" +
		"webhook's reconciler rolls their Deployments (after a short settle delay); the new pods get the\n" +
		"sidecar from the mutating webhook.")
	start := time.Now()
	if err := d.waitFor("pipy-ok to roll to injected pods", 5*time.Minute, d.pipyRolledOut); err != nil {
		return err
	}
	d.fact("pipy-ok-v1 and pipy-ok-v2 rolled to injected pods %s after the PluginConfig was applied", time.Since(start).Round(100*time.Millisecond))
	if err := d.waitFor("the replaced pipy-ok pods to be gone", time.Minute, d.oldPipyGone); err != nil {
		return err
	}
	if err := d.show("get", "events", "-n", "pipy", "--field-selector", "reason=CORSRollout"); err != nil {
		return err
	}
	if err := d.show("get", "pods", "-n", "pipy", "-o", "wide"); err != nil {
		return err
	}
	// The webhook also reports in the status of the chain and the config what they do.
	if err := d.waitFor("the status of the PluginChain and the PluginConfig", 30*time.Second, d.statusesActive); err != nil {
		return err
	}
	return d.show("get", "pichn,picfg", "-n", "pipy", "-o", "wide")
}

func (d *demo) statusesActive() (bool, string, error) {
	chain := &v1alpha1.PluginChain{}
	if err := d.client.Get(d.ctx, client.ObjectKey{Namespace: "pipy", Name: "cors-policy-chain"}, chain); err != nil {
		return false, "", err
	}
	cfg := &v1alpha1.PluginConfig{}
	if err := d.client.Get(d.ctx, client.ObjectKey{Namespace: "pipy", Name: "cors-policy-config"}, cfg); err != nil {
		return false, "", err
	}
	return chain.Status.CurrentStatus == "Active" && cfg.Status.CurrentStatus == "Active",
		fmt.Sprintf("chain %s, config %s", or(chain.Status.CurrentStatus, "none"), or(cfg.Status.CurrentStatus, "none")), nil
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// pipyRolledOut reports whether both pipy-ok Deployments have rolled out completely to pods
// with the sidecar.
func (d *demo) pipyRolledOut() (bool, string, error) {
	done := true
	var status []string
	var old int
	for _, name := range []string{"pipy-ok-v1", "pipy-ok-v2"} {
		dep := &appsv1.Deployment{}
		if err := d.client.Get(d.ctx, client.ObjectKey{Namespace: "pipy", Name: name}, dep); err != nil {
			return false, "", err
		}
		pods, err := d.pods("pipy", dep.Spec.Selector.MatchLabels)
		if err != nil {
			return false, "", err
		}
		want := int32(1)
		if dep.Spec.Replicas != nil {
			want = *dep.Spec.Replicas
		}
		var injected int32
		for _, p := range pods {
			switch {
			case !isInjected(&p):
				old++
			case localcluster.IsPodReady(&p):
				injected++
			}
		}
		done = done && dep.Status.ObservedGeneration >= dep.Generation && dep.Status.UpdatedReplicas == want &&
			dep.Status.AvailableReplicas == want && dep.Status.Replicas == want && injected == want
		status = append(status, fmt.Sprintf("%s %d/%d", name, injected, want))
	}
	s := "injected and ready: " + strings.Join(status, ", ")
	if old > 0 {
		s += fmt.Sprintf("; %d pod(s) without sidecar", old)
	}
	return done && old == 0, s, nil
}

// oldPipyGone reports whether every pipy-ok pod left, terminating ones included, is injected.
func (d *demo) oldPipyGone() (bool, string, error) {
	var list corev1.PodList
	if err := d.client.List(d.ctx, &list, client.InNamespace("pipy"), client.MatchingLabels{"app": "pipy-ok"}); err != nil {
		return false, "", err
	}
	old := 0
	for _, p := range list.Items {
		if !isInjected(&p) {
			old++
		}
	}
	return old == 0, fmt.Sprintf("%d pod(s) without sidecar terminating", old), nil
}

// pods lists the pods of ns with labels that are not being deleted.
func (d *demo) pods(ns string, labels map[string]string) ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := d.client.List(d.ctx, &list, client.InNamespace(ns), client.MatchingLabels(labels)); err != nil {
		return nil, err
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func isInjected(p *corev1.Pod) bool {
	return slices.ContainsFunc(p.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == "cors-sidecar" })
}

// readyPod is the one ready pod of ns with labels.
func (d *demo) readyPod(ns string, labels map[string]string) (*corev1.Pod, error) {
	pods, err := d.pods(ns, labels)
	if err != nil {
		return nil, err
	}
	for i := range pods {
		if localcluster.IsPodReady(&pods[i]) {
			return &pods[i], nil
		}
	}
	return nil, fmt.Errorf("no ready pod in %s with labels %v", ns, labels)
}

func (d *demo) deleteGuideObjects() error {
	var errs []string
	for _, args := range [][]string{
		{"delete", "plugin", "cors-policy", "--ignore-not-found"},
		{"delete", "namespace", "curl", "pipy", "--ignore-not-found", "--wait=true", "--timeout=3m"},
	} {
		res, err := d.kubectlBG(args...)
		if err != nil {
			errs = append(errs, err.Error())
		} else if res.ExitCode != 0 {
			errs = append(errs, res.Output())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// step4InjectedPod shows what the mutating webhook added to the pipy-ok-v1 pod.
func (d *demo) step4InjectedPod() error {
	pod, err := d.readyPod("pipy", map[string]string{"app": "pipy-ok", "version": "v1"})
	if err != nil {
		return err
	}
	args := []string{"get", "pod", pod.Name, "-n", "pipy", "-o", "yaml"}
	res, err := d.kubectl("", args...)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("kubectl %s: %s", shellJoin(args), res.Output())
	}
	excerpt, err := podExcerpt([]byte(res.Stdout))
	if err != nil {
		return err
	}
	fmt.Fprintf(d.out, "$ kubectl %s   # excerpt: what the injection added, and the application container\n", shellJoin(args))
	fmt.Fprint(d.out, excerpt)
	d.note("cors-init installs the nftables redirect of port 8080 to the sidecar's port 15003 and exits;\n" +
		"cors-sidecar (a native sidecar: an init container with restartPolicy Always) reads the policy\n" +
		"annotation through the downwardAPI volume, so later PluginConfig edits reach it without a restart.")
	d.fact("pod pipy/%s injected: cors-init, cors-sidecar, policy annotation for port 8080", pod.Name)
	return nil
}

// step6Rejections applies what the validating webhook must refuse.
func (d *demo) step6Rejections() error {
	for _, r := range []struct {
		title, yaml, want string
	}{
		{"A malformed PluginConfig: an invalid regex, an entry with two matchers, a method list in one\n# string, a negative maxAge, a destination that is not a Service",
			malformedConfig, "spec.config.maxAge"},
		{"A PluginChain that conflicts with cors-policy-chain: another CORS plugin for the same pods",
			conflictingChain, "a pod can have only one CORS plugin"},
	} {
		fmt.Fprintf(d.out, "\n# %s\n", r.title)
		res, err := d.printKubectl(r.yaml, r.yaml, "apply", "-f", "-")
		if err != nil {
			return err
		}
		if res.ExitCode == 0 {
			return fmt.Errorf("the webhook accepted it")
		}
		if !strings.Contains(res.Stderr, r.want) {
			return fmt.Errorf("kubectl failed, but not with the webhook's error (%q)", r.want)
		}
	}
	fmt.Fprintln(d.out)
	if err := d.show("get", "pichn,picfg", "-n", "pipy"); err != nil {
		return err
	}
	d.note("Neither object was stored.")
	d.fact("2 applies rejected by the validating webhook (malformed PluginConfig, conflicting PluginChain)")
	return nil
}

const malformedConfig = `kind: PluginConfig
apiVersion: plugin.flomesh.io/v1alpha1
metadata:
  name: cors-policy-config-v2
  namespace: pipy
spec:
  config:
    allowOrigins:
    - regex: http://(www.test.cn
    - exact: http://www.aaa.com
      prefix: http://www.aaa
    allowMethods:
    - GET
    - POST,PUT
    maxAge: -5s
  plugin: cors-policy
  destinationRefs:
    - kind: Pod
      name: pipy-ok-v2
      namespace: pipy
`

const conflictingChain = `kind: PluginChain
apiVersion: plugin.flomesh.io/v1alpha1
metadata:
  name: strict-cors-chain
  namespace: pipy
spec:
  chains:
    - name: inbound-http
      plugins:
        - ` + demoStrictPlugin + `
  selectors:
    podSelector:
      matchLabels:
        version: v1
`
