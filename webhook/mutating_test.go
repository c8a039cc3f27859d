package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jsonpatch "github.com/evanphx/json-patch/v5"
	"github.com/go-logr/logr"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/podjson"
)

// seedObjects is the seed guide's cluster: namespace pipy labeled as `fsm namespace add` does,
// the cors-policy Plugin, the chain selecting app=pipy-ok, the config of Service pipy-ok.
func seedObjects() []runtime.Object {
	return []runtime.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pipy", Labels: map[string]string{
			"openservicemesh.io/monitored-by": "fsm", corev1.LabelMetadataName: "pipy"}}},
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}},
		&v1alpha1.PluginChain{
			ObjectMeta: metav1.ObjectMeta{Namespace: "pipy", Name: "cors-policy-chain"},
			Spec: v1alpha1.PluginChainSpec{
				Chains: []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-policy"}}},
				Selectors: v1alpha1.ChainSelectorSpec{
					PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pipy-ok"}},
					NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
						{Key: "openservicemesh.io/monitored-by", Operator: metav1.LabelSelectorOpIn, Values: []string{"fsm"}}}},
				},
			},
		},
		&v1alpha1.PluginConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: "pipy", Name: "cors-policy-config"},
			Spec: v1alpha1.PluginConfigSpec{
				Plugin:          "cors-policy",
				DestinationRefs: []corev1.ObjectReference{{Kind: "Service", Name: "pipy-ok", Namespace: "pipy"}},
				Config:          runtime.RawExtension{Raw: []byte(`{"allowOrigins":[{"prefix":"http://www.bbb.com"}],"maxAge":"24h"}`)},
			},
		},
		&corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "pipy", Name: "pipy-ok"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "pipy-ok"}, Ports: []corev1.ServicePort{
				{Name: "pipy", Port: 8080, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
		},
	}
}

func seedSnapshot() *clusterstate.Snapshot {
	snap := clusterstate.NewSnapshot()
	for _, o := range seedObjects() {
		snap.Add(o)
	}
	return snap
}

// replicaSetPod is a pod as the ReplicaSet controller creates it: generateName, no name, an
// owner, the API server's defaults.
func replicaSetPod(labels map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "pipy-ok-v1-5d8f7c9b6-",
			Namespace:    "pipy",
			Labels:       labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "pipy-ok-v1-5d8f7c9b6", UID: "rs-uid", Controller: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			ServiceAccountName: "pipy-ok-v1",
			RestartPolicy:      corev1.RestartPolicyAlways,
			DNSPolicy:          corev1.DNSClusterFirst,
			Containers: []corev1.Container{{
				Name: "pipy", Image: "flomesh/pipy:latest", ImagePullPolicy: corev1.PullIfNotPresent,
				Ports:                    []corev1.ContainerPort{{Name: "pipy", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
				TerminationMessagePath:   "/dev/termination-log",
				TerminationMessagePolicy: corev1.TerminationMessageReadFile,
			}},
		},
	}
}

func podReview(t testing.TB, pod *corev1.Pod, op admissionv1.Operation) admission.Request {
	t.Helper()
	raw, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	return admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "review-1",
		Kind:      metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Resource:  metav1.GroupVersionResource{Version: "v1", Resource: "pods"},
		Namespace: pod.Namespace,
		Operation: op,
		Object:    runtime.RawExtension{Raw: raw},
	}}
}

func newTestInjector(t testing.TB, r clusterstate.Reader) *PodInjector {
	t.Helper()
	s := inject.DefaultSettings()
	s.SidecarImage = "example.com/cors-sidecar:test"
	in, err := inject.New(s)
	if err != nil {
		t.Fatal(err)
	}
	RegisterInjectionMetrics()
	// The handler logs through controller-runtime's logger; tests keep it quiet.
	logf.SetLogger(logr.Discard())
	return NewPodInjector(r, in)
}

// applyPatch applies the response's JSON patch to the request's pod, as the API server does.
func applyPatch(t testing.TB, req admission.Request, resp admission.Response) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{}
	if err := json.Unmarshal(patchedJSON(t, req.Object.Raw, resp), pod); err != nil {
		t.Fatal(err)
	}
	return pod
}

