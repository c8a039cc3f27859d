package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// The chart's release used by the self-signed tests: with the release name equal to the chart
// name, every object is named "cors-webhook".
const (
	helmSelfSignedRelease   = "cors-webhook"
	helmSelfSignedNamespace = "cors-system"
	helmSelfSignedFullname  = "cors-webhook"
)

// TestHelmLint renders the chart with the value combinations users pick and lints it strictly.
func TestHelmLint(t *testing.T) {
	chart := helmChartDir(t)
	for _, tc := range []struct {
		name string
		set  []string
	}{
		{name: "defaults"},
		{name: "cert-manager", set: []string{"certs.mode=cert-manager"}},
		{name: "cert-manager with an existing issuer", set: []string{"certs.mode=cert-manager", "certs.certManager.issuerRef.name=corp-ca", "certs.certManager.issuerRef.kind=ClusterIssuer"}},
		{name: "everything on", set: []string{"plugin.declare=true", "metrics.serviceMonitor.enabled=true", "metrics.podMonitor.enabled=true", "metrics.dashboard.enabled=true", "metrics.prometheusRule.enabled=true", "podAntiAffinity=hard", "webhook.devURL=https://127.0.0.1:9443"}},
		{name: "single replica", set: []string{"replicaCount=1", "podAntiAffinity=none"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"lint", chart, "--strict", "--namespace", "cors-system"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			if res := helmRun(t, nil, args...); res.ExitCode != 0 {
				t.Fatalf("helm %s: exit %d\n%s", strings.Join(args, " "), res.ExitCode, res.Output())
			}
		})
	}

	t.Run("README documents every value", func(t *testing.T) {
		values, err := os.ReadFile(filepath.Join(chart, "values.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		readme, err := os.ReadFile(filepath.Join(chart, "README.md"))
		if err != nil {
			t.Fatal(err)
		}
		var tree map[string]any
		if err := yaml.Unmarshal(values, &tree); err != nil {
			t.Fatal(err)
		}
		var walk func(prefix string, m map[string]any)
		walk = func(prefix string, m map[string]any) {
			for k, v := range m {
				key := strings.TrimPrefix(prefix+"."+k, ".")
				if bytes.Contains(readme, []byte("`"+key+"`")) {
					continue // documented as a whole
				}
				if sub, ok := v.(map[string]any); ok && len(sub) > 0 {
					walk(key, sub)
					continue
				}
				t.Errorf("README.md does not document the value %s", key)
			}
		}
		walk("", tree)
	})

	t.Run("the schema rejects wrong values", func(t *testing.T) {
		for _, set := range []string{"certs.mode=vault", "webhook.failurePolicy=Maybe", "webhook.timeoutSeconds=31", "webhook.podFailurePolicy=Maybe", "webhook.podTimeoutSeconds=0", "replicaCount=0", "webhook.devURL=http://127.0.0.1:9443", "unknownValue=1", "injector.sidecar.image.digest=latest", "injector.init.runAsRoot=maybe", "cni.enabled=maybe", "cni.binDir=opt/cni/bin", "cni.resync=soon"} {
			if res := helmRun(t, nil, "template", "x", chart, "--set", set); res.ExitCode == 0 {
				t.Errorf("helm template --set %s succeeded", set)
			}
		}
		if res := helmRun(t, nil, "template", "x", chart, "--set", "plugin.declare=true", "--set", "plugin.name=other"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "validation.corsPlugins") {
			t.Errorf("a declared Plugin that is not a CORS plugin must fail:\n%s", res.Output())
		}
		// create on pods without the policy that narrows it to dry runs.
		for _, without := range [][]string{{"--set", "controller.admissionPolicy=false"}, {"--kube-version", "1.29.0"}} {
			args := append([]string{"template", "x", chart, "--set", "controller.podSecurityDryRun=true"}, without...)
			if res := helmRun(t, nil, args...); res.ExitCode == 0 || !strings.Contains(res.Stderr, "controller.podSecurityDryRun") {
				t.Errorf("helm %s must fail:\n%s", strings.Join(args, " "), res.Output())
			}
		}
	})

	t.Run("the injected image and cors-init mode", func(t *testing.T) {
		digest := "sha256:" + strings.Repeat("ab", 32)
		for _, tc := range []struct {
			set    []string
			image  string
			asRoot bool
		}{
			{nil, "ghcr.io/cors-webhook/cors-sidecar:" + inject.AppVersion, false},
			{[]string{"--set", "injector.sidecar.image.tag=1.2.3"}, "ghcr.io/cors-webhook/cors-sidecar:1.2.3", false},
			{[]string{"--set", "injector.sidecar.image.digest=" + digest, "--set", "injector.init.runAsRoot=true"}, "ghcr.io/cors-webhook/cors-sidecar@" + digest, true},
		} {
			objs := helmTemplate(t, chart, tc.set...)
			if len(objs["Deployment"]) != 2 {
				t.Fatalf("%v: %d Deployments", tc.set, len(objs["Deployment"]))
			}
			for _, doc := range objs["Deployment"] {
				var d appsv1.Deployment
				if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
					t.Fatal(err)
				}
				args := d.Spec.Template.Spec.Containers[0].Args
				if !slices.Contains(args, "--sidecar-image="+tc.image) || slices.Contains(args, "--init-as-root") != tc.asRoot {
					t.Errorf("%v: %s args %q, want --sidecar-image=%s and --init-as-root %v", tc.set, d.Name, args, tc.image, tc.asRoot)
				}
			}
		}
	})

	t.Run("webhook configurations", func(t *testing.T) {
		for _, mode := range []string{"self-signed", "cert-manager"} {
			objs := helmTemplate(t, chart, "--namespace", "cors-system", "--set", "certs.mode="+mode)
			vwc := helmFind[*admissionregistrationv1.ValidatingWebhookConfiguration](t, objs, "ValidatingWebhookConfiguration")
			mwc := helmFind[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration")
			wantAnnotation := ""
			if mode == "cert-manager" {
				wantAnnotation = "cors-system/cors-webhook-serving"
			}
			for _, meta := range []metav1.ObjectMeta{vwc.ObjectMeta, mwc.ObjectMeta} {
				if got := meta.Annotations["cert-manager.io/inject-ca-from"]; got != wantAnnotation {
					t.Errorf("%s: inject-ca-from = %q, want %q", mode, got, wantAnnotation)
				}
			}
			type hook struct {
				name       string
				cc         admissionregistrationv1.WebhookClientConfig
				side       *admissionregistrationv1.SideEffectClass
				match      *admissionregistrationv1.MatchPolicyType
				ns, object *metav1.LabelSelector
			}
			var hooks []hook
			for _, w := range vwc.Webhooks {
				hooks = append(hooks, hook{w.Name, w.ClientConfig, w.SideEffects, w.MatchPolicy, w.NamespaceSelector, w.ObjectSelector})
			}
			for _, w := range vwc.Webhooks {
				// An unvalidated config must not get in while the webhook is down.
				if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Fail || w.TimeoutSeconds == nil || *w.TimeoutSeconds != 10 {
					t.Errorf("%s: failurePolicy %v, timeoutSeconds %v; want Fail, 10", w.Name, ptrString(w.FailurePolicy), ptrString(w.TimeoutSeconds))
				}
			}
			for _, w := range mwc.Webhooks {
				hooks = append(hooks, hook{w.Name, w.ClientConfig, w.SideEffects, w.MatchPolicy, w.NamespaceSelector, w.ObjectSelector})
				// The pod webhook fails open, quickly; the reconciler is the backstop.
				if w.FailurePolicy == nil || *w.FailurePolicy != admissionregistrationv1.Ignore || w.TimeoutSeconds == nil || *w.TimeoutSeconds != 3 {
					t.Errorf("%s: failurePolicy %v, timeoutSeconds %v; want Ignore, 3", w.Name, ptrString(w.FailurePolicy), ptrString(w.TimeoutSeconds))
				}
				if w.ReinvocationPolicy == nil || *w.ReinvocationPolicy != admissionregistrationv1.IfNeededReinvocationPolicy {
					t.Errorf("%s: reinvocationPolicy %v, want IfNeeded (docs/injection.md)", w.Name, ptrString(w.ReinvocationPolicy))
				}
				if w.ObjectSelector == nil || !strings.Contains(w.ObjectSelector.String(), "cors-webhook.io/ignore") {
					t.Errorf("%s: the pod webhook must skip the webhook's own pods: %v", w.Name, w.ObjectSelector)
				}
			}
			if len(hooks) != 4 {
				t.Fatalf("%s: %d webhooks, want 4", mode, len(hooks))
			}
			for _, h := range hooks {
				if len(h.cc.CABundle) != 0 {
					t.Errorf("%s: the chart must not render caBundle", h.name)
				}
				if h.cc.Service == nil || h.cc.Service.Name != "cors-webhook" || h.cc.Service.Namespace != "cors-system" {
					t.Errorf("%s: clientConfig %+v", h.name, h.cc)
				}
				if *h.side != admissionregistrationv1.SideEffectClassNone || *h.match != admissionregistrationv1.Equivalent {
					t.Errorf("%s: sideEffects %s, matchPolicy %s", h.name, *h.side, *h.match)
				}
				if h.name == "plugins.validate.cors-webhook.io" {
					continue // cluster-scoped: no namespaceSelector
				}
				sel := h.ns.String()
				for _, want := range []string{"kube-system", "cors-system", "cors-webhook.io/inject", "disabled"} {
					if !strings.Contains(sel, want) {
						t.Errorf("%s: namespaceSelector %s lacks %s", h.name, sel, want)
					}
				}
			}
		}
	})
}

// TestHelm installs the chart into a real API server in both certificate modes, with the
// server run locally under the chart's service account (no kubelet here), and checks what an
// operator relies on: every object is accepted, the pods pass Pod Security "restricted", RBAC
// is least privilege, admission works through the Helm-installed configurations, and upgrade
// and uninstall leave nothing behind.
func TestHelm(t *testing.T) {
	chart := helmChartDir(t)
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{})

	t.Run("self-signed", func(t *testing.T) {
		ns, release, fullname := helmSelfSignedNamespace, helmSelfSignedRelease, helmSelfSignedFullname
		port := helmFreePort(t)
		rel := helmInstall(t, c, chart, release, ns,
			"--set", "certs.mode=self-signed",
			"--set", "plugin.declare=true",
			"--set", fmt.Sprintf("webhook.devURL=https://127.0.0.1:%d", port))
		helmCheckObjectsExist(t, c, rel)
		helmCheckPodSecurity(t, c, ns, fullname)
		helmCheckPodSecurity(t, c, ns, fullname+"-controller")
		rbacCheckRights(t, c, ns, fullname, "self-signed")

		// The controller issues the certificate; serve is ready once caBundle trusts it.
		helmStartController(t, c, bin, ns, fullname+"-controller")
		srv := helmStartServe(t, c, bin, ns, fullname, port)
		bundle := helmWaitCABundle(t, c, fullname, nil)
		secret := &corev1.Secret{}
		if err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: fullname + "-tls"}, secret); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(bundle, secret.Data["ca.crt"]) {
			t.Fatalf("caBundle is not the Secret's ca.crt")
		}
		helmCheckServedBy(t, srv.addr, bundle)
		helmCheckAdmission(t, c, "helm-app-selfsigned")

		helmCheckUpgrade(t, c, chart, release, ns, fullname)
		helmCheckAdmission(t, c, "helm-app-selfsigned-2")
		helmCheckUninstall(t, c, release, ns, fullname)
	})

	t.Run("cert-manager", func(t *testing.T) {
		certsCertManagerFlow(t, c, chart, bin)
	})
}

