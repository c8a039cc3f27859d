package inject

import "testing"

func TestSidecarVersion(t *testing.T) {
	for image, want := range map[string]string{
		"ghcr.io/cors-webhook/cors-sidecar:v1.2.3":                  "v1.2.3",
		"registry:5000/cors-sidecar:1.0":                            "1.0",
		"registry:5000/cors-sidecar":                                "latest",
		"cors-sidecar":                                              "latest",
		"ghcr.io/cors-webhook/cors-sidecar:v1@sha256:0123abcd":      "sha256:0123abcd",
		"ghcr.io/cors-webhook/cors-sidecar@sha256:0123456789abcdef": "sha256:0123456789abcdef",
	} {
		if got := SidecarVersion(image); got != want {
			t.Errorf("SidecarVersion(%q) = %q, want %q", image, got, want)
		}
	}
}

func TestSidecarOutdated(t *testing.T) {
	for _, tc := range []struct {
		running, want string
		outdated      bool
	}{
		{"v1.2.3", "v1.2.3", false},
		{"", "v1.2.3", true},
		{"v1.2.3", "v1.3.0", true},
		{"1.2.3", "v1.10.0", true},
		{"v1.3.0", "v1.2.9", false},
		{"v1.3.0-rc.1", "v1.3.0", true},
		{"latest", "latest", false},
		{"latest", "v1.3.0", true},
		{"sha256:aa", "sha256:bb", true},
	} {
		if got := SidecarOutdated(tc.running, tc.want); got != tc.outdated {
			t.Errorf("SidecarOutdated(%q, %q) = %v, want %v", tc.running, tc.want, got, tc.outdated)
		}
	}
}
