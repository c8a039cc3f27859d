package reconcile

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
)

// PodsMissingSidecar is the number of running pods that a PluginChain selects for the sidecar
// but that run without it (created while the webhook was unreachable, or before the chain),
// by namespace: the pods whose workloads the reconciler rolls, or that must be recreated by
// hand. It stays above zero while a rollout is halted or a bare pod waits for its owner.
var PodsMissingSidecar = prometheus.NewGaugeVec(prometheus.GaugeOpts{
	Name: "cors_webhook_pods_missing_sidecar",
	Help: "Running pods a PluginChain selects for the CORS sidecar that run without it, by namespace.",
}, []string{"namespace"})

// missingPods is the set behind PodsMissingSidecar, kept by the pod reconciler: a pod is in it
// from the reconcile that finds it selected and not injected until one that finds it injected,
// unselected, finished or gone.
type missingPods struct {
	mu   sync.Mutex
	pods map[types.NamespacedName]struct{}
}

func newMissingPods() *missingPods {
	return &missingPods{pods: map[types.NamespacedName]struct{}{}}
}

// set records whether pod lacks the sidecar it should have, and updates the gauge of its
// namespace when that changes. A nil set records nothing.
func (m *missingPods) set(pod types.NamespacedName, missing bool) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, was := m.pods[pod]
	switch {
	case missing && !was:
		m.pods[pod] = struct{}{}
		PodsMissingSidecar.WithLabelValues(pod.Namespace).Inc()
	case !missing && was:
		delete(m.pods, pod)
		PodsMissingSidecar.WithLabelValues(pod.Namespace).Dec()
	}
}