// helmRelease is an installed release and its manifest.
type helmRelease struct {
	name, namespace string
	manifest        string
	installOutput   string
}

// helmInstall creates the release namespace with Pod Security "restricted" enforced (and
// warned), then runs `helm install`; every rendered object must be accepted and no Pod Security
// warning printed.
func helmInstall(t *testing.T, c *framework.Cluster, chart, release, ns string, args ...string) helmRelease {
	t.Helper()
	c.MustKubectl(t, "create", "namespace", ns)
	c.MustKubectl(t, "label", "namespace", ns,
		"pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest",
		"pod-security.kubernetes.io/warn=restricted", "pod-security.kubernetes.io/warn-version=latest")
	res := helmRun(t, c, append([]string{"install", release, chart, "--namespace", ns}, args...)...)
	if res.ExitCode != 0 {
		t.Fatalf("helm install: exit %d\n%s", res.ExitCode, res.Output())
	}
	if strings.Contains(res.Output(), "PodSecurity") {
		t.Errorf("helm install printed Pod Security warnings:\n%s", res.Output())
	}
	manifest := helmRun(t, c, "get", "manifest", release, "--namespace", ns)
	if manifest.ExitCode != 0 {
		t.Fatalf("helm get manifest: %s", manifest.Output())
	}
	return helmRelease{name: release, namespace: ns, manifest: manifest.Stdout, installOutput: res.Output()}
}

