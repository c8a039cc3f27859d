package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/internal/manifests"
)

// runInject runs `cors-webhook inject ARGS` with stdin and returns its output and exit code.
func runInject(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	return runCommand(t, stdin, append([]string{"inject"}, args...)...)
}

// injectContext is what a GitOps repository holds besides the workloads: the labeled
// namespace, the Plugin, a chain selecting app=web, and a CORS config of Service web.
const injectContext = `
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: Plugin
metadata: {name: cors-policy}
spec: {priority: 165}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: web, namespace: shop}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {podSelector: {matchLabels: {app: web}}}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginConfig
metadata: {name: web, namespace: shop}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: web}]
  config: {allowOrigins: [{exact: "https://shop.example"}], maxAge: 1d}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: web}]
`

const webPodSpec = `
      containers:
      - name: web
        image: web:1
        ports: [{name: web, containerPort: 8080}]`

// webPod is the Pod of Service web in namespace shop.
const webPod = `
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  containers:
  - name: web
    image: web:1
    ports: [{name: web, containerPort: 8080}]
`

// Every kind with a pod template, plus documents that must pass through.
var injectWorkloads = `
---` + webPod + `---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}, annotations: {prometheus.io/scrape: "true"}}
    spec:` + webPodSpec + `
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: shop}
spec:
  serviceName: web
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:` + webPodSpec + `
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:` + webPodSpec + `
---
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:` + webPodSpec + `
---
apiVersion: batch/v1
kind: Job
metadata: {name: web, namespace: shop}
spec:
  template:
    metadata: {labels: {app: web}}
    spec:
      restartPolicy: Never` + webPodSpec + `
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: web, namespace: shop}
spec:
  schedule: "@hourly"
  jobTemplate:
    spec:
      template:
        metadata: {labels: {app: web}}
        spec:
          restartPolicy: Never
          containers:
          - name: web
            image: web:1
            ports: [{name: web, containerPort: 8080}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: other, namespace: shop}
spec:
  selector: {matchLabels: {app: other}}
  template:
    metadata: {labels: {app: other}}
    spec: {containers: [{name: other, image: other:1}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {key: value}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
spec: {size: 3}
`

const wantWebPolicy = `{"version":1,"ports":{"8080":{"allowOrigins":[{"exact":"https://shop.example"}],"maxAge":86400}}}`

func parseOutput(t *testing.T, out string) []*unstructured.Unstructured {
	t.Helper()
	docs, err := manifests.Parse("output", []byte(out))
	if err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, out)
	}
	objs := make([]*unstructured.Unstructured, len(docs))
	for i, d := range docs {
		objs[i] = d.Object
	}
	return objs
}

