package inject

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
)

// The guide's objects (examples/manifests), as the tests' baseline cluster.
const (
	seedPlugin = `
kind: Plugin
apiVersion: plugin.flomesh.io/v1alpha1
metadata: {name: cors-policy}
spec: {priority: 165, pipyscript: "..."}`
	seedChain = `
kind: PluginChain
apiVersion: plugin.flomesh.io/v1alpha1
metadata: {name: cors-policy-chain, namespace: pipy}
spec:
  chains:
  - name: inbound-http
    plugins: [cors-policy]
  selectors:
    podSelector:
      matchLabels: {app: pipy-ok}
      matchExpressions:
      - {key: app, operator: In, values: [pipy-ok]}
    namespaceSelector:
      matchExpressions:
      - {key: openservicemesh.io/monitored-by, operator: In, values: [fsm]}`
	seedConfig = `
kind: PluginConfig
apiVersion: plugin.flomesh.io/v1alpha1
metadata: {name: cors-policy-config, namespace: pipy}
spec:
  plugin: cors-policy
  destinationRefs:
  - {kind: Service, name: pipy-ok, namespace: pipy}
  config:
    allowCredentials: true
    allowHeaders: [X-Foo-Bar-1]
    allowMethods: [POST, GET, PATCH, DELETE]
    allowOrigins:
    - regex: http.*://www.test.cn
    - exact: http://www.aaa.com
    - prefix: http://www.bbb.com
    exposeHeaders: [Content-Encoding, Kuma-Revision]
    maxAge: 24h`
	seedService = `
kind: Service
apiVersion: v1
metadata: {name: pipy-ok, namespace: pipy}
spec:
  selector: {app: pipy-ok}
  ports:
  - {name: pipy, port: 8080, targetPort: 8080, protocol: TCP}`
	seedServiceV1 = `
kind: Service
apiVersion: v1
metadata: {name: pipy-ok-v1, namespace: pipy}
spec:
  selector: {app: pipy-ok, version: v1}
  ports:
  - {name: pipy, port: 8080, targetPort: 8080, protocol: TCP}`
	nsPipy = `
kind: Namespace
apiVersion: v1
metadata: {name: pipy, labels: {openservicemesh.io/monitored-by: fsm}}`
	nsCurl = `
kind: Namespace
apiVersion: v1
metadata: {name: curl, labels: {openservicemesh.io/monitored-by: fsm}}`
	nsPlain = `
kind: Namespace
apiVersion: v1
metadata: {name: plain}`
	podPipyV1 = `
kind: Pod
apiVersion: v1
metadata: {generateName: pipy-ok-v1-7d9f-, namespace: pipy, labels: {app: pipy-ok, version: v1}}
spec:
  containers:
  - name: pipy
    image: flomesh/pipy:latest
    ports: [{name: pipy, containerPort: 8080}]`

	// seedPolicy is the annotation the seed's pods must carry: the seed's config, normalized
	// (maxAge 24h as 86400 seconds), on the Service's target port.
	seedPolicy  = `{"version":1,"ports":{"8080":{"allowOrigins":[{"regex":"http.*://www.test.cn"},{"exact":"http://www.aaa.com"},{"prefix":"http://www.bbb.com"}],"allowMethods":["POST","GET","PATCH","DELETE"],"allowHeaders":["X-Foo-Bar-1"],"exposeHeaders":["Content-Encoding","Kuma-Revision"],"allowCredentials":true,"maxAge":86400}}}`
	emptyPolicy = `{"version":1,"ports":{}}`
)

var seed = []string{seedPlugin, seedChain, seedConfig, seedService, seedServiceV1, nsPipy, nsCurl, nsPlain}

