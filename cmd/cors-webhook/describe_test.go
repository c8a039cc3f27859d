package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/examples"
	"github.com/cors-webhook/cors-webhook/explain"
	"github.com/cors-webhook/cors-webhook/inject"
)

// describeContext is the seed guide plus what makes describe explain something: a config of
// the same Service that loses port 8080 to the seed's, a config of a Service that does not
// select the pod, an invalid config, a chain whose podSelector misses, and the workload.
var describeContext = docs(seedAll, `
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginConfig
metadata: {name: zz-late, namespace: pipy}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: pipy-ok-v1, namespace: pipy}]
  config: {allowOrigins: [{exact: "http://late.example"}]}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginConfig
metadata: {name: elsewhere, namespace: pipy}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: curl, namespace: pipy}]
  config: {allowOrigins: [{exact: "http://curl.example"}]}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginConfig
metadata: {name: broken, namespace: pipy}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: pipy-ok, namespace: pipy}]
  config: {allowOrigin: [{exact: "http://typo.example"}]}
---
apiVersion: v1
kind: Service
metadata: {name: curl, namespace: pipy}
spec: {selector: {app: curl}, ports: [{port: 80}]}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: other-app, namespace: pipy}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {podSelector: {matchLabels: {app: other}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: pipy-ok-v1, namespace: pipy}
spec:
  selector: {matchLabels: {app: pipy-ok, version: v1}}
  template:
    metadata: {labels: {app: pipy-ok, version: v1}}
    spec: {containers: [{name: pipy, image: flomesh/pipy, ports: [{containerPort: 8080}]}]}
`)

func describeJSON(t *testing.T, stdin string, args ...string) *explain.Description {
	t.Helper()
	out, errOut, code := runCommand(t, stdin, append([]string{"describe", "-f", "-", "-n", "pipy", "-o", "json"}, args...)...)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	d := &explain.Description{}
	if err := json.Unmarshal([]byte(out), d); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	return d
}

