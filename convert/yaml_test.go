package convert

import (
	"strings"
	"testing"

	sigsyaml "sigs.k8s.io/yaml"
)

// TestYAML: the Plugin, chains and configs as documents in that order, without the empty status
// and creationTimestamp of typed objects.
func TestYAML(t *testing.T) {
	res := Convert(load(t, "ingress-nginx.yaml"), Options{WithPlugin: true})
	y, err := res.YAML()
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(y), "---\n")
	if want := 1 + len(res.Chains) + len(res.Configs); len(docs) != want || len(res.Configs) == 0 {
		t.Fatalf("%d documents, want %d:\n%s", len(docs), want, y)
	}
	for i, d := range docs {
		var m map[string]any
		if err := sigsyaml.Unmarshal([]byte(d), &m); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		want := "PluginChain"
		switch {
		case i == 0:
			want = "Plugin"
		case i > len(res.Chains):
			want = "PluginConfig"
		}
		if m["kind"] != want {
			t.Errorf("document %d is a %v, want a %s", i, m["kind"], want)
		}
		if _, ok := m["status"]; ok {
			t.Errorf("document %d has a status", i)
		}
		if _, ok := m["metadata"].(map[string]any)["creationTimestamp"]; ok {
			t.Errorf("document %d has a creationTimestamp", i)
		}
	}
}