// objects decodes YAML fixtures into the typed objects a clusterstate.Snapshot holds.
func objects(t testing.TB, docs ...string) []any {
	t.Helper()
	var out []any
	for _, d := range docs {
		var meta struct{ Kind string }
		if err := yaml.Unmarshal([]byte(d), &meta); err != nil {
			t.Fatalf("fixture: %v\n%s", err, d)
		}
		var obj any
		switch meta.Kind {
		case "Plugin":
			obj = &v1alpha1.Plugin{}
		case "PluginChain":
			obj = &v1alpha1.PluginChain{}
		case "PluginConfig":
			obj = &v1alpha1.PluginConfig{}
		case "Service":
			obj = &corev1.Service{}
		case "Namespace":
			obj = &corev1.Namespace{}
		case "Pod":
			obj = &corev1.Pod{}
		default:
			t.Fatalf("fixture kind %q", meta.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(d), obj); err != nil {
			t.Fatalf("fixture: %v\n%s", err, d)
		}
		out = append(out, obj)
	}
	return out
}

func pod(t testing.TB, doc string) *corev1.Pod {
	t.Helper()
	return objects(t, doc)[0].(*corev1.Pod)
}

func newInjector(t testing.TB) *Injector {
	t.Helper()
	s := DefaultSettings()
	s.SidecarImage = "example.com/cors-sidecar:test"
	s.SidecarImagePullPolicy = corev1.PullIfNotPresent
	// cors-policy-2 is a CORS plugin that the fixtures do not declare.
	s.CORSPlugins = []string{"cors-policy", "cors-policy-2"}
	// ops is the cluster-chain namespace; kube-system is skipped.
	s.Tenancy = chains.Tenancy{ClusterNamespaces: []string{"ops"}, SkippedNamespaces: []string{"kube-system"}}
	in, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func injectInto(t *testing.T, in *Injector, p *corev1.Pod, docs ...string) Result {
	t.Helper()
	snap := clusterstate.NewSnapshot(objects(t, docs...)...)
	ns, _ := snap.Namespace(p.Namespace)
	if ns == nil {
		t.Fatalf("namespace %q is not in the fixtures", p.Namespace)
	}
	before := p.DeepCopy()
	res, err := in.Inject(p, ns, snap)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(before, p) {
		t.Errorf("Inject modified its input pod:\n%s", cmp.Diff(before, p))
	}
	if (res.Outcome == Injected) != (res.InjectedPod() != nil) {
		t.Errorf("outcome %s with pod %v", res.Outcome, res.InjectedPod() != nil)
	}
	if len(res.Reasons) == 0 {
		t.Errorf("outcome %s without a reason", res.Outcome)
	}
	return res
}

func TestInjectSeed(t *testing.T) {
	in := newInjector(t)
	res := injectInto(t, in, pod(t, podPipyV1), seed...)
	if res.Outcome != Injected {
		t.Fatalf("outcome %s, reasons %q", res.Outcome, res.Reasons)
	}
	got := res.InjectedPod()
	if a := got.Annotations[contract.AnnotationPolicy]; a != seedPolicy {
		t.Errorf("policy annotation\n got %s\nwant %s", a, seedPolicy)
	}
	if a := got.Annotations[contract.AnnotationRedirectPorts]; a != "8080" {
		t.Errorf("redirect ports %q, want 8080", a)
	}
	if got.Labels[contract.LabelInjected] != "true" || got.Labels["app"] != "pipy-ok" {
		t.Errorf("labels %v", got.Labels)
	}
	if got.GenerateName != "pipy-ok-v1-7d9f-" || got.Name != "" {
		t.Errorf("name changed: %q %q", got.Name, got.GenerateName)
	}
	if !slices.Equal(res.Resolution.Chains, []string{"pipy/cors-policy-chain"}) {
		t.Errorf("chains %v", res.Resolution.Chains)
	}

	// The whole added spec, as the contract of docs/design.md section 7 spells it.
	wantInit := `
- name: cors-init
  image: example.com/cors-sidecar:test
  imagePullPolicy: IfNotPresent
  command: [/usr/local/bin/cors-init]
  args: [--proxy-port, "15003", --ports, "8080"]
  resources:
    requests: {cpu: 10m, memory: 32Mi, ephemeral-storage: 16Mi}
    limits: {cpu: 500m, memory: 128Mi, ephemeral-storage: 64Mi}
  securityContext:
    runAsUser: 65532
    runAsGroup: 65532
    runAsNonRoot: true
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: true
    capabilities: {add: [NET_ADMIN], drop: [ALL]}
    seccompProfile: {type: RuntimeDefault}
- name: cors-sidecar
  image: example.com/cors-sidecar:test
  imagePullPolicy: IfNotPresent
  args: [proxy, --inbound-port, "15003", --admin-port, "15023", --policy-file, /etc/cors-webhook/policy.json]
  env: [{name: GOMEMLIMIT, valueFrom: {resourceFieldRef: {resource: limits.memory}}}]
  restartPolicy: Always
  ports:
  - {name: cors-inbound, containerPort: 15003, protocol: TCP}
  - {name: cors-admin, containerPort: 15023, protocol: TCP}
  resources:
    requests: {cpu: 10m, memory: 32Mi, ephemeral-storage: 16Mi}
    limits: {cpu: 500m, memory: 128Mi, ephemeral-storage: 64Mi}
  volumeMounts: [{name: cors-webhook-policy, mountPath: /etc/cors-webhook, readOnly: true}]
  startupProbe: {httpGet: {path: /healthz, port: 15023}, periodSeconds: 1, failureThreshold: 30}
  readinessProbe: {httpGet: {path: /readyz, port: 15023}, periodSeconds: 5, failureThreshold: 3}
  securityContext:
    runAsUser: 65532
    runAsGroup: 65532
    runAsNonRoot: true
    readOnlyRootFilesystem: true
    allowPrivilegeEscalation: false
    capabilities: {drop: [ALL]}
    seccompProfile: {type: RuntimeDefault}
`
	var want []corev1.Container
	if err := yaml.UnmarshalStrict([]byte(wantInit), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got.Spec.InitContainers); diff != "" {
		t.Errorf("init containers (-want +got):\n%s", diff)
	}
	wantVolume := corev1.Volume{Name: contract.VolumePolicy, VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
		Items: []corev1.DownwardAPIVolumeFile{{Path: "policy.json", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['cors-webhook.io/policy']"}}},
	}}}
	if diff := cmp.Diff([]corev1.Volume{wantVolume}, got.Spec.Volumes); diff != "" {
		t.Errorf("volumes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(pod(t, podPipyV1).Spec.Containers, got.Spec.Containers); diff != "" {
		t.Errorf("app containers changed:\n%s", diff)
	}
}

// TestInjectUpstreamTimeout: the pod annotation sets the sidecar's --upstream-timeout; an
// invalid value is reported and the sidecar's default kept.
func TestInjectUpstreamTimeout(t *testing.T) {
	in := newInjector(t)
	defaultArgs := []string{"proxy", "--inbound-port", "15003", "--admin-port", "15023", "--policy-file", contract.PolicyFile}
	for _, tc := range []struct {
		value    string // "" for no annotation
		wantArgs []string
		reason   string
	}{
		{"", defaultArgs, ""},
		{"90s", append(slices.Clone(defaultArgs), "--upstream-timeout", "1m30s"), ""},
		{"0", append(slices.Clone(defaultArgs), "--upstream-timeout", "0s"), ""},
		{"soon", defaultArgs, `annotation cors-webhook.io/upstream-timeout: "soon" is not a duration`},
		{"-5s", defaultArgs, `annotation cors-webhook.io/upstream-timeout: "-5s" is negative`},
	} {
		p := pod(t, podPipyV1)
		if tc.value != "" {
			p.Annotations = map[string]string{contract.AnnotationUpstreamTimeout: tc.value}
		}
		res := injectInto(t, in, p, seed...)
		if res.Outcome != Injected {
			t.Fatalf("%q: outcome %s, reasons %q", tc.value, res.Outcome, res.Reasons)
		}
		sidecar := res.InjectedPod().Spec.InitContainers[1]
		if !slices.Equal(sidecar.Args, tc.wantArgs) {
			t.Errorf("%q: args %q, want %q", tc.value, sidecar.Args, tc.wantArgs)
		}
		if tc.reason != "" && !slices.ContainsFunc(res.Reasons, func(r string) bool { return strings.HasPrefix(r, tc.reason) }) {
			t.Errorf("%q: reasons %q, want one starting %q", tc.value, res.Reasons, tc.reason)
		}
	}
}

// TestInjectGOMEMLIMITOnlyWithALimit: without a memory limit there is nothing to derive
// GOMEMLIMIT from (the resourceFieldRef would give the node's memory).
func TestInjectGOMEMLIMITOnlyWithALimit(t *testing.T) {
	s := newInjector(t).Settings()
	delete(s.Limits, corev1.ResourceMemory)
	in, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	res := injectInto(t, in, pod(t, podPipyV1), seed...)
	if env := res.InjectedPod().Spec.InitContainers[1].Env; env != nil {
		t.Errorf("env %v without a memory limit", env)
	}
}

// TestInjectInitAsRoot: with InitAsRoot, cors-init is the earlier one (cors-sidecar redirect,
// root, no_new_privs); the sidecar does not change.
func TestInjectInitAsRoot(t *testing.T) {
	s := newInjector(t).Settings()
	s.InitAsRoot = true
	in, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	res := injectInto(t, in, pod(t, podPipyV1), seed...)
	if res.Outcome != Injected {
		t.Fatalf("outcome %s, reasons %q", res.Outcome, res.Reasons)
	}
	wantInit := `
name: cors-init
image: example.com/cors-sidecar:test
imagePullPolicy: IfNotPresent
args: [redirect, --proxy-port, "15003", --ports, "8080"]
resources:
  requests: {cpu: 10m, memory: 32Mi, ephemeral-storage: 16Mi}
  limits: {cpu: 500m, memory: 128Mi, ephemeral-storage: 64Mi}
securityContext:
  runAsUser: 0
  runAsNonRoot: false
  readOnlyRootFilesystem: true
  allowPrivilegeEscalation: false
  capabilities: {add: [NET_ADMIN], drop: [ALL]}
  seccompProfile: {type: RuntimeDefault}
`
	var want corev1.Container
	if err := yaml.UnmarshalStrict([]byte(wantInit), &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, res.InjectedPod().Spec.InitContainers[0]); diff != "" {
		t.Errorf("cors-init as root (-want +got):\n%s", diff)
	}
	nonRoot := injectInto(t, newInjector(t), pod(t, podPipyV1), seed...)
	if diff := cmp.Diff(nonRoot.InjectedPod().Spec.InitContainers[1], res.InjectedPod().Spec.InitContainers[1]); diff != "" {
		t.Errorf("the sidecar changed with InitAsRoot:\n%s", diff)
	}
}

func TestInjectIsIdempotent(t *testing.T) {
	in := newInjector(t)
	first := injectInto(t, in, pod(t, podPipyV1), seed...)
	if first.Outcome != Injected {
		t.Fatalf("outcome %s, reasons %q", first.Outcome, first.Reasons)
	}
	second := injectInto(t, in, first.InjectedPod(), seed...)
	if second.Outcome != AlreadyInjected || second.InjectedPod() != nil {
		t.Fatalf("second injection: outcome %s, pod %v", second.Outcome, second.InjectedPod() != nil)
	}

	// A reinvocation after another webhook added a container: its ports and port names are
	// checked against the sidecar's before the pod is returned unchanged.
	for _, added := range []corev1.Container{
		{Name: "mesh-proxy", Ports: []corev1.ContainerPort{{ContainerPort: in.Settings().InboundPort}}},
		{Name: "mesh-proxy", Ports: []corev1.ContainerPort{{Name: contract.PortNameAdmin, ContainerPort: 9999}}},
	} {
		changed := first.InjectedPod().DeepCopy()
		changed.Spec.Containers = append(changed.Spec.Containers, added)
		res := injectInto(t, in, changed, seed...)
		if res.Outcome != Collision || res.InjectedPod() != nil || !strings.Contains(strings.Join(res.Reasons, "\n"), "container mesh-proxy declares") {
			t.Errorf("reinvocation with %+v: outcome %s, reasons %q", added.Ports, res.Outcome, res.Reasons)
		}
	}
	// An unrelated addition is fine.
	changed := first.InjectedPod().DeepCopy()
	changed.Spec.Containers = append(changed.Spec.Containers, corev1.Container{Name: "logger", Ports: []corev1.ContainerPort{{ContainerPort: 9999}}})
	if res := injectInto(t, in, changed, seed...); res.Outcome != AlreadyInjected {
		t.Errorf("reinvocation with an unrelated container: outcome %s, reasons %q", res.Outcome, res.Reasons)
	}

	// Reconciliation resolves injected pods: the sidecar's own ports change nothing.
	snap := clusterstate.NewSnapshot(objects(t, seed...)...)
	ns, _ := snap.Namespace("pipy")
	res, err := in.Resolve(first.InjectedPod(), ns, snap)
	if err != nil {
		t.Fatal(err)
	}
	if res.PolicyJSON != first.InjectedPod().Annotations[contract.AnnotationPolicy] || res.RedirectPortsValue() != first.InjectedPod().Annotations[contract.AnnotationRedirectPorts] {
		t.Errorf("Resolve of the injected pod: %s / %s", res.PolicyJSON, res.RedirectPortsValue())
	}
}

// wideChain is a chain in namespace ns whose namespaceSelector {} selects every namespace,
// for the pods labelled cors=yes (podWantingCORS).
func wideChain(ns string) string {
	return `
kind: PluginChain
metadata: {name: cluster-wide, namespace: ` + ns + `}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {namespaceSelector: {}, podSelector: {matchLabels: {cors: "yes"}}}`
}

const podWantingCORS = `
kind: Pod
metadata: {name: p, namespace: plain, labels: {cors: "yes"}}
spec: {containers: [{name: app, image: app}]}`

// TestInjectOutcomes pins which pods are injected and which are left alone, and why.
func TestInjectOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		extra   []string // objects besides the seed
		without []string // seed objects to leave out
		pod     string
		want    Outcome
		reason  string // a substring of the reasons
	}{
		{
			name:   "seed pod",
			pod:    podPipyV1,
			want:   Injected,
			reason: "PluginChain pipy/cors-policy-chain selects the pod (plugin cors-policy)",
		},
		{
			name: "curl pod: its namespace is selected, its labels are not",
			pod: `
kind: Pod
metadata: {generateName: curl-, namespace: curl, labels: {app: curl}}
spec: {containers: [{name: curl, image: curlimages/curl}]}`,
			want:   NotSelected,
			reason: "no PluginChain selects the pod",
		},
		{
			name: "pod annotation opts out",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}, annotations: {cors-webhook.io/inject: "false"}}
spec: {containers: [{name: app, image: app}]}`,
			want:   PodOptedOut,
			reason: `cors-webhook.io/inject="false"`,
		},
		{
			name: "namespace label opts out",
			extra: []string{`
kind: Namespace
metadata: {name: pipy, labels: {openservicemesh.io/monitored-by: fsm, cors-webhook.io/inject: disabled}}`},
			pod:    podPipyV1,
			want:   NamespaceOptedOut,
			reason: "namespace pipy opts out",
		},
		{
			name: "pod in a namespace the chain's namespaceSelector does not select",
			pod: `
kind: Pod
metadata: {name: p, namespace: plain, labels: {app: pipy-ok}}
spec: {containers: [{name: app, image: app}]}`,
			want: NotSelected,
		},
		{
			name: "hostNetwork pod",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec: {hostNetwork: true, containers: [{name: app, image: app}]}`,
			want:   HostNetwork,
			reason: "PluginChain pipy/cors-policy-chain selects the pod, but it uses hostNetwork",
		},
		{
			name: "mirror pod",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}, annotations: {kubernetes.io/config.mirror: abc}}
