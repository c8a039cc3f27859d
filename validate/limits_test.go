package validate

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// TestLimitsMatchTheCRDs: the offline validation enforces the CRD schema's limits, so it
// answers as the API server would.
func TestLimitsMatchTheCRDs(t *testing.T) {
	schema := func(file string, path ...string) map[string]any {
		t.Helper()
		data, err := os.ReadFile(filepath.Join("..", "charts", "cors-webhook", "crds", file))
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Versions []struct {
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatal(err)
		}
		s := crd.Spec.Versions[0].Schema.OpenAPIV3Schema
		for _, p := range path {
			if p == "[]" {
				s, _ = s["items"].(map[string]any)
				continue
			}
			props, _ := s["properties"].(map[string]any)
			s, _ = props[p].(map[string]any)
		}
		return s
	}
	limit := func(s map[string]any, key string) *int64 {
		v, ok := s[key].(float64)
		if !ok {
			return nil
		}
		n := int64(v)
		return &n
	}
	ptr := func(p *int64) string {
		if p == nil {
			return "none"
		}
		return fmt.Sprint(*p)
	}
	for _, tt := range []struct {
		got  *int64
		want int
		what string
	}{
		{limit(schema("plugin.flomesh.io_pluginchains.yaml", "spec", "chains", "[]", "plugins"), "maxItems"), MaxChainPlugins, "chains[].plugins maxItems"},
		{limit(schema("plugin.flomesh.io_pluginchains.yaml", "spec", "chains", "[]", "plugins", "[]"), "maxLength"), 253, "chains[].plugins[] maxLength"},
		{limit(schema("plugin.flomesh.io_pluginchains.yaml", "spec", "chains"), "maxItems"), len(v1alpha1.ChainNames), "chains maxItems"},
		{limit(schema("plugin.flomesh.io_pluginconfigs.yaml", "spec", "destinationRefs"), "maxItems"), MaxDestinationRefs, "destinationRefs maxItems"},
		{limit(schema("plugin.flomesh.io_pluginconfigs.yaml", "spec", "plugin"), "maxLength"), 253, "plugin maxLength"},
		{limit(schema("plugin.flomesh.io_plugins.yaml", "spec", "pipyscript"), "maxLength"), MaxScriptBytes, "pipyscript maxLength"},
	} {
		if tt.got == nil || *tt.got != int64(tt.want) {
			t.Errorf("CRD %s is %s, validation uses %d", tt.what, ptr(tt.got), tt.want)
		}
	}
}

func TestTypedLimits(t *testing.T) {
	r := clusterstate.NewSnapshot(append(seedServices(), corsPlugin("cors-policy"), fsmNamespace("pipy"))...)
	refs := make([]string, MaxDestinationRefs+1)
	for i := range refs {
		refs[i] = fmt.Sprintf("{kind: Service, name: s%d}", i)
	}
	cfg := configSpec(t, "plugin: cors-policy\nconfig: {allowOrigins: [{exact: 'http://a.com'}]}\ndestinationRefs: ["+strings.Join(refs, ", ")+"]")
	errs, _ := PluginConfigCreate(r, cfg, Options{})
	checkResult(t, errs, nil, []wantErr{{"spec.destinationRefs", "Too many: 65: must have at most 64 items"}}, nil, false)

	plugins := make([]string, MaxChainPlugins+1)
	for i := range plugins {
		plugins[i] = fmt.Sprintf("p%d", i)
	}
	chain := mustYAML[v1alpha1.PluginChain](t, "metadata: {name: c, namespace: pipy}\nspec:\n  chains: [{name: inbound-http, plugins: ["+strings.Join(plugins, ", ")+"]}]")
	errs, _ = PluginChainCreate(r, chain, Options{})
	checkResult(t, errs, nil, []wantErr{{"spec.chains[0].plugins", "Too many: 33: must have at most 32 items"}}, nil, false)

	p := &v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}, Spec: v1alpha1.PluginSpec{Script: strings.Repeat("x", MaxScriptBytes+1)}}
	errs, _ = PluginCreate(p, Options{})
	checkResult(t, errs, nil, []wantErr{{"spec.pipyscript", "Too long: may not be more than 1048576 bytes"}}, nil, false)
}
