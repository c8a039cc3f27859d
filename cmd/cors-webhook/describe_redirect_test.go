package main

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/explain"
)

func TestRedirectOf(t *testing.T) {
	cni := map[string]string{contract.AnnotationRedirectMode: contract.RedirectModeCNI, contract.AnnotationRedirectPorts: "8080"}
	initMode := map[string]string{contract.AnnotationRedirectPorts: "8080"}
	sidecar := func(started bool) []corev1.ContainerStatus {
		return []corev1.ContainerStatus{{Name: contract.ContainerSidecar, Started: ptr.To(started)}}
	}
	initDone := func(code int32) []corev1.ContainerStatus {
		return []corev1.ContainerStatus{{Name: contract.ContainerInit, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}}
	}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		statuses    []corev1.ContainerStatus
		live        bool
		want        string
	}{
		{"cni, from files", cni, nil, false, "installed by the node's cors-cni plugin (cni mode)"},
		{"cni, sidecar started", cni, sidecar(true), true, "cni mode); validated"},
		{"cni, sidecar not started", cni, sidecar(false), true, "NOT validated: the sidecar has not started"},
		{"init, cors-init done", initMode, initDone(0), true, "cors-init (init mode); validated"},
		{"init, cors-init failed", initMode, initDone(1), true, "NOT validated: cors-init has not completed"},
		{"no redirected port", map[string]string{}, nil, true, "installed by cors-init (init mode)"},
	} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: tc.annotations}, Status: corev1.PodStatus{InitContainerStatuses: tc.statuses}}
		if got := redirectLine(explain.RedirectOf(pod, tc.live)); !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want it to contain %q", tc.name, got, tc.want)
		}
	}
}
