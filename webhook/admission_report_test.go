package webhook

import (
	"context"
	"fmt"
	goruntime "runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/validate"
)

// BenchmarkAdmissionReport is `make bench-admission`: in one run, the pod handler's latency
// and allocations (1,000 seed-style chains, 10,000 Services), the HTTPS reviews/s of the
// injector against a no-op handler on the same server, and the validation of a PluginChain
// among 10,000. It prints the five lines docs/benchmarks.md records. Run it once:
//
//	go test -run '^$' -bench '^BenchmarkAdmissionReport$' -benchtime=1x ./webhook
func BenchmarkAdmissionReport(b *testing.B) {
	h := newIndexedTestInjector(b, startCache(b, injectionCluster(true)...))
	var lines []string
	for _, tc := range []struct {
		name, app string
		want      inject.Outcome
	}{{"inject-selected", "app-3", inject.Injected}, {"inject-unselected", "batch-42", inject.NotSelected}} {
		reqs := benchReplicas(b, tc.app, 64)
		checkOutcome(b, h, reqs[0], tc.want)
		i := 0
		handle := func() { h.Handle(context.Background(), reqs[i%len(reqs)]); i++ }
		p50, p99 := latency(handle, 2*time.Second)
		allocs := testing.AllocsPerRun(200, handle)
		lines = append(lines, fmt.Sprintf("%s p50=%.1f p99=%.1f allocs=%.0f", tc.name, p50, p99, allocs))
	}

	ratios := admissionRatios(b, h, 10)
	lines = append(lines, fmt.Sprintf("reviews inject/noop all-injected=%.2f one-in-ten=%.2f none=%.2f",
		ratios["selected"], ratios["mixed"], ratios["unselected"]))

	r := newCacheReader(b, startCache(b, clusterOf10k()...))
	// The namespaces of clusterOf10k's cluster-wide chains, and the new chain's, are
	// cluster-chain namespaces (--cluster-chain-namespaces): otherwise every chain is confined
	// to its own namespace and "cluster-wide" would compare only that one.
	opts := validate.Options{Plugins: chains.NewPlugins("cors-policy", "cors-b"),
		Tenancy: chains.Tenancy{ClusterNamespaces: []string{"ns-0501"}}}
	for i := 0; i < 1000; i += 10 {
		opts.Tenancy.ClusterNamespaces = append(opts.Tenancy.ClusterNamespaces, fmt.Sprintf("ns-%04d", i))
	}
	newApp := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{"new-app"}}}}
	for _, tc := range []struct {
		name       string
		namespaces *metav1.LabelSelector
	}{
		// Reaches the 500 env=prod namespaces: 4,500 chains there and the 100 cluster-wide ones.
		{"cluster-wide", selector(map[string]string{"env": "prod"})},
		{"own-namespace", nil},
	} {
		c := chain("ns-0501", "new", "cors-policy", newApp, tc.namespaces)
		if errs, _ := validate.PluginChainCreate(r, c, opts); len(errs) != 0 {
			b.Fatalf("%s: %v", tc.name, errs)
		}
		p50, _ := latency(func() { validate.PluginChainCreate(r, c, opts) }, time.Second)
		lines = append(lines, fmt.Sprintf("validate-chain %s chains=10000 %.3f ms", tc.name, p50/1e3))
	}
	for b.Loop() {
	}
	for _, l := range lines {
		fmt.Println(l)
	}
}

// latency calls f for about d (after a garbage collection) and returns the median and 99th
// percentile of the calls, in µs.
func latency(f func(), d time.Duration) (p50, p99 float64) {
	f()
	goruntime.GC()
	var durations []time.Duration
	for end := time.Now().Add(d); time.Now().Before(end) || len(durations) < 100; {
		start := time.Now()
		f()
		durations = append(durations, time.Since(start))
	}
	slices.Sort(durations)
	at := func(q float64) float64 {
		return float64(durations[int(q*float64(len(durations)-1))].Nanoseconds()) / 1e3
	}
	return at(0.50), at(0.99)
}

// admissionRatios serves the injector and a no-op handler on one HTTPS webhook server and
// returns, per workload ("unselected", "mixed": one selected pod in ten, "selected", and
// "fixed-answer": the injected pod's answer returned without any work, the floor of what an
// answer that size costs), the median over rounds of its reviews/s divided by the no-op's. The two take turns,
// half a second each, a garbage collection before each turn, 16 concurrent clients: on a shared
// machine only turns close in time compare under the same conditions.
func admissionRatios(b *testing.B, h *PodInjector, rounds int) map[string]float64 {
	// The injected pod's answer, computed once: "/fixed" returns it without reading the
	// request, so its ratio is the most any injector can reach with answers of that size.
	injected := h.Handle(context.Background(), podReview(b, benchPod("app-3"), admissionv1.Create))
	base, client := startWebhookServer(b, map[string]admission.Handler{
		MutatePodPath: h,
		"/noop":       admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") }),
		"/fixed":      admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return injected }),
	})
	bodies := replicaBodies(b)
	const workers = 16
	rate := func(path string, bodies [][]byte, d time.Duration) float64 {
		goruntime.GC()
		var total atomic.Int64
		deadline := time.Now().Add(d)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; time.Now().Before(deadline); i++ {
					post(b, client, base+path, bodies[i%len(bodies)])
					total.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(total.Load()) / d.Seconds()
	}
	rate("/noop", bodies.unselected, 300*time.Millisecond) // warm up the connections
	out := map[string]float64{}
	for _, w := range []struct {
		name, path string
		bodies     [][]byte
	}{
		{"unselected", MutatePodPath, bodies.unselected},
		{"mixed", MutatePodPath, bodies.mixed},
		{"selected", MutatePodPath, bodies.selected},
		{"fixed-answer", "/fixed", bodies.selected},
	} {
		var noop, injected, ratio []float64
		for range rounds {
			n := rate("/noop", bodies.unselected, 500*time.Millisecond)
			i := rate(w.path, w.bodies, 500*time.Millisecond)
			noop, injected, ratio = append(noop, n), append(injected, i), append(ratio, i/n)
		}
		b.ReportMetric(median(noop), w.name+"-noop-reviews/s")
		b.ReportMetric(median(injected), w.name+"-inject-reviews/s")
		b.ReportMetric(median(ratio), w.name+"-ratio")
		out[w.name] = median(ratio)
	}
	return out
}
