package e2e

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/examples"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// describeObjects are the seed guide's objects (its namespace, Plugin, chain, config and the
// pipy-ok Service) and a pod of pipy-ok-v1 as `cors-webhook inject` renders it, plus one the
// webhook never saw (created while it was down).
var describeObjects = `
apiVersion: v1
kind: Namespace
metadata: {name: pipy, labels: {openservicemesh.io/monitored-by: fsm}}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: Plugin
metadata: {name: cors-policy}
spec: {priority: 165, pipyscript: "(() => 0)()"}
---
` + examples.Manifest(examples.PluginChain) + `
---
` + examples.Manifest(examples.PluginConfig) + `
---
apiVersion: v1
kind: Service
metadata: {name: pipy-ok, namespace: pipy}
spec: {selector: {app: pipy-ok}, ports: [{name: pipy, port: 8080, targetPort: 8080}]}
`

const describePod = `
apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: pipy, labels: {app: pipy-ok, version: v1}}
spec: {containers: [{name: pipy, image: flomesh/pipy, ports: [{containerPort: 8080}]}]}
`

// TestDescribeLive runs `cors-webhook describe` against a real API server: it reads the pod,
// the chain, the config, the Service and the namespace from the cluster and explains them.
func TestDescribeLive(t *testing.T) {
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{})
	if res := c.KubectlStdin(t, describeObjects, "apply", "-f", "-"); res.ExitCode != 0 {
		t.Fatalf("apply: %s", res.Output())
	}
	// The injected pod: what the webhook would have created.
	inject := exec.Command(bin, "inject", "-f", "-")
	inject.Stdin = strings.NewReader(describeObjects + "---\n" + strings.ReplaceAll(describePod, "%s", "injected"))
	rendered, err := inject.Output()
	if err != nil {
		t.Fatalf("inject: %v", err)
	}
	if res := c.KubectlStdin(t, string(rendered), "apply", "-f", "-"); res.ExitCode != 0 {
		t.Fatalf("apply the injected pod: %s", res.Output())
	}
	if res := c.KubectlStdin(t, strings.ReplaceAll(describePod, "%s", "missed"), "apply", "-f", "-"); res.ExitCode != 0 {
		t.Fatalf("apply the missed pod: %s", res.Output())
	}

	describe := func(t *testing.T, args ...string) map[string]any {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"describe", "--kubeconfig", c.Kubeconfig, "-n", "pipy", "-o", "json"}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("describe %q: %v\n%s", args, err, out)
		}
		var d map[string]any
		if err := json.Unmarshal(out, &d); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return d
	}
	d := describe(t, "injected", "--origin", "http://www.bbb.com")
	sidecar := d["sidecar"].(map[string]any)
	if d["source"] != "cluster" || d["selected"] != true || sidecar["injected"] != true || sidecar["policyCurrent"] != true {
		t.Errorf("injected pod: %v", d)
	}
	ports := d["ports"].([]any)
	if len(ports) != 1 || ports[0].(map[string]any)["applied"].(map[string]any)["name"] != "cors-policy-config" {
		t.Errorf("ports %v", ports)
	}
	answer := d["cors"].([]any)[0].(map[string]any)
	if answer["action"] != "Actual" || !strings.Contains(mustMarshal(t, answer["headers"]), `"value":"http://www.bbb.com"`) {
		t.Errorf("cors answer %v", answer)
	}

	// A later config change makes the running policy stale; the pod the webhook missed is
	// selected but carries no sidecar.
	c.MustKubectl(t, "patch", "pluginconfig", "-n", "pipy", "cors-policy-config", "--type", "json",
		"-p", `[{"op":"replace","path":"/spec/config/allowOrigins/0","value":{"exact":"http://www.ccc.com"}}]`)
	d = describe(t, "injected")
	if d["sidecar"].(map[string]any)["policyCurrent"] != false {
		t.Errorf("after the config change: %v", d["sidecar"])
	}
	d = describe(t, "missed")
	if d["selected"] != true || d["sidecar"].(map[string]any)["injected"] != false || d["sidecar"].(map[string]any)["outcome"] != "injected" {
		t.Errorf("missed pod: %v", d)
	}

	// The text form names the chain and the config.
	text, err := exec.Command(bin, "describe", "--kubeconfig", c.Kubeconfig, "-n", "pipy", "injected").Output()
	if err != nil || !strings.Contains(string(text), "pipy/cors-policy-chain: selects the pod (cors-policy)") ||
		!strings.Contains(string(text), "Sidecar:   injected; its policy is stale") {
		t.Errorf("text (%v):\n%s", err, text)
	}
	if out, err := exec.Command(bin, "describe", "--kubeconfig", c.Kubeconfig, "-n", "pipy", "nosuchpod").CombinedOutput(); err == nil {
		t.Errorf("describe of a missing pod succeeded:\n%s", out)
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
