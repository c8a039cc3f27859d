package inject

import (
	"strings"

	"k8s.io/apimachinery/pkg/util/version"
)

// SidecarVersion is the version an image reference names: its digest when pinned by one
// ("sha256:..."), else its tag ("latest" when it has none, as the container runtime reads it).
func SidecarVersion(image string) string {
	if _, digest, ok := strings.Cut(image, "@"); ok {
		return digest
	}
	name := image[strings.LastIndex(image, "/")+1:]
	if _, tag, ok := strings.Cut(name, ":"); ok {
		return tag
	}
	return "latest"
}

// SidecarOutdated reports whether a pod whose sidecar-version annotation is running (empty:
// injected before pods carried one) should be rolled to get the sidecar of version want. Two
// semantic versions ("v1.4.0", "1.5.0-rc.1") compare as such, so a pod newer than the
// configured image (a downgrade in progress elsewhere) is left alone; any other pair of
// different versions (digests, "latest") counts as outdated.
func SidecarOutdated(running, want string) bool {
	if running == want {
		return false
	}
	if running == "" {
		return true
	}
	r, errR := version.ParseSemantic(running)
	w, errW := version.ParseSemantic(want)
	if errR == nil && errW == nil {
		return r.LessThan(w)
	}
	return true
}
