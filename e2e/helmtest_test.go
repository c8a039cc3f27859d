package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
)

// runHelmTest runs `helm test` on an installed release: the chart's test hook runs `cors-webhook
// selftest` in a pod, which must show through the API server that the validating webhook denies
// an invalid PluginConfig and, when the CORS Plugin is declared, that the mutating webhook
// injects a pod a temporary chain selects. It returns the test pod's log.
func runHelmTest(t *testing.T, c *framework.Cluster, release, namespace string) string {
	t.Helper()
	started := time.Now()
	// Within helmRun's 2 minutes: the self-test takes seconds, its pod's start included.
	res := helmRun(t, c, "test", release, "--namespace", namespace, "--logs", "--timeout", "100s")
	if res.ExitCode != 0 {
		t.Fatalf("helm test: exit %d\n%s", res.ExitCode, res.Output())
	}
	t.Logf("helm test passed in %s:\n%s", time.Since(started).Round(time.Millisecond), res.Stdout)
	return res.Stdout
}

// helmTestInjects runs helm test on the real node's release (the guide declared the Plugin, so
// both steps of the self-test run) and checks that the self-test showed an injection, not only
// the validating webhook, and left no chain behind.
func helmTestInjects(t *testing.T, n *framework.Node) {
	out := runHelmTest(t, n.Cluster, realNodeRelease, realNodeNamespace)
	for _, want := range []string{"ok: the validating webhook denied", "ok: the mutating webhook injected the cors-sidecar"} {
		if !strings.Contains(out, want) {
			t.Errorf("the self-test's log lacks %q", want)
		}
	}
	if left := n.Cluster.MustKubectl(t, "get", "pluginchains", "-n", "default", "-o", "name").Stdout; strings.TrimSpace(left) != "" {
		t.Errorf("the self-test left PluginChains behind: %s", left)
	}
}