func TestPodInjectorPatchesAReplicaSetPod(t *testing.T) {
	h := newTestInjector(t, seedSnapshot())
	before := testutil.ToFloat64(Injections.WithLabelValues(outcomePatched))
	req := podReview(t, replicaSetPod(map[string]string{"app": "pipy-ok", "version": "v1"}), admissionv1.Create)
	resp := h.Handle(context.Background(), req)
	if !resp.Allowed || resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("response %+v", resp.AdmissionResponse)
	}
	got := applyPatch(t, req, resp)
	want := `{"version":1,"ports":{"8080":{"allowOrigins":[{"prefix":"http://www.bbb.com"}],"maxAge":86400}}}`
	if a := got.Annotations[contract.AnnotationPolicy]; a != want {
		t.Errorf("policy annotation %s, want %s", a, want)
	}
	if got.Labels[contract.LabelInjected] != "true" || got.Annotations[contract.AnnotationRedirectPorts] != "8080" {
		t.Errorf("labels %v annotations %v", got.Labels, got.Annotations)
	}
	if len(got.Spec.InitContainers) != 2 || got.Spec.InitContainers[0].Name != contract.ContainerInit || got.Spec.InitContainers[1].Name != contract.ContainerSidecar {
		t.Errorf("init containers %+v", got.Spec.InitContainers)
	}
	if got.GenerateName != "pipy-ok-v1-5d8f7c9b6-" || got.Name != "" || len(got.OwnerReferences) != 1 {
		t.Errorf("metadata changed: %+v", got.ObjectMeta)
	}
	if d := testutil.ToFloat64(Injections.WithLabelValues(outcomePatched)) - before; d != 1 {
		t.Errorf("injected counter moved by %v", d)
	}

	// Reinvocation (reinvocationPolicy: IfNeeded) sees the injected pod: no second patch.
	again := h.Handle(context.Background(), podReview(t, got, admissionv1.Create))
	if !again.Allowed || len(again.Patch) != 0 {
		t.Errorf("reinvocation: allowed %v, %d patches", again.Allowed, len(again.Patch))
	}
}

