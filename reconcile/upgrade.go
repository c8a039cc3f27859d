package reconcile

import (
	"crypto/sha256"
	"encoding/hex"

	corev1 "k8s.io/api/core/v1"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
)

// outdatedSidecar reports whether an injected pod that a chain still selects runs a sidecar
// older than the injector's image (inject.SidecarOutdated on its sidecar-version annotation).
// Pods no chain selects are left alone: rolling them would remove the sidecar, which is the
// business of the chain's own change.
func outdatedSidecar(pod *corev1.Pod, res *inject.Resolution, in *inject.Injector) bool {
	if res == nil || !res.Selected || !inject.HasSidecar(&pod.Spec) {
		return false
	}
	return inject.SidecarOutdated(pod.Annotations[contract.AnnotationSidecarVersion], inject.SidecarVersion(in.Settings().SidecarImage))
}

// upgradeToken is the rollout token of a sidecar upgrade: the token of the chains' change
// combined with the sidecar version.
func upgradeToken(token, version string) string {
	h := sha256.Sum256([]byte(token + "\x00" + version))
	return hex.EncodeToString(h[:])[:16]
}
