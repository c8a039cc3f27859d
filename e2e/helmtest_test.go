package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// runHelmTest runs `helm test` on an installed release: the chart's test hook runs `cors-webhook
// selftest` in a pod, which must show through the API server that the validating webhook denies
// an invalid PluginConfig and, when the CORS Plugin is declared, that the mutating webhook
// injects a pod a temporary chain selects. It returns the test pod's log.
func runHelmTest(t *testing.T, kubeconfig, release, namespace string) string {
	t.Helper()
	h, err := localcluster.NewHelm()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	started := time.Now()
	res, err := h.Run(ctx, kubeconfig, "test", release, "--namespace", namespace, "--logs", "--timeout", "3m")
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("helm test: %v\n%s", err, res.Output())
	}
	t.Logf("helm test passed in %s:\n%s", time.Since(started).Round(time.Millisecond), res.Stdout)
	return res.Stdout
}

// helmTestInjects runs helm test on the real node's release (the guide declared the Plugin, so
// both steps of the self-test run) and checks that the self-test showed an injection, not only
// the validating webhook, and left no chain behind.
func helmTestInjects(t *testing.T, n *framework.Node) {
	out := runHelmTest(t, n.Kubeconfig, realNodeRelease, realNodeNamespace)
	for _, want := range []string{"ok: the validating webhook denied", "ok: the mutating webhook injected the cors-sidecar"} {
		if !strings.Contains(out, want) {
			t.Errorf("the self-test's log lacks %q", want)
		}
	}
	if left := n.Cluster.MustKubectl(t, "get", "pluginchains", "-n", "default", "-o", "name").Stdout; strings.TrimSpace(left) != "" {
		t.Errorf("the self-test left PluginChains behind: %s", left)
	}
}
