package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
)

// seedCluster is the seed guide's pipy namespace once the Plugin, the chain and the config
// exist, as a Reader, with the workloads of the guide (one pod each) in a fake client.
type seedCluster struct {
	reader   *clusterstate.Snapshot
	injector *inject.Injector
	ns       *corev1.Namespace
}

func newSeedCluster(t *testing.T) *seedCluster {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pipy", Labels: map[string]string{
		"openservicemesh.io/monitored-by": "fsm", corev1.LabelMetadataName: "pipy"}}}
	chain := &v1alpha1.PluginChain{
		ObjectMeta: metav1.ObjectMeta{Name: "cors-policy-chain", Namespace: "pipy", Generation: 1},
		Spec: v1alpha1.PluginChainSpec{
			Chains: []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-policy"}}},
			Selectors: v1alpha1.ChainSelectorSpec{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "pipy-ok"}},
				NamespaceSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "openservicemesh.io/monitored-by", Operator: metav1.LabelSelectorOpIn, Values: []string{"fsm"}}}},
			},
		},
	}
	config := &v1alpha1.PluginConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "cors-policy-config", Namespace: "pipy", Generation: 1},
		Spec: v1alpha1.PluginConfigSpec{
			Plugin:          "cors-policy",
			DestinationRefs: []corev1.ObjectReference{{Kind: "Service", Name: "pipy-ok", Namespace: "pipy"}},
			Config:          runtime.RawExtension{Raw: []byte(`{"allowOrigins":[{"prefix":"http://www.bbb.com"}],"allowCredentials":true}`)},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "pipy-ok", Namespace: "pipy"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "pipy-ok"},
			Ports: []corev1.ServicePort{{Name: "pipy", Port: 8080, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}},
	}
	plugin := &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}}
	in, err := inject.New(inject.DefaultSettings())
	if err != nil {
		t.Fatal(err)
	}
	return &seedCluster{reader: clusterstate.NewSnapshot(ns, chain, config, svc, plugin), injector: in, ns: ns}
}

func (s *seedCluster) chain() *v1alpha1.PluginChain {
	cs, _ := s.reader.PluginChainsInNamespace("pipy")
	return cs[0].DeepCopy()
}

func (s *seedCluster) config() *v1alpha1.PluginConfig {
	cs, _ := s.reader.PluginConfigsForService("pipy", "pipy-ok")
	return cs[0].DeepCopy()
}

// deployment returns pipy-ok-v1 with its ReplicaSet and pod, the pod injected or not.
func (s *seedCluster) deployment(t *testing.T, injected bool) (*appsv1.Deployment, *appsv1.ReplicaSet, *corev1.Pod) {
	t.Helper()
	labels := map[string]string{"app": "pipy-ok", "version": "v1"}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pipy", Image: "flomesh/pipy", Ports: []corev1.ContainerPort{{Name: "pipy", ContainerPort: 8080}}}}},
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "pipy-ok-v1", Namespace: "pipy", UID: "d-uid", Generation: 1},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
		Status:     appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1},
	}
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: "pipy-ok-v1-abc", Namespace: "pipy", UID: "rs-uid",
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: d.Name, UID: d.UID, Controller: ptr.To(true)}}},
		Spec: appsv1.ReplicaSetSpec{Selector: d.Spec.Selector, Template: tmpl},
	}
	pod := &corev1.Pod{
		ObjectMeta: *tmpl.ObjectMeta.DeepCopy(),
		Spec:       *tmpl.Spec.DeepCopy(),
	}
	pod.Name, pod.Namespace = "pipy-ok-v1-abc-x", "pipy"
	pod.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: ptr.To(true)}}
	if injected {
		res, err := s.injector.Inject(pod, s.ns, s.reader)
		if err != nil || res.Outcome != inject.Injected {
			t.Fatalf("injecting the seed pod: %v %v", res.Outcome, err)
		}
		pod = res.InjectedPod()
	}
	return d, rs, pod
}

func fakeClient(t *testing.T, objs ...client.Object) client.Client {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	return fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.PluginChain{}, &v1alpha1.PluginConfig{}, &appsv1.Deployment{}).
		WithIndex(&corev1.Pod{}, IndexController, controllerUID).
		WithIndex(&appsv1.ReplicaSet{}, IndexController, controllerUID).
		Build()
}