func TestPodInjectorLeavesOtherPodsAlone(t *testing.T) {
	h := newTestInjector(t, seedSnapshot())
	hostNet := replicaSetPod(map[string]string{"app": "pipy-ok"})
	hostNet.Spec.HostNetwork = true
	tests := []struct {
		name    string
		req     admission.Request
		code    int32 // of an error response; 0 for allowed
		outcome string
		warning string
	}{
		{name: "pod no chain selects", req: podReview(t, replicaSetPod(map[string]string{"app": "curl"}), admissionv1.Create), outcome: string(inject.NotSelected)},
		{name: "hostNetwork pod", req: podReview(t, hostNet, admissionv1.Create), outcome: string(inject.HostNetwork), warning: "hostNetwork"},
		{name: "update", req: podReview(t, replicaSetPod(map[string]string{"app": "pipy-ok"}), admissionv1.Update)},
		{name: "not a pod", req: func() admission.Request {
			r := podReview(t, replicaSetPod(nil), admissionv1.Create)
			r.Resource.Resource = "services"
			return r
		}()},
		{name: "undecodable metadata", req: func() admission.Request {
			r := podReview(t, replicaSetPod(nil), admissionv1.Create)
			r.Object.Raw = []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"labels":"nope"}}`)
			return r
		}(), code: http.StatusBadRequest, outcome: outcomeError},
		{name: "undecodable spec of a selected pod", req: func() admission.Request {
			r := podReview(t, replicaSetPod(nil), admissionv1.Create)
			r.Object.Raw = []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"app":"pipy-ok"}},"spec":{"containers":"nope"}}`)
			return r
		}(), code: http.StatusBadRequest, outcome: outcomeError},
		{name: "opted-out pod, annotations written after managedFields", req: func() admission.Request {
			r := podReview(t, replicaSetPod(nil), admissionv1.Create)
			r.Object.Raw = []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"labels":{"app":"pipy-ok"},` +
				`"managedFields":[{"manager":"m"}],"annotations":{"cors-webhook.io/inject":"false"}},"spec":{"containers":[{"name":"a","image":"a"}]}}`)
			return r
		}(), outcome: string(inject.PodOptedOut)},
		{name: "opted-out pod", req: func() admission.Request {
			p := replicaSetPod(map[string]string{"app": "pipy-ok"})
			p.Annotations = map[string]string{contract.AnnotationInject: "false"}
			return podReview(t, p, admissionv1.Create)
		}(), outcome: string(inject.PodOptedOut)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before float64
			if tt.outcome != "" {
				before = testutil.ToFloat64(Injections.WithLabelValues(tt.outcome))
			}
			resp := h.Handle(context.Background(), tt.req)
			if tt.code != 0 {
				if resp.Allowed || resp.Result == nil || resp.Result.Code != tt.code {
					t.Fatalf("response %+v, want error %d", resp.AdmissionResponse, tt.code)
				}
			} else if !resp.Allowed || len(resp.Patch) != 0 {
				t.Fatalf("allowed %v with %d patches, want allowed unchanged", resp.Allowed, len(resp.Patch))
			}
			if tt.warning != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), tt.warning) {
				t.Errorf("warnings %q do not mention %q", resp.Warnings, tt.warning)
			}
			if tt.outcome != "" {
				if d := testutil.ToFloat64(Injections.WithLabelValues(tt.outcome)) - before; d != 1 {
					t.Errorf("%s counter moved by %v", tt.outcome, d)
				}
			}
		})
	}
}

func TestPodInjectorReportsImpossibleInjectionOnTheOwner(t *testing.T) {
	h := newTestInjector(t, seedSnapshot())
	rec := events.NewFakeRecorder(10)
	rec.Verbose = true
	h.Recorder = rec
	pod := replicaSetPod(map[string]string{"app": "pipy-ok"})
	pod.Spec.Containers[0].Ports = append(pod.Spec.Containers[0].Ports, corev1.ContainerPort{ContainerPort: 15003, Protocol: corev1.ProtocolTCP})
	resp := h.Handle(context.Background(), podReview(t, pod, admissionv1.Create))
	if !resp.Allowed || len(resp.Patch) != 0 {
		t.Fatalf("allowed %v with %d patches", resp.Allowed, len(resp.Patch))
	}
	select {
	case e := <-rec.Events:
		for _, want := range []string{"Warning", EventReasonInjectionSkipped, "collision", "15003", "kind=ReplicaSet", "kind=PluginChain"} {
			if !strings.Contains(e, want) {
				t.Errorf("event %q does not say %q", e, want)
			}
		}
	default:
		t.Fatal("no event")
	}

	// A dry run (kubectl apply --dry-run=server) must have no side effect: no event.
	req := podReview(t, pod, admissionv1.Create)
	req.DryRun = ptr.To(true)
	if resp := h.Handle(context.Background(), req); !resp.Allowed || len(resp.Warnings) == 0 {
		t.Errorf("dry run: allowed %v, warnings %q", resp.Allowed, resp.Warnings)
	}
	select {
	case e := <-rec.Events:
		t.Errorf("event on a dry run: %s", e)
	default:
	}
}

// TestPodInjectorReadsNewNamespacesFromTheAPI: a namespace created a moment before its first
// pod may not be in the cache yet; its labels decide whether a chain selects the pod.
func TestPodInjectorReadsNewNamespacesFromTheAPI(t *testing.T) {
	snap := clusterstate.NewSnapshot()
	var nsObj *corev1.Namespace
	for _, o := range seedObjects() {
		if ns, ok := o.(*corev1.Namespace); ok {
			nsObj = ns
			continue
		}
		snap.Add(o)
	}
	h := newTestInjector(t, snap)
	scheme, _ := clusterstate.NewScheme()
	req := podReview(t, replicaSetPod(map[string]string{"app": "pipy-ok"}), admissionv1.Create)

	if resp := h.Handle(context.Background(), req); len(resp.Patch) != 0 {
		t.Fatal("injected without knowing the namespace's labels")
	}
	h.APIReader = fake.NewClientBuilder().WithScheme(scheme).WithObjects(nsObj).Build()
	if resp := h.Handle(context.Background(), req); len(resp.Patch) == 0 {
		t.Fatalf("not injected with the namespace read from the API: %+v", resp.AdmissionResponse)
	}
}

func TestDecodeMetadata(t *testing.T) {
	tests := []struct {
		name, raw string
		labels    map[string]string
		wantErr   bool
	}{
		{name: "as the API server writes it", raw: `{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"x-","labels":{"app":"web"}},"spec":{"containers":[{"name":"a"}]}}`, labels: map[string]string{"app": "web"}},
		{name: "metadata after spec", raw: `{"spec":{"containers":[{"name":"a","args":["{","}"]}]},"metadata":{"labels":{"app":"web"}}}`, labels: map[string]string{"app": "web"}},
		{name: "no metadata", raw: `{"kind":"Pod"}`},
		{name: "not an object", raw: `["metadata"]`, wantErr: true},
		{name: "bad metadata", raw: `{"metadata":{"labels":"web"}}`, wantErr: true},
		{name: "truncated", raw: `{"kind":"Pod","spec":{`, wantErr: true},
		{name: "empty", raw: ``, wantErr: true},
		{name: "escapes and nulls", raw: `{"metadata":{"labels":{"a\u0062":"x\"y"},"annotations":null,"managedFields":[{"fieldsV1":{"f:metadata":{"f:labels":{}}}}]},"spec":null}`,
			labels: map[string]string{"ab": `x"y`}},
	}
	// Whatever the pod, the labels and annotations are what encoding/json reads.
	for _, p := range []*corev1.Pod{
		replicaSetPod(map[string]string{"app": "pipy-ok", "kubernetes.io/ünïcode": "v"}),
		func() *corev1.Pod {
			p := replicaSetPod(nil)
			p.Annotations = map[string]string{contract.AnnotationInject: "false", "json": `{"a":[1,"}"]}`}
			return p
		}(),
	} {
		raw, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := podjson.DecodeMetadata(raw)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Labels, p.Labels) || !reflect.DeepEqual(got.Annotations, p.Annotations) {
			t.Errorf("decodeMetadata = %v %v, want %v %v", got.Labels, got.Annotations, p.Labels, p.Annotations)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			meta, err := podjson.DecodeMetadata([]byte(tt.raw))
			if (err != nil) != tt.wantErr {
				t.Fatalf("error %v, want error %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(meta.Labels, tt.labels) {
				t.Errorf("labels %v, want %v", meta.Labels, tt.labels)
			}
		})
	}
}

