package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/podjson"
)

// MutatePodPath is the path of the pod injection webhook, in controller-runtime's naming
// scheme; the MutatingWebhookConfiguration (chart, e2e) points at it.
const MutatePodPath = "/mutate-v1-pod"

// EventReasonInjectionSkipped is the reason of the Warning event emitted when a PluginChain
// selects a pod that cannot be injected.
const EventReasonInjectionSkipped = "CORSInjectionSkipped"

var (
	// Injections counts pod admissions by outcome: "patched" (the sidecar patch was returned),
	// why not (inject.Outcome: "not-selected", "host-network", "collision", ...), or "error"
	// when the request could not be handled. "patched" is not "injected": the API server may
	// still refuse the pod (a later webhook, Pod Security, a quota, its size) or the request was
	// a dry run; the pods that exist with the sidecar carry the label cors-webhook.io/injected.
	Injections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_pod_injections_total",
		Help: "Pod admissions of the mutating webhook, by outcome (patched, or why not; a patched pod may still be refused by the API server).",
	}, []string{"outcome"})

	// InjectionDuration is the time the pod handler takes, from decoding the pod to building
	// the patch (TLS and the AdmissionReview envelope excluded: controller-runtime's
	// controller_runtime_webhook_latency_seconds has the whole request).
	InjectionDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "cors_webhook_pod_injection_duration_seconds",
		Help:    "Time the pod injection handler takes per admission request.",
		Buckets: []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3, 0.25, 1},
	})

	registerInjectionMetrics sync.Once
)

// RegisterInjectionMetrics adds the injection metrics to controller-runtime's registry, with
// every outcome present from the start so that rates work before the first occurrence. It is
// idempotent.
func RegisterInjectionMetrics() {
	registerInjectionMetrics.Do(func() {
		metrics.Registry.MustRegister(Injections, InjectionDuration, MemoLookups, MemoKept)
		for _, o := range inject.Outcomes {
			Injections.WithLabelValues(admissionOutcome(o))
		}
		Injections.WithLabelValues(outcomeError)
		for _, r := range []string{memoHit, memoStale, memoMiss} {
			MemoLookups.WithLabelValues(r)
		}
		for _, u := range []string{"answers", "bytes"} {
			MemoKept.WithLabelValues(u)
		}
	})
}

const outcomeError = "error"

// outcomePatched is the label of an admission answered with the sidecar patch.
const outcomePatched = "patched"

// admissionOutcome is the Injections label of an injection outcome: what the webhook did,
// which for inject.Injected is returning a patch.
func admissionOutcome(o inject.Outcome) string {
	if o == inject.Injected {
		return outcomePatched
	}
	return string(o)
}

// PodInjector is the admission handler of Pod CREATE: decode, call the pure functions of
// package inject, translate the result into a JSON patch written from the injection's change
// set (injectionPatch; no diff of the pod).
// Pods are first triaged from their labels (inject.Injector.Triage), and decoded in full only
// when a chain selects them (inject.Injector.Inject).
type PodInjector struct {
	reader   clusterstate.Reader
	injector *inject.Injector
	memo     *answerMemo // nil: off

	// APIReader, when set, is asked for a namespace the cache has not seen yet (a namespace
	// created a moment before its first pod), so its labels are not missed. Optional.
	APIReader client.Reader
	// Recorder, when set, emits a Warning event on the pod's owner (its ReplicaSet, Job, ...)
	// when a PluginChain selects a pod that cannot be injected; the pod itself does not
	// exist yet. Optional: the reason is logged either way.
	Recorder events.EventRecorder
}

// NewPodInjector returns the handler, reading PluginChains, PluginConfigs, Services, Plugins
// and Namespaces from r.
func NewPodInjector(r clusterstate.Reader, injector *inject.Injector) *PodInjector {
	return &PodInjector{reader: r, injector: injector, memo: newAnswerMemo(DefaultMemoAnswers, DefaultMemoBytes)}
}

// Memo keeps the answers of up to answers injected pods (DefaultMemoAnswers unless set),
// keeping at most bytes of memory with them (DefaultMemoBytes), so that the other replicas of a
// workload are answered without injecting them again (see answerMemo); either 0 turns the memo
// off. Call it before serving.
func (h *PodInjector) Memo(answers, bytes int) { h.memo = newAnswerMemo(answers, bytes) }

// MemoUsage returns how many answers the memo keeps and an estimate of their size.
func (h *PodInjector) MemoUsage() (answers, bytes int) {
	if h.memo == nil {
		return 0, 0
	}
	return h.memo.store.Usage()
}

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// Handle implements admission.Handler.
func (h *PodInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, outcome := h.handle(ctx, req)
	InjectionDuration.Observe(time.Since(start).Seconds())
	if outcome != "" {
		Injections.WithLabelValues(outcome).Inc()
		countInjection(req.Namespace, outcome)
	}
	return resp
}