// helmCheckObjectsExist reads back every object of the release's manifest.
func helmCheckObjectsExist(t *testing.T, c *framework.Cluster, rel helmRelease) {
	t.Helper()
	res := c.KubectlStdin(t, rel.manifest, "get", "-f", "-", "-o", "name")
	if res.ExitCode != 0 {
		t.Fatalf("objects of the release are missing: %s", res.Output())
	}
	got := strings.Fields(res.Stdout)
	docs := 0
	for _, d := range strings.Split(rel.manifest, "\n---") {
		if strings.Contains(d, "kind:") {
			docs++
		}
	}
	if len(got) != docs {
		t.Fatalf("%d objects in the manifest, %d found:\n%s", docs, len(got), res.Stdout)
	}
	for _, kind := range []string{"deployment.apps/", "service/", "serviceaccount/", "clusterrole.rbac.authorization.k8s.io/",
		"role.rbac.authorization.k8s.io/", "poddisruptionbudget.policy/", "validatingwebhookconfiguration.admissionregistration.k8s.io/",
		"mutatingwebhookconfiguration.admissionregistration.k8s.io/", "plugin.plugin.flomesh.io/", "networkpolicy.networking.k8s.io/"} {
		if !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, kind) }) {
			t.Errorf("the release has no %s object: %v", kind, got)
		}
	}
	t.Logf("%d objects installed: %s", len(got), strings.Join(got, " "))
}

