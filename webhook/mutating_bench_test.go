package webhook

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/podjson"
)

// injectionCluster is the benchmark's cluster: 1,000 PluginChains and 10,000 Services in 100
// namespaces. In each namespace, chain j (j < 10) mounts cors-policy for app=app-j, with a
// PluginConfig of Service svc-j; each app has two Services (svc-j, "http" on 8080, and
// svc-(10+j), "metrics" on 9090) and the other 80 Services select batch pods no chain selects.
//
// seedStyle gives every chain a namespaceSelector, as the seed guide's chain has one
// (openservicemesh.io/monitored-by In [fsm], which every namespace here carries): then every
// pod admission considers all 1,000 chains. Otherwise chains select their own namespace, and
// chain 0 of every tenth namespace is cluster-wide (10 chains).
func injectionCluster(seedStyle bool) []client.Object {
	objs := []client.Object{&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}}}
	for i := range 100 {
		ns := fmt.Sprintf("ns-%03d", i)
		objs = append(objs, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
			corev1.LabelMetadataName: ns, "team": fmt.Sprintf("t%d", i%10), "openservicemesh.io/monitored-by": "fsm",
		}}})
		for j := range 10 {
			c := &v1alpha1.PluginChain{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("chain-%d", j)},
				Spec: v1alpha1.PluginChainSpec{
					Chains: []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"cors-policy"}}},
					Selectors: v1alpha1.ChainSelectorSpec{PodSelector: &metav1.LabelSelector{
						MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", j)},
						MatchExpressions: []metav1.LabelSelectorRequirement{
							{Key: "app", Operator: metav1.LabelSelectorOpIn, Values: []string{fmt.Sprintf("app-%d", j)}}},
					}},
				},
			}
			switch {
			case seedStyle:
				c.Spec.Selectors.NamespaceSelector = &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "openservicemesh.io/monitored-by", Operator: metav1.LabelSelectorOpIn, Values: []string{"fsm"}}}}
				// Only the chains of the pod's own namespace select its app: the others are
				// for apps of their own (app-j-in-ns-i).
				c.Spec.Selectors.PodSelector.MatchLabels["home"] = ns
			case j == 0 && i%10 == 0:
				c.Spec.Selectors.PodSelector.MatchLabels["app"] = fmt.Sprintf("global-%d", i)
				c.Spec.Selectors.PodSelector.MatchExpressions[0].Values[0] = fmt.Sprintf("global-%d", i)
				c.Spec.Selectors.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": fmt.Sprintf("t%d", i/10)}}
			}
			objs = append(objs, c, &v1alpha1.PluginConfig{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("cors-%d", j)},
				Spec: v1alpha1.PluginConfigSpec{
					Plugin:          "cors-policy",
					DestinationRefs: []corev1.ObjectReference{{Kind: "Service", Name: fmt.Sprintf("svc-%d", j)}},
					Config: runtime.RawExtension{Raw: []byte(`{"allowOrigins":[{"exact":"https://app.example"},{"prefix":"https://dev.app.example"}],` +
						`"allowMethods":["GET","POST"],"allowCredentials":true,"maxAge":"1h"}`)},
				},
			})
		}
		for k := range 100 {
			svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("svc-%d", k)}}
			switch {
			case k < 10:
				svc.Spec.Selector = map[string]string{"app": fmt.Sprintf("app-%d", k)}
				svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("web"), Protocol: corev1.ProtocolTCP}}
			case k < 20:
				svc.Spec.Selector = map[string]string{"app": fmt.Sprintf("app-%d", k-10)}
				svc.Spec.Ports = []corev1.ServicePort{{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9090), Protocol: corev1.ProtocolTCP}}
			default:
				svc.Spec.Selector = map[string]string{"app": fmt.Sprintf("batch-%d", k)}
				svc.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080), Protocol: corev1.ProtocolTCP}}
			}
			objs = append(objs, svc)
		}
	}
	// As the API server sends them: the injector caches compiled PluginConfigs by UID and
	// resourceVersion.
	for i, o := range objs {
		o.SetUID(types.UID(fmt.Sprintf("uid-%d", i)))
		o.SetResourceVersion("1")
	}
	return objs
}

