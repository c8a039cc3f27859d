package inject

import (
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/cors"
)

// The pod facts that injection, the Day-2 reconcilers and `describe` all read: one function
// each, so that they cannot read a pod differently.

// OptedOut reports whether a pod opts out of injection, and which opt-out applies:
// PodOptedOut for the pod annotation cors-webhook.io/inject: "false" (any value
// strconv.ParseBool reads as false), NamespaceOptedOut for the namespace label
// cors-webhook.io/inject=disabled. ns may be nil (not known).
func OptedOut(meta *metav1.ObjectMeta, ns *corev1.Namespace) (Outcome, bool) {
	if v, ok := meta.Annotations[contract.AnnotationInject]; ok {
		if b, err := strconv.ParseBool(v); err == nil && !b {
			return PodOptedOut, true
		}
	}
	if ns != nil && ns.Labels[contract.LabelNamespaceInject] == contract.NamespaceInjectDisabled {
		return NamespaceOptedOut, true
	}
	return "", false
}

// HasSidecar reports whether a pod has the CORS sidecar, among its init containers (where
// injection puts it) or its containers (a copied manifest).
func HasSidecar(spec *corev1.PodSpec) bool {
	return hasContainer(spec, contract.ContainerSidecar)
}

func hasContainer(spec *corev1.PodSpec, name string) bool {
	for _, cs := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range cs {
			if cs[i].Name == name {
				return true
			}
		}
	}
	return false
}

// MissingPorts are the ports policy configures that redirect (an injected pod's
// cors-webhook.io/redirect-ports) does not cover, sorted: the drift that only a new pod
// repairs, since its redirect was installed when it started. (The other drift, a policy
// annotation that differs from the resolution's PolicyJSON, is patched in place.)
func MissingPorts(policy cors.PodPolicy, redirect []int32) []int32 {
	var out []int32
	for key := range policy.Ports {
		p, err := strconv.ParseUint(key, 10, 16)
		if err != nil {
			continue // Marshal never writes such a key
		}
		if !slices.Contains(redirect, int32(p)) {
			out = append(out, int32(p))
		}
	}
	slices.Sort(out)
	return out
}