spec: {containers: [{name: app, image: app}]}`,
			want:   MirrorPod,
			reason: "it is the mirror of a static pod",
		},
		{
			name: "Windows pod by spec.os.name",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec: {os: {name: windows}, containers: [{name: app, image: app}]}`,
			want:   Windows,
			reason: "it runs on Windows (spec.os.name)",
		},
		{
			name: "Windows pod by nodeSelector",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec: {nodeSelector: {kubernetes.io/os: windows}, containers: [{name: app, image: app}]}`,
			want:   Windows,
			reason: "nodeSelector kubernetes.io/os=windows",
		},
		{
			name: "Linux pod by spec.os.name",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec: {os: {name: linux}, nodeSelector: {kubernetes.io/os: linux}, containers: [{name: app, image: app}]}`,
			want: Injected,
		},
		{
			name:    "Pod Security enforce=baseline",
			without: []string{nsPipy},
			extra: []string{`
kind: Namespace
metadata: {name: pipy, labels: {openservicemesh.io/monitored-by: fsm, pod-security.kubernetes.io/enforce: baseline}}`},
			pod:    podPipyV1,
			want:   PodSecurity,
			reason: `namespace pipy enforces Pod Security "baseline" (label pod-security.kubernetes.io/enforce), which refuses the injected cors-init`,
		},
		{
			name:    "Pod Security enforce=restricted",
			without: []string{nsPipy},
			extra: []string{`
kind: Namespace
metadata: {name: pipy, labels: {openservicemesh.io/monitored-by: fsm, pod-security.kubernetes.io/enforce: restricted}}`},
			pod:    podPipyV1,
			want:   PodSecurity,
			reason: `enforces Pod Security "restricted"`,
		},
		{
			name:    "Pod Security enforce=privileged",
			without: []string{nsPipy},
			extra: []string{`
kind: Namespace
metadata: {name: pipy, labels: {openservicemesh.io/monitored-by: fsm, pod-security.kubernetes.io/enforce: privileged}}`},
			pod:    podPipyV1,
			want:   Injected,
			reason: "",
		},
		{
			name: "chain whose plugin is not declared",
			extra: []string{`
kind: PluginChain
metadata: {name: undeclared, namespace: plain}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy-2]}]`},
			pod: `
kind: Pod
metadata: {name: p, namespace: plain, labels: {app: x}}
spec: {containers: [{name: app, image: app}]}`,
			want:   PluginNotDeclared,
			reason: "PluginChain plain/undeclared mounts cors-policy-2, but no Plugin cors-policy-2 is declared",
		},
		{
			name:    "seed pod before the Plugin is declared",
			without: []string{seedPlugin},
			pod:     podPipyV1,
			want:    PluginNotDeclared,
		},
		{
			name: "a nil namespaceSelector reaches only the chain's own namespace",
			extra: []string{`
kind: PluginChain
metadata: {name: own-only, namespace: pipy}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]`},
			pod: `
kind: Pod
metadata: {name: p, namespace: plain, labels: {app: x}}
spec: {containers: [{name: app, image: app}]}`,
			want: NotSelected,
		},
		{
			name: "a nil namespaceSelector and a nil podSelector select every pod of the own namespace",
			extra: []string{`
kind: PluginChain
metadata: {name: everything, namespace: plain}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]`},
			pod: `
kind: Pod
metadata: {name: p, namespace: plain}
spec: {containers: [{name: app, image: app}]}`,
			want:   Injected,
			reason: "PluginChain plain/everything selects the pod",
		},
		{
			name:  "an empty namespaceSelector of a cluster-chain namespace reaches every namespace",
			extra: []string{wideChain("ops")},
			pod:   podWantingCORS,
			want:  Injected,
		},
		{
			name: "namespaceSelector on the name label, which files do not carry",
			extra: []string{`
kind: PluginChain
metadata: {name: by-name, namespace: ops}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: plain}}}`},
			pod: `
kind: Pod
metadata: {name: p, namespace: plain}
spec: {containers: [{name: app, image: app}]}`,
			want: Injected,
		},
		{
			name:  "a tenant's empty namespaceSelector reaches its own namespace only",
			extra: []string{wideChain("pipy")},
			pod:   podWantingCORS,
			want:  NotSelected,
		},
		{
			name: "a chain of a skipped namespace is ignored",
			extra: []string{`
kind: PluginChain
metadata: {name: cluster-wide, namespace: kube-system}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {namespaceSelector: {}}`},
			pod: `
kind: Pod
metadata: {name: p, namespace: plain}
spec: {containers: [{name: app, image: app}]}`,
			want: NotSelected,
		},
		{
			name: "a cluster-chain namespace labelled inject=disabled is ignored",
			extra: []string{`
kind: Namespace
metadata: {name: ops, labels: {cors-webhook.io/inject: disabled}}`, `
kind: PluginChain
metadata: {name: cluster-wide, namespace: ops}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {namespaceSelector: {}}`},
			pod: `
kind: Pod
metadata: {name: p, namespace: plain}
spec: {containers: [{name: app, image: app}]}`,
			want: NotSelected,
		},
		{
			name: "CORS plugin outside inbound-http, non-CORS plugin inside",
			extra: []string{seedPlugin, `
kind: PluginChain
metadata: {name: elsewhere, namespace: plain}
spec:
  chains:
  - {name: inbound-tcp, plugins: [cors-policy]}
  - {name: inbound-http, plugins: [token-auth]}`},
			pod: `
kind: Pod
metadata: {name: p, namespace: plain}
spec: {containers: [{name: app, image: app}]}`,
			want: NotSelected,
		},
		{
			name: "the pod already runs a container named cors-sidecar",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec: {containers: [{name: app, image: app}, {name: cors-sidecar, image: other}]}`,
			want: AlreadyInjected,
		},
		{
			name: "app port is the sidecar's inbound port",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec: {containers: [{name: app, image: app, ports: [{containerPort: 8080}, {containerPort: 15003}]}]}`,
			want:   Collision,
			reason: "container app declares port 15003, the sidecar's inbound port (--inbound-port)",
		},
		{
			name: "an init container listens on the admin port",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec:
  initContainers: [{name: warmup, image: w, ports: [{containerPort: 15023}]}]
  containers: [{name: app, image: app}]`,
			want:   Collision,
			reason: "container warmup declares port 15023, the sidecar's admin port (--admin-port)",
		},
		{
			name: "a redirected port is the sidecar's port",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}, annotations: {cors-webhook.io/inbound-ports: "9090,15023"}}
spec: {containers: [{name: app, image: app}]}`,
			want:   Collision,
			reason: "port 15023 must be redirected, but it is the sidecar's admin port",
		},
		{
			name: "the pod has a container named cors-init",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec:
  initContainers: [{name: cors-init, image: mine}]
  containers: [{name: app, image: app}]`,
			want:   Collision,
			reason: "the pod already has a container named cors-init",
		},
		{
			name: "the pod has a volume of our name",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec:
  volumes: [{name: cors-webhook-policy, emptyDir: {}}]
  containers: [{name: app, image: app}]`,
			want:   Collision,
			reason: "the pod already has a volume named cors-webhook-policy",
		},
		{
			name: "the pod uses one of the sidecar's port names",
			pod: `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec: {containers: [{name: app, image: app, ports: [{name: cors-admin, containerPort: 9000}]}]}`,
			want:   Collision,
			reason: "container app declares a port named cors-admin",
		},
	}
	in := newInjector(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var docs []string
			for _, d := range seed {
				if !slices.Contains(tt.without, d) {
					docs = append(docs, d)
				}
			}
			res := injectInto(t, in, pod(t, tt.pod), append(docs, tt.extra...)...)
			if res.Outcome != tt.want {
				t.Fatalf("outcome %s, want %s; reasons:\n%s", res.Outcome, tt.want, strings.Join(res.Reasons, "\n"))
			}
			if tt.reason != "" && !strings.Contains(strings.Join(res.Reasons, "\n"), tt.reason) {
				t.Errorf("reasons do not say %q:\n%s", tt.reason, strings.Join(res.Reasons, "\n"))
			}
			if got := res.Outcome.Impossible(); got != slices.Contains([]Outcome{HostNetwork, MirrorPod, Windows, PodSecurity, Collision}, tt.want) {
				t.Errorf("Impossible() = %v", got)
			}
			// Triage, from the metadata alone, either agrees or defers to Inject.
			snap := clusterstate.NewSnapshot(objects(t, append(docs, tt.extra...)...)...)
			p := pod(t, tt.pod)
			ns, _ := snap.Namespace(p.Namespace)
			early, triaged, err := in.Triage(&p.ObjectMeta, ns, snap)
			if err != nil {
				t.Fatal(err)
			}
			done := triaged == nil
			if !done {
				// Inject after Triage decides as Inject alone does.
				again, err := in.InjectTriaged(pod(t, tt.pod), ns, triaged, snap)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(res, again, cmp.AllowUnexported(Result{}, Changes{}, Inputs{}, selection{})); diff != "" {
					t.Errorf("InjectTriaged differs from Inject (-Inject +InjectTriaged):\n%s", diff)
				}
				// The opt-out that Triage may not have seen still counts.
				optOut := pod(t, tt.pod)
				metav1.SetMetaDataAnnotation(&optOut.ObjectMeta, contract.AnnotationInject, "false")
				if got, err := in.InjectTriaged(optOut, ns, triaged, snap); err != nil || got.Outcome != PodOptedOut {
					t.Errorf("InjectTriaged of a pod that opts out: %s %v", got.Outcome, err)
				}
			}
			if done && early.Outcome != res.Outcome {
				t.Errorf("Triage says %s, Inject %s", early.Outcome, res.Outcome)
			}
			if wantDone := tt.want == NotSelected || tt.want == PluginNotDeclared || tt.want == PodOptedOut || tt.want == NamespaceOptedOut; done != wantDone {
				t.Errorf("Triage done = %v for %s", done, tt.want)
			}
		})
	}
}

