package webhook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/client_golang/prometheus"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	return h.memo.usage()
}

var podResource = metav1.GroupVersionResource{Version: "v1", Resource: "pods"}

// Handle implements admission.Handler.
func (h *PodInjector) Handle(ctx context.Context, req admission.Request) admission.Response {
	start := time.Now()
	resp, outcome := h.handle(ctx, req)
	InjectionDuration.Observe(time.Since(start).Seconds())
	if outcome != "" {
		Injections.WithLabelValues(outcome).Inc()
	}
	return resp
}

func (h *PodInjector) handle(ctx context.Context, req admission.Request) (admission.Response, string) {
	// Only pod creation is injected; anything else the configuration may route here passes.
	if req.Operation != admissionv1.Create || req.Resource != podResource || req.SubResource != "" {
		return admission.Allowed(""), ""
	}
	ns, err := h.namespace(ctx, req.Namespace)
	if err != nil {
		logf.FromContext(ctx).Error(err, "reading the pod's namespace", "namespace", req.Namespace)
		return admission.Errored(http.StatusInternalServerError, err), outcomeError
	}
	// Most pods are selected by no chain, and that needs only their metadata: decoding the
	// whole pod would cost more than the rest of the admission together.
	meta, err := decodeMetadata(req.Object.Raw)
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
	// The memo is for ordinary pods: a large one is neither hashed nor kept.
	var key memoKey
	memoized := false
	if h.memo != nil && len(req.Object.Raw) <= MemoMaxPodBytes {
		key, memoized = replicaHash(req.Namespace, req.Object.Raw)
	}
	if memoized {
		if resp, hit, err := h.remembered(ctx, key, req.Object.Raw, meta, ns, triaged); err != nil || hit {
			if err != nil {
				logf.FromContext(ctx).Error(err, "injection could not read the cluster state", "namespace", req.Namespace)
				return admission.Errored(http.StatusInternalServerError, err), outcomeError
			}
			return resp, outcomePatched
		}
	}
	pod, err := decodePod(req.Object.Raw)
	if err != nil {
		return admission.Errored(http.StatusBadRequest, err), outcomeError
	}
	res, err := h.injector.InjectTriaged(pod, ns, triaged, h.reader)
	if err != nil {
		logf.FromContext(ctx).Error(err, "injection could not read the cluster state", "namespace", req.Namespace)
		return admission.Errored(http.StatusInternalServerError, err), outcomeError
	}
	outcome := admissionOutcome(res.Outcome)
	if res.Outcome.Impossible() {
		// sideEffects: None promises that a dry run changes nothing: no event then.
		h.reportSkipped(ctx, req.Namespace, pod, res, req.DryRun == nil || !*req.DryRun)
	}
	if res.Outcome != inject.Injected {
		if res.Outcome.Impossible() {
			return admission.Allowed("").WithWarnings(res.Reasons...), outcome
		}
		return admission.Allowed(""), outcome
	}
	if log := logf.FromContext(ctx).V(1); log.Enabled() {
		log.Info("injecting the CORS sidecar", "namespace", req.Namespace, "pod", podName(&pod.ObjectMeta),
			"redirectPorts", res.Resolution.RedirectPortsValue(), "reasons", res.Reasons)
	}
	patch, err := injectionPatch(pod, res.Changes)
	if err != nil {
		logf.FromContext(ctx).Error(err, "writing the injection patch", "namespace", req.Namespace)
		return admission.Errored(http.StatusInternalServerError, err), outcomeError
	}
	dryRun := req.DryRun != nil && *req.DryRun
	if memoized && !dryRun && maps.Equal(meta.Labels, pod.Labels) {
		// Dry runs are not kept: nothing is created, so they are no workload's replicas, and a
		// client could otherwise fill the memo without creating a pod.
		// (Labels differ only in a pod whose JSON has its metadata twice: Triage read the
		// first, the decoder merged both; the memo's lookups would read the first.)
		h.memo.put(key, newMemoAnswer(res.Inputs(), patch, res.Resolution.Problems, res.Resolution.RedirectPortsValue(), res.Reasons))
	}
	return patchResponse(patch, res.Resolution.Problems), outcome
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

// remembered answers from the memo a pod whose replica key hashes to key when an earlier
// replica was injected and what its injection read is unchanged.
func (h *PodInjector) remembered(ctx context.Context, key memoKey, raw []byte, meta *metav1.ObjectMeta, ns *corev1.Namespace, t *inject.Triaged) (admission.Response, bool, error) {
	a := h.memo.get(key)
	if a == nil {
		MemoLookups.WithLabelValues(memoMiss).Inc()
		return admission.Response{}, false, nil
	}
	same, err := h.injector.SameInputs(a.inputs, meta.Labels, ns, t, h.reader)
	if err != nil || !same {
		MemoLookups.WithLabelValues(memoStale).Inc()
		if err == nil {
			h.memo.drop(key, a)
		}
		return admission.Response{}, false, err
	}
	MemoLookups.WithLabelValues(memoHit).Inc()
	if log := logf.FromContext(ctx).V(1); log.Enabled() {
		// Triage's metadata has no name: it is read here, for the log alone.
		named := metav1.ObjectMeta{Name: jsoniter.Get(raw, "metadata", "name").ToString(),
			GenerateName: jsoniter.Get(raw, "metadata", "generateName").ToString()}
		log.Info("injecting the CORS sidecar", "namespace", ns.Name, "pod", podName(&named),
			"redirectPorts", a.redirectPorts, "reasons", a.reasons, "remembered", true)
	}
	return patchResponse(a.patch, a.warnings), true, nil
}

// decodeMetadata decodes what Triage reads of a pod's JSON: its labels and annotations. Every
// other member is skipped without being decoded, and reading stops after metadata, which the
// API server writes before spec: the answer for the pods no chain selects must not cost a
// decoding of the pod, nor of its managedFields (in admission requests they describe every
// field of the pod). encoding/json cannot skip without scanning twice, so this uses the
// json-iterator that apimachinery already links in.
func decodeMetadata(raw []byte) (*metav1.ObjectMeta, error) {
	iter := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowIterator(raw)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnIterator(iter)
	if iter.WhatIsNext() != jsoniter.ObjectValue {
		return nil, errors.New("the object is not a JSON object")
	}
	meta := &metav1.ObjectMeta{}
	iter.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		if field != "metadata" {
			it.Skip()
			return it.Error == nil
		}
		var labels, annotations bool
		it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
			switch field {
			case "labels":
				it.ReadVal(&meta.Labels)
				labels = true
			case "annotations":
				it.ReadVal(&meta.Annotations)
				annotations = true
			case "ownerReferences", "finalizers", "managedFields":
				// The API server writes these after labels and annotations (ObjectMeta's
				// field order). Stopping here once the labels are read skips managedFields.
				// Annotations only carry the opt-out, which Inject checks again on the
				// decoded pod, so missing them in an unusual order cannot change a patch.
				if labels {
					return false
				}
				it.Skip()
			default:
				it.Skip()
			}
			return it.Error == nil && !(labels && annotations)
		})
		return false // the rest of the pod is not needed
	})
	if iter.Error != nil && !errors.Is(iter.Error, io.EOF) {
		return nil, fmt.Errorf("decoding the pod's metadata: %w", iter.Error)
	}
	return meta, nil
}

