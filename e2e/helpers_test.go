// Package e2e holds end-to-end tests: they start a real kube-apiserver (and, where needed,
// kube-controller-manager, the webhook server, network namespaces) and drive it with the real
// kubectl. They fail, never skip, when something they need is missing.
package e2e

import (
	"os"
	"testing"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

func mustExamplesDir(t testing.TB) string {
	t.Helper()
	dir, err := localcluster.ExamplesDir()
	if err != nil {
		t.Fatalf("the examples are needed: %v", err)
	}
	return dir
}

// TestMain removes the binaries the tests built once they all ran.
func TestMain(m *testing.M) {
	code := m.Run()
	framework.RemoveBuiltBinaries()
	os.Exit(code)
}