func podRequest(pod *corev1.Pod) ctrlreconcile.Request {
	return ctrlreconcile.Request{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: pod.Name}}
}

func TestPodReconcilerPatchesThePolicy(t *testing.T) {
	s := newSeedCluster(t)
	d, rs, pod := s.deployment(t, true)
	want := pod.Annotations[contract.AnnotationPolicy]
	pod.Annotations[contract.AnnotationPolicy] = emptyPolicy // what it got before the config existed
	cl := fakeClient(t, d, rs, pod)
	ch := make(chan event.TypedGenericEvent[workloadKey], 4)
	r := &podReconciler{client: cl, reader: s.reader, injector: s.injector, recorder: events.NewFakeRecorder(4), rollouts: ch, notes: newNoteLog()}

	if _, err := r.Reconcile(context.Background(), podRequest(pod)); err != nil {
		t.Fatal(err)
	}
	got := &corev1.Pod{}
	if err := cl.Get(context.Background(), client.ObjectKeyFromObject(pod), got); err != nil {
		t.Fatal(err)
	}
	if got.Annotations[contract.AnnotationPolicy] != want {
		t.Errorf("policy %s, want %s", got.Annotations[contract.AnnotationPolicy], want)
	}
	if len(ch) != 0 {
		t.Errorf("an injected pod redirecting its policy's port was handed to the rollout controller")
	}
}

func TestPodReconcilerHandsSelectedPodsToTheirWorkload(t *testing.T) {
	s := newSeedCluster(t)
	d, rs, pod := s.deployment(t, false)
	cl := fakeClient(t, d, rs, pod)
	ch := make(chan event.TypedGenericEvent[workloadKey], 4)
	rec := events.NewFakeRecorder(4)
	r := &podReconciler{client: cl, reader: s.reader, injector: s.injector, recorder: rec, rollouts: ch, notes: newNoteLog(), missing: newMissingPods()}
	missingBefore := testutil.ToFloat64(PodsMissingSidecar.WithLabelValues(pod.Namespace))

	if _, err := r.Reconcile(context.Background(), podRequest(pod)); err != nil {
		t.Fatal(err)
	}
	if d := testutil.ToFloat64(PodsMissingSidecar.WithLabelValues(pod.Namespace)) - missingBefore; d != 1 {
		t.Errorf("cors_webhook_pods_missing_sidecar moved by %v for a selected pod without the sidecar, want 1", d)
	}
	select {
	case e := <-ch:
		if want := (workloadKey{Kind: "Deployment", Namespace: "pipy", Name: "pipy-ok-v1"}); e.Object != want {
			t.Errorf("handed %v, want %v", e.Object, want)
		}
	default:
		t.Fatal("the pod's Deployment was not handed to the rollout controller")
	}
	if len(rec.Events) != 0 {
		t.Errorf("unexpected event %s", <-rec.Events)
	}
}

