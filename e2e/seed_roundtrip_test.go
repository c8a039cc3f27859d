package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestSeedManifestsRoundTrip applies the seed guide's Plugin, PluginChain and PluginConfig with
// kubectl, unchanged, and reads them back: every field the guide sets must come back as written,
// so FSM manifests work against our CRDs.
func TestSeedManifestsRoundTrip(t *testing.T) {
	seed := mustExamplesDir(t)
	c := framework.Start(t, localcluster.Options{})

	c.MustKubectl(t, "apply", "-f", filepath.Join(seed, "manifests", "ns.yaml"))
	for _, m := range []struct{ file, resource, namespace, name string }{
		{"cors.yaml", "plugins.plugin.flomesh.io", "", "cors-policy"},
		{"cors-policy-chain.yaml", "pluginchains.plugin.flomesh.io", "pipy", "cors-policy-chain"},
		{"cors-policy-config.yaml", "pluginconfigs.plugin.flomesh.io", "pipy", "cors-policy-config"},
	} {
		t.Run(m.file, func(t *testing.T) {
			path := filepath.Join(seed, "manifests", m.file)
			c.MustKubectl(t, "apply", "-f", path)

			args := []string{"get", m.resource, m.name, "-o", "json"}
			if m.namespace != "" {
				args = append(args, "-n", m.namespace)
			}
			got := map[string]any{}
			if err := json.Unmarshal([]byte(c.MustKubectl(t, args...).Stdout), &got); err != nil {
				t.Fatal(err)
			}
			// What kubectl sends (its YAML reader ends the last document with a newline, so the
			// guide's `|+` script gains one; that is kubectl's doing, not the API server's).
			want := map[string]any{}
			sent := c.MustKubectl(t, "create", "--dry-run=client", "-o", "json", "-f", path).Stdout
			if err := json.Unmarshal([]byte(sent), &want); err != nil {
				t.Fatal(err)
			}
			if file := readYAMLObject(t, path); !reflect.DeepEqual(trimScript(file["spec"]), trimScript(want["spec"])) {
				t.Errorf("kubectl changed the manifest:\n sent: %#v\n file: %#v", want["spec"], file["spec"])
			}
			if !reflect.DeepEqual(got["spec"], want["spec"]) {
				t.Errorf("spec changed on the way through the API server:\n got: %#v\nwant: %#v", got["spec"], want["spec"])
			}
			assertTypedRoundTrip(t, m.resource, []byte(c.MustKubectl(t, args...).Stdout))
			wantMeta := want["metadata"].(map[string]any)
			gotMeta := got["metadata"].(map[string]any)
			for _, k := range []string{"name", "namespace"} {
				if wantMeta[k] != nil && gotMeta[k] != wantMeta[k] {
					t.Errorf("metadata.%s = %v, want %v", k, gotMeta[k], wantMeta[k])
				}
			}
		})
	}

	// The short names and printer columns of the CRDs work as FSM users type them.
	res := c.MustKubectl(t, "get", "pi,pichn,picfg", "-A")
	for _, want := range []string{"cors-policy", "cors-policy-chain", "cors-policy-config"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("kubectl get pi,pichn,picfg -A does not list %s:\n%s", want, res.Stdout)
		}
	}
}

func readYAMLObject(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{}
	if err := yaml.Unmarshal(data, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return obj
}

// trimScript drops trailing newlines of a Plugin's pipyscript, for comparing a file with what
// kubectl read from it.
func trimScript(spec any) any {
	m, ok := spec.(map[string]any)
	if !ok {
		return spec
	}
	out := map[string]any{}
	for k, v := range m {
		if s, ok := v.(string); ok && k == "pipyscript" {
			v = strings.TrimRight(s, "\n")
		}
		out[k] = v
	}
	return out
}

// assertTypedRoundTrip decodes the API server's JSON into our Go types and encodes it again: the
// spec must survive, or the webhook would lose FSM fields it does not know.
func assertTypedRoundTrip(t *testing.T, resource string, data []byte) {
	t.Helper()
	var typed any
	switch resource {
	case "plugins.plugin.flomesh.io":
		typed = &v1alpha1.Plugin{}
	case "pluginchains.plugin.flomesh.io":
		typed = &v1alpha1.PluginChain{}
	case "pluginconfigs.plugin.flomesh.io":
		typed = &v1alpha1.PluginConfig{}
	default:
		t.Fatalf("unknown resource %s", resource)
	}
	if err := json.Unmarshal(data, typed); err != nil {
		t.Fatalf("decoding into %T: %v", typed, err)
	}
	again, err := json.Marshal(typed)
	if err != nil {
		t.Fatal(err)
	}
	var before, after map[string]any
	if err := json.Unmarshal(data, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(again, &after); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(before["spec"], after["spec"]) {
		t.Errorf("%T lost part of the spec:\n server: %#v\n  typed: %#v", typed, before["spec"], after["spec"])
	}
}
