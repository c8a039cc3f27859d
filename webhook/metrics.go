package webhook

import (
	"crypto/x509"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/cors-webhook/cors-webhook/validate"
)

// The admission metrics of controller-runtime (controller_runtime_webhook_requests_total,
// _latency_seconds, _requests_in_flight, by webhook path) come with the webhook server. These
// add what only the handlers know: why requests were rejected, how often users are warned, and
// when the serving certificate expires.
var (
	// Rejections counts rejected admission requests by kind and reason, once per request: the
	// reason is the rule of the request's first field error (validate.Reason, e.g.
	// "chainConflict", "corsConfig", "limit", "strict"), or "decode" and "internal" for requests
	// that could not be validated. Every kind and reason exists from the start, at zero.
	Rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_admission_rejections_total",
		Help: "Admission requests rejected by the validating webhook, by kind and the reason of the first error.",
	}, []string{"kind", "reason"})

	// Warnings counts the admission warnings returned, by kind.
	Warnings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_admission_warnings_total",
		Help: "Admission warnings returned by the validating webhook, by kind.",
	}, []string{"kind"})

	// ServingCertificateExpiry is the NotAfter of the certificate the webhook server serves, in
	// Unix seconds, read at each scrape; 0 while there is none. Alert well before it: the API
	// server refuses an expired certificate, and then pods are created without the sidecar.
	ServingCertificateExpiry = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cors_webhook_serving_certificate_expiry_timestamp_seconds",
		Help: "Expiry (NotAfter) of the webhook's serving certificate, in Unix seconds; 0 while none is loaded.",
	}, servingCertificateExpiry)

	// The injection metrics in the shape of Istio's sidecar_injection_* family (requests,
	// success, skip, failure), by the pod's namespace, so that an operator can tell which
	// tenant's pods were skipped or failed. The namespace is the only per-object label: pod
	// names would make a series per pod. Injections has the same admissions without it.
	InjectionRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_sidecar_injection_requests_total",
		Help: "Pod creations the mutating webhook was asked about, by namespace.",
	}, []string{"namespace"})
	InjectionSuccesses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_sidecar_injection_success_total",
		Help: "Pod creations answered with the sidecar patch, by namespace (the API server may still refuse the pod).",
	}, []string{"namespace"})
	InjectionSkips = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_sidecar_injection_skip_total",
		Help: "Pod creations admitted without the sidecar, by namespace and reason (not-selected, pod-opted-out, host-network, pod-security, ...).",
	}, []string{"namespace", "reason"})
	InjectionFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_sidecar_injection_failure_total",
		Help: "Pod creations the mutating webhook could not handle (the pod is admitted without the sidecar: the webhook fails open), by namespace.",
	}, []string{"namespace"})

	servingLeaf atomic.Pointer[func() (*x509.Certificate, error)]

	registerMetrics sync.Once
)

// Reasons that are not field errors.
const (
	reasonDecode   = "decode"
	reasonInternal = "internal"
)

// validatedKinds are the kinds of the validating webhooks, for label values.
var validatedKinds = []string{"Plugin", "PluginChain", "PluginConfig"}

// RegisterMetrics adds the metrics to controller-runtime's registry, which the manager's metrics
// server exposes, with every rejection reason present. It is idempotent.
func RegisterMetrics() {
	registerMetrics.Do(func() {
		metrics.Registry.MustRegister(Rejections, Warnings, ServingCertificateExpiry,
			InjectionRequests, InjectionSuccesses, InjectionSkips, InjectionFailures)
		for _, kind := range validatedKinds {
			Warnings.WithLabelValues(kind)
			for _, r := range append([]string{reasonDecode, reasonInternal}, validate.Reasons...) {
				Rejections.WithLabelValues(kind, r)
			}
		}
	})
}

// SetServingCertificate names where ServingCertificateExpiry reads the served certificate
// (certs.ServingLeaf).
func SetServingCertificate(leaf func() (*x509.Certificate, error)) { servingLeaf.Store(&leaf) }

func servingCertificateExpiry() float64 {
	leaf := servingLeaf.Load()
	if leaf == nil {
		return 0
	}
	c, err := (*leaf)()
	if err != nil || c == nil {
		return 0
	}
	return float64(c.NotAfter.Unix())
}

// countInjection adds one pod admission with its Injections outcome to the per-namespace
// injection metrics.
func countInjection(namespace, outcome string) {
	InjectionRequests.WithLabelValues(namespace).Inc()
	switch outcome {
	case outcomePatched:
		InjectionSuccesses.WithLabelValues(namespace).Inc()
	case outcomeError:
		InjectionFailures.WithLabelValues(namespace).Inc()
	default:
		InjectionSkips.WithLabelValues(namespace, outcome).Inc()
	}
}