// decodePod decodes a pod in one pass, without its managedFields. The request's resource
// already says it is a v1 Pod, so there is no first pass over the document to find its kind;
// managedFields are cut out first (withoutManagedFields), because injection never reads them
// and the patch is written from the change set, never from the decoded pod (injectionPatch).
// The decoder is json-iterator with case-sensitive member names, as apimachinery's serializer
// configured it before it moved to sigs.k8s.io/json; that one validates the whole document
// before decoding it, which made the decoding half of the injected review's cost.
func decodePod(raw []byte) (*corev1.Pod, error) {
	if len(raw) == 0 {
		return nil, errors.New("there is no content to decode")
	}
	pod := &corev1.Pod{}
	if err := podJSON.Unmarshal(withoutManagedFields(raw), pod); err != nil {
		return nil, fmt.Errorf("decoding the pod: %w", err)
	}
	pod.ManagedFields = nil // when the scan did not find them where the API server writes them
	return pod, nil
}

// podJSON is decodePod's decoder.
var podJSON = jsoniter.Config{EscapeHTML: true, SortMapKeys: true, ValidateJsonRawMessage: true, CaseSensitive: true}.Froze()

// injectionPatch is the JSON patch of the injection, built straight from its change set and
// the decoded pod: the injection changes metadata.annotations, metadata.labels,
// spec.initContainers and spec.volumes and nothing else (inject.Changes), so there is no pod
// to re-encode and no diff to compute. Members the pod lacks are added whole; otherwise each
// key is added (or replaced when its value differs), the init containers are inserted before
// the pod's own, and the volumes appended. The pod's own entries are never written back, so
// fields unknown to this build's API types (a newer API server), and those decodePod skips,
// stay as they were sent. The patch is written as JSON here, the containers and volume from
// the JSON the injector keeps for them: encoding operations for controller-runtime to marshal
// cost as much as the rest of the admission.
func injectionPatch(pod *corev1.Pod, changes *inject.Changes) ([]byte, error) {
	inits, err := changes.InitContainersJSON()
	if err != nil {
		return nil, err
	}
	volumes, err := changes.VolumesJSON()
	if err != nil {
		return nil, err
	}
	w := patchWriter{s: patchJSON.BorrowStream(nil)}
	defer patchJSON.ReturnStream(w.s)
	w.s.WriteArrayStart()
	for _, m := range []struct {
		path      string
		own, want map[string]string
	}{
		{"/metadata/annotations", pod.Annotations, changes.Annotations},
		{"/metadata/labels", pod.Labels, changes.Labels},
	} {
		if len(m.want) == 0 {
			continue
		}
		keys := slices.Sorted(maps.Keys(m.want))
		if m.own == nil {
			w.op("add", m.path)
			w.s.WriteObjectStart()
			for i, k := range keys {
				if i > 0 {
					w.s.WriteMore()
				}
				w.s.WriteObjectField(k)
				w.s.WriteStringWithHTMLEscaped(m.want[k])
			}
			w.s.WriteObjectEnd()
			w.end()
			continue
		}
		for _, k := range keys {
			v := m.want[k]
			old, exists := m.own[k]
			switch {
			case !exists:
				w.op("add", m.path+"/"+pointerEscape(k))
			case old != v:
				w.op("replace", m.path+"/"+pointerEscape(k))
			default:
				continue
			}
			w.s.WriteStringWithHTMLEscaped(v)
			w.end()
		}
	}
	if len(inits) > 0 {
		if pod.Spec.InitContainers == nil {
			w.op("add", "/spec/initContainers")
			w.array(inits)
			w.end()
		} else {
			for i, c := range inits {
				w.op("add", "/spec/initContainers/"+strconv.Itoa(i))
				w.s.Write(c)
				w.end()
			}
		}
	}
	if len(volumes) > 0 {
		if pod.Spec.Volumes == nil {
			w.op("add", "/spec/volumes")
			w.array(volumes)
			w.end()
		} else {
			for _, v := range volumes {
				w.op("add", "/spec/volumes/-")
				w.s.Write(v)
				w.end()
			}
		}
	}
	w.s.WriteArrayEnd()
	if w.s.Error != nil {
		return nil, fmt.Errorf("writing the patch: %w", w.s.Error)
	}
	return slices.Clone(w.s.Buffer()), nil
}

