package webhook

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
)

// DefaultMemoAnswers is how many injected pods' answers a PodInjector keeps by default.
const DefaultMemoAnswers = 256

// MemoLookups counts the answer memo's lookups for pods a chain selects: "hit" (the answer of
// an earlier replica, its inputs unchanged), "stale" (a replica's answer, but what its
// injection read has changed since), "miss".
var MemoLookups = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "cors_webhook_pod_answer_memo_total",
	Help: "Lookups of the pod injector's answer memo for selected pods, by result (hit, stale, miss).",
}, []string{"result"})

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
// It holds at most max answers; when full, one is dropped for each new one.
type answerMemo struct {
	mu      sync.RWMutex
	answers map[string]*memoAnswer
	max     int
}

// memoAnswer is what the handler answered for an injected pod.
type memoAnswer struct {
	inputs   *inject.Inputs
	patch    []byte // shared by every answer made from it: never modified
	warnings []string
	// redirectPorts and reasons are for the log line of each injection.
	redirectPorts string
	reasons       []string
}

func newAnswerMemo(max int) *answerMemo {
	if max <= 0 {
		return nil
	}
	return &answerMemo{answers: make(map[string]*memoAnswer, max), max: max}
}

func (m *answerMemo) get(key []byte) *memoAnswer {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.answers[string(key)]
}

func (m *answerMemo) put(key []byte, a *memoAnswer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.answers[string(key)]; !ok && len(m.answers) >= m.max {
		for k := range m.answers { // an arbitrary one: the map's order
			delete(m.answers, k)
			break
		}
	}
	m.answers[string(key)] = a
}

// keyBuffers hold replica keys while a request is handled.
var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// masked stands for a value the replica key leaves out: NUL never occurs in JSON text outside
// an escape, so a key cannot be mistaken for another with a value there.
const masked = 0

// replicaKey appends to dst the namespace and the pod's JSON with the values that differ
// between the replicas of one pod template masked, and reports whether it could: raw must be
// the valid JSON of a pod, as in an admission request. Masked are the values of the top-level
// metadata's name, uid, creationTimestamp, resourceVersion and managedFields, and the names of
// the volumes and volume mounts other than the injection's own (contract.VolumePolicy): the
// ServiceAccount admission plugin names each pod's token volume kube-api-access-<random>.
// Injection reads none of these (TestReplicaKeyMasksOnlyWhatInjectionIgnores). Names are
// matched as written: a member whose name has an escape is kept, which only makes the key more
// particular.
func replicaKey(dst []byte, namespace string, raw []byte) ([]byte, bool) {
	s := jsonScan{b: raw}
	var spans [][2]int // the values to mask, in order
	mask := func() {
		start := s.i
		s.skipValue()
		spans = append(spans, [2]int{start, s.i})
	}
	// maskNames masks the member "name" of each object of the array at s.i, unless it is the
	// injection's volume name; with in, those of the array in each object's member in.
	var maskNames func(in string)
	maskNames = func(in string) {
		s.elements(func() {
			s.fields(func(key []byte) bool {
				switch {
				case in == "" && string(key) == "name" && s.peek() == '"':
					start := s.i
					if name, plain := s.str(); plain && string(name) != contract.VolumePolicy {
						spans = append(spans, [2]int{start, s.i})
					}
				case in != "" && string(key) == in:
					maskNames("")
				default:
					return false
				}
				return true
			})
		})
	}
	if s.peek() != '{' {
		return dst, false
	}
	s.fields(func(key []byte) bool {
		switch string(key) {
		case "metadata":
			s.fields(func(key []byte) bool {
				switch string(key) {
				case "name", "uid", "creationTimestamp", "resourceVersion", "managedFields":
					mask()
					return true
				}
				return false
			})
		case "spec":
			s.fields(func(key []byte) bool {
				switch string(key) {
				case "volumes":
					maskNames("")
				case "containers", "initContainers", "ephemeralContainers":
					maskNames("volumeMounts")
				default:
					return false
				}
				return true
			})
		default:
			return false
		}
		return true
	})
	if s.err {
		return dst, false
	}
	dst = append(append(dst, namespace...), masked)
	at := 0
	for _, span := range spans {
		dst = append(append(dst, raw[at:span[0]]...), masked)
		at = span[1]
	}
	return append(dst, raw[at:]...), true
}
