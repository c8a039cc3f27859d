package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestPodSecurityClusterDefault: the API server enforces Pod Security restricted for every
// namespace by its AdmissionConfiguration default; the workload's namespace has no label. In
// init mode, `controller --pod-security-dry-run` asks the API server with a dry-run create of
// the injected template, learns that its pods would be refused, and reports with an Event and
// a metric instead of rolling. The chart's RBAC and admission policy for that flag let the
// controller's ServiceAccount create pods as dry runs only.
func TestPodSecurityClusterDefault(t *testing.T) {
	admission := filepath.Join(t.TempDir(), "admission.yaml")
	if err := os.WriteFile(admission, []byte(podSecurityDefaultRestricted), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{
		ControllerManager: true,
		AdmissionConfig:   admission,
		Webhook: envtest.WebhookInstallOptions{
			MutatingWebhooks: []*admissionregistrationv1.MutatingWebhookConfiguration{podInjectionWebhook()},
		},
	})
	startServe(t, c, bin, "--sidecar-image", "registry.example/cors-sidecar:e2e")
	ctl := startController(t, c, bin, "--sidecar-image", "registry.example/cors-sidecar:e2e", "--pod-security-dry-run")

	const ns = "psa-default"
	c.MustKubectl(t, "apply", "-f", filepath.Join(mustExamplesDir(t), "manifests", "cors.yaml"))
	c.MustKubectl(t, "create", "namespace", ns)
	dayTwoKubelet(t, c, ns)
	if res := c.KubectlStdin(t, restrictedDeployment, "apply", "-n", ns, "-f", "-"); res.ExitCode != 0 {
		t.Fatal(res.Output())
	}
	// The default is in force: the workload's own pod is admitted (it is restricted), a
	// privileged one is not, although the namespace has no label.
	dayTwoReadyPod(t, c, ns, client.MatchingLabels{"app": "web"})
	if res := c.Kubectl(t, "run", "-n", ns, "privileged", "--image", "registry.example/x", "--privileged"); res.ExitCode == 0 || !strings.Contains(res.Output(), "violates PodSecurity") {
		t.Fatalf("a privileged pod in the unlabelled namespace: %s", res.Output())
	}
	if res := c.KubectlStdin(t, gateChain, "apply", "-n", ns, "-f", "-"); res.ExitCode != 0 {
		t.Fatal(res.Output())
	}
	dayTwoWaitEvent(t, c, ns, "Deployment", "web", "CORSRolloutWouldNotHelp", "violates PodSecurity")
	if v := gateGet(t, c, ns).Spec.Template.Annotations[dayTwoRestartedAtKey]; v != "" {
		t.Errorf("%s/web rolled although its new pods would be refused: %s", ns, v)
	}
	metrics := ctl.get(t, "/metrics")
	if want := `cors_webhook_reconcile_podsecurity_dry_runs_total{verdict="refused"} 1`; !strings.Contains(metrics, want) {
		t.Errorf("metrics lack %q:\n%s", want, dayTwoGrep(metrics, "cors_webhook_reconcile_podsecurity"))
	}

	podSecurityCheckDryRunOnly(t, c)
}

// podSecurityCheckDryRunOnly applies the chart's controller RBAC and admission policy with
// controller.podSecurityDryRun=true and creates a pod as the controller's ServiceAccount: RBAC
// lets it through, the policy refuses it unless it is a dry run.
func podSecurityCheckDryRunOnly(t *testing.T, c *framework.Cluster) {
	t.Helper()
	version, err := discovery.NewDiscoveryClientForConfigOrDie(c.Config).ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	const release, releaseNS = "cors-webhook", "cors-webhook"
	res := helmRun(t, nil, "template", release, helmChartDir(t), "--namespace", releaseNS, "--kube-version", version.GitVersion,
		"--set", "controller.podSecurityDryRun=true",
		"--show-only", "templates/rbac.yaml", "--show-only", "templates/controller-admissionpolicy.yaml")
	if res.ExitCode != 0 {
		t.Fatal(res.Output())
	}
	c.MustKubectl(t, "create", "namespace", releaseNS)
	if res := c.KubectlStdin(t, res.Stdout, "apply", "-f", "-"); res.ExitCode != 0 {
		t.Fatal(res.Output())
	}
	// A namespace Pod Security lets any pod into, so that only the policy can refuse.
	const app = "psa-privileged"
	c.MustKubectl(t, "create", "namespace", app)
	c.MustKubectl(t, "label", "namespace", app, "pod-security.kubernetes.io/enforce=privileged")
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + releaseNS + ":" + release + "-controller"}
	controller, err := client.New(cfg, client.Options{Scheme: localcluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	pod := func() *corev1.Pod {
		return &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: app, GenerateName: "vap-"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/evil:1"}}},
		}
	}
	// The policy takes effect once the API server has loaded it: its refusal of a pod image
	// change, which RBAC allows (patch), shows that it has. Each try changes the image anew.
	existing := pod()
	if err := c.Client.Create(t.Context(), existing); err != nil {
		t.Fatal(err)
	}
	tries := 0
	framework.Eventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		tries++
		patch := client.RawPatch(types.MergePatchType, []byte(fmt.Sprintf(`{"spec":{"containers":[{"name":"app","image":"registry.example/evil:%d"}]}}`, tries)))
		err := controller.Patch(t.Context(), existing.DeepCopy(), patch)
		return err != nil && strings.Contains(err.Error(), "may change only the cors-webhook.io/policy annotation"),
			fmt.Sprintf("a patch of a pod's image by the controller: %v", err)
	})
	const refused = "the cors-webhook controller may create pods only as a server-side dry run"
	if err := controller.Create(t.Context(), pod()); err == nil || !strings.Contains(err.Error(), refused) {
		t.Errorf("a real pod create by the controller: %v, want %q", err, refused)
	}
	if err := controller.Create(t.Context(), pod(), client.DryRunAll); err != nil {
		t.Errorf("a dry-run pod create by the controller: %v", err)
	}
	// Another user is not restricted by the policy.
	if err := c.Client.Create(t.Context(), pod(), client.DryRunAll); err != nil {
		t.Errorf("a dry-run pod create by the admin: %v", err)
	}
	var pods corev1.PodList
	if err := c.Client.List(t.Context(), &pods, client.InNamespace(app)); err != nil || len(pods.Items) != 1 {
		t.Errorf("pods in %s: %d (%v), want only the one the admin created", app, len(pods.Items), err)
	}
}

// podSecurityDefaultRestricted makes restricted the level of every namespace without a label.
const podSecurityDefaultRestricted = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: restricted
      enforce-version: latest
    exemptions:
      namespaces: [kube-system]
`

// restrictedDeployment is the rollout gate's Deployment, made to pass Pod Security restricted.
// Its port 8080 is redirected (no Service or PluginConfig needed), so its injected pods carry
// cors-init with NET_ADMIN.
const restrictedDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations: {cors-webhook.io/inbound-ports: "8080"}
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 1000
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: web
        image: flomesh/pipy:latest
        ports: [{name: http, containerPort: 8080}]
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
`