// benchPod is a pod as the API server sends it for admission when a ReplicaSet creates it in
// ns-050 (2.4 KB of JSON): app=app-3 is selected by chain-3; app=batch-42 (most pods of a
// cluster) by no chain.
func benchPod(app string) *corev1.Pod {
	pod := replicaSetPod(map[string]string{"app": app, "home": "ns-050", "pod-template-hash": "5d8f7c9b6"})
	pod.Namespace = "ns-050"
	pod.Spec.Containers[0].Ports = []corev1.ContainerPort{
		{Name: "web", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
		{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
	}
	pod.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "LOG_LEVEL", Value: "info"}, {Name: "PORT", Value: "8080"}}
	pod.Spec.Volumes = []corev1.Volume{{Name: "kube-api-access", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptrInt64(3607)}}}}}}}
	pod.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "kube-api-access", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true}}
	// The API server records field ownership before admission, so pods arrive with it.
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{
		Manager: "kube-controller-manager", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1",
		Time: &metav1.Time{Time: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)}, FieldsType: "FieldsV1",
		FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:home":{},"f:pod-template-hash":{}},` +
			`"f:ownerReferences":{".":{},"k:{\"uid\":\"rs-uid\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"pipy\"}":{".":{},"f:env":{".":{},` +
			`"k:{\"name\":\"LOG_LEVEL\"}":{".":{},"f:name":{},"f:value":{}},"k:{\"name\":\"PORT\"}":{".":{},"f:name":{},"f:value":{}}},"f:image":{},` +
			`"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":8080,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},` +
			`"f:protocol":{}},"k:{\"containerPort\":9090,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:name":{},"f:protocol":{}}},"f:resources":{},` +
			`"f:terminationMessagePath":{},"f:terminationMessagePolicy":{},"f:volumeMounts":{".":{},"k:{\"mountPath\":\"/var/run/secrets/kubernetes.io/serviceaccount\"}":` +
			`{".":{},"f:mountPath":{},"f:name":{},"f:readOnly":{}}}}},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},` +
			`"f:securityContext":{},"f:serviceAccount":{},"f:serviceAccountName":{},"f:terminationGracePeriodSeconds":{},"f:volumes":{".":{},` +
			`"k:{\"name\":\"kube-api-access\"}":{".":{},"f:name":{},"f:projected":{}}}}}`)},
	}}
	return pod
}

func ptrInt64(v int64) *int64 { return &v }

// benchReplicas are n admission requests for replicas of benchPod(app), as a ReplicaSet's pods
// reach the webhook: each has its own name, uid and creation time (in its managedFields too),
// its own token volume from the ServiceAccount admission plugin (kube-api-access-<random>), and
// its own review uid.
func benchReplicas(tb testing.TB, app string, n int) []admission.Request {
	tb.Helper()
	reqs := make([]admission.Request, n)
	for i := range reqs {
		reqs[i] = replicaReview(tb, benchPod(app), i)
	}
	return reqs
}

// replicaReview is the admission request of replica i of a pod shaped as benchPod (one token
// volume, mounted by its first container).
func replicaReview(tb testing.TB, pod *corev1.Pod, i int) admission.Request {
	tb.Helper()
	suffix := fmt.Sprintf("%05x", i*7919+12345)[:5]
	pod.Name = pod.GenerateName + suffix
	pod.UID = types.UID(fmt.Sprintf("0b6e4d2a-%04x-4c1e-9a7f-%012x", i, i*31))
	created := time.Date(2026, 11, 26, 0, 0, i, 0, time.UTC)
	pod.CreationTimestamp = metav1.Time{Time: created}
	pod.ManagedFields[0].Time = &metav1.Time{Time: created}
	token := "kube-api-access-" + suffix
	pod.Spec.Volumes[0].Name = token
	pod.Spec.Containers[0].VolumeMounts[0].Name = token
	req := podReview(tb, pod, admissionv1.Create)
	req.UID = types.UID(fmt.Sprintf("review-%d", i))
	return req
}