// corsConfig is a PluginConfig of cors-policy in namespace app allowing one exact origin.
func corsConfig(name, origin string, services ...string) string {
	var refs []string
	for _, s := range services {
		refs = append(refs, fmt.Sprintf("{kind: Service, name: %s}", s))
	}
	return fmt.Sprintf(`
kind: PluginConfig
metadata: {name: %s, namespace: app}
spec:
  plugin: cors-policy
  destinationRefs: [%s]
  config: {allowOrigins: [{exact: %q}]}`, name, strings.Join(refs, ", "), origin)
}

func policyOf(ports map[int]string) string {
	var entries []string
	for _, p := range []int{80, 8080, 8081, 9000, 9090} {
		if o, ok := ports[p]; ok {
			entries = append(entries, fmt.Sprintf(`"%d":{"allowOrigins":[{"exact":%q}]}`, p, o))
		}
	}
	return `{"version":1,"ports":{` + strings.Join(entries, ",") + `}}`
}

// TestResolvePolicy pins the per-port policy and the redirected ports.
func TestResolvePolicy(t *testing.T) {
	base := []string{seedPlugin, `
kind: Namespace
metadata: {name: app}`, `
kind: PluginChain
metadata: {name: chain, namespace: app}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {podSelector: {matchLabels: {app: web}}}`}
	webPod := `
kind: Pod
metadata: {generateName: web-, namespace: app, labels: {app: web, tier: front}}
spec:
  containers:
  - name: web
    image: web
    ports: [{name: api, containerPort: 8080}, {name: admin, containerPort: 9000}, {name: dns, containerPort: 5353, protocol: UDP}]
  - name: metrics
    image: m
    ports: [{name: metrics, containerPort: 9090}]`

	tests := []struct {
		name         string
		objs         []string
		annotations  map[string]string
		wantPolicy   string
		wantRedirect string
		wantProblem  string
		wantNote     string
		wantPorts    []PortPolicy // the structure behind the policy
		wantInvalid  []string
	}{
		{
			name: "two Services on two ports of one pod",
			objs: []string{`
kind: Service
metadata: {name: api, namespace: app}
spec: {selector: {app: web}, ports: [{name: api, port: 80, targetPort: 8080}]}`, `
kind: Service
metadata: {name: admin, namespace: app}
spec: {selector: {app: web, tier: front}, ports: [{port: 9000}]}`,
				corsConfig("api-cors", "https://a.example", "api"),
				corsConfig("admin-cors", "https://admin.example", "admin")},
			wantPolicy:   policyOf(map[int]string{8080: "https://a.example", 9000: "https://admin.example"}),
			wantRedirect: "8080,9000",
			wantPorts: []PortPolicy{
				{Port: 8080, Applied: ConfigRef{Namespace: "app", Name: "api-cors", Service: "api"}},
				{Port: 9000, Applied: ConfigRef{Namespace: "app", Name: "admin-cors", Service: "admin"}},
			},
		},
		{
			name: "named targetPort resolves to the container port of that name",
			objs: []string{`
kind: Service
metadata: {name: api, namespace: app}
spec: {selector: {app: web}, ports: [{name: web, port: 80, targetPort: api}, {name: m, port: 9091, targetPort: metrics}]}`,
				corsConfig("api-cors", "https://a.example", "api")},
			wantPolicy:   policyOf(map[int]string{8080: "https://a.example", 9090: "https://a.example"}),
			wantRedirect: "8080,9090",
			wantPorts: []PortPolicy{
				{Port: 8080, Applied: ConfigRef{Namespace: "app", Name: "api-cors", Service: "api"}},
				{Port: 9090, Applied: ConfigRef{Namespace: "app", Name: "api-cors", Service: "api"}},
			},
		},
		{
			name: "named targetPort this pod does not have",
			objs: []string{`
kind: Service
metadata: {name: api, namespace: app}
spec: {selector: {app: web}, ports: [{name: web, port: 80, targetPort: grpc}, {name: w2, port: 8080}]}`,
				corsConfig("api-cors", "https://a.example", "api")},
			wantPolicy:   policyOf(map[int]string{8080: "https://a.example"}),
			wantRedirect: "8080",
			wantNote:     `Service api port "web" (80): targetPort "grpc" names no TCP container port of this pod`,
			wantPorts:    []PortPolicy{{Port: 8080, Applied: ConfigRef{Namespace: "app", Name: "api-cors", Service: "api"}}},
		},
		{
			name: "UDP Service port gets no policy",
			objs: []string{`
kind: Service
metadata: {name: dns, namespace: app}
spec: {selector: {app: web}, ports: [{name: dns, port: 53, targetPort: dns, protocol: UDP}]}`,
				corsConfig("dns-cors", "https://a.example", "dns")},
			wantPolicy:   emptyPolicy,
			wantRedirect: "",
			wantNote:     "protocol UDP is not TCP",
		},
		{
			name: "no config yet: empty policy, HTTP-named and appProtocol ports redirected",
			objs: []string{`
kind: Service
metadata: {name: api, namespace: app}
spec:
  selector: {app: web}
  ports:
  - {name: http-api, port: 80, targetPort: api}
  - {name: admin, port: 9000, appProtocol: kubernetes.io/h2c}
  - {name: metrics, port: 9090}`},
			wantPolicy:   emptyPolicy,
			wantRedirect: "8080,9000",
			wantNote:     "its policy is empty (pass-through) until one does",
		},
		{
			name:         "no Service at all",
			wantPolicy:   emptyPolicy,
			wantRedirect: "",
		},
		{
			name:         "inbound-ports annotation adds ports; bad entries are reported",
			annotations:  map[string]string{contract.AnnotationInboundPorts: " 8081, 70000 ,x,"},
			wantPolicy:   emptyPolicy,
			wantRedirect: "8081",
			wantProblem:  `annotation cors-webhook.io/inbound-ports: "70000" is not a port number in 1..65535; ignored`,
		},
		{
			name: "two configs on one port: first by namespace/name wins, and the reason says so",
			objs: []string{`
kind: Service
metadata: {name: api, namespace: app}
spec: {selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}`, `
kind: Service
metadata: {name: api-alias, namespace: app}
spec: {selector: {app: web}, ports: [{port: 8080, targetPort: api}]}`,
				corsConfig("zz-cors", "https://z.example", "api"),
				corsConfig("aa-cors", "https://a.example", "api-alias")},
			wantPolicy:   policyOf(map[int]string{8080: "https://a.example"}),
			wantRedirect: "8080",
			wantProblem:  "port 8080 is configured by more than one PluginConfig: app/aa-cors (through Service api-alias) applies, first by namespace/name; ignored: app/zz-cors (through Service api)",
			wantPorts: []PortPolicy{{Port: 8080,
				Applied:    ConfigRef{Namespace: "app", Name: "aa-cors", Service: "api-alias"},
				Overridden: []ConfigRef{{Namespace: "app", Name: "zz-cors", Service: "api"}}}},
		},
		{
			name: "one config through two Services on one port is no conflict",
			objs: []string{`
kind: Service
metadata: {name: api, namespace: app}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}`, `
kind: Service
metadata: {name: api-alias, namespace: app}
spec: {selector: {app: web}, ports: [{port: 8080, targetPort: api}]}`,
				corsConfig("cors", "https://a.example", "api", "api-alias")},
			wantPolicy:   policyOf(map[int]string{8080: "https://a.example"}),
			wantRedirect: "8080",
			wantPorts:    []PortPolicy{{Port: 8080, Applied: ConfigRef{Namespace: "app", Name: "cors", Service: "api"}}},
		},
		{
			name: "invalid config is ignored and reported",
			objs: []string{`
kind: Service
metadata: {name: api, namespace: app}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}`, `
kind: PluginConfig
metadata: {name: bad, namespace: app}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: api}]
  config: {allowOrigin: [{exact: "https://a.example"}]}`},
			wantPolicy:   emptyPolicy,
			wantRedirect: "",
			wantProblem:  "PluginConfig app/bad is invalid and is ignored",
			wantInvalid:  []string{"app/bad"},
		},
		{
			name: "configs that do not apply: other plugin, other kind, other namespace, Service not selecting",
			objs: []string{`
kind: Service
metadata: {name: api, namespace: app}
spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}`, `
kind: Service
metadata: {name: other, namespace: app}
spec: {selector: {app: other}, ports: [{port: 9000}]}`, `
kind: PluginConfig
metadata: {name: other-plugin, namespace: app}
spec: {plugin: rate-limit, destinationRefs: [{kind: Service, name: api}], config: {allowOrigins: [{exact: x}]}}`, `
kind: PluginConfig
metadata: {name: other-kind, namespace: app}
spec: {plugin: cors-policy, destinationRefs: [{kind: Deployment, name: api}], config: {allowOrigins: [{exact: x}]}}`, `
kind: PluginConfig
metadata: {name: other-ns, namespace: app}
spec: {plugin: cors-policy, destinationRefs: [{kind: Service, name: api, namespace: elsewhere}], config: {allowOrigins: [{exact: x}]}}`,
				corsConfig("not-selecting", "https://a.example", "other")},
			wantPolicy:   emptyPolicy,
			wantRedirect: "",
		},
	}
	in := newInjector(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pod(t, webPod)
			p.Annotations = tt.annotations
			snap := clusterstate.NewSnapshot(objects(t, append(append([]string(nil), base...), tt.objs...)...)...)
			ns, _ := snap.Namespace("app")
			res, err := in.Resolve(p, ns, snap)
			if err != nil {
				t.Fatal(err)
			}
			if !res.Selected {
				t.Fatalf("not selected: %q", res.Notes)
			}
			if res.PolicyJSON != tt.wantPolicy {
				t.Errorf("policy\n got %s\nwant %s", res.PolicyJSON, tt.wantPolicy)
			}
			if got := res.RedirectPortsValue(); got != tt.wantRedirect {
				t.Errorf("redirect ports %q, want %q", got, tt.wantRedirect)
			}
			problems := strings.Join(res.Problems, "\n")
			if (tt.wantProblem == "") != (problems == "") || !strings.Contains(problems, tt.wantProblem) {
				t.Errorf("problems:\n%s\nwant one saying %q", problems, tt.wantProblem)
			}
			if notes := strings.Join(res.Notes, "\n"); !strings.Contains(notes, tt.wantNote) {
				t.Errorf("notes:\n%s\nwant one saying %q", notes, tt.wantNote)
			}
			if !reflect.DeepEqual(res.Ports, tt.wantPorts) {
				t.Errorf("ports\n got %+v\nwant %+v", res.Ports, tt.wantPorts)
			}
			var invalid []string
			for _, c := range res.Invalid {
				invalid = append(invalid, c.Config.Key())
			}
			if !slices.Equal(invalid, tt.wantInvalid) {
				t.Errorf("invalid configs %v, want %v", invalid, tt.wantInvalid)
			}
			for _, p := range tt.wantPorts {
				if !slices.Contains(res.AppliedPorts(p.Applied.Namespace, p.Applied.Name), p.Port) {
					t.Errorf("AppliedPorts(%s) lacks %d", p.Applied.Key(), p.Port)
				}
				for _, o := range p.Overridden {
					if !slices.Equal(res.OverriddenPorts(o.Namespace, o.Name), []int32{p.Port}) || len(res.AppliedPorts(o.Namespace, o.Name)) > 0 {
						t.Errorf("%s: OverriddenPorts %v, AppliedPorts %v", o.Key(), res.OverriddenPorts(o.Namespace, o.Name), res.AppliedPorts(o.Namespace, o.Name))
					}
				}
			}
			var pp struct{ Version int }
			if err := json.Unmarshal([]byte(res.PolicyJSON), &pp); err != nil || pp.Version != 1 {
				t.Errorf("policy JSON %s: %v", res.PolicyJSON, err)
			}

			// The injection carries exactly this resolution.
			out := injectInto(t, in, p, append(append([]string(nil), base...), tt.objs...)...)
			if out.Outcome != Injected {
				t.Fatalf("outcome %s: %q", out.Outcome, out.Reasons)
			}
			if applied := out.Changes.Apply(p); !reflect.DeepEqual(applied, out.InjectedPod()) {
				t.Errorf("Changes.Apply(pod) differs from Result.Pod")
			}
			if out.Changes.Annotations[contract.AnnotationPolicy] != tt.wantPolicy || out.Changes.Labels[contract.LabelInjected] != "true" {
				t.Errorf("changes %+v", out.Changes)
			}
			if out.InjectedPod().Annotations[contract.AnnotationPolicy] != tt.wantPolicy || out.InjectedPod().Annotations[contract.AnnotationRedirectPorts] != tt.wantRedirect {
				t.Errorf("annotations %v", out.InjectedPod().Annotations)
			}
			// cors-init redirects exactly those ports, and is left out when there are none.
			var names []string
			for _, c := range out.InjectedPod().Spec.InitContainers {
				names = append(names, c.Name)
			}
			if tt.wantRedirect == "" {
				if !slices.Equal(names, []string{contract.ContainerSidecar}) {
					t.Errorf("init containers %v, want only %s", names, contract.ContainerSidecar)
				}
			} else if args := out.InjectedPod().Spec.InitContainers[0].Args; !slices.Equal(names, []string{contract.ContainerInit, contract.ContainerSidecar}) || args[len(args)-1] != tt.wantRedirect {
				t.Errorf("init containers %v, cors-init args %q", names, args)
			}
		})
	}
}

