package seedtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCopiesMatchSeed(t *testing.T) {
	seed := filepath.Join("..", "..", "..", "shared", "seed")
	for file, copy := range map[string]string{
		"manifests/cors-policy-chain.yaml":  PluginChainYAML,
		"manifests/cors-policy-config.yaml": PluginConfigYAML,
		"expected/get-origin-bbb.txt":       GetOriginBBB,
		"expected/options-origin-bbb.txt":   OptionsOriginBBB,
	} {
		b, err := os.ReadFile(filepath.Join(seed, file))
		if err != nil {
			t.Fatalf("the seed must be beside the repository (../shared/seed): %v", err)
		}
		if strings.TrimSpace(string(b)) != strings.TrimSpace(copy) {
			t.Errorf("the copy of %s has drifted from the seed:\n%s", file, b)
		}
	}
}
