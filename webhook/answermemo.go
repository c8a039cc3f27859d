package webhook

import (
	"context"
	"crypto/sha256"
	"maps"
	"net/http"

	jsoniter "github.com/json-iterator/go"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/boundedmemo"
	"github.com/cors-webhook/cors-webhook/internal/podjson"
)

// DefaultMemoAnswers is how many injected pods' answers a PodInjector keeps by default.
const DefaultMemoAnswers = 256

// DefaultMemoBytes is the memory a PodInjector's answers may keep by default (answerMemo's
// budget): about a thousand answers of the guide's size, so the count bounds it first, unless
// tenants make their objects large.
const DefaultMemoBytes = 4 << 20

// MemoMaxPodBytes is the largest pod (its JSON in the admission request) whose answer is kept:
// a larger pod is injected afresh every time, so that no request makes the memo hash or hold
// megabytes. Pods of this size are rare; their replicas cost one injection each.
const MemoMaxPodBytes = 256 << 10

// MemoLookups counts the answer memo's lookups for pods a chain selects: "hit" (the answer of
// an earlier replica, its inputs unchanged), "stale" (a replica's answer, but what its
// injection read has changed since), "miss".
var MemoLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "cors_webhook_pod_answer_memo_total",
	Help: "Lookups of the pod injector's answer memo for selected pods, by result (hit, stale, miss).",
}, []string{"result"})

// MemoKept is what the answer memo keeps: "answers" and "bytes" (its estimate, bounded by
// --memo-bytes), so that an operator sees it stay within its budget.
var MemoKept = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "cors_webhook_pod_answer_memo_kept",
	Help: "What the pod injector's answer memo keeps, by unit (answers, bytes).",
}, []string{"unit"})

// Memo lookup results, the MemoLookups labels.
const (
	memoHit   = "hit"
	memoStale = "stale"
	memoMiss  = "miss"
)

// answerMemo keeps the answers of injected pods by their replica key. The replicas of a
// workload (a rollout, a scale-up) differ only in what the key leaves out, so all but the first
// are answered without decoding the pod, resolving its policy or writing its patch. An answer
// is used only while inject.Injector.SameInputs holds: the same cluster objects as when it was
// computed, so a change of any of them is seen by the very next admission, as without the memo.
//
// Its store is a boundedmemo.Memo, bounded twice: at most maxAnswers answers, and at most
// maxBytes of what they keep (memoAnswer.size: the answer itself and the objects its inputs
// hold on to). Keys are hashes, so a pod's size never counts; answers found stale are dropped
// at once; when a new answer does not fit, arbitrary ones are dropped until it does.
type answerMemo struct {
	store *boundedmemo.Memo[memoKey, memoAnswer]
}

// memoKey is a replica key's SHA-256 (replicaHash).
type memoKey [sha256.Size]byte

// memoAnswer is what the handler answered for an injected pod.
type memoAnswer struct {
	inputs   *inject.Inputs
	patch    []byte // shared by every answer made from it: never modified
	warnings []string
	// redirectPorts and reasons are for the log line of each injection.
	redirectPorts string
	reasons       []string
	size          int // what keeping it costs (see newMemoAnswer)
}

// memoAnswerOverhead is the fixed part of an answer's size: the entry, its key, the slices'
// headers.
const memoAnswerOverhead = 256

func newMemoAnswer(inputs *inject.Inputs, patch []byte, warnings []string, redirectPorts string, reasons []string) *memoAnswer {
	size := memoAnswerOverhead + len(patch) + len(redirectPorts) + inputs.RetainedBytes()
	for _, list := range [][]string{warnings, reasons} {
		for _, w := range list {
			size += len(w) + 16
		}
	}
	return &memoAnswer{inputs: inputs, patch: patch, warnings: warnings, redirectPorts: redirectPorts, reasons: reasons, size: size}
}

func newAnswerMemo(maxAnswers, maxBytes int) *answerMemo {
	store := boundedmemo.New[memoKey, memoAnswer](maxAnswers, maxBytes, func(answers, bytes int) {
		MemoKept.WithLabelValues("answers").Set(float64(answers))
		MemoKept.WithLabelValues("bytes").Set(float64(bytes))
	})
	if store == nil {
		return nil
	}
	return &answerMemo{store: store}
}

// around is the memo as a decorator of PodInjector.inject: a replica of a pod injected before
// is answered from memory while what its injection read is unchanged (remembered); any other
// pod is injected, and its answer kept.
func (m *answerMemo) around(ctx context.Context, h *PodInjector, req admission.Request, meta *metav1.ObjectMeta, ns *corev1.Namespace, t *inject.Triaged) (admission.Response, string) {
	// The memo is for ordinary pods: a large one is neither hashed nor kept.
	var key memoKey
	memoized := false
	if len(req.Object.Raw) <= MemoMaxPodBytes {
		key, memoized = replicaHash(req.Namespace, req.Object.Raw)
	}
	if memoized {
		if resp, hit, err := m.remembered(ctx, h, key, req.Object.Raw, meta, ns, t); err != nil || hit {
			if err != nil {
				logf.FromContext(ctx).Error(err, "injection could not read the cluster state", "namespace", req.Namespace)
				return admission.Errored(http.StatusInternalServerError, err), outcomeError
			}
			return resp, outcomePatched
		}
	}
	resp, outcome, done := h.inject(ctx, req, ns, t)
	dryRun := req.DryRun != nil && *req.DryRun
	if memoized && done != nil && !dryRun && maps.Equal(meta.Labels, done.pod.Labels) {
		// Dry runs are not kept: nothing is created, so they are no workload's replicas, and a
		// client could otherwise fill the memo without creating a pod.
		// (Labels differ only in a pod whose JSON has its metadata twice: Triage read the
		// first, the decoder merged both; the memo's lookups would read the first.)
		res := done.res
		a := newMemoAnswer(res.Inputs(), done.patch, res.Resolution.Problems, res.Resolution.RedirectPortsValue(), res.Reasons)
		m.store.Put(key, a, a.size)
	}
	return resp, outcome
}

// remembered answers from the memo a pod whose replica key hashes to key when an earlier
// replica was injected and what its injection read is unchanged.
func (m *answerMemo) remembered(ctx context.Context, h *PodInjector, key memoKey, raw []byte, meta *metav1.ObjectMeta, ns *corev1.Namespace, t *inject.Triaged) (admission.Response, bool, error) {
	a := m.store.Get(key)
	if a == nil {
		MemoLookups.WithLabelValues(memoMiss).Inc()
		return admission.Response{}, false, nil
	}
	same, err := h.injector.SameInputs(a.inputs, meta.Labels, ns, t, h.reader)
	if err != nil || !same {
		MemoLookups.WithLabelValues(memoStale).Inc()
		if err == nil {
			m.store.Drop(key, a)
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

// replicaHash is the memo's key of a pod: the hash of its replica key (podjson.ReplicaHash),
// with the values injection never reads masked (inject.ReplicaMask).
func replicaHash(namespace string, raw []byte) (memoKey, bool) {
	return podjson.ReplicaHash(namespace, raw, inject.ReplicaMask)
}