// TestInjectionFollowsChainChanges: a chain created, changed or deleted after the CacheReader's
// chains.Index was built decides the next admissions, also while admissions run concurrently.
func TestInjectionFollowsChainChanges(t *testing.T) {
	var objs []client.Object
	var chain *v1alpha1.PluginChain
	for _, o := range seedObjects() {
		if c, isChain := o.(*v1alpha1.PluginChain); isChain {
			chain = c.DeepCopy()
			continue
		}
		objs = append(objs, o.(client.Object))
	}
	c, watchers := startWatchedCache(t, objs...)
	fw := watchers[reflect.TypeFor[*v1alpha1.PluginChain]()]
	h := newTestInjector(t, nil)
	h.reader = newCacheReaderFor(t, c, h.injector.Selection())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	req := podReview(t, replicaSetPod(map[string]string{"app": "pipy-ok"}), admissionv1.Create)
	injected := func() bool {
		resp := h.Handle(context.Background(), req)
		if !resp.Allowed {
			t.Fatalf("refused: %v", resp.Result)
		}
		return len(resp.Patch) > 0
	}
	eventually := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for injected() != want {
			if time.Now().After(deadline) {
				t.Fatalf("injection still %v", !want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	// Admissions keep running while the chain comes and goes (go test -race).
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				h.Handle(context.Background(), req)
			}
		}()
	}
	defer wg.Wait()
	defer cancel()

	eventually(false)
	chain.ResourceVersion = "2"
	fw.Add(chain)
	eventually(true)
	changed := chain.DeepCopy()
	changed.ResourceVersion = "3"
	changed.Spec.Selectors.PodSelector.MatchLabels["app"] = "other"
	fw.Modify(changed)
	eventually(false)
	fw.Modify(chain)
	eventually(true)
	fw.Delete(chain)
	eventually(false)
}

// listThenWatch is a ListWatch without the streaming watch-list protocol (a fake watch cannot
// send its initial-events bookmark), so the reflector lists, then watches.
type listThenWatch struct{ *toolscache.ListWatch }

func (listThenWatch) IsWatchListSemanticsUnSupported() bool { return true }

