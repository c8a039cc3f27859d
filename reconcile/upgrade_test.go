package reconcile

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
)

func TestOutdatedSidecar(t *testing.T) {
	in, err := inject.New(inject.Settings{SidecarImage: "registry.example/cors-sidecar:v1.3.0", CORSPlugins: []string{"cors-policy"}})
	if err != nil {
		t.Fatal(err)
	}
	pod := func(version string, sidecar bool) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{}}}
		if version != "" {
			p.Annotations[contract.AnnotationSidecarVersion] = version
		}
		if sidecar {
			p.Spec.InitContainers = []corev1.Container{{Name: contract.ContainerSidecar}}
		}
		return p
	}
	selected := &inject.Resolution{Selected: true}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		res  *inject.Resolution
		want bool
	}{
		{"older", pod("v1.2.0", true), selected, true},
		{"injected before pods carried a version", pod("", true), selected, true},
		{"current", pod("v1.3.0", true), selected, false},
		{"newer (a rollback)", pod("v1.4.0", true), selected, false},
		{"no sidecar", pod("v1.2.0", false), selected, false},
		{"no longer selected", pod("v1.2.0", true), &inject.Resolution{}, false},
		{"unknown", pod("v1.2.0", true), nil, false},
	} {
		if got := outdatedSidecar(tc.pod, tc.res, in); got != tc.want {
			t.Errorf("%s: outdatedSidecar = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDecideRolloutOfOutdatedSidecars: outdated pods make a rollout needed like pods without
// the sidecar, and the note says why.
func TestDecideRolloutOfOutdatedSidecars(t *testing.T) {
	f := rolloutFacts{ref: "deployment/web", namespace: "app", chains: []string{"app/web"}, outdated: 3, sidecarVersion: "v1.3.0",
		templateOK: true, desired: upgradeToken("t", "v1.3.0"), current: "t", state: workloadState{replaces: true}}
	f.now = time.Now()
	f.pendingSince = f.now.Add(-time.Minute)
	f.settle = time.Second
	d := decideRollout(f)
	if d.action != actRoll || !strings.Contains(d.note, "3 pod(s) run a sidecar older than version v1.3.0") {
		t.Fatalf("decision %+v", d)
	}
	if upgradeToken("t", "v1.3.0") == upgradeToken("t", "v1.4.0") || upgradeToken("t", "v1.3.0") == "t" {
		t.Fatal("the upgrade token must change with the sidecar version")
	}
}
