package main

import (
	"fmt"
	"strings"

	"sigs.k8s.io/yaml"
)

// podExcerpt keeps, of a pod as `kubectl get pod -o yaml` prints it, what the injection
// added and what the data path needs: the cors-webhook.io annotations and labels, the init
// containers, the application containers (name, image, command, ports), the volumes the init
// containers mount, and the phase and pod IP. Fields the API server defaults on every
// container (termination message settings) are left out.
func podExcerpt(raw []byte) (string, error) {
	var pod map[string]any
	if err := yaml.Unmarshal(raw, &pod); err != nil {
		return "", fmt.Errorf("decoding the pod: %w", err)
	}
	meta, _ := pod["metadata"].(map[string]any)
	spec, _ := pod["spec"].(map[string]any)
	status, _ := pod["status"].(map[string]any)

	annotations := map[string]any{}
	if a, ok := meta["annotations"].(map[string]any); ok {
		for k, v := range a {
			if strings.HasPrefix(k, "cors-webhook.io/") {
				annotations[k] = v
			}
		}
	}
	outMeta := map[string]any{"name": meta["name"], "namespace": meta["namespace"], "labels": meta["labels"], "annotations": annotations}

	mounted := map[string]bool{}
	var inits []any
	for _, c := range list(spec["initContainers"]) {
		ctr, _ := c.(map[string]any)
		delete(ctr, "terminationMessagePath")
		delete(ctr, "terminationMessagePolicy")
		for _, m := range list(ctr["volumeMounts"]) {
			if mm, ok := m.(map[string]any); ok {
				mounted[fmt.Sprint(mm["name"])] = true
			}
		}
		inits = append(inits, ctr)
	}
	var ctrs []any
	for _, c := range list(spec["containers"]) {
		ctr, _ := c.(map[string]any)
		keep := map[string]any{}
		for _, k := range []string{"name", "image", "command", "args", "ports"} {
			if v, ok := ctr[k]; ok {
				keep[k] = v
			}
		}
		ctrs = append(ctrs, keep)
	}
	var volumes []any
	for _, v := range list(spec["volumes"]) {
		if vv, ok := v.(map[string]any); ok && mounted[fmt.Sprint(vv["name"])] {
			volumes = append(volumes, vv)
		}
	}
	excerpt := map[string]any{
		"metadata": outMeta,
		"spec":     map[string]any{"initContainers": inits, "containers": ctrs, "volumes": volumes},
		"status":   map[string]any{"phase": status["phase"], "podIP": status["podIP"]},
	}
	out, err := yaml.Marshal(excerpt)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

func list(v any) []any {
	l, _ := v.([]any)
	return l
}