var benchCases = []struct {
	name, app string
	want      inject.Outcome
	memo      bool
}{
	{"unselected-pod", "batch-42", inject.NotSelected, true},
	{"selected-pod", "app-3", inject.Injected, true},
	// Every replica injected afresh: the first replica of a workload, or a chain, config or
	// Service changed since the last one.
	{"selected-pod-no-memo", "app-3", inject.Injected, false},
}

// BenchmarkPodInjectorHandle measures the pod handler (decode, match, resolve, patch) against
// 1,000 PluginChains and 10,000 Services in a real informer cache with the server's indexes,
// over 64 replicas of one pod, and reports the latency percentiles (see docs/benchmarks.md).
func BenchmarkPodInjectorHandle(b *testing.B) {
	for _, shape := range []struct {
		name      string
		seedStyle bool
	}{{"own-namespace-chains", false}, {"seed-style-chains", true}} {
		b.Run(shape.name, func(b *testing.B) {
			h := newIndexedTestInjector(b, startCache(b, injectionCluster(shape.seedStyle)...))
			for _, tc := range benchCases {
				b.Run(tc.name, func(b *testing.B) {
					h := *h
					if !tc.memo {
						h.Memo(0, 0)
					}
					reqs := benchReplicas(b, tc.app, 64)
					checkOutcome(b, &h, reqs[0], tc.want)
					durations := make([]time.Duration, 0, 1<<16)
					b.ReportAllocs()
					for i := 0; b.Loop(); i++ {
						start := time.Now()
						h.Handle(context.Background(), reqs[i%len(reqs)])
						if len(durations) < cap(durations) {
							durations = append(durations, time.Since(start))
						}
					}
					reportPercentiles(b, durations)
				})
			}
		})
	}
}

// newIndexedTestInjector is the handler as the server builds it over a cache: the cache-backed
// Reader with the PluginChain index.
func newIndexedTestInjector(b testing.TB, c cache.Cache) *PodInjector {
	b.Helper()
	h := newTestInjector(b, nil)
	h.reader = newCacheReaderFor(b, c, h.injector.Selection())
	return h
}

func checkOutcome(b testing.TB, h *PodInjector, req admission.Request, want inject.Outcome) {
	b.Helper()
	resp := h.Handle(context.Background(), req)
	if !resp.Allowed || (want == inject.Injected) != (len(resp.Patch) > 0) {
		b.Fatalf("want %s; got allowed=%v with %d patches (%v)", want, resp.Allowed, len(resp.Patch), resp.Result)
	}
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 { return float64(d[int(q*float64(len(d)-1))].Nanoseconds()) / 1e3 }
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}

// BenchmarkAdmissionHTTPS is the load test: AdmissionReviews over HTTPS, with keep-alive
// connections as the API server keeps them, to one controller-runtime webhook server (TLS as
// `serve` configures it) serving both the pod injector (over the 1,000-chain, 10,000-Service
// cache) and a no-op handler that allows everything. The figure is the ratio of the injector's
// reviews/s to the no-op's: what injection costs on top of the admission round trip.
func BenchmarkAdmissionHTTPS(b *testing.B) {
	h := newIndexedTestInjector(b, startCache(b, injectionCluster(true)...))
	base, client := startWebhookServer(b, map[string]admission.Handler{
		MutatePodPath: h,
		"/noop":       admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") }),
	})
	bodies := replicaBodies(b)
	for _, tc := range []struct {
		name, path string
		bodies     [][]byte
	}{
		{"noop", "/noop", bodies.unselected},
		{"inject-unselected-pod", MutatePodPath, bodies.unselected},
		{"inject-selected-pod", MutatePodPath, bodies.selected},
		{"inject-mixed-1-in-10-selected", MutatePodPath, bodies.mixed},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for _, body := range tc.bodies {
				post(b, client, base+tc.path, body)
			}
			b.SetParallelism(8) // 16 concurrent requests on 2 cores, as a busy API server sends them
			b.ReportAllocs()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for i := 0; pb.Next(); i++ {
					post(b, client, base+tc.path, tc.bodies[i%len(tc.bodies)])
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "reviews/s")
		})
	}
}

