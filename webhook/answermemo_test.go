package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/podjson"
)

// replicaKey is the key replicaHash hashes.
func replicaKey(dst []byte, namespace string, raw []byte) ([]byte, bool) {
	return podjson.ReplicaKey(dst, namespace, raw, inject.ReplicaMask)
}

func keyOf(t *testing.T, raw []byte) string {
	t.Helper()
	key, ok := replicaKey(nil, "ns-050", raw)
	if !ok {
		t.Fatalf("no replica key for %s", raw)
	}
	return string(key)
}

// answerOf is what the handler answers, as the API server sees it.
func answerOf(resp admission.Response) string {
	return fmt.Sprintf("allowed=%v patch=%s warnings=%q result=%v", resp.Allowed, resp.Patch, resp.Warnings, resp.Result)
}

// TestReplicaKeyMasksOnlyWhatInjectionIgnores: the replicas of a pod, which differ in their
// names, uids, creation times, managedFields and token volumes, share one replica key, and the
// injection answers each the same; a change to anything else injection may read gives another
// key.
func TestReplicaKeyMasksOnlyWhatInjectionIgnores(t *testing.T) {
	h := newIndexedTestInjector(t, startCache(t, injectionCluster(true)...))
	h.Memo(0, 0)
	replicas := benchReplicas(t, "app-3", 5)
	base := replicas[0].Object.Raw
	want := answerOf(h.Handle(context.Background(), replicas[0]))
	if !strings.Contains(want, "patch=[") {
		t.Fatalf("the replicas are not injected: %s", want)
	}
	for i, req := range replicas[1:] {
		if keyOf(t, req.Object.Raw) != keyOf(t, base) {
			t.Errorf("replica %d has another key:\n%s\n%s", i+1, req.Object.Raw, base)
		}
		if got := answerOf(h.Handle(context.Background(), req)); got != want {
			t.Errorf("replica %d is answered otherwise:\n%s\nwant\n%s", i+1, got, want)
		}
	}

	token := replicas[0].Object.Raw
	var pod corev1.Pod
	if err := json.Unmarshal(token, &pod); err != nil {
		t.Fatal(err)
	}
	tokenName := pod.Spec.Volumes[0].Name
	for _, tt := range []struct{ name, from, to string }{
		{"a label", `"home":"ns-050"`, `"home":"ns-051"`},
		{"an annotation", `"labels":{`, `"annotations":{"a":"b"},"labels":{`},
		{"generateName", `"generateName":"pipy-ok-v1-5d8f7c9b6-"`, `"generateName":"pipy-ok-v2-5d8f7c9b6-"`},
		{"a container port", `"containerPort":8080`, `"containerPort":8081`},
		{"a container name", `"name":"pipy"`, `"name":"pipy2"`},
		{"hostNetwork", `"spec":{`, `"spec":{"hostNetwork":true,`},
		{"init containers", `"spec":{`, `"spec":{"initContainers":[],`},
		// The injection's own volume name is kept: a pod with it cannot be injected.
		{"the volume named " + contract.VolumePolicy, `"name":"` + tokenName + `","projected"`, `"name":"` + contract.VolumePolicy + `","projected"`},
		{"the volume named so with an escape", `"name":"` + tokenName + `","projected"`, `"name":"cors-webhook\u002dpolicy","projected"`},
		{"a volume mount named " + contract.VolumePolicy, `"name":"` + tokenName + `","readOnly"`, `"name":"` + contract.VolumePolicy + `","readOnly"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			changed := strings.Replace(string(base), tt.from, tt.to, 1)
			if changed == string(base) {
				t.Fatalf("%q is not in %s", tt.from, base)
			}
			if keyOf(t, []byte(changed)) == keyOf(t, base) {
				t.Errorf("same key as the replicas for\n%s", changed)
			}
		})
	}
	if _, ok := replicaKey(nil, "ns", []byte(`{"metadata":`)); ok {
		t.Error("a key for JSON cut short")
	}
}

// switchableReader is the Reader of TestAnswerMemoAgreesWithInjection: a Snapshot of the
// current objects, replaced at each step.
type switchableReader struct{ clusterstate.Reader }

// TestAnswerMemoAgreesWithInjection: through a random walk of cluster changes (PluginConfigs
// edited, added and invalid; Services retargeted and reselected; the namespace's Pod Security
// and opt-out; chains and the Plugin coming and going), replicas of four pod templates are
// answered byte for byte as a handler without the memo answers them, while the memo both
// answers from memory and notices what changed.
func TestAnswerMemoAgreesWithInjection(t *testing.T) {
	const ns = "ns-050"
	rng := rand.New(rand.NewPCG(17, 1))
	version := 0
	objs := map[string]any{} // by kind/name; nil: deleted
	put := func(o interface {
		metav1.Object
		runtime.Object
	}) {
		version++
		o.SetResourceVersion(fmt.Sprint(version))
		key := fmt.Sprintf("%T/%s", o, o.GetName())
		o.SetUID(types.UID(key))
		objs[key] = o
	}
	config := func(name, service, origin string) *v1alpha1.PluginConfig {
		return &v1alpha1.PluginConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.PluginConfigSpec{
			Plugin: "cors-policy", DestinationRefs: []corev1.ObjectReference{{Kind: "Service", Name: service}},
			Config: runtime.RawExtension{Raw: []byte(`{"allowOrigins":[{"exact":"` + origin + `"}]}`)}}}
	}
	service := func(name, app, portName string, target intstr.IntOrString) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": app},
			Ports:    []corev1.ServicePort{{Name: portName, Port: 80, TargetPort: target, Protocol: corev1.ProtocolTCP}}}}
	}
	chain := func(name, app string) *v1alpha1.PluginChain {
		return &v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.PluginChainSpec{
			Chains:    []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-policy"}}},
			Selectors: v1alpha1.ChainSelectorSpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}}}
	}
	namespace := func(labels map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: labels}}
	}
	plugin := func() *v1alpha1.Plugin { return &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}} }
	put(plugin())
	put(namespace(nil))
	put(chain("chain", "app-3"))
	put(config("cors", "web", "https://a.example"))
	put(service("web", "app-3", "http", intstr.FromString("web")))
	put(service("metrics", "app-3", "metrics", intstr.FromInt32(9090)))

	origins := []string{"https://a.example", "https://b.example", "https://c.example"}
	// Each change returns how to undo it when it stops every injection, which the next step
	// does: the walk spends most of its time where pods are injected.
	changes := []func() func(){
		func() func() { put(config("cors", "web", origins[rng.IntN(len(origins))])); return nil },
		func() func() { put(config("cors", "web", "not an origin")); return nil },                   // invalid: ignored, with a warning
		func() func() { put(config("cors-2", "web", origins[rng.IntN(len(origins))])); return nil }, // a conflict
		func() func() { objs["*v1alpha1.PluginConfig/cors-2"] = nil; return nil },
		func() func() { put(config("cors-m", "metrics", origins[rng.IntN(len(origins))])); return nil },
		func() func() { put(service("web", "app-3", "http", intstr.FromInt32(9090))); return nil },
		func() func() { put(service("web", "app-3", "http", intstr.FromString("web"))); return nil },
		func() func() { put(service("web", "other", "http", intstr.FromString("web"))); return nil },
		func() func() { put(service("web2", "app-3", "http-alt", intstr.FromInt32(7070))); return nil },
		func() func() { objs["*v1.Service/web2"] = nil; return nil },
		func() func() { put(namespace(map[string]string{"team": "a"})); return nil },
		func() func() { put(chain("chain-2", "app-3")); return nil },
		func() func() { objs["*v1alpha1.PluginChain/chain-2"] = nil; return nil },
		func() func() {
			put(namespace(map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}))
			return func() { put(namespace(nil)) }
		},
		func() func() {
			put(namespace(map[string]string{contract.LabelNamespaceInject: contract.NamespaceInjectDisabled}))
			return func() { put(namespace(nil)) }
		},
		func() func() { put(chain("chain", "other")); return func() { put(chain("chain", "app-3")) } },
		func() func() { objs["*v1alpha1.Plugin/cors-policy"] = nil; return func() { put(plugin()) } },
	}

	// The templates: the benchmark's pod; one with the injection's volume (a collision); one
	// asking for another port by annotation; one with a label no chain selects.
	templates := []func() *corev1.Pod{
		func() *corev1.Pod { return benchPod("app-3") },
		func() *corev1.Pod {
			p := benchPod("app-3")
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: contract.VolumePolicy})
			return p
		},
		func() *corev1.Pod {
			p := benchPod("app-3")
			p.Annotations = map[string]string{contract.AnnotationInboundPorts: "7070"}
			return p
		},
		func() *corev1.Pod { return benchPod("app-4") },
	}

	reader := &switchableReader{}
	snapshot := func() {
		var live []any
		for _, o := range objs {
			if o != nil {
				live = append(live, o)
			}
		}
		reader.Reader = clusterstate.NewSnapshot(live...)
	}
	memo, fresh := newTestInjector(t, reader), newTestInjector(t, reader)
	fresh.Memo(0, 0)
	lookups := func() (hits, stale float64) {
		return testutil.ToFloat64(MemoLookups.WithLabelValues(memoHit)), testutil.ToFloat64(MemoLookups.WithLabelValues(memoStale))
	}
	hits0, stale0 := lookups()
	outcomes := map[string]int{}
	replica := 0
	var undo func()
	for step := range 400 {
		switch {
		case undo != nil:
			undo()
			undo = nil
		case step > 0:
			undo = changes[rng.IntN(len(changes))]()
		}
		snapshot()
		for range 4 {
			replica++
			tmpl := rng.IntN(len(templates))
			req := replicaReview(t, templates[tmpl](), replica)
			resp := fresh.Handle(context.Background(), req)
			want := answerOf(resp)
			if got := answerOf(memo.Handle(context.Background(), req)); got != want {
				t.Fatalf("step %d, template %d: the memo answers\n%s\nwithout it:\n%s", step, tmpl, got, want)
			}
			outcomes[fmt.Sprintf("patch=%v warnings=%v", len(resp.Patch) > 0, len(resp.Warnings) > 0)]++
		}
	}
	hits, stale := lookups()
	if hits-hits0 < 100 || stale-stale0 < 20 {
		t.Errorf("the memo answered %v times from memory and found %v answers stale: the walk does not exercise it", hits-hits0, stale-stale0)
	}
	if len(outcomes) < 3 {
		t.Errorf("outcomes %v: the walk covers too little", outcomes)
	}
	t.Logf("memo: %v hits, %v stale; answers by kind %v", hits-hits0, stale-stale0, outcomes)
}

// atomicReader is a Reader whose Snapshot is replaced while admissions run.
type atomicReader struct {
	current atomic.Pointer[clusterstate.Snapshot]
}

func (r *atomicReader) Plugin(name string) (*v1alpha1.Plugin, error) {
	return r.current.Load().Plugin(name)
}

func (r *atomicReader) PluginChainsInNamespace(ns string) ([]*v1alpha1.PluginChain, error) {
	return r.current.Load().PluginChainsInNamespace(ns)
}

func (r *atomicReader) PluginChainsWithNamespaceSelector() ([]*v1alpha1.PluginChain, error) {
	return r.current.Load().PluginChainsWithNamespaceSelector()
}

func (r *atomicReader) PluginConfigsForPlugin(ns, plugin string) ([]*v1alpha1.PluginConfig, error) {
	return r.current.Load().PluginConfigsForPlugin(ns, plugin)
}

func (r *atomicReader) PluginConfigsForService(ns, svc string) ([]*v1alpha1.PluginConfig, error) {
	return r.current.Load().PluginConfigsForService(ns, svc)
}

func (r *atomicReader) Namespace(name string) (*corev1.Namespace, error) {
	return r.current.Load().Namespace(name)
}

func (r *atomicReader) Namespaces() ([]*corev1.Namespace, error) {
	return r.current.Load().Namespaces()
}

func (r *atomicReader) Service(ns, name string) (*corev1.Service, error) {
	return r.current.Load().Service(ns, name)
}

func (r *atomicReader) ServicesInNamespace(ns string) ([]*corev1.Service, error) {
	return r.current.Load().ServicesInNamespace(ns)
}

// TestAnswerMemoUnderConcurrentChanges: while four clients admit replicas and the PluginConfig
// is replaced again and again (origin a, then b, ...), every answer is one that some version
// of the cluster gives; once the changes stop, every answer is the current version's.
func TestAnswerMemoUnderConcurrentChanges(t *testing.T) {
	const ns = "ns-050"
	fixed := []any{
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chain"}, Spec: v1alpha1.PluginChainSpec{
			Chains:    []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-policy"}}},
			Selectors: v1alpha1.ChainSelectorSpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "app-3"}}}}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"}, Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "app-3"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("web"), Protocol: corev1.ProtocolTCP}}}},
	}
	origins := []string{"https://a.example", "https://b.example"}
	version := 0
	snapshotWith := func(origin string) *clusterstate.Snapshot {
		version++
		return clusterstate.NewSnapshot(append(slices.Clone(fixed), &v1alpha1.PluginConfig{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cors", UID: "cors", ResourceVersion: fmt.Sprint(version)},
			Spec: v1alpha1.PluginConfigSpec{Plugin: "cors-policy", DestinationRefs: []corev1.ObjectReference{{Kind: "Service", Name: "web"}},
				Config: runtime.RawExtension{Raw: []byte(`{"allowOrigins":[{"exact":"` + origin + `"}]}`)}}})...)
	}
	reader := &atomicReader{}
	fresh := newTestInjector(t, reader)
	fresh.Memo(0, 0)
	valid := map[string]bool{}
	for _, origin := range origins {
		reader.current.Store(snapshotWith(origin))
		valid[answerOf(fresh.Handle(context.Background(), replicaReview(t, benchPod("app-3"), 0)))] = true
	}
	if len(valid) != 2 {
		t.Fatalf("the two versions answer alike: %v", valid)
	}
	memo := newTestInjector(t, reader)
	hits := func() float64 { return testutil.ToFloat64(MemoLookups.WithLabelValues(memoHit)) }
	hits0 := hits()
	reqs := make([]admission.Request, 32)
	for i := range reqs {
		reqs[i] = replicaReview(t, benchPod("app-3"), i)
	}
	stop := make(chan struct{})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if got := answerOf(memo.Handle(context.Background(), reqs[i%len(reqs)])); !valid[got] {
					errs <- got
					return
				}
				admitted.Add(1)
			}
		}()
	}
	// A new version after every 16 admissions, so that most are answered between changes.
	deadline := time.Now().Add(30 * time.Second)
	for i := range 200 {
		for admitted.Load() < int64(16*(i+1)) && len(errs) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%d admissions in 30 s", admitted.Load())
			}
			goruntime.Gosched()
		}
		reader.current.Store(snapshotWith(origins[i%2]))
	}
	close(stop)
	wg.Wait()
	close(errs)
	for got := range errs {
		t.Fatalf("an answer no version of the cluster gives:\n%s", got)
	}
	if hits() == hits0 {
		t.Error("no answer from memory while the clients ran")
	}
	final := snapshotWith(origins[0])
	reader.current.Store(final)
	want := answerOf(fresh.Handle(context.Background(), reqs[0]))
	for i, req := range reqs {
		if got := answerOf(memo.Handle(context.Background(), req)); got != want {
			t.Fatalf("replica %d, after the changes: the memo answers\n%s\nthe cluster:\n%s", i, got, want)
		}
	}
}

// BenchmarkReplicaKey is the memo's key of one replica of benchPod (2.5 KB of JSON): the scan
// and hash every admission of a selected pod makes before the memo is looked up.
func BenchmarkReplicaKey(b *testing.B) {
	raw := benchReplicas(b, "app-3", 1)[0].Object.Raw
	b.ReportAllocs()
	for b.Loop() {
		replicaHash("ns-050", raw)
	}
}
