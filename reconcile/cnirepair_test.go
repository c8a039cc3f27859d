package reconcile

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/cors-webhook/cors-webhook/contract"
)

func TestCNIRepairNeeded(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	agent := func(node string, ready bool, since time.Time) corev1.Pod {
		status := corev1.ConditionFalse
		if ready {
			status = corev1.ConditionTrue
		}
		return corev1.Pod{Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
			{Type: corev1.PodReady, Status: status, LastTransitionTime: metav1.NewTime(since)}}}}
	}
	readySince := agentReadySince([]corev1.Pod{agent("n1", true, t0), agent("n2", false, t0)})
	type podOpt func(*corev1.Pod)
	pod := func(opts ...podOpt) *corev1.Pod {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: "web-1", Namespace: "shop", CreationTimestamp: metav1.NewTime(t0.Add(-time.Minute)),
				Annotations:     map[string]string{contract.AnnotationRedirectMode: contract.RedirectModeCNI},
				OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web", Controller: ptr.To(true)}},
			},
			Spec: corev1.PodSpec{NodeName: "n1"},
			Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
				{Name: contract.ContainerSidecar, Started: ptr.To(false)}}},
		}
		for _, o := range opts {
			o(p)
		}
		return p
	}
	createdAt := func(at time.Time) podOpt { return func(p *corev1.Pod) { p.CreationTimestamp = metav1.NewTime(at) } }
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		now  time.Time
		want string // a word of the reason; "" for no repair
	}{
		{"created before its node's agent was Ready", pod(), t0.Add(15 * time.Second), "before the cors-cni agent"},
		{"created before, the agent Ready only just: it may still start", pod(), t0.Add(5 * time.Second), ""},
		{"created after, sidecar not started within the grace", pod(createdAt(t0.Add(time.Second))), t0.Add(time.Minute), "has not started"},
		{"created after, still within the grace", pod(createdAt(t0.Add(time.Second))), t0.Add(10 * time.Second), ""},
		{"sidecar started", pod(func(p *corev1.Pod) { p.Status.InitContainerStatuses[0].Started = ptr.To(true) }), t0.Add(time.Minute), ""},
		{"no sidecar status yet, created before the agent", pod(func(p *corev1.Pod) { p.Status.InitContainerStatuses = nil }), t0.Add(15 * time.Second), "before"},
		{"its node's agent is not Ready: recreating would not help", pod(func(p *corev1.Pod) { p.Spec.NodeName = "n2" }), t0.Add(time.Minute), ""},
		{"a node without an agent", pod(func(p *corev1.Pod) { p.Spec.NodeName = "n3" }), t0.Add(time.Minute), ""},
		{"not scheduled", pod(func(p *corev1.Pod) { p.Spec.NodeName = "" }), t0.Add(time.Minute), ""},
		{"init mode", pod(func(p *corev1.Pod) { delete(p.Annotations, contract.AnnotationRedirectMode) }), t0.Add(time.Minute), ""},
		{"a bare pod: nothing would recreate it", pod(func(p *corev1.Pod) { p.OwnerReferences = nil }), t0.Add(time.Minute), ""},
		{"terminating", pod(func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(t0)) }), t0.Add(time.Minute), ""},
		{"finished", pod(func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), t0.Add(time.Minute), ""},
	} {
		got := cniRepairNeeded(tc.pod, readySince, tc.now, DefaultCNIStartGrace)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
