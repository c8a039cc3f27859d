package convert

import (
	"bytes"
	"encoding/json"

	sigsyaml "sigs.k8s.io/yaml"
)

// YAML is the result as YAML documents (the Plugin, the PluginChains, the PluginConfigs), without
// the empty status and creationTimestamp that typed objects would carry: what `kubectl apply`
// is given.
func (r *Result) YAML() ([]byte, error) {
	var objs []any
	if r.Plugin != nil {
		objs = append(objs, r.Plugin)
	}
	for _, c := range r.Chains {
		objs = append(objs, c)
	}
	for _, c := range r.Configs {
		objs = append(objs, c)
	}
	var buf bytes.Buffer
	for i, o := range objs {
		raw, err := json.Marshal(o)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, err
		}
		delete(m, "status")
		if md, ok := m["metadata"].(map[string]any); ok {
			delete(md, "creationTimestamp")
		}
		y, err := sigsyaml.Marshal(m)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(y)
	}
	return buf.Bytes(), nil
}
