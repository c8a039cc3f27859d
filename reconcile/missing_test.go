package reconcile

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/apimachinery/pkg/types"
)

func TestMissingPodsGauge(t *testing.T) {
	a := types.NamespacedName{Namespace: "missing-test-a", Name: "p1"}
	a2 := types.NamespacedName{Namespace: "missing-test-a", Name: "p2"}
	b := types.NamespacedName{Namespace: "missing-test-b", Name: "p1"}
	m := newMissingPods()
	for _, step := range []struct {
		name    string
		pod     types.NamespacedName
		missing bool
		wantA   float64
		wantB   float64
	}{
		{"a pod without its sidecar counts", a, true, 1, 0},
		{"the same pod again counts once", a, true, 1, 0},
		{"another pod of the namespace", a2, true, 2, 0},
		{"namespaces are apart", b, true, 2, 1},
		{"an injected (or gone) pod leaves", a, false, 1, 1},
		{"a pod never counted changes nothing", a, false, 1, 1},
		{"the last one leaves, the series stays at zero", b, false, 1, 0},
	} {
		m.set(step.pod, step.missing)
		gotA := testutil.ToFloat64(PodsMissingSidecar.WithLabelValues(a.Namespace))
		gotB := testutil.ToFloat64(PodsMissingSidecar.WithLabelValues(b.Namespace))
		if gotA != step.wantA || gotB != step.wantB {
			t.Errorf("%s: gauge a=%v b=%v, want a=%v b=%v", step.name, gotA, gotB, step.wantA, step.wantB)
		}
	}
	var none *missingPods
	none.set(a, true) // a reconciler built without the set (tests) records nothing
}