func TestResolveDeterministic(t *testing.T) {
	// The annotation must be byte-stable whatever order the Reader returns objects in, or
	// reconciliation would patch pods for nothing.
	docs := []string{seedPlugin, `
kind: Namespace
metadata: {name: app}`, `
kind: PluginChain
metadata: {name: chain, namespace: app}
spec: {chains: [{name: inbound-http, plugins: [cors-policy]}]}`}
	for i := range 5 {
		docs = append(docs, fmt.Sprintf(`
kind: Service
metadata: {name: s%d, namespace: app}
spec: {selector: {app: web}, ports: [{port: %d, targetPort: 8080}]}`, i, 80+i), corsConfig(fmt.Sprintf("c%d", i), fmt.Sprintf("https://%d.example", i), fmt.Sprintf("s%d", i)))
	}
	in := newInjector(t)
	p := pod(t, `
kind: Pod
metadata: {name: p, namespace: app, labels: {app: web}}
spec: {containers: [{name: app, image: app}]}`)
	var first *Resolution
	for i := range 10 {
		rotated := append(append([]string(nil), docs[3+i%10:]...), docs[:3+i%10]...)
		snap := clusterstate.NewSnapshot(objects(t, rotated...)...)
		ns, _ := snap.Namespace("app")
		res, err := in.Resolve(p, ns, snap)
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = res
			if !strings.Contains(res.PolicyJSON, "https://0.example") {
				t.Fatalf("policy %s: want c0 (first by name)", res.PolicyJSON)
			}
			continue
		}
		if diff := cmp.Diff(first, res); diff != "" {
			t.Fatalf("order %d changed the resolution:\n%s", i, diff)
		}
	}
}

