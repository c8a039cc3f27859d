package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// located is a PromQL expression and where a reader finds it.
type located struct {
	expr, where string
}

// expressions returns the PromQL expressions of one manifest: the rules of a PrometheusRule, the
// queries of the dashboards in a ConfigMap. Other objects have none.
func expressions(doc map[string]any) ([]located, error) {
	kind, _ := doc["kind"].(string)
	name, _ := dig(doc, "metadata", "name").(string)
	switch kind {
	case "PrometheusRule":
		var out []located
		groups, _ := dig(doc, "spec", "groups").([]any)
		for _, g := range groups {
			gm, _ := g.(map[string]any)
			rules, _ := gm["rules"].([]any)
			for _, r := range rules {
				rm, _ := r.(map[string]any)
				expr, _ := rm["expr"].(string)
				id, _ := rm["alert"].(string)
				if id == "" {
					id, _ = rm["record"].(string)
				}
				if expr == "" {
					return nil, fmt.Errorf("PrometheusRule %s: rule %q has no expr", name, id)
				}
				out = append(out, located{expr, fmt.Sprintf("PrometheusRule %s rule %s", name, id)})
			}
		}
		return out, nil
	case "ConfigMap":
		data, _ := doc["data"].(map[string]any)
		keys := make([]string, 0, len(data))
		for k := range data {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var out []located
		for _, k := range keys {
			if !strings.HasSuffix(k, ".json") {
				continue
			}
			text, _ := data[k].(string)
			var dashboard any
			if err := json.Unmarshal([]byte(text), &dashboard); err != nil {
				return nil, fmt.Errorf("ConfigMap %s: %s: %w", name, k, err)
			}
			walkDashboard(dashboard, "", func(expr, panel string) {
				out = append(out, located{grafanaMacros.Replace(expr), fmt.Sprintf("dashboard %s panel %q", k, panel)})
			})
		}
		return out, nil
	}
	return nil, nil
}

// grafanaMacros are the interval macros Grafana substitutes before it sends a query; any
// duration stands for them.
var grafanaMacros = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

// walkDashboard calls f for every "expr" string in a dashboard, with the title of the panel
// that holds it.
func walkDashboard(v any, panel string, f func(expr, panel string)) {
	switch v := v.(type) {
	case map[string]any:
		if t, ok := v["title"].(string); ok {
			panel = t
		}
		if e, ok := v["expr"].(string); ok {
			f(e, panel)
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			walkDashboard(v[k], panel, f)
		}
	case []any:
		for _, e := range v {
			walkDashboard(e, panel, f)
		}
	}
}

func dig(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[p]
	}
	return v
}
