package inject

import (
	"encoding/json"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestInjectedPartsAreSharedNotExposed: injections of the same redirect ports share their
// containers and volume and the JSON of those, which is their encoding; an injected pod is a
// copy that shares nothing with them, so changing it changes no later injection.
func TestInjectedPartsAreSharedNotExposed(t *testing.T) {
	in := newInjector(t)
	first := injectInto(t, in, pod(t, podPipyV1), seed...)
	if first.Outcome != Injected {
		t.Fatalf("outcome %s, reasons %q", first.Outcome, first.Reasons)
	}
	want := first.InjectedPod()

	changed := first.InjectedPod()
	for i := range changed.Spec.InitContainers {
		c := &changed.Spec.InitContainers[i]
		c.Args[0] = "changed"
		c.Resources.Requests[corev1.ResourceCPU] = resource.MustParse("7")
		c.SecurityContext.Capabilities.Drop[0] = "changed"
	}
	for i := range changed.Spec.Volumes {
		if changed.Spec.Volumes[i].DownwardAPI != nil {
			changed.Spec.Volumes[i].DownwardAPI.Items[0].Path = "changed"
		}
	}

	second := injectInto(t, in, pod(t, podPipyV1), seed...)
	if &second.Changes.InitContainers[0] != &first.Changes.InitContainers[0] {
		t.Error("two injections of the same ports built their containers twice")
	}
	if got := second.InjectedPod(); !equality.Semantic.DeepEqual(got, want) {
		t.Error("changing an injected pod changed a later injection")
	}
	for _, enc := range []struct {
		name  string
		json  func() ([][]byte, error)
		items any
	}{
		{"init containers", second.Changes.InitContainersJSON, second.Changes.InitContainers},
		{"volumes", second.Changes.VolumesJSON, second.Changes.Volumes},
	} {
		got, err := enc.json()
		if err != nil {
			t.Fatal(err)
		}
		var asList []json.RawMessage
		raw, _ := json.Marshal(enc.items)
		if err := json.Unmarshal(raw, &asList); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(asList) {
			t.Fatalf("%s: %d documents for %d items", enc.name, len(got), len(asList))
		}
		for i := range got {
			if string(got[i]) != string(asList[i]) {
				t.Errorf("%s %d: encoded %s, want %s", enc.name, i, got[i], asList[i])
			}
		}
	}
}