func TestSettings(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Settings)
		want   string // substring of the error; "" for valid
	}{
		{name: "defaults", modify: func(*Settings) {}},
		{name: "no image", modify: func(s *Settings) { s.SidecarImage = " " }, want: "image must not be empty"},
		{name: "bad pull policy", modify: func(s *Settings) { s.SidecarImagePullPolicy = "Sometimes" }, want: `"Sometimes"`},
		{name: "port out of range", modify: func(s *Settings) { s.AdminPort = 70000 }, want: "admin port 70000"},
		{name: "same ports", modify: func(s *Settings) { s.AdminPort = s.InboundPort }, want: "must differ"},
		{name: "negative request", modify: func(s *Settings) { s.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("-1")} }, want: "cpu request"},
		{name: "no plugins", modify: func(s *Settings) { s.CORSPlugins = nil }, want: "plugin names"},
		{name: "request above its limit", modify: func(s *Settings) { s.Requests[corev1.ResourceMemory] = resource.MustParse("1Gi") }, want: "the memory request 1Gi exceeds its limit 128Mi"},
		{name: "zero limit", modify: func(s *Settings) { s.Limits[corev1.ResourceCPU] = resource.MustParse("0") }, want: "the cpu limit must be positive"},
		{name: "no limits", modify: func(s *Settings) { s.Limits = corev1.ResourceList{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := DefaultSettings()
			tt.modify(&s)
			_, err := New(s)
			if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("New: %v, want error containing %q", err, tt.want)
			}
		})
	}

	// Zero ports and requests take the defaults; the Injector keeps its own copies.
	s := Settings{SidecarImage: "img", CORSPlugins: []string{"cors-policy", "cors-2"}}
	in, err := New(s)
	if err != nil {
		t.Fatal(err)
	}
	s.CORSPlugins[0] = "changed"
	got := in.Settings()
	if got.InboundPort != 15003 || got.AdminPort != 15023 || got.Requests.Cpu().String() != "10m" || got.Limits.Memory().String() != "128Mi" || got.CORSPlugins[0] != "cors-policy" {
		t.Errorf("settings %+v", got)
	}
	if got.SidecarImagePullPolicy != "" {
		t.Errorf("pull policy %q", got.SidecarImagePullPolicy)
	}
}

