package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestHelmControllerAdmissionPolicy installs the chart and patches, as the controller's
// service account, what the controller writes and what it must not: the API server's
// ValidatingAdmissionPolicy lets the first through and refuses the rest, although RBAC allows
// both. Another user is not restricted by it.
func TestHelmControllerAdmissionPolicy(t *testing.T) {
	chart := helmChartDir(t)
	c := framework.Start(t, localcluster.Options{})
	ns, fullname := helmSelfSignedNamespace, helmSelfSignedFullname
	helmInstall(t, c, chart, helmSelfSignedRelease, ns,
		"--set", "certs.mode=self-signed",
		"--set", fmt.Sprintf("webhook.devURL=https://127.0.0.1:%d", helmFreePort(t)))
	// The controller's identity, as the API server sees it (kubectl patch would need get).
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":" + fullname + "-controller"}
	controller, err := client.New(cfg, client.Options{Scheme: localcluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	app := "vap-app"
	c.MustKubectl(t, "create", "namespace", app)
	if res := c.KubectlStdin(t, vapWorkloads, "apply", "-n", app, "-f", "-"); res.ExitCode != 0 {
		t.Fatal(res.Output())
	}
	named := func(obj client.Object, namespace, name string) client.Object {
		obj.SetNamespace(namespace)
		obj.SetName(name)
		return obj
	}
	pod := func() client.Object { return named(&corev1.Pod{}, app, "app") }
	merge := func(p string) client.Patch { return client.RawPatch(types.MergePatchType, []byte(p)) }
	jsonPatch := func(p string) client.Patch { return client.RawPatch(types.JSONPatchType, []byte(p)) }
	const refusedPod = "the cors-webhook controller may change only the cors-webhook.io/policy annotation of a pod"
	const refusedWorkload = "the cors-webhook controller may change only the cors-webhook.io/restartedAt annotation of a workload's pod template"
	const refusedConfig = "the cors-webhook controller may change only the caBundle of a webhook configuration"
	image := func(tag string) client.Patch {
		return merge(`{"spec":{"containers":[{"name":"app","image":"registry.example/evil:` + tag + `"}]}}`)
	}

	// The policy takes effect once the API server has loaded it. Each try changes the image
	// anew: a patch that changes nothing passes any policy.
	tries := 0
	framework.Eventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) {
		tries++
		err := controller.Patch(t.Context(), pod(), image(fmt.Sprint(tries)))
		if err != nil && strings.Contains(err.Error(), refusedPod) {
			return true, ""
		}
		policy := c.Kubectl(t, "get", "validatingadmissionpolicies,validatingadmissionpolicybindings", "-o", "yaml")
		return false, fmt.Sprintf("a patch of the pod's image by the controller: %v\n%s", err, policy.Output())
	})

	restartedAt := merge(`{"spec":{"template":{"metadata":{"annotations":{"cors-webhook.io/restartedAt":"0123456789abcdef"}}}}}`)
	for _, tc := range []struct {
		name    string
		as      client.Client
		obj     client.Object
		patch   client.Patch
		refused string // "" when allowed
	}{
		{"the policy annotation of a pod", controller, pod(), merge(`{"metadata":{"annotations":{"cors-webhook.io/policy":"{\"version\":1,\"ports\":{}}"}}}`), ""},
		{"another annotation of a pod", controller, pod(), merge(`{"metadata":{"annotations":{"example.com/x":"y"}}}`), refusedPod},
		{"a label of a pod", controller, pod(), merge(`{"metadata":{"labels":{"app":"other"}}}`), refusedPod},
		{"the image of a pod", controller, pod(), image("again"), refusedPod},
		{"the restart annotation of a Deployment's template", controller, named(&appsv1.Deployment{}, app, "app"), restartedAt, ""},
		{"the restart annotation of a DaemonSet's template", controller, named(&appsv1.DaemonSet{}, app, "app"), restartedAt, ""},
		{"the restart annotation of a StatefulSet's template", controller, named(&appsv1.StatefulSet{}, app, "app"), restartedAt, ""},
		{"the replicas of a Deployment", controller, named(&appsv1.Deployment{}, app, "app"), merge(`{"spec":{"replicas":3}}`), refusedWorkload},
		{"the image of a Deployment's template", controller, named(&appsv1.Deployment{}, app, "app"),
			merge(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.example/evil:1"}]}}}}`), refusedWorkload},
		{"another annotation of a DaemonSet's template", controller, named(&appsv1.DaemonSet{}, app, "app"),
			merge(`{"spec":{"template":{"metadata":{"annotations":{"example.com/x":"y"}}}}}`), refusedWorkload},
		{"the image of a pod, by another user", c.Client, pod(), merge(`{"spec":{"containers":[{"name":"app","image":"registry.example/app:2"}]}}`), ""},
		{"the failurePolicy of the pod webhook", controller, named(&admissionregistrationv1.MutatingWebhookConfiguration{}, "", fullname),
			jsonPatch(`[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Fail"}]`), refusedConfig},
		{"the rules of the validating webhooks", controller, named(&admissionregistrationv1.ValidatingWebhookConfiguration{}, "", fullname),
			jsonPatch(`[{"op":"remove","path":"/webhooks/0/rules"}]`), refusedConfig},
		{"the caBundle of the pod webhook", controller, named(&admissionregistrationv1.MutatingWebhookConfiguration{}, "", fullname),
			jsonPatch(`[{"op":"add","path":"/webhooks/0/clientConfig/caBundle","value":"dGVzdA=="}]`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.as.Patch(t.Context(), tc.obj, tc.patch)
			switch {
			case tc.refused == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refused != "" && (err == nil || !strings.Contains(err.Error(), tc.refused)):
				t.Errorf("got %v, want a refusal saying %q", err, tc.refused)
			}
		})
	}
}

// vapWorkloads is a pod and one workload of each kind the controller rolls, all named app.
var vapWorkloads = func() string {
	out := `apiVersion: v1
kind: Pod
metadata: {name: app, labels: {app: app}}
spec:
  containers: [{name: app, image: registry.example/app:1}]
`
	for _, kind := range []string{"Deployment", "DaemonSet", "StatefulSet"} {
		spec := ""
		if kind == "StatefulSet" {
			spec = "  serviceName: app\n"
		}
		out += `---
apiVersion: apps/v1
kind: ` + kind + `
metadata: {name: app}
spec:
` + spec + `  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: registry.example/app:1}]
`
	}
	return out
}()
