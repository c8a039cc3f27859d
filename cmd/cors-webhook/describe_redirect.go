package main

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/cors-webhook/cors-webhook/contract"
)

// redirectState is the redirect of an injected pod: who installs it (its redirect mode), and,
// for a pod read from a cluster, whether it was validated: in init mode cors-init exited 0
// after installing it; in cni mode the sidecar started, which its startup probe (a connection
// through the redirect to an application port) allows only once the redirect answers.
type redirectState struct {
	Mode string `json:"mode"`
	// Validated is nil when unknown (a pod from files, or one without redirected ports).
	Validated *bool `json:"validated,omitempty"`
}

func redirectOf(pod *corev1.Pod, live bool) *redirectState {
	s := &redirectState{Mode: contract.RedirectModeInit}
	if pod.Annotations[contract.AnnotationRedirectMode] == contract.RedirectModeCNI {
		s.Mode = contract.RedirectModeCNI
	}
	if !live || pod.Annotations[contract.AnnotationRedirectPorts] == "" {
		return s
	}
	validated := false
	for _, c := range pod.Status.InitContainerStatuses {
		switch {
		case s.Mode == contract.RedirectModeInit && c.Name == contract.ContainerInit:
			validated = c.State.Terminated != nil && c.State.Terminated.ExitCode == 0 ||
				c.LastTerminationState.Terminated != nil && c.LastTerminationState.Terminated.ExitCode == 0
		case s.Mode == contract.RedirectModeCNI && c.Name == contract.ContainerSidecar:
			validated = c.Started != nil && *c.Started
		}
	}
	s.Validated = &validated
	return s
}

// line is the describe text line of the redirect.
func (s *redirectState) line() string {
	who := "cors-init (init mode)"
	if s.Mode == contract.RedirectModeCNI {
		who = "the node's cors-cni plugin (cni mode)"
	}
	switch {
	case s.Validated == nil:
		return "installed by " + who
	case *s.Validated && s.Mode == contract.RedirectModeCNI:
		return "installed by " + who + "; validated: the sidecar's startup probe reached it through the redirect"
	case *s.Validated:
		return "installed by " + who + "; validated: cors-init completed"
	case s.Mode == contract.RedirectModeCNI:
		return "installed by " + who + "; NOT validated: the sidecar has not started, so the redirect is missing or the pod is starting (the controller recreates it once its node's cors-cni is Ready)"
	}
	return "installed by " + who + "; NOT validated: cors-init has not completed"
}
