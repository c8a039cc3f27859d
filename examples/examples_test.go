package examples

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestMatchesSeedWhenPresent compares the examples with the guide's files when the team's
// shared seed folder is beside the repository (../shared/seed): a clone alone has only the
// examples and the test then checks only that every file is embedded.
func TestMatchesSeedWhenPresent(t *testing.T) {
	names := map[string]string{}
	for _, n := range []string{Namespaces, Plugin, PluginChain, PluginConfig, Curl, PipyOK} {
		names["manifests/"+n] = Manifest(n)
	}
	for _, n := range []string{GetOriginBBB, OptionsOriginBBB} {
		names["expected/"+n] = Expected(n)
	}
	embedded, err := fs.Glob(files, "*/*")
	if err != nil || len(embedded) != len(names) {
		t.Fatalf("embedded %v (%v), named %d", embedded, err, len(names))
	}
	seed := filepath.Join("..", "..", "shared", "seed")
	if _, err := os.Stat(seed); err != nil {
		t.Logf("no %s beside the repository: nothing to compare with", seed)
		return
	}
	for path, text := range names {
		b, err := os.ReadFile(filepath.Join(seed, path))
		if err != nil {
			t.Errorf("seed %s: %v", path, err)
			continue
		}
		if string(b) != text {
			t.Errorf("examples/%s differs from the seed's", path)
		}
	}
}