func TestInjectCommandInjectsEveryPodTemplate(t *testing.T) {
	stdin := injectContext + injectWorkloads
	out, errOut, code := runInject(t, stdin, "-f", "-", "--sidecar-image", "registry.example/cors-sidecar:v9")
	if code != exitOK {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	in := parseOutput(t, stdin)
	got := parseOutput(t, out)
	if len(got) != len(in) {
		t.Fatalf("%d documents out, %d in", len(got), len(in))
	}
	templates := map[string][]string{
		"Pod": nil, "Deployment": {"spec", "template"}, "StatefulSet": {"spec", "template"},
		"DaemonSet": {"spec", "template"}, "ReplicaSet": {"spec", "template"}, "Job": {"spec", "template"},
		"CronJob": {"spec", "jobTemplate", "spec", "template"},
	}
	injected := 0
	for i, obj := range got {
		path, isWorkload := templates[obj.GetKind()]
		if !isWorkload || obj.GetName() != "web" {
			// Everything else passes through unchanged, without a defaulted namespace.
			if diff := cmp.Diff(in[i].Object, obj.Object); diff != "" {
				t.Errorf("%s %s changed:\n%s", obj.GetKind(), obj.GetName(), diff)
			}
			continue
		}
		injected++
		tmpl := obj.Object
		if path != nil {
			tmpl, _, _ = unstructured.NestedMap(obj.Object, path...)
		}
		annotations, _, _ := unstructured.NestedStringMap(tmpl, "metadata", "annotations")
		if annotations[contract.AnnotationPolicy] != wantWebPolicy || annotations[contract.AnnotationRedirectPorts] != "8080" {
			t.Errorf("%s: annotations %v", obj.GetKind(), annotations)
		}
		if obj.GetKind() == "Deployment" && annotations["prometheus.io/scrape"] != "true" {
			t.Errorf("Deployment lost its own annotation: %v", annotations)
		}
		labels, _, _ := unstructured.NestedStringMap(tmpl, "metadata", "labels")
		if labels[contract.LabelInjected] != "true" || labels["app"] != "web" {
			t.Errorf("%s: labels %v", obj.GetKind(), labels)
		}
		inits, _, _ := unstructured.NestedSlice(tmpl, "spec", "initContainers")
		var names, images []string
		for _, c := range inits {
			names = append(names, c.(map[string]any)["name"].(string))
			images = append(images, c.(map[string]any)["image"].(string))
		}
		if !cmp.Equal(names, []string{contract.ContainerInit, contract.ContainerSidecar}) || images[1] != "registry.example/cors-sidecar:v9" {
			t.Errorf("%s: init containers %v %v", obj.GetKind(), names, images)
		}
		// The app container is exactly as written: no defaulted fields appear.
		containers, _, _ := unstructured.NestedSlice(tmpl, "spec", "containers")
		if want := map[string]any{"name": "web", "image": "web:1", "ports": []any{map[string]any{"name": "web", "containerPort": int64(8080)}}}; !cmp.Equal(containers, []any{want}) {
			t.Errorf("%s: containers %v", obj.GetKind(), containers)
		}
		if _, has, _ := unstructured.NestedFieldNoCopy(tmpl, "metadata", "creationTimestamp"); has {
			t.Errorf("%s: creationTimestamp added", obj.GetKind())
		}
	}
	if injected != 7 {
		t.Errorf("%d workloads injected, want 7", injected)
	}
	for _, want := range []string{"CronJob shop/web: injected", "Deployment shop/other: not injected (not-selected)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}

	// Injecting the output again changes nothing.
	again, errOut, code := runInject(t, out, "-f", "-", "--sidecar-image", "registry.example/cors-sidecar:v9")
	if code != exitOK || again != out {
		t.Errorf("second pass: exit %d, output changed: %s\n%s", code, cmp.Diff(out, again), errOut)
	}
	if !strings.Contains(errOut, "not injected (already-injected)") {
		t.Errorf("second pass stderr:\n%s", errOut)
	}
}

func TestInjectCommandExitCodes(t *testing.T) {
	dir := t.TempDir()
	ctxFile := filepath.Join(dir, "context.yaml")
	if err := os.WriteFile(ctxFile, []byte(injectContext), 0o644); err != nil {
		t.Fatal(err)
	}
	collide := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1, ports: [{name: web, containerPort: 8080}, {containerPort: 15023}]}]}`
	noNamespace := `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1}]}`
	tests := []struct {
		name   string
		stdin  string
		args   []string
		code   int
		stderr string
		stdout string
	}{
		{name: "seed-like input", stdin: injectWorkloads, args: []string{"-f", ctxFile, "-f", "-"}, code: exitOK},
		{name: "--namespace places namespace-less objects", stdin: noNamespace, args: []string{"-f", ctxFile, "-f", "-", "-n", "shop"}, code: exitOK, stderr: "Deployment shop/web: injected"},
		{name: "default namespace", stdin: noNamespace, args: []string{"-f", ctxFile, "-f", "-"}, code: exitOK, stderr: "Deployment default/web: not injected (not-selected)"},
		{name: "port collision", stdin: collide, args: []string{"-f", ctxFile, "-f", "-"}, code: exitInvalid,
			stderr: "container web declares port 15023, the sidecar's admin port", stdout: "name: web"},
		{name: "custom admin port avoids it", stdin: collide, args: []string{"-f", ctxFile, "-f", "-", "--admin-port", "15090"}, code: exitOK, stdout: "15090"},
		{name: "conflicting configs", stdin: `
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginConfig
metadata: {name: another, namespace: shop}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: web}]
  config: {allowOrigins: [{exact: "https://other.example"}]}
---` + collide, args: []string{"-f", ctxFile, "-f", "-", "--admin-port", "15090"}, code: exitInvalid, stderr: "port 8080 is configured by more than one PluginConfig: shop/another"},
		{name: "unreadable file", args: []string{"-f", filepath.Join(dir, "missing.yaml")}, code: exitUsage, stderr: "missing.yaml"},
		{name: "no input", args: nil, code: exitUsage, stderr: "no input"},
		{name: "bad YAML", stdin: "kind: [", args: []string{"-f", "-"}, code: exitUsage},
		{name: "bad port flag", stdin: injectContext, args: []string{"-f", "-", "--inbound-port", "15023"}, code: exitUsage, stderr: "must differ"},
		{name: "bad quantity", stdin: injectContext, args: []string{"-f", "-", "--sidecar-memory-request", "lots"}, code: exitUsage, stderr: "--sidecar-memory-request"},
		{name: "bad pull policy", stdin: injectContext, args: []string{"-f", "-", "--sidecar-image-pull-policy", "Sometimes"}, code: exitUsage, stderr: "Sometimes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runInject(t, tt.stdin, tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr:\n%s", code, tt.code, errOut)
			}
			if !strings.Contains(errOut, tt.stderr) {
				t.Errorf("stderr does not say %q:\n%s", tt.stderr, errOut)
			}
			if !strings.Contains(out, tt.stdout) {
				t.Errorf("stdout does not contain %q:\n%s", tt.stdout, out)
			}
		})
	}
}