func TestPodReconcilerReportsBarePodsOnce(t *testing.T) {
	s := newSeedCluster(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "bare", Namespace: "pipy", Labels: map[string]string{"app": "pipy-ok"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}
	cl := fakeClient(t, pod)
	rec := events.NewFakeRecorder(4)
	r := &podReconciler{client: cl, reader: s.reader, injector: s.injector, recorder: rec, rollouts: make(chan event.TypedGenericEvent[workloadKey]), notes: newNoteLog()}
	for range 3 {
		if _, err := r.Reconcile(context.Background(), podRequest(pod)); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.Events) != 1 {
		t.Fatalf("%d events, want exactly 1", len(rec.Events))
	}
	e := <-rec.Events
	for _, want := range []string{"Warning", ReasonRecreatePod, "PluginChain pipy/cors-policy-chain selects this pod, but it was created without the CORS sidecar; no controller manages it (a bare pod)"} {
		if !strings.Contains(e, want) {
			t.Errorf("event %q lacks %q", e, want)
		}
	}
}

// fakeClock is a settable time source.
type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time { return c.t }

func TestRolloutReconcilerRollsOncePerChange(t *testing.T) {
	s := newSeedCluster(t)
	d, rs, pod := s.deployment(t, false)
	cl := fakeClient(t, d, rs, pod)
	rec := events.NewFakeRecorder(8)
	clock := &fakeClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	r := &rolloutReconciler{client: cl, reader: s.reader, injector: s.injector, recorder: rec,
		opts: Options{}.withDefaults(), limiter: rate.NewLimiter(rate.Inf, 1),
		pending: map[workloadKey]time.Time{}, notes: newNoteLog(), now: clock.Now}
	key := workloadKey{Kind: kindDeployment, Namespace: "pipy", Name: "pipy-ok-v1"}
	ctx := context.Background()
	reconcile := func() ctrlreconcile.Result {
		t.Helper()
		res, err := r.Reconcile(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	token := func() string {
		t.Helper()
		got := &appsv1.Deployment{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			t.Fatal(err)
		}
		return got.Spec.Template.Annotations[AnnotationRestartedAt]
	}
	setStatus := func(st appsv1.DeploymentStatus) {
		t.Helper()
		got := &appsv1.Deployment{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			t.Fatal(err)
		}
		st.ObservedGeneration = got.Generation
		got.Status = st
		if err := cl.Status().Update(ctx, got); err != nil {
			t.Fatal(err)
		}
	}

	// The chain has just selected the pod: wait for the changes to settle.
	if res := reconcile(); res.RequeueAfter != DefaultRolloutSettle || token() != "" {
		t.Fatalf("first decision: requeue %v, token %q; want a wait of %v and no rollout", res.RequeueAfter, token(), DefaultRolloutSettle)
	}
	clock.t = clock.t.Add(2 * time.Second)
	if res := reconcile(); res.RequeueAfter != 3*time.Second || token() != "" {
		t.Fatalf("second decision: requeue %v, token %q; want 3s more", res.RequeueAfter, token())
	}
	clock.t = clock.t.Add(3 * time.Second)
	reconcile()
	first := token()
	if first == "" {
		t.Fatal("not rolled after the settle delay")
	}
	if e := <-rec.Events; !strings.Contains(e, "Normal "+ReasonRollout) || !strings.Contains(e, "PluginChain pipy/cors-policy-chain") {
		t.Errorf("rollout event %q", e)
	}

	// While the Deployment replaces the pod, and again after it did (but, here, without a
	// webhook, the new pod would not be injected): never a second rollout for this change.
	setStatus(appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 1})
	clock.t = clock.t.Add(time.Minute)
	reconcile()
	setStatus(appsv1.DeploymentStatus{Replicas: 1, UpdatedReplicas: 1})
	reconcile()
	reconcile()
	if got := token(); got != first {
		t.Fatalf("rolled again for the same change: %s, then %s", first, got)
	}
	if len(rec.Events) != 1 {
		t.Fatalf("%d events, want exactly one saying the rollout did not help", len(rec.Events))
	}
	if e := <-rec.Events; !strings.Contains(e, "Warning "+ReasonRolloutIneffective) {
		t.Errorf("event %q", e)
	}

	// A new change (the config now needs a port the new pods must redirect: a named
	// Service port http) is a new value: one more rollout, after the settle delay.
	svc, _ := s.reader.Service("pipy", "pipy-ok")
	svc = svc.DeepCopy()
	svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: "http", Port: 80, TargetPort: intstr.FromInt32(9090), Protocol: corev1.ProtocolTCP})
	s.reader.Add(svc)
	reconcile()
	clock.t = clock.t.Add(DefaultRolloutSettle)
	reconcile()
	if second := token(); second == first || second == "" {
		t.Errorf("token %q after a new change, first %q: want a new value", second, first)
	}
}

func TestRolloutReconcilerRespectsTheOptOut(t *testing.T) {
	s := newSeedCluster(t)
	d, rs, pod := s.deployment(t, false)
	d.Annotations = map[string]string{AnnotationRollout: "false"}
	cl := fakeClient(t, d, rs, pod)
	rec := events.NewFakeRecorder(8)
	r := &rolloutReconciler{client: cl, reader: s.reader, injector: s.injector, recorder: rec,
		opts: Options{}.withDefaults(), limiter: rate.NewLimiter(rate.Inf, 1),
		pending: map[workloadKey]time.Time{}, notes: newNoteLog(), now: time.Now}
	key := workloadKey{Kind: kindDeployment, Namespace: "pipy", Name: "pipy-ok-v1"}
	for range 2 {
		if _, err := r.Reconcile(context.Background(), key); err != nil {
			t.Fatal(err)
		}
	}
	got := &appsv1.Deployment{}
	if err := cl.Get(context.Background(), client.ObjectKeyFromObject(d), got); err != nil {
		t.Fatal(err)
	}
	if v, ok := got.Spec.Template.Annotations[AnnotationRestartedAt]; ok {
		t.Errorf("rolled despite the opt-out: %s", v)
	}
	if len(rec.Events) != 1 {
		t.Fatalf("%d events, want 1", len(rec.Events))
	}
	if e := <-rec.Events; !strings.Contains(e, ReasonRolloutNeeded) || !strings.Contains(e, "kubectl rollout restart deployment/pipy-ok-v1 -n pipy") {
		t.Errorf("event %q", e)
	}
}

