package examples

import (
	"io/fs"
	"testing"
)

// TestEveryFileIsNamed checks that every embedded example is reachable through its name: the
// repository carries its own copies of the guide's files and reads nothing beside itself.
func TestEveryFileIsNamed(t *testing.T) {
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
	for _, path := range embedded {
		text, ok := names[path]
		if !ok || text == "" {
			t.Errorf("embedded %s has no name, or is empty", path)
		}
	}
}