// TestInjectionPatchProducesTheInjectedPod: the patch built from the change set, applied to
// the pod as the API server sent it, gives the injected pod, whatever members the pod has
// (absent, null, empty, with entries of its own, keys that need JSON-pointer escaping), and
// leaves the pod's own JSON, fields unknown to this build included, as it was.
func TestInjectionPatchProducesTheInjectedPod(t *testing.T) {
	h := newTestInjector(t, seedSnapshot())
	ns, _ := seedSnapshot().Namespace("pipy")
	everything := benchPod("pipy-ok")
	everything.Namespace = "pipy"
	everything.Annotations = map[string]string{"prometheus.io/scrape": "true", "html": "<&>", "a~b/c": "x",
		contract.AnnotationSidecarVersion: "stale"}
	everything.Labels[contract.LabelInjected] = "true"
	everything.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "migrate"}}
	unlabeled := replicaSetPod(map[string]string{"app": "pipy-ok"})
	empty := replicaSetPod(map[string]string{"app": "pipy-ok"})
	empty.Annotations = map[string]string{}
	empty.Spec.InitContainers, empty.Spec.Volumes = []corev1.Container{}, []corev1.Volume{}
	for name, tc := range map[string]struct {
		pod  *corev1.Pod
		edit func(string) string // of the pod's JSON, as a newer or unusual API server sends it
	}{
		"replicaset pod": {pod: unlabeled},
		"annotations, init containers, volumes, managedFields": {pod: everything},
		"empty members": {pod: empty},
		"null members": {pod: unlabeled, edit: func(s string) string {
			return strings.Replace(s, `"spec":{`, `"spec":{"initContainers":null,"volumes":null,`, 1)
		}},
		"unknown fields kept": {pod: everything, edit: func(s string) string {
			return strings.Replace(s, `"name":"migrate",`, `"name":"migrate","futureField":{"x":1},`, 1)
		}},
	} {
		t.Run(name, func(t *testing.T) {
			raw, err := json.Marshal(tc.pod)
			if err != nil {
				t.Fatal(err)
			}
			if tc.edit != nil {
				edited := tc.edit(string(raw))
				if edited == string(raw) {
					t.Fatal("the edit changed nothing")
				}
				raw = []byte(edited)
			}
			// The handler's decoding skips managedFields; everything else is as a full decoding.
			full := &corev1.Pod{}
			if err := json.Unmarshal(raw, full); err != nil {
				t.Fatal(err)
			}
			pod, err := podjson.DecodePod(raw)
			if err != nil {
				t.Fatal(err)
			}
			if len(full.ManagedFields) > 0 && len(pod.ManagedFields) > 0 {
				t.Error("decodePod kept managedFields")
			}
			withoutManaged := full.DeepCopy()
			withoutManaged.ManagedFields = nil
			if !equality.Semantic.DeepEqual(pod, withoutManaged) {
				t.Errorf("decodePod differs from a full decoding:\n%s", cmp.Diff(withoutManaged, pod))
			}
			res, err := h.injector.Inject(pod, ns, h.reader)
			if err != nil || res.Outcome != inject.Injected {
				t.Fatalf("%v %v", res.Outcome, err)
			}
			req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{Object: runtime.RawExtension{Raw: raw}}}
			patch, err := res.Changes.JSONPatch(pod)
			if err != nil {
				t.Fatal(err)
			}
			resp := admission.Allowed("")
			resp.Patch = patch
			got := applyPatch(t, req, resp)
			// The patch, applied to the pod as sent, gives the pod a full decoding injects.
			fullRes, err := h.injector.Inject(full, ns, h.reader)
			if err != nil {
				t.Fatal(err)
			}
			if want := fullRes.InjectedPod(); !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("the patch does not produce the injected pod:\n%s", cmp.Diff(want, got))
			}
			var ops []struct{ Op, Path string }
			if err := json.Unmarshal(patch, &ops); err != nil {
				t.Fatalf("the patch is not JSON: %v\n%s", err, patch)
			}
			for _, op := range ops {
				if op.Op != "add" && op.Op != "replace" {
					t.Errorf("unexpected operation %s on %s", op.Op, op.Path)
				}
			}
			if strings.Contains(string(raw), "futureField") && !strings.Contains(string(patchedJSON(t, raw, resp)), `"futureField":{"x":1}`) {
				t.Error("the patch dropped a field unknown to this build")
			}
		})
	}
}

// patchedJSON applies the response's JSON patch to raw, as the API server does.
func patchedJSON(t testing.TB, raw []byte, resp admission.Response) []byte {
	t.Helper()
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		t.Fatal(err)
	}
	out, err := patch.Apply(raw)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