// BenchmarkAdmissionHTTPSRatio is the load test's figure, made robust to a shared, noisy
// machine (admissionRatios). Run it once:
//
//	go test -run '^$' -bench AdmissionHTTPSRatio -benchtime 1x ./webhook
func BenchmarkAdmissionHTTPSRatio(b *testing.B) {
	h := newIndexedTestInjector(b, startCache(b, injectionCluster(true)...))
	for b.Loop() {
		admissionRatios(b, h, 10)
	}
}

// reviewBodies are the AdmissionReviews of the load tests: 64 replicas each of a pod no
// chain selects and of one a chain selects, and the mixed workload, one selected pod in ten (a
// cluster where a tenth of the workloads use CORS).
type reviewBodies struct{ unselected, selected, mixed [][]byte }

func replicaBodies(b *testing.B) reviewBodies {
	var out reviewBodies
	selected, unselected := benchReplicas(b, "app-3", 64), benchReplicas(b, "batch-42", 64)
	for i := range 64 {
		out.selected = append(out.selected, reviewBody(b, selected[i]))
		out.unselected = append(out.unselected, reviewBody(b, unselected[i]))
		out.mixed = append(out.mixed, out.unselected[i])
		if i%9 == 8 {
			out.mixed = append(out.mixed, out.selected[i])
		}
	}
	return out
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

func reviewBody(b *testing.B, req admission.Request) []byte {
	b.Helper()
	review := admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request:  &req.AdmissionRequest,
	}
	body, err := json.Marshal(review)
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// post sends one review and reads the answer to its end (so the connection is reused), keeping
// it only when the status is not 200: like the API server, the client reads every byte, but
// it does not grow a buffer for each answer, which would make the client side of a large
// answer (an injected pod's patch) cost more on the shared cores than the webhook's own work.
func post(b *testing.B, c *http.Client, url string, body []byte) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Error(err)
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, err := io.ReadAll(resp.Body)
		b.Errorf("%s: %s %v %s", url, resp.Status, err, data)
		return
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		b.Errorf("%s: reading the answer: %v", url, err)
	}
}

// startWebhookServer runs a controller-runtime webhook server on 127.0.0.1 with a fresh
// self-signed certificate and HTTP/1.1 only (as `serve` runs it), and returns its base URL and
// a client that trusts it.
func startWebhookServer(b *testing.B, handlers map[string]admission.Handler) (string, *http.Client) {
	b.Helper()
	dir := b.TempDir()
	certPEM := writeSelfSignedCert(b, dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: dir,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }},
	})
	for path, h := range handlers {
		srv.Register(path, &admission.Webhook{Handler: h})
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool},
		MaxIdleConnsPerHost: 64,
	}}
	base := "https://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := srv.StartedChecker()(nil); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("webhook server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return base, client
}

func writeSelfSignedCert(b *testing.B, dir string) []byte {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cors-webhook-bench"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		b.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		b.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		b.Fatal(err)
	}
	return certPEM
}

// BenchmarkDecodePod is the handler's decoding of a selected pod as the API server sends it
// (benchPod: 2.4 KB of JSON, more than half of it managedFields).
func BenchmarkDecodePod(b *testing.B) {
	raw, err := json.Marshal(benchPod("app-3"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := podjson.DecodePod(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWithoutManagedFields(b *testing.B) {
	raw, err := json.Marshal(benchPod("app-3"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		podjson.WithoutManagedFields(raw)
	}
}