// patchJSON writes patches; only its streams are used.
var patchJSON = jsoniter.ConfigCompatibleWithStandardLibrary

// patchWriter writes the operations of a JSON patch (RFC 6902) to a stream.
type patchWriter struct {
	s   *jsoniter.Stream
	ops int
}

// op starts an operation, up to its value.
func (w *patchWriter) op(op, path string) {
	if w.ops > 0 {
		w.s.WriteMore()
	}
	w.ops++
	w.s.WriteObjectStart()
	w.s.WriteObjectField("op")
	w.s.WriteString(op)
	w.s.WriteMore()
	w.s.WriteObjectField("path")
	w.s.WriteStringWithHTMLEscaped(path)
	w.s.WriteMore()
	w.s.WriteObjectField("value")
}

func (w *patchWriter) end() { w.s.WriteObjectEnd() }

// array writes already encoded values as a JSON array.
func (w *patchWriter) array(items [][]byte) {
	w.s.WriteArrayStart()
	for i, item := range items {
		if i > 0 {
			w.s.WriteMore()
		}
		w.s.Write(item)
	}
	w.s.WriteArrayEnd()
}

// pointerEscape escapes a map key as a JSON pointer segment (RFC 6901).
func pointerEscape(key string) string { return pointerEscaper.Replace(key) }

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// namespace returns the pod's namespace from the cache, or from the API server when the cache
// has not seen it yet, or a label-less stand-in when neither has it.
func (h *PodInjector) namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns, err := h.reader.Namespace(name)
	if err != nil || ns != nil {
		return ns, err
	}
	if h.APIReader != nil {
		live := &corev1.Namespace{}
		err := h.APIReader.Get(ctx, client.ObjectKey{Name: name}, live)
		if err == nil {
			return live, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, nil
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
