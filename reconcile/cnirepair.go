package reconcile

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/contract"
)

// CNI repair: in the cni redirect mode a pod's redirect is installed once, by its node's
// cors-cni plugin when its sandbox is made. A pod made while the plugin was not in place (the
// node agent not Ready yet, the conflist rewritten by another writer, a node restarted with a
// stale conflist) has no redirect; its sidecar's startup probe, a connection to a redirected
// port, then never passes, so neither the sidecar nor the application starts and the pod never
// serves unproxied. Such a pod is only ever fixed by a new sandbox: the repair deletes it once
// its node's agent is Ready, and its workload makes a new one.
const (
	// ReasonRedirectMissing is the Event reason of a pod the CNI repair deletes.
	ReasonRedirectMissing = "RedirectMissing"
	// DefaultCNIRepairInterval is how often the CNI repair looks at the pods.
	DefaultCNIRepairInterval = 5 * time.Second
	// DefaultCNIStartGrace is how long a pod made after its node's agent became Ready may take
	// to start its sidecar before its redirect counts as missing: the sidecar's startup probe
	// gives up after 30 s.
	DefaultCNIStartGrace = 45 * time.Second
	// cniReadySettle is how long after its node's agent became Ready a pod made before may
	// still start its sidecar: a pod whose sandbox was being made as the agent (re)started may
	// have its redirect, and starts within this.
	cniReadySettle = 10 * time.Second
)

// CNIRepairs counts the pods the CNI repair deleted.
var CNIRepairs = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "cors_webhook_cni_repairs_total",
	Help: "Pods injected in cni mode that were deleted, to be recreated by their workload, because their redirect was missing.",
})

// cniRepair deletes, at a bounded rate, the pods that cniRepairNeeded says need a new sandbox.
type cniRepair struct {
	client   client.Client
	recorder events.EventRecorder
	limiter  *rate.Limiter
	interval time.Duration
	grace    time.Duration
	now      func() time.Time
	log      logr.Logger
}

// NeedLeaderElection: only the leader deletes.
func (r *cniRepair) NeedLeaderElection() bool { return true }

// Start runs the repair every interval until ctx ends.
func (r *cniRepair) Start(ctx context.Context) error {
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if err := r.pass(ctx); err != nil {
				r.log.Error(err, "CNI repair pass")
			}
		}
	}
}

func (r *cniRepair) pass(ctx context.Context) error {
	var agents corev1.PodList
	if err := r.client.List(ctx, &agents, client.MatchingLabels{contract.LabelCNIAgent: "true"}); err != nil {
		return err
	}
	readySince := agentReadySince(agents.Items)
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.MatchingLabels{contract.LabelInjected: "true"}); err != nil {
		return err
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		why := cniRepairNeeded(pod, readySince, r.now(), r.grace)
		if why == "" {
			continue
		}
		if !r.limiter.Allow() {
			return nil // the next pass goes on
		}
		err := r.client.Delete(ctx, pod, client.Preconditions{UID: &pod.UID})
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("deleting %s/%s: %w", pod.Namespace, pod.Name, err)
		}
		CNIRepairs.Inc()
		r.recorder.Eventf(pod, nil, corev1.EventTypeWarning, ReasonRedirectMissing, "Recreate",
			"deleted so that its workload recreates it: %s", why)
		r.log.Info("deleted a pod whose redirect is missing", "pod", client.ObjectKeyFromObject(pod), "why", why)
	}
	return nil
}

// agentReadySince maps each node to when its cors-cni agent became Ready; nodes without a
// Ready agent are absent.
func agentReadySince(agents []corev1.Pod) map[string]time.Time {
	out := map[string]time.Time{}
	for i := range agents {
		a := &agents[i]
		if a.DeletionTimestamp != nil || a.Spec.NodeName == "" {
			continue
		}
		for _, c := range a.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				out[a.Spec.NodeName] = c.LastTransitionTime.Time
			}
		}
	}
	return out
}

// cniRepairNeeded says why pod needs a new sandbox, or "": it is injected in cni mode, owned
// by a workload that will recreate it, running on a node whose agent is Ready, its sidecar
// has not started, and either it was made before the agent became Ready (its sandbox missed the
// plugin; once the agent has been Ready for cniReadySettle) or it has had grace to start since.
func cniRepairNeeded(pod *corev1.Pod, agentReadySince map[string]time.Time, now time.Time, grace time.Duration) string {
	if pod.Annotations[contract.AnnotationRedirectMode] != contract.RedirectModeCNI || pod.DeletionTimestamp != nil ||
		pod.Spec.NodeName == "" || metav1.GetControllerOf(pod) == nil || sidecarStarted(pod) {
		return ""
	}
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed:
		return ""
	}
	ready, ok := agentReadySince[pod.Spec.NodeName]
	if !ok {
		return "" // recreated now, it would miss the redirect again
	}
	created := pod.CreationTimestamp.Time
	switch {
	case created.Before(ready):
		if now.Sub(ready) <= cniReadySettle {
			return ""
		}
		return fmt.Sprintf("it was created at %s, before the cors-cni agent of node %s was Ready (%s), so its sandbox has no redirect and its sidecar cannot start",
			created.UTC().Format(time.RFC3339), pod.Spec.NodeName, ready.UTC().Format(time.RFC3339))
	case now.Sub(created) > grace:
		return fmt.Sprintf("its sidecar has not started %s after it was created on node %s, whose cors-cni agent is Ready: its redirect is missing (was the conflist rewritten?)",
			grace, pod.Spec.NodeName)
	}
	return ""
}

func sidecarStarted(pod *corev1.Pod) bool {
	for _, s := range pod.Status.InitContainerStatuses {
		if s.Name == contract.ContainerSidecar {
			return s.Started != nil && *s.Started
		}
	}
	return false
}