// helmCheckPodSecurity creates a Pod from the Deployment's pod template in the release
// namespace, which enforces Pod Security "restricted"; a privileged pod is refused there, which
// shows that the namespace really enforces.
func helmCheckPodSecurity(t *testing.T, c *framework.Cluster, ns, deployment string) {
	t.Helper()
	dep := helmDeployment(t, c, ns, deployment)
	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "psa-check", Namespace: ns, Labels: dep.Spec.Template.Labels, Annotations: dep.Spec.Template.Annotations},
		Spec:       dep.Spec.Template.Spec,
	}
	manifest, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	res := c.KubectlStdin(t, string(manifest), "create", "-f", "-")
	if res.ExitCode != 0 || strings.Contains(res.Stderr, "Warning") {
		t.Fatalf("the Deployment's pod is not admitted under Pod Security restricted: exit %d\n%s", res.ExitCode, res.Output())
	}
	c.MustKubectl(t, "delete", "pod", "psa-check", "-n", ns, "--wait=false")

	pod.Name = "psa-negative"
	pod.Spec.Containers[0].SecurityContext.Privileged = ptrTo(true)
	pod.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptrTo(true)
	manifest, _ = json.Marshal(pod)
	if res := c.KubectlStdin(t, string(manifest), "create", "-f", "-"); res.ExitCode == 0 || !strings.Contains(res.Stderr, "violates PodSecurity") {
		t.Fatalf("a privileged pod must be refused in %s (is Pod Security enforced?): exit %d\n%s", ns, res.ExitCode, res.Output())
	}
}

func ptrTo[T any](v T) *T { return &v }

// ptrString prints a pointer's value, or "<nil>".
func ptrString[T any](p *T) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprint(*p)
}

// helmStartController runs `cors-webhook controller` as a pod of the controller Deployment
// would (see helmStartServe), and stops it when the test ends.
func helmStartController(t *testing.T, c *framework.Cluster, bin, ns, deployment string, extra ...string) *localcluster.Server {
	t.Helper()
	srv, err := c.StartController(context.Background(), localcluster.ControllerOptions{
		Binary: bin, Namespace: ns, Deployment: deployment, ExtraArgs: extra,
	})
	if err != nil {
		t.Fatal(err)
	}
	helmStopOnCleanup(t, srv, "cors-webhook controller "+deployment)
	return srv
}