func TestStatusReconcilerWritesOnlyChanges(t *testing.T) {
	s := newSeedCluster(t)
	d, rs, pod := s.deployment(t, true)
	chain, config := s.chain(), s.config()
	cl := &countingClient{Client: fakeClient(t, d, rs, pod, chain, config)}
	r := &statusReconciler{client: cl, reader: s.reader, injector: s.injector}
	ctx := context.Background()
	for range 3 {
		if _, err := r.reconcileChain(ctx, requestFor(chain)); err != nil {
			t.Fatal(err)
		}
		if _, err := r.reconcileConfig(ctx, requestFor(config)); err != nil {
			t.Fatal(err)
		}
	}
	if cl.statusPatches != 2 {
		t.Errorf("%d status patches for 3 identical observations of 2 objects, want 2", cl.statusPatches)
	}
	gotChain, gotConfig := &v1alpha1.PluginChain{}, &v1alpha1.PluginConfig{}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(chain), gotChain); err != nil {
		t.Fatal(err)
	}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(config), gotConfig); err != nil {
		t.Fatal(err)
	}
	wantChain := v1alpha1.PluginStatus{CurrentStatus: StatusActive, Reason: "selects 1 pod(s) in namespace pipy: 1 injected with cors-policy"}
	wantConfig := v1alpha1.PluginStatus{CurrentStatus: StatusActive, Reason: "configures Service pipy-ok: port 8080 of 1 pod(s)"}
	if gotChain.Status != wantChain {
		t.Errorf("chain status %+v, want %+v", gotChain.Status, wantChain)
	}
	if gotConfig.Status != wantConfig {
		t.Errorf("config status %+v, want %+v", gotConfig.Status, wantConfig)
	}
	raw, _ := json.Marshal(gotChain.Status)
	t.Logf("chain status: %s", raw)
}

