package selftest

import (
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/cors-webhook/cors-webhook/contract"
)

func TestSelftestDeniedBy(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string // "" or a substring of the verdict
	}{
		{"denied by our webhook", errors.New(`admission webhook "pluginconfigs.validate.cors-webhook.io" denied the request: spec.config.allowOrigins: Required value`), ""},
		{"admitted", nil, "admitted"},
		{"denied by another webhook", errors.New(`admission webhook "policy.example.com" denied the request: no`), "not by"},
		{"webhook unreachable", errors.New(`Internal error occurred: failed calling webhook "pluginconfigs.validate.cors-webhook.io": connection refused`), "not by"},
	} {
		got := deniedBy(tc.err, configWebhook)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestSelftestInjectionVerdict(t *testing.T) {
	injected := dryRunPod("default", "x")
	injected.Spec.InitContainers = []corev1.Container{{Name: contract.ContainerInit}, {Name: contract.ContainerSidecar}}
	for _, tc := range []struct {
		name     string
		pod      *corev1.Pod
		warnings []string
		want     bool
	}{
		{"the sidecar was injected", injected, nil, true},
		{"a selected pod the webhook cannot inject", dryRunPod("default", "x"),
			[]string{"PluginChain default/c selects the pod, but namespace default enforces Pod Security restricted"}, true},
		{"nothing yet", dryRunPod("default", "x"), nil, false},
		{"an unrelated warning", dryRunPod("default", "x"), []string{"would violate PodSecurity"}, false},
	} {
		if _, got := injectionVerdict(tc.pod, tc.warnings); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
