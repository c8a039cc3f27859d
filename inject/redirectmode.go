package inject

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

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
