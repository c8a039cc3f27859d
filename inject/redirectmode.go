package inject

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cors-webhook/cors-webhook/contract"
)

// RedirectMode is who installs an injected pod's nftables redirect.
type RedirectMode string

// The redirect modes (Settings.RedirectMode).
const (
	// RedirectInit: the injected cors-init container, holding NET_ADMIN. Pod Security
	// baseline and restricted refuse it, so their namespaces are skipped.
	RedirectInit RedirectMode = contract.RedirectModeInit
	// RedirectCNI: the node's chained CNI plugin cors-cni, at sandbox creation. No injected
	// container holds a capability: the injected pod passes Pod Security restricted.
	RedirectCNI RedirectMode = contract.RedirectModeCNI
)

// RedirectModes lists the modes, for flag help and errors.
var RedirectModes = []RedirectMode{RedirectInit, RedirectCNI}

// ParseRedirectMode parses a --redirect-mode value; "" is RedirectInit.
func ParseRedirectMode(s string) (RedirectMode, error) {
	switch m := RedirectMode(s); m {
	case "":
		return RedirectInit, nil
	case RedirectInit, RedirectCNI:
		return m, nil
	}
	return "", fmt.Errorf("redirect mode %q is not one of %s, %s", s, RedirectInit, RedirectCNI)
}

// Uninjectable is [Uninjectable] in this mode: in CNI mode, a namespace's Pod Security level
// no longer stands in the way, since nothing injected needs a capability.
func (m RedirectMode) Uninjectable(pod *corev1.Pod, ns *corev1.Namespace) (Outcome, string) {
	if m == RedirectCNI {
		return uninjectablePod(pod)
	}
	return Uninjectable(pod, ns)
}

// cniAnnotations are what CNI mode adds to the pod contract: cors-cni reads them from the
// runtime, not from the API (contract.AnnotationRedirectMode).
func (in *Injector) cniAnnotations(set map[string]string) {
	if in.settings.RedirectMode != RedirectCNI {
		return
	}
	set[contract.AnnotationRedirectMode] = string(RedirectCNI)
	set[contract.AnnotationProxyPort] = port(in.settings.InboundPort)
}

// cniValidated makes the sidecar's startup probe, in CNI mode, the proof that the node's plugin
// installed the redirect: a TCP connection from the kubelet, which comes from the node through
// the pod's interface as any client does, to the first redirected application port. Only the
// redirect can make that port answer: the application containers start after the sidecar's
// startup probe passes (native sidecar), so nothing else listens there yet. Without the
// redirect the sidecar never starts, the application never starts either, and the pod is never
// Ready: it never serves its traffic without CORS, and Day 2 repair recreates it.
func (in *Injector) cniValidated(sidecar corev1.Container, redirect []int32) corev1.Container {
	if in.settings.RedirectMode != RedirectCNI || len(redirect) == 0 {
		return sidecar
	}
	probe := *sidecar.StartupProbe
	probe.ProbeHandler = corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(slices.Min(redirect))}}
	sidecar.StartupProbe = &probe
	return sidecar
}