// countingClient counts status patches.
type countingClient struct {
	client.Client
	statusPatches int
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type countingStatus struct {
	client.SubResourceWriter
	c *countingClient
}

func (s *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	s.c.statusPatches++
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

// TestConfigStatusComesFromTheResolution: which PluginConfig applies to a port and which is
// overridden comes from the injector's per-port structure, not from its messages nor from
// comparing configs: two configs with the same CORS config and names that prefix each other
// (pipy/cors, pipy/cors-2) are told apart.
func TestConfigStatusComesFromTheResolution(t *testing.T) {
	s := newSeedCluster(t)
	d, rs, pod := s.deployment(t, true)
	chain := s.chain()
	first, second := s.config(), s.config()
	first.Name, second.Name = "cors", "cors-2"
	plugin := &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}}
	svcs, _ := s.reader.ServicesInNamespace("pipy")
	reader := clusterstate.NewSnapshot(s.ns, chain, first, second, svcs[0], plugin)
	cl := fakeClient(t, d, rs, pod, chain, first, second)
	r := &statusReconciler{client: cl, reader: reader, injector: s.injector}
	ctx := context.Background()
	a, err := r.observeConfig(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.observeConfig(ctx, second)
	if err != nil {
		t.Fatal(err)
	}
	if a.applied != 1 || a.overridden != 0 || !slices.Equal(a.ports, []int32{8080}) {
		t.Errorf("pipy/cors: applied %d, overridden %d, ports %v; want applied on 8080", a.applied, a.overridden, a.ports)
	}
	if b.applied != 0 || b.overridden != 1 {
		t.Errorf("pipy/cors-2: applied %d, overridden %d; want overridden", b.applied, b.overridden)
	}
	if st := configStatus(second.Spec.Plugin, b); !strings.Contains(st.Reason, "another PluginConfig configures the same port") {
		t.Errorf("pipy/cors-2 status %+v", st)
	}
}

// A rollout waits while the pod webhook does not answer: rolled then, the workload's new pods
// would lack the sidecar as well and the change would count as rolled out.
func TestRolloutReconcilerWaitsForAdmission(t *testing.T) {
	s := newSeedCluster(t)
	d, rs, pod := s.deployment(t, false)
	cl := fakeClient(t, d, rs, pod)
	rec := events.NewFakeRecorder(8)
	clock := &fakeClock{t: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)}
	down := errors.New("dial tcp 10.0.0.1:443: connection refused")
	probed := 0
	opts := Options{AdmissionReady: func(context.Context) error { probed++; return down }}.withDefaults()
	r := &rolloutReconciler{client: cl, reader: s.reader, injector: s.injector, recorder: rec,
		opts: opts, limiter: rate.NewLimiter(rate.Inf, 1),
		pending: map[workloadKey]time.Time{}, notes: newNoteLog(), now: clock.Now}
	key := workloadKey{Kind: kindDeployment, Namespace: "pipy", Name: "pipy-ok-v1"}
	ctx := context.Background()
	token := func() string {
		t.Helper()
		got := &appsv1.Deployment{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			t.Fatal(err)
		}
		return got.Spec.Template.Annotations[AnnotationRestartedAt]
	}
	reconcile := func() ctrlreconcile.Result {
		t.Helper()
		res, err := r.Reconcile(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}

	reconcile() // settle
	if probed != 0 {
		t.Errorf("probed the webhook %d times while the changes settle, want 0", probed)
	}
	for i := range 3 {
		clock.t = clock.t.Add(DefaultRolloutSettle)
		if res := reconcile(); res.RequeueAfter != DefaultAdmissionRetry || token() != "" {
			t.Fatalf("webhook down, try %d: requeue %v, token %q; want a retry after %v and no rollout", i, res.RequeueAfter, token(), DefaultAdmissionRetry)
		}
	}
	if len(rec.Events) != 0 {
		t.Errorf("%d events while waiting for the webhook, want none", len(rec.Events))
	}
	down = nil
	clock.t = clock.t.Add(DefaultAdmissionRetry)
	reconcile()
	if token() == "" {
		t.Fatal("not rolled once the webhook answers")
	}
	if e := <-rec.Events; !strings.Contains(e, "Normal "+ReasonRollout) {
		t.Errorf("rollout event %q", e)
	}
}

// TestPodReconcilerRefusesAnOversizedPolicy: a new policy that would take the pod's annotations
// over the API server's bound is not sent (the API server would refuse it, on every retry);
// an Event says why, once.
func TestPodReconcilerRefusesAnOversizedPolicy(t *testing.T) {
	s := newSeedCluster(t)
	d, rs, pod := s.deployment(t, true)
	pod.Annotations[contract.AnnotationPolicy] = emptyPolicy
	// Room for the pass-through policy it has, not for the seed policy (longer) it should get.
	used := len("example.com/big")
	for k, v := range pod.Annotations {
		used += len(k) + len(v)
	}
	pod.Annotations["example.com/big"] = strings.Repeat("x", contract.MaxPodAnnotationsBytes-used)
	cl := fakeClient(t, d, rs, pod)
	rec := events.NewFakeRecorder(4)
	r := &podReconciler{client: cl, reader: s.reader, injector: s.injector, recorder: rec,
		rollouts: make(chan event.TypedGenericEvent[workloadKey], 4), notes: newNoteLog()}
	for range 2 {
		if _, err := r.Reconcile(context.Background(), podRequest(pod)); err != nil {
			t.Fatal(err)
		}
	}
	got := &corev1.Pod{}
	if err := cl.Get(context.Background(), client.ObjectKeyFromObject(pod), got); err != nil {
		t.Fatal(err)
	}
	if got.Annotations[contract.AnnotationPolicy] != emptyPolicy {
		t.Errorf("policy patched to %d bytes: the pod's annotations now exceed %d bytes", len(got.Annotations[contract.AnnotationPolicy]), contract.MaxPodAnnotationsBytes)
	}
	if len(rec.Events) != 1 {
		t.Fatalf("%d events, want 1", len(rec.Events))
	}
	if e := <-rec.Events; !strings.Contains(e, "Warning "+ReasonPolicyTooLarge) || !strings.Contains(e, "more than the API server's 262144") {
		t.Errorf("event %q", e)
	}
}