func (h *PodInjector) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	// Only pod creation is injected; anything else the configuration may route here passes.
	if req.Operation != admissionv1.Create || req.Resource != podResource || req.SubResource != "" {
		return admission.Allowed(""), ""
	}
	ns, err := clusterstate.NamespaceOrLive(ctx, h.reader, h.APIReader, req.Namespace)
	if err != nil {
		logf.FromContext(ctx).Error(err, "reading the pod's namespace", "namespace", req.Namespace)
		return admission.Errored(http.StatusInternalServerError, err), outcomeError
	}
	// Most pods are selected by no chain, and that needs only their metadata: decoding the
	// whole pod would cost more than the rest of the admission together.
	meta, err := podjson.DecodeMetadata(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), outcomeError
	}
	early, triaged, err := h.injector.Triage(meta, ns, h.reader)
	if err != nil {
		logf.FromContext(ctx).Error(err, "injection could not read the cluster state", "namespace", req.Namespace)
		return admission.Errored(http.StatusInternalServerError, err), outcomeError
	}
	if triaged == nil {
		return admission.Allowed(""), admissionOutcome(early.Outcome)
	}
	if h.memo != nil {
		return h.memo.around(ctx, h, req, meta, ns, triaged)
	}
	resp, outcome, _ := h.inject(ctx, req, ns, triaged)
	return resp, outcome
}

// injected is an injection's answer, for the memo to keep.
type injected struct {
	res   inject.Result
	pod   *corev1.Pod
	patch []byte
}

// inject decodes a pod that chains select, injects it and writes the patch; done is the
// answer when the pod was injected (nil otherwise).
func (h *PodInjector) inject(ctx context.Context, req admission.Request, ns *corev1.Namespace, triaged *inject.Triaged) (_ admission.Response, outcome string, done *injected) {
	pod, err := podjson.DecodePod(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), outcomeError, nil
	}
	res, err := h.injector.InjectTriaged(pod, ns, triaged, h.reader)
	if err != nil {
		logf.FromContext(ctx).Error(err, "injection could not read the cluster state", "namespace", req.Namespace)
		return admission.Errored(http.StatusInternalServerError, err), outcomeError, nil
	}
	outcome = admissionOutcome(res.Outcome)
	if res.Outcome.Impossible() {
		// sideEffects: None promises that a dry run changes nothing: no event then.
		h.reportSkipped(ctx, req.Namespace, pod, res, req.DryRun == nil || !*req.DryRun)
	}
	if res.Outcome != inject.Injected {
		if res.Outcome.Impossible() {
			return admission.Allowed("").WithWarnings(res.Reasons...), outcome, nil
		}
		return admission.Allowed(""), outcome, nil
	}
	if log := logf.FromContext(ctx).V(1); log.Enabled() {
		log.Info("injecting the CORS sidecar", "namespace", req.Namespace, "pod", podName(&pod.ObjectMeta),
			"redirectPorts", res.Resolution.RedirectPortsValue(), "reasons", res.Reasons)
	}
	patch, err := res.Changes.JSONPatch(pod)
	if err != nil {
		logf.FromContext(ctx).Error(err, "writing the injection patch", "namespace", req.Namespace)
		return admission.Errored(http.StatusInternalServerError, err), outcomeError, nil
	}
	return patchResponse(patch, res.Resolution.Problems), outcome, &injected{res: res, pod: pod, patch: patch}
}

// patchResponse allows the pod with the injection's patch and the problems of its inputs (a
// conflicting or invalid PluginConfig) as warnings, which reach whoever runs kubectl.
func patchResponse(patch []byte, warnings []string) admission.Response {
	// The patch bytes themselves: with Patches unset, Response.Complete leaves them as they are.
	resp := admission.Allowed("")
	patchType := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &patchType
	return resp.WithWarnings(warnings...)
}

// reportSkipped says why a pod that a chain selects runs without the sidecar: always in the
// log, and as an event on the pod's controller when it has one (the pod is not created yet, so
// `kubectl describe replicaset` is where a user looks).
func (h *PodInjector) reportSkipped(ctx context.Context, namespace string, pod *corev1.Pod, res inject.Result, event bool) {
	why := strings.Join(res.Reasons, "; ")
	logf.FromContext(ctx).Info("not injecting a pod that a PluginChain selects", "namespace", namespace,
		"pod", podName(&pod.ObjectMeta), "outcome", res.Outcome, "reason", why)
	if h.Recorder == nil || !event {
		return
	}
	owner := metav1.GetControllerOf(pod)
	if owner == nil {
		return
	}
	regarding := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: owner.APIVersion, Kind: owner.Kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: owner.Name, UID: owner.UID},
	}
	var related runtime.Object
	if len(res.Chains) > 0 {
		nsName, name, _ := strings.Cut(res.Chains[0], "/")
		related = &metav1.PartialObjectMetadata{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PluginChain"},
			ObjectMeta: metav1.ObjectMeta{Namespace: nsName, Name: name},
		}
	}
	h.Recorder.Eventf(regarding, related, corev1.EventTypeWarning, EventReasonInjectionSkipped, "InjectSidecar",
		"pod %s not injected (%s): %s", podName(&pod.ObjectMeta), res.Outcome, why)
}

func podName(meta *metav1.ObjectMeta) string {
	if meta.Name != "" {
		return meta.Name
	}
	return fmt.Sprintf("%s<generated>", meta.GenerateName)
}

var _ inject.IndexedServices = (*clusterstate.CacheReader)(nil)
