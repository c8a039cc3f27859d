package webhook

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The admission metrics of controller-runtime (controller_runtime_webhook_requests_total,
// _latency_seconds, _requests_in_flight, by webhook path) come with the webhook server. These
// add what only the handlers know: why requests were rejected, and how often users are warned.
var (
	// Rejections counts rejected admission requests by kind and reason: the rule behind each
	// field error (validate.Reason, e.g. "chainConflict", "corsConfig", "strict"), counted once
	// per reason per request; "decode" and "internal" for requests that could not be validated.
	Rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_admission_rejections_total",
		Help: "Admission requests rejected by the validating webhook, by kind and reason.",
	}, []string{"kind", "reason"})

	// Warnings counts the admission warnings returned, by kind.
	Warnings = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_admission_warnings_total",
		Help: "Admission warnings returned by the validating webhook, by kind.",
	}, []string{"kind"})

	registerMetrics sync.Once
)

// RegisterMetrics adds the metrics to controller-runtime's registry, which the manager's metrics
// server exposes. It is idempotent.
func RegisterMetrics() {
	registerMetrics.Do(func() {
		metrics.Registry.MustRegister(Rejections, Warnings)
	})
}