func TestInjectPutsOursBeforeThePodsInitContainers(t *testing.T) {
	p := pod(t, podPipyV1)
	p.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "migrate"}}
	res := injectInto(t, newInjector(t), p, seed...)
	if res.Outcome != Injected {
		t.Fatalf("outcome %s: %q", res.Outcome, res.Reasons)
	}
	var names []string
	for _, c := range res.InjectedPod().Spec.InitContainers {
		names = append(names, c.Name)
	}
	if want := []string{contract.ContainerInit, contract.ContainerSidecar, "migrate"}; !slices.Equal(names, want) {
		t.Errorf("init containers %v, want %v", names, want)
	}
}

// TestInjectChangesOnlyItsFields pins what the admission handler relies on to compute its JSON
// patch cheaply: the injection changes metadata.annotations, metadata.labels,
// spec.initContainers and spec.volumes of a pod, and nothing else.
func TestInjectChangesOnlyItsFields(t *testing.T) {
	in := newInjector(t)
	withMore := pod(t, podPipyV1)
	withMore.Annotations = map[string]string{"a": "b"}
	withMore.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "m"}}
	withMore.Spec.Volumes = []corev1.Volume{{Name: "data"}}
	for _, p := range []*corev1.Pod{pod(t, podPipyV1), withMore} {
		res := injectInto(t, in, p, seed...)
		if res.Outcome != Injected {
			t.Fatalf("outcome %s", res.Outcome)
		}
		rest := res.InjectedPod().DeepCopy()
		rest.Annotations, rest.Labels = p.Annotations, p.Labels
		rest.Spec.InitContainers, rest.Spec.Volumes = p.Spec.InitContainers, p.Spec.Volumes
		if diff := cmp.Diff(p, rest); diff != "" {
			t.Errorf("the injection changed more than annotations, labels, init containers and volumes:\n%s", diff)
		}
	}
}

// TestInjectRefusesOversizedAnnotations: rather than produce a pod the API server refuses
// (annotations over 256 KiB), the injector leaves the pod alone with a reason.
func TestInjectRefusesOversizedAnnotations(t *testing.T) {
	in := newInjector(t)
	// A policy over MaxPolicyAnnotationBytes: one ~8 KiB config on the 20 ports of a Service.
	var origins, ports, containerPorts strings.Builder
	for i := range 100 {
		fmt.Fprintf(&origins, "    - exact: https://host-%03d.%s.example\n", i, strings.Repeat("a", 50))
	}
	for i := range 20 {
		fmt.Fprintf(&ports, "  - {name: p%d, port: %d, targetPort: %d}\n", i, 9000+i, 9000+i)
		fmt.Fprintf(&containerPorts, "{containerPort: %d}, ", 9000+i)
	}
	bigConfig := `
kind: PluginConfig
apiVersion: plugin.flomesh.io/v1alpha1
metadata: {name: big, namespace: pipy}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: wide, namespace: pipy}]
  config:
    allowOrigins:
` + origins.String()
	wideService := `
kind: Service
apiVersion: v1
metadata: {name: wide, namespace: pipy}
spec:
  selector: {app: pipy-ok}
  ports:
` + ports.String()
	p := pod(t, `
kind: Pod
metadata: {name: p, namespace: pipy, labels: {app: pipy-ok}}
spec: {containers: [{name: app, image: app, ports: [`+strings.TrimSuffix(containerPorts.String(), ", ")+`]}]}`)
	res := injectInto(t, in, p, append(slices.Clone(seed), bigConfig, wideService)...)
	if res.Outcome != PolicyTooLarge || res.InjectedPod() != nil || !strings.Contains(strings.Join(res.Reasons, "\n"), "its policy annotation cors-webhook.io/policy would take") {
		t.Errorf("20 ports x 8 KiB: outcome %s, reasons %q", res.Outcome, res.Reasons)
	}
	if !res.Outcome.Impossible() {
		t.Error("PolicyTooLarge must be reported (event, warning)")
	}

	// A small policy on a pod whose own annotations nearly fill the API server's budget.
	p = pod(t, podPipyV1)
	p.Annotations = map[string]string{"example.com/blob": strings.Repeat("x", contract.MaxPodAnnotationsBytes-200)}
	res = injectInto(t, in, p, seed...)
	if res.Outcome != PolicyTooLarge || !strings.Contains(strings.Join(res.Reasons, "\n"), "more than the API server's 262144") {
		t.Errorf("a nearly full pod: outcome %s, reasons %q", res.Outcome, res.Reasons)
	}
	// The same pod with room left is injected.
	p.Annotations["example.com/blob"] = strings.Repeat("x", contract.MaxPodAnnotationsBytes-2000)
	if res = injectInto(t, in, p, seed...); res.Outcome != Injected {
		t.Errorf("a pod with room: outcome %s, reasons %q", res.Outcome, res.Reasons)
	}
}