// helmStopOnCleanup stops a local process when the test ends, with its log when it failed.
func helmStopOnCleanup(t *testing.T, srv *localcluster.Server, what string) {
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Log(err)
		}
		if t.Failed() {
			t.Logf("log of %s (without probe noise):\n%s", what, helmTail(srv.QuietLog(), 80))
		}
	})
}

// helmServer is `cors-webhook serve` run locally with the Deployment's arguments and
// environment, standing in for a webhook pod (framework.Cluster.StartServe).
type helmServer struct {
	addr      string // host:port of the webhook server
	probeAddr string
	log       *helmLog
	srv       *localcluster.Server
}

// helmLog collects a process's output.
type helmLog = localcluster.SyncBuffer

// helmStartServe runs the webhook server as a pod of the Deployment would: the container's
// args and env (downward API resolved for this namespace, $(VAR) expanded as the kubelet does),
// under the chart's service account. Only where it listens, the probe address and, in
// cert-manager mode, the directory of the "mounted" Secret are overridden by later flags. It
// waits until /readyz passes.
func helmStartServe(t *testing.T, c *framework.Cluster, bin, ns, deployment string, port int, extra ...string) *helmServer {
	t.Helper()
	srv, err := c.StartServe(context.Background(), localcluster.ServeOptions{
		Binary: bin, Namespace: ns, Deployment: deployment, Port: port, ExtraArgs: extra,
	})
	if err != nil {
		t.Fatal(err)
	}
	s := &helmServer{addr: srv.Addr, probeAddr: srv.ProbeAddr, log: srv.Log, srv: srv}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Log(err)
		}
		if t.Failed() {
			t.Logf("log of cors-webhook serve on %s (without probe noise):\n%s", s.addr, helmTail(srv.QuietLog(), 80))
		}
	})
	return s
}

func helmTail(s string, lines int) string { return localcluster.Tail(s, lines) }

func helmDeployment(t *testing.T, c *framework.Cluster, ns, name string) *appsv1.Deployment {
	t.Helper()
	dep := &appsv1.Deployment{}
	if err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, dep); err != nil {
		t.Fatalf("the release's Deployment: %v", err)
	}
	return dep
}

// helmWebhookCABundles returns the caBundle of every webhook of both configurations.
func helmWebhookCABundles(t *testing.T, c *framework.Cluster, name string) [][]byte {
	t.Helper()
	ctx := context.Background()
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	mwc := &admissionregistrationv1.MutatingWebhookConfiguration{}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, vwc); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, mwc); err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, w := range vwc.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	for _, w := range mwc.Webhooks {
		out = append(out, w.ClientConfig.CABundle)
	}
	return out
}

// helmWaitCABundle waits until every webhook of both configurations has the same non-empty
// caBundle (equal to want when given) and returns it.
func helmWaitCABundle(t *testing.T, c *framework.Cluster, name string, want []byte) []byte {
	t.Helper()
	var bundle []byte
	framework.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		bundles := helmWebhookCABundles(t, c, name)
		bundle = bundles[0]
		for _, b := range bundles {
			if len(b) == 0 || !bytes.Equal(b, bundle) {
				return false, fmt.Sprintf("caBundles not filled alike yet (%d webhooks)", len(bundles))
			}
		}
		if want != nil && !bytes.Equal(bundle, want) {
			return false, "caBundle differs from the expected CA"
		}
		return true, ""
	})
	return bundle
}

// helmCheckServedBy shows that the server's certificate verifies against bundle, for the host
// the API server dials, with TLS 1.2 at least (TLS 1.1 is refused).
func helmCheckServedBy(t *testing.T, addr string, bundle []byte) *x509.Certificate {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle) {
		t.Fatalf("caBundle holds no certificate")
	}
	host, _, _ := net.SplitHostPort(addr)
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: host})
	if err != nil {
		t.Fatalf("TLS to %s with the caBundle: %v", addr, err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	if conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS11}); err == nil { //nolint:gosec // checks the server refuses old TLS
		conn.Close()
		t.Errorf("%s accepted TLS 1.1", addr)
	}
	return leaf
}

