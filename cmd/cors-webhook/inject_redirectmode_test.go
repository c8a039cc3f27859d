package main

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/cors-webhook/cors-webhook/contract"
)

// TestInjectCommandRedirectMode: `inject --redirect-mode cni` leaves cors-init out and writes
// the annotations cors-cni reads, the same templates in a namespace enforcing restricted; an
// unknown mode is a usage error.
func TestInjectCommandRedirectMode(t *testing.T) {
	restricted := strings.Replace(injectContext, "labels: {team: shop}", "labels: {team: shop, pod-security.kubernetes.io/enforce: restricted}", 1)
	for _, tc := range []struct {
		name, context, mode string
		wantInits           []string
		wantAnnotations     map[string]string
	}{
		{"init", injectContext, "init", []string{contract.ContainerInit, contract.ContainerSidecar}, map[string]string{contract.AnnotationRedirectMode: ""}},
		{"cni", injectContext, "cni", []string{contract.ContainerSidecar}, map[string]string{contract.AnnotationRedirectMode: "cni", contract.AnnotationProxyPort: "15003"}},
		{"cni, restricted namespace", restricted, "cni", []string{contract.ContainerSidecar}, map[string]string{contract.AnnotationRedirectMode: "cni"}},
		{"init, restricted namespace (skipped)", restricted, "init", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := runInject(t, tc.context+injectWorkloads, "-f", "-", "--redirect-mode", tc.mode)
			if tc.wantInits == nil {
				if code == exitOK || !strings.Contains(errOut, "pod-security") {
					t.Errorf("exit %d, want a non-zero exit naming pod-security:\n%s", code, errOut)
				}
				return
			}
			if code != exitOK {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			for _, obj := range parseOutput(t, out) {
				if obj.GetKind() != "Deployment" || obj.GetName() != "web" {
					continue
				}
				tmpl, _, _ := unstructured.NestedMap(obj.Object, "spec", "template")
				inits, _, _ := unstructured.NestedSlice(tmpl, "spec", "initContainers")
				var names []string
				for _, c := range inits {
					names = append(names, c.(map[string]any)["name"].(string))
				}
				if strings.Join(names, ",") != strings.Join(tc.wantInits, ",") {
					t.Errorf("init containers %v, want %v", names, tc.wantInits)
				}
				annotations, _, _ := unstructured.NestedStringMap(tmpl, "metadata", "annotations")
				for k, v := range tc.wantAnnotations {
					if annotations[k] != v {
						t.Errorf("annotation %s = %q, want %q", k, annotations[k], v)
					}
				}
			}
		})
	}
	if _, errOut, code := runInject(t, injectContext, "-f", "-", "--redirect-mode", "sidecar"); code == exitOK || !strings.Contains(errOut, "--redirect-mode") {
		t.Errorf("--redirect-mode sidecar: exit %d\n%s", code, errOut)
	}
}