// TestCompiledConfigsAreCached: a PluginConfig is compiled once per resourceVersion, and an
// update (a new resourceVersion) is seen by the next injection.
func TestCompiledConfigsAreCached(t *testing.T) {
	in := newInjector(t)
	objs := objects(t, seed...)
	var cfg *v1alpha1.PluginConfig
	for _, o := range objs {
		if pc, ok := o.(*v1alpha1.PluginConfig); ok {
			cfg = pc
		}
	}
	cfg.UID, cfg.ResourceVersion = "uid-1", "1"
	snap := clusterstate.NewSnapshot(objs...)
	ns, _ := snap.Namespace("pipy")
	policy := func() string {
		t.Helper()
		res, err := in.Inject(pod(t, podPipyV1), ns, snap)
		if err != nil || res.Outcome != Injected {
			t.Fatalf("Inject: %v, %s %q", err, res.Outcome, res.Reasons)
		}
		return res.InjectedPod().Annotations[contract.AnnotationPolicy]
	}
	first := policy()
	policy()
	if n := in.configs.compiles; n != 1 {
		t.Errorf("two admissions compiled the config %d times, want 1", n)
	}
	if !strings.Contains(first, "http://www.aaa.com") {
		t.Fatalf("policy %s", first)
	}

	// The update: same UID, a new resourceVersion, another origin.
	cfg.ResourceVersion = "2"
	cfg.Spec.Config.Raw = []byte(`{"allowOrigins":[{"exact":"https://updated.example"}]}`)
	if got := policy(); !strings.Contains(got, "https://updated.example") || strings.Contains(got, "www.aaa.com") {
		t.Errorf("after the update: policy %s", got)
	}
	if n := in.configs.compiles; n != 2 {
		t.Errorf("compiled %d times after the update, want 2", n)
	}

	// Objects from files (no UID) are compiled every time.
	cfg.UID = ""
	policy()
	policy()
	if n := in.configs.compiles; n != 4 {
		t.Errorf("compiled %d times without a UID, want 4", n)
	}
}

// BenchmarkResolveCompiledConfigs: Resolve of the seed pod with the seed's PluginConfig
// (a regex, a prefix, an exact origin) compiled every time (no UID, as from files) and from
// the cache (UID and resourceVersion, as in the server's informer cache).
func BenchmarkResolveCompiledConfigs(b *testing.B) {
	for _, tc := range []struct {
		name string
		uid  types.UID
	}{{"compiled-every-time", ""}, {"cached", "uid-1"}} {
		b.Run(tc.name, func(b *testing.B) {
			in := newInjector(b)
			objs := objects(b, seed...)
			for _, o := range objs {
				if pc, ok := o.(*v1alpha1.PluginConfig); ok {
					pc.UID, pc.ResourceVersion = tc.uid, "1"
				}
			}
			snap := clusterstate.NewSnapshot(objs...)
			ns, _ := snap.Namespace("pipy")
			p := pod(b, podPipyV1)
			b.ReportAllocs()
			for b.Loop() {
				if res, err := in.Resolve(p, ns, snap); err != nil || len(res.Policy.Ports) != 1 {
					b.Fatalf("Resolve: %v", err)
				}
			}
		})
	}
}

// TestSameInputs: an injection's Inputs stay the same exactly as long as the Reader returns the
// same objects for every lookup its resolution made; any other object, even an equal copy, is a
// change (a Reader returns a new object for every update).
func TestSameInputs(t *testing.T) {
	in := newInjector(t)
	base := objects(t, seed...)
	p := pod(t, podPipyV1)
	snap := clusterstate.NewSnapshot(base...)
	ns, _ := snap.Namespace("pipy")
	res, err := in.Inject(p, ns, snap)
	if err != nil || res.Outcome != Injected || res.Inputs() == nil {
		t.Fatalf("%s %v, inputs %v", res.Outcome, err, res.Inputs())
	}
	renamed := func(doc, from, to string) string { return strings.Replace(doc, from, to, 1) }
	for _, tt := range []struct {
		name   string
		change []string // documents added to (or replacing in) the cluster
		labels map[string]string
		newNS  bool
		same   bool
	}{
		{name: "nothing changed", same: true},
		{name: "a Service that does not select the pod", change: []string{renamed(renamed(seedService, "pipy-ok}", "other}"), "name: pipy-ok,", "name: other,")}, same: true},
		{name: "a PluginConfig of another Service", change: []string{renamed(renamed(seedConfig, "name: pipy-ok,", "name: other,"), "cors-policy-config", "other-config")}, same: true},
		{name: "the selecting Service, updated to the same content", change: []string{seedService}},
		{name: "a new Service that selects the pod", change: []string{renamed(seedServiceV1, "pipy-ok-v1,", "pipy-ok-v2,")}},
		{name: "the PluginConfig, updated", change: []string{seedConfig}},
		{name: "a second PluginConfig of the Service", change: []string{renamed(seedConfig, "cors-policy-config", "second-config")}},
		{name: "the namespace, updated", change: []string{nsPipy}, newNS: true},
		{name: "a second chain selecting the pod", change: []string{renamed(seedChain, "cors-policy-chain", "second-chain")}},
		{name: "a pod without the version label", labels: map[string]string{"app": "pipy-ok"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := clusterstate.NewSnapshot(base...)
			for _, o := range objects(t, tt.change...) {
				now.Add(o)
			}
			nowNS := ns
			if tt.newNS {
				nowNS, _ = now.Namespace("pipy")
			}
			labels := p.Labels
			if tt.labels != nil {
				labels = tt.labels
			}
			_, triaged, err := in.Triage(&metav1.ObjectMeta{Labels: labels}, nowNS, now)
			if err != nil || triaged == nil {
				t.Fatalf("triage: %v %v", triaged, err)
			}
			same, err := in.SameInputs(res.Inputs(), labels, nowNS, triaged, now)
			if err != nil {
				t.Fatal(err)
			}
			if same != tt.same {
				t.Errorf("SameInputs = %v, want %v", same, tt.same)
			}
		})
	}
}

// The controller writes a PluginConfig's status as the pods it configures come and go; a
// status write keeps the config's uid and generation, so what was resolved from it still
// holds. A spec change (a new generation) or a config deleted and created again (a new uid)
// does not.
func TestSameInputsAcrossStatusWrites(t *testing.T) {
	in := newInjector(t)
	versioned := func(uid string, generation int, status string) string {
		doc := strings.Replace(seedConfig, "metadata: {name: cors-policy-config, namespace: pipy}",
			fmt.Sprintf("metadata: {name: cors-policy-config, namespace: pipy, uid: %s, generation: %d}", uid, generation), 1)
		return strings.TrimRight(doc, " \n") + "\nstatus: {currentStatus: " + status + "}\n"
	}
	var base []string
	for _, doc := range seed {
		if doc == seedConfig {
			doc = versioned("u1", 1, "Pending")
		}
		base = append(base, doc)
	}
	decoded := objects(t, base...)
	snap := clusterstate.NewSnapshot(decoded...)
	ns, _ := snap.Namespace("pipy")
	p := pod(t, podPipyV1)
	res, err := in.Inject(p, ns, snap)
	if err != nil || res.Outcome != Injected {
		t.Fatalf("%s %v", res.Outcome, err)
	}
	for _, tt := range []struct {
		name, config string
		same         bool
	}{
		{"its status written", versioned("u1", 1, "Active"), true},
		{"its spec changed", versioned("u1", 2, "Active"), false},
		{"deleted and created again", versioned("u2", 1, "Active"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			now := clusterstate.NewSnapshot(decoded...)
			for _, o := range objects(t, tt.config) {
				now.Add(o)
			}
			_, triaged, err := in.Triage(&metav1.ObjectMeta{Labels: p.Labels}, ns, now)
			if err != nil || triaged == nil {
				t.Fatalf("triage: %v %v", triaged, err)
			}
			if same, err := in.SameInputs(res.Inputs(), p.Labels, ns, triaged, now); err != nil || same != tt.same {
				t.Errorf("SameInputs = %v (%v), want %v", same, err, tt.same)
			}
		})
	}
}