func TestDescribeOffline(t *testing.T) {
	d := describeJSON(t, describeContext, "pipy-ok-v1", "--origin", "http://www.bbb.com")
	if !d.Selected || d.Source != "files" || d.Sidecar.Injected || d.Sidecar.Outcome != inject.Injected {
		t.Errorf("selected %v, source %s, sidecar %+v", d.Selected, d.Source, d.Sidecar)
	}
	wantChains := []explain.Chain{
		{Name: "pipy/cors-policy-chain", Plugins: []string{"cors-policy"}, Selects: true, Reason: chains.ReasonSelected},
		{Name: "pipy/other-app", Plugins: []string{"cors-policy"}, Reason: chains.ReasonPodNotSelected, Why: "its podSelector does not select the pod's labels"},
	}
	if !slices.EqualFunc(d.Chains, wantChains, func(a, b explain.Chain) bool {
		return a.Name == b.Name && a.Selects == b.Selects && a.Reason == b.Reason && a.Why == b.Why && slices.Equal(a.Plugins, b.Plugins)
	}) {
		t.Errorf("chains %+v\nwant %+v", d.Chains, wantChains)
	}
	wantPorts := []inject.PortPolicy{{Port: 8080,
		Applied:    inject.ConfigRef{Namespace: "pipy", Name: "cors-policy-config", Service: "pipy-ok"},
		Overridden: []inject.ConfigRef{{Namespace: "pipy", Name: "zz-late", Service: "pipy-ok-v1"}}}}
	if got, _ := json.Marshal(d.Ports); string(got) != mustJSON(t, wantPorts) {
		t.Errorf("ports %s\nwant %s", got, mustJSON(t, wantPorts))
	}
	why := map[string]string{}
	for _, c := range d.Configs {
		why[c.Name] = c.Why
		if c.Name == "pipy/cors-policy-config" && !slices.Equal(c.Applied, []int32{8080}) {
			t.Errorf("seed config applied on %v", c.Applied)
		}
	}
	for name, want := range map[string]string{
		"pipy/cors-policy-config": "",
		"pipy/zz-late":            "another PluginConfig applies on port 8080",
		"pipy/elsewhere":          "none of its destinationRefs is a Service that selects the pod",
		"pipy/broken":             "its config is invalid",
	} {
		if got, ok := why[name]; !ok || !strings.Contains(got, want) || (want == "") != (got == "") {
			t.Errorf("config %s: why %q, want %q", name, got, want)
		}
	}
	if !slices.Equal(d.RedirectPorts, []int32{8080}) {
		t.Errorf("redirect ports %v", d.RedirectPorts)
	}
	// The CORS answer is the seed's expected GET response.
	if len(d.CORS) != 1 || d.CORS[0].Port != 8080 || d.CORS[0].Action != cors.Actual.String() {
		t.Fatalf("cors %+v", d.CORS)
	}
	for _, h := range d.CORS[0].Headers {
		if h.Name != "vary" && !strings.Contains(examples.Expected(examples.GetOriginBBB), h.Name+": "+h.Value+"\n") {
			t.Errorf("header %s: %s is not in the seed's expected response", h.Name, h.Value)
		}
	}
	if !slices.Contains(d.CORS[0].Headers, cors.Header{Name: "vary", Value: "Origin"}) {
		t.Errorf("no vary: Origin in %v", d.CORS[0].Headers)
	}

	// A preflight gets the seed's expected preflight headers; another origin passes through.
	pre := describeJSON(t, describeContext, "pipy-ok-v1", "--origin", "http://www.bbb.com", "--method", "OPTIONS")
	if pre.CORS[0].Action != cors.Preflight.String() || len(pre.CORS[0].Headers) != 7 {
		t.Errorf("preflight %+v", pre.CORS)
	}
	for _, h := range pre.CORS[0].Headers {
		if h.Name != "vary" && !strings.Contains(examples.Expected(examples.OptionsOriginBBB), h.Name+": "+h.Value+"\n") {
			t.Errorf("preflight header %s: %s is not in the seed's expected response", h.Name, h.Value)
		}
	}
	other := describeJSON(t, describeContext, "pipy-ok-v1", "--origin", "http://evil.example", "--port", "8080")
	if other.CORS[0].Action != cors.PassThrough.String() || len(other.CORS[0].Headers) != 1 {
		t.Errorf("other origin %+v", other.CORS)
	}
	none := describeJSON(t, describeContext, "pipy-ok-v1", "--origin", "http://www.bbb.com", "--port", "9000")
	if none.CORS[0].Action != cors.PassThrough.String() || !strings.Contains(none.CORS[0].Why, "no policy on this port") {
		t.Errorf("port without policy %+v", none.CORS)
	}
}

func TestDescribeOfflineNotSelected(t *testing.T) {
	d := describeJSON(t, docs(describeContext, `
apiVersion: v1
kind: Pod
metadata: {name: curl, namespace: pipy, labels: {app: curl}}
spec: {containers: [{name: curl, image: curl}]}`), "curl")
	if d.Selected || d.Sidecar.Outcome != inject.NotSelected || len(d.Ports) != 0 {
		t.Errorf("selected %v, outcome %s, ports %v", d.Selected, d.Sidecar.Outcome, d.Ports)
	}
	for _, c := range d.Configs {
		if c.Why == "" {
			t.Errorf("config %s applies to a pod no chain selects", c.Name)
		}
	}
}

func TestDescribeOfflinePolicyState(t *testing.T) {
	// A pod as the webhook injected it, then the config changed: the policy is stale.
	out, _, code := runCommand(t, docs(seedAll, `
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: pipy, labels: {app: pipy-ok}}
spec: {containers: [{name: pipy, image: flomesh/pipy, ports: [{containerPort: 8080}]}]}`), "inject", "-f", "-")
	if code != exitOK {
		t.Fatalf("inject exit %d", code)
	}
	injected := out
	d := describeJSON(t, docs(seedAll, lastDocument(injected)), "web")
	if !d.Sidecar.Injected || d.Sidecar.PolicyCurrent == nil || !*d.Sidecar.PolicyCurrent || len(d.Sidecar.MissingPorts) != 0 {
		t.Errorf("freshly injected: %+v", d.Sidecar)
	}
	changed := strings.Replace(seedAll, "http://www.bbb.com", "http://www.ccc.com", 1)
	d = describeJSON(t, docs(changed, lastDocument(injected)), "web")
	if d.Sidecar.PolicyCurrent == nil || *d.Sidecar.PolicyCurrent {
		t.Errorf("after a config change: %+v", d.Sidecar)
	}
	text, _, _ := runCommand(t, docs(changed, lastDocument(injected)), "describe", "-f", "-", "-n", "pipy", "web")
	if !strings.Contains(text, "Sidecar:   injected; its policy is stale") {
		t.Errorf("text output:\n%s", text)
	}
}

