package webhook

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/inject"
)

// TestAnswerMemoStaysWithinItsBudget: whatever answers come, the memo keeps at most its count
// and its bytes, always keeps the newest answer that fits, and never one larger than the
// budget.
func TestAnswerMemoStaysWithinItsBudget(t *testing.T) {
	const maxAnswers, maxBytes = 8, 4096
	m := newAnswerMemo(maxAnswers, maxBytes)
	inputs := &inject.Inputs{}
	for i := range 200 {
		patch := make([]byte, (i*37)%1500)
		a := newMemoAnswer(inputs, patch, nil, "8080", nil)
		key := memoKey{byte(i), byte(i >> 8)}
		m.store.Put(key, a, a.size)
		answers, bytes := m.store.Usage()
		if answers > maxAnswers || bytes > maxBytes {
			t.Fatalf("after %d answers the memo keeps %d answers, %d bytes: over %d, %d", i+1, answers, bytes, maxAnswers, maxBytes)
		}
		if got := m.store.Get(key); got != a {
			t.Fatalf("answer %d (%d bytes) was not kept", i, a.size)
		}
		sum := 0
		for _, kept := range m.store.All {
			sum += kept.size
		}
		if sum != bytes {
			t.Fatalf("the memo counts %d bytes, its answers add up to %d", bytes, sum)
		}
	}
	huge := newMemoAnswer(inputs, make([]byte, maxBytes), nil, "", nil)
	m.store.Put(memoKey{0xff}, huge, huge.size)
	if m.store.Get(memoKey{0xff}) != nil {
		t.Error("an answer larger than the budget was kept")
	}
}

// TestAnswerMemoKeepsNoDryRunLargePodOrStaleAnswer: dry runs and pods over MemoMaxPodBytes are
// answered as always but not kept, and an answer found stale is dropped, not left to hold the
// objects it read.
func TestAnswerMemoKeepsNoDryRunLargePodOrStaleAnswer(t *testing.T) {
	h := newIndexedTestInjector(t, startCache(t, injectionCluster(true)...))
	fresh := newIndexedTestInjector(t, startCache(t, injectionCluster(true)...))
	fresh.Memo(0, 0)
	replicas := benchReplicas(t, "app-3", 3)
	usage := func() int { n, _ := h.MemoUsage(); return n }

	dry := replicas[0]
	dry.DryRun = ptr.To(true)
	if got, want := answerOf(h.Handle(context.Background(), dry)), answerOf(fresh.Handle(context.Background(), dry)); got != want || !strings.Contains(got, "patch=[") {
		t.Fatalf("dry run answered\n%s\nwant\n%s", got, want)
	}
	if n := usage(); n != 0 {
		t.Errorf("a dry run left %d answers in the memo", n)
	}

	large := largeReplica(t, replicas[1], MemoMaxPodBytes+1)
	if got, want := answerOf(h.Handle(context.Background(), large)), answerOf(fresh.Handle(context.Background(), large)); got != want || !strings.Contains(got, "patch=[") {
		t.Fatalf("a large pod answered\n%s\nwant\n%s", got, want)
	}
	if n := usage(); n != 0 {
		t.Errorf("a pod of %d bytes left %d answers in the memo", len(large.Object.Raw), n)
	}

	h.Handle(context.Background(), replicas[2])
	if n := usage(); n != 1 {
		t.Fatalf("an ordinary replica left %d answers in the memo, want 1", n)
	}
	// A stale answer: the memo's inputs no longer the reader's.
	// (Its size is unchanged: it is counted when the answer is made.)
	stale := map[memoKey]*memoAnswer{}
	for k, a := range h.memo.store.All {
		a.inputs = &inject.Inputs{}
		stale[k] = a
	}
	h.Handle(context.Background(), replicas[0])
	for k, a := range stale {
		if h.memo.store.Get(k) == a {
			t.Error("the stale answer is still kept")
		}
	}
	if n := usage(); n != 1 {
		t.Errorf("after a stale lookup the memo keeps %d answers, want the fresh one", n)
	}
}

// largeReplica is req with an environment variable that makes its JSON at least size bytes.
func largeReplica(t *testing.T, req admission.Request, size int) admission.Request {
	t.Helper()
	raw := string(req.Object.Raw)
	const env = `"env":[`
	if !strings.Contains(raw, env) {
		t.Fatalf("no env in %s", raw)
	}
	raw = strings.Replace(raw, env, fmt.Sprintf(`"env":[{"name":"BIG","value":%q},`, strings.Repeat("x", size)), 1)
	req.Object.Raw = []byte(raw)
	return req
}

// The memo's key is the hash of the replica key, made without writing the key out.
func TestReplicaHashIsTheKeysHash(t *testing.T) {
	for i, req := range benchReplicas(t, "app-3", 3) {
		key, ok := replicaKey(nil, "ns-050", req.Object.Raw)
		hash, hok := replicaHash("ns-050", req.Object.Raw)
		if !ok || !hok || hash != sha256.Sum256(key) {
			t.Errorf("replica %d: hash %x, the key's %x", i, hash, sha256.Sum256(key))
		}
	}
}
