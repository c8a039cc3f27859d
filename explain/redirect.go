package explain

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/cors-webhook/cors-webhook/contract"
)

// Redirect is the redirect of an injected pod: who installs it (its redirect mode), and,
// for a pod read from a cluster, whether it was validated: in init mode cors-init exited 0
// after installing it; in cni mode the sidecar started, which its startup probe (a connection
// through the redirect to an application port) allows only once the redirect answers.
type Redirect struct {
	Mode string `json:"mode"`
	// Validated is nil when unknown (a pod from files, or one without redirected ports).
	Validated *bool `json:"validated,omitempty"`
}

// RedirectOf reads the redirect of an injected pod; live says its status is the running state.
func RedirectOf(pod *corev1.Pod, live bool) *Redirect {
	s := &Redirect{Mode: contract.RedirectModeInit}
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