func TestDescribeOutputs(t *testing.T) {
	text, _, code := runCommand(t, describeContext, "describe", "-f", "-", "-n", "pipy", "pipy-ok-v1", "--origin", "http://www.bbb.com")
	for _, want := range []string{
		"Pod:       pipy/pipy-ok-v1 (from the files)",
		"  pipy/cors-policy-chain: selects the pod (cors-policy)",
		"  pipy/other-app: no effect: its podSelector does not select the pod's labels",
		"  8080: PluginConfig pipy/cors-policy-config (through Service pipy-ok)",
		"        overridden: pipy/zz-late (through Service pipy-ok-v1)",
		"  pipy/broken: not applied: its config is invalid, so it is ignored",
		"  port 8080: Actual",
		"    access-control-allow-origin: http://www.bbb.com",
	} {
		if code != exitOK || !strings.Contains(text, want) {
			t.Errorf("text output lacks %q (exit %d):\n%s", want, code, text)
		}
	}
	y, _, code := runCommand(t, describeContext, "describe", "-f", "-", "-n", "pipy", "pipy-ok-v1", "-o", "yaml")
	d := &explain.Description{}
	if err := sigsyaml.Unmarshal([]byte(y), d); code != exitOK || err != nil || d.Pod != "pipy-ok-v1" || len(d.Ports) != 1 {
		t.Errorf("yaml output (exit %d, %v):\n%s", code, err, y)
	}
	for _, args := range [][]string{
		{"describe", "-f", "-", "-n", "pipy", "missing"},
		{"describe", "-f", "-", "-n", "pipy", "pipy-ok-v1", "-o", "wide"},
		{"describe", "-f", "-", "-n", "pipy"},
	} {
		if _, _, code := runCommand(t, describeContext, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// lastDocument is the last document of a YAML stream.
func lastDocument(stream string) string {
	parts := strings.Split(stream, "\n---\n")
	return parts[len(parts)-1]
}

// TestDescribeGEP1767: describe answers with what the opt-in fields make the sidecar answer, given
// the preflight's access-control-request-* headers.
func TestDescribeGEP1767(t *testing.T) {
	opted := strings.Replace(describeContext, "    - X-Foo-Bar-1\n", "    - '*'\n", 1)
	opted = strings.Replace(opted, "    maxAge: 24h\n", "    maxAge: 24h\n    unmatchedPreflights: Ignore\n", 1)
	if opted == describeContext {
		t.Fatal("the seed's config changed shape; update the replacements")
	}
	star := describeJSON(t, opted, "pipy-ok-v1", "--origin", "http://www.bbb.com", "--method", "OPTIONS",
		"--request-method", "PATCH", "--request-headers", "x-a,x-b")
	if !slices.Contains(star.CORS[0].Headers, cors.Header{Name: cors.HeaderAllowHeaders, Value: "x-a,x-b"}) {
		t.Errorf("credentialed * does not answer the requested headers: %v", star.CORS[0].Headers)
	}
	ignored := describeJSON(t, opted, "pipy-ok-v1", "--origin", "http://evil.example", "--method", "OPTIONS", "--request-method", "PUT")
	if a := ignored.CORS[0]; a.Action != cors.Preflight.String() || len(a.Headers) != 1 || !strings.Contains(a.Why, "unmatchedPreflights: Ignore") {
		t.Errorf("unmatched preflight %+v", a)
	}
}