// helmCheckAdmission proves that the Helm-installed configurations reach the server: a malformed
// PluginConfig is refused with a field error, and a pod that a PluginChain selects gets the
// sidecar.
func helmCheckAdmission(t *testing.T, c *framework.Cluster, ns string) {
	t.Helper()
	c.MustKubectl(t, "create", "namespace", ns)
	setup := fmt.Sprintf(`
apiVersion: v1
kind: Service
metadata: {name: web, namespace: %[1]s}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: web-cors, namespace: %[1]s}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors:
    podSelector: {matchLabels: {app: web}}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginConfig
metadata: {name: web-cors, namespace: %[1]s}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: web, namespace: %[1]s}]
  config:
    allowOrigins: [{exact: "http://www.aaa.com"}]
    allowMethods: [GET, POST]
    maxAge: 1h
`, ns)
	if res := c.KubectlStdin(t, setup, "apply", "-f", "-"); res.ExitCode != 0 {
		t.Fatalf("a valid chain and config must be accepted: exit %d\n%s", res.ExitCode, res.Output())
	}

	malformed := fmt.Sprintf(`
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginConfig
metadata: {name: malformed, namespace: %[1]s}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: other, namespace: %[1]s}]
  config:
    allowOrigin: [{exact: "http://www.aaa.com"}]
    maxAge: -5s
`, ns)
	res := c.KubectlStdin(t, malformed, "apply", "-f", "-")
	// The CRD's schema leaves spec.config open, so only the webhook knows the field and can
	// suggest the right one.
	if res.ExitCode == 0 || !strings.Contains(res.Stderr, "spec.config.allowOrigin") || !strings.Contains(res.Stderr, `did you mean "allowOrigins"`) {
		t.Fatalf("the malformed PluginConfig must be refused by the webhook with field errors: exit %d\n%s", res.ExitCode, res.Output())
	}
	t.Logf("malformed PluginConfig refused: %s", strings.TrimSpace(res.Stderr))

	pod := fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: %s, labels: {app: web}}
spec:
  containers: [{name: app, image: registry.example/web:1, ports: [{containerPort: 8080}]}]
`, ns)
	// The server's informers see the new chain within moments; a server-side dry run shows
	// when, without leaving pods behind.
	framework.Eventually(t, 20*time.Second, 200*time.Millisecond, func() (bool, string) {
		res := c.KubectlStdin(t, pod, "create", "--dry-run=server", "-o", "json", "-f", "-")
		return res.ExitCode == 0 && strings.Contains(res.Stdout, `"cors-sidecar"`), "pod not injected yet: " + res.Output()
	})
	c.KubectlStdin(t, pod, "create", "-f", "-")
	got := &corev1.Pod{}
	if err := c.Client.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "web"}, got); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ic := range got.Spec.InitContainers {
		names = append(names, ic.Name)
	}
	if !slices.Contains(names, "cors-sidecar") || got.Labels["cors-webhook.io/injected"] != "true" || got.Annotations["cors-webhook.io/policy"] == "" {
		t.Fatalf("pod not injected: init containers %v, labels %v, annotations %v", names, got.Labels, got.Annotations)
	}
	if img := got.Spec.InitContainers[slices.Index(names, "cors-sidecar")].Image; !strings.HasPrefix(img, "ghcr.io/cors-webhook/cors-sidecar:") {
		t.Errorf("sidecar image %s is not the chart's injector.sidecar.image", img)
	}
}

// helmCheckUpgrade upgrades the release with a changed value: the configurations change, keep
// their caBundle, and there is still exactly one of each.
func helmCheckUpgrade(t *testing.T, c *framework.Cluster, chart, release, ns, name string) {
	t.Helper()
	before := helmWebhookCABundles(t, c, name)[0]
	res := helmRun(t, c, "upgrade", release, chart, "--namespace", ns, "--reuse-values", "--set", "webhook.timeoutSeconds=7")
	if res.ExitCode != 0 {
		t.Fatalf("helm upgrade: exit %d\n%s", res.ExitCode, res.Output())
	}
	vwc := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := c.Client.Get(context.Background(), client.ObjectKey{Name: name}, vwc); err != nil {
		t.Fatal(err)
	}
	for _, w := range vwc.Webhooks {
		if w.TimeoutSeconds == nil || *w.TimeoutSeconds != 7 {
			t.Errorf("%s: timeoutSeconds not upgraded", w.Name)
		}
		if !bytes.Equal(w.ClientConfig.CABundle, before) {
			t.Errorf("%s: helm upgrade changed caBundle", w.Name)
		}
	}
	helmCountWebhookConfigurations(t, c, release, 1)
}

// helmCheckUninstall removes the release: no webhook configuration (nor cluster-wide RBAC) of
// it may remain, since a dangling failurePolicy=Fail webhook would block the cluster.
func helmCheckUninstall(t *testing.T, c *framework.Cluster, release, ns, name string) {
	t.Helper()
	if res := helmRun(t, c, "uninstall", release, "--namespace", ns, "--wait"); res.ExitCode != 0 {
		t.Fatalf("helm uninstall: exit %d\n%s", res.ExitCode, res.Output())
	}
	helmCountWebhookConfigurations(t, c, release, 0)
	ctx := context.Background()
	for _, obj := range []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{}, &admissionregistrationv1.MutatingWebhookConfiguration{},
	} {
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, obj); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s still there after uninstall (%v)", obj, name, err)
		}
	}
	res := c.Kubectl(t, "get", "clusterroles,clusterrolebindings,roles,rolebindings,deployments,services,serviceaccounts,poddisruptionbudgets", "-A", "-l", "app.kubernetes.io/instance="+release, "-o", "name")
	if strings.TrimSpace(res.Stdout) != "" {
		t.Errorf("left behind after uninstall:\n%s", res.Stdout)
	}
	// Secrets that cert-manager issued stay, as cert-manager leaves them by default; no other.
	secrets := &corev1.SecretList{}
	if err := c.Client.List(ctx, secrets, client.InNamespace(ns), client.MatchingLabels{"app.kubernetes.io/instance": release}); err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets.Items {
		if _, issued := s.Annotations["cert-manager.io/certificate-name"]; !issued {
			t.Errorf("Secret %s left behind after uninstall", s.Name)
		}
	}
}

func helmCountWebhookConfigurations(t *testing.T, c *framework.Cluster, release string, want int) {
	t.Helper()
	sel := client.MatchingLabels{"app.kubernetes.io/instance": release}
	vl := &admissionregistrationv1.ValidatingWebhookConfigurationList{}
	ml := &admissionregistrationv1.MutatingWebhookConfigurationList{}
	if err := c.Client.List(context.Background(), vl, sel); err != nil {
		t.Fatal(err)
	}
	if err := c.Client.List(context.Background(), ml, sel); err != nil {
		t.Fatal(err)
	}
	if len(vl.Items) != want || len(ml.Items) != want {
		t.Errorf("release %s: %d validating and %d mutating webhook configurations, want %d each", release, len(vl.Items), len(ml.Items), want)
	}
}

// helmRun runs bin/helm (against the cluster when c is set) with its state in a temporary
// folder. A non-zero exit is returned, not fatal.
func helmRun(t *testing.T, c *framework.Cluster, args ...string) localcluster.Result {
	t.Helper()
	h, err := localcluster.NewHelm()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	kubeconfig := ""
	if c != nil {
		kubeconfig = c.Kubeconfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := h.Run(ctx, kubeconfig, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func helmChartDir(t *testing.T) string {
	t.Helper()
	root, err := localcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "charts", "cors-webhook")
}

// helmTemplate renders the chart and decodes its objects by kind.
func helmTemplate(t *testing.T, chart string, args ...string) map[string][]string {
	t.Helper()
	res := helmRun(t, nil, append([]string{"template", "cors-webhook", chart}, args...)...)
	if res.ExitCode != 0 {
		t.Fatalf("helm template: %s", res.Output())
	}
	out := map[string][]string{}
	for _, doc := range strings.Split(res.Stdout, "\n---") {
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil || meta.Kind == "" {
			continue
		}
		out[meta.Kind] = append(out[meta.Kind], doc)
	}
	return out
}

func helmFind[T any](t *testing.T, objs map[string][]string, kind string) T {
	t.Helper()
	var obj T
	docs := objs[kind]
	if len(docs) != 1 {
		t.Fatalf("%d %s objects rendered, want 1", len(docs), kind)
	}
	if err := yaml.UnmarshalStrict([]byte(docs[0]), &obj); err != nil {
		t.Fatalf("%s: %v", kind, err)
	}
	return obj
}

func helmFreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
