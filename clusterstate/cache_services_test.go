package clusterstate_test

import (
	"context"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/internal/cachetest"
)

// newCacheReader is a CacheReader over a started in-memory cache of objs.
func newCacheReader(t *testing.T, objs ...client.Object) *clusterstate.CacheReader {
	t.Helper()
	r, err := clusterstate.NewCacheReader(context.Background(), cachetest.Start(t, objs...))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestServicesForLabelsFindsEverySelectingService: the Services index gives, for any pod
// labels, each Service of the namespace whose selector selects them, once, as a scan of the
// namespace's Services does.
func TestServicesForLabelsFindsEverySelectingService(t *testing.T) {
	svc := func(ns, name string, selector map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: corev1.ServiceSpec{Selector: selector}}
	}
	objs := []client.Object{
		svc("a", "web", map[string]string{"app": "web"}),
		svc("a", "web-v1", map[string]string{"app": "web", "version": "v1"}),
		svc("a", "by-tier", map[string]string{"tier": "front", "app": "web"}),
		svc("a", "prefixed", map[string]string{"example.com/role": "api"}),
		svc("a", "no-selector", nil),
		svc("a", "other-app", map[string]string{"app": "db"}),
		svc("b", "web", map[string]string{"app": "web"}),
	}
	r := newCacheReader(t, objs...)
	for _, podLabels := range []map[string]string{
		{"app": "web"},
		{"app": "web", "version": "v1"},
		{"app": "web", "version": "v2", "tier": "front"},
		{"example.com/role": "api", "app": "db"},
		{"version": "v1"},
		{},
		nil,
	} {
		all, err := r.ServicesInNamespace("a")
		if err != nil {
			t.Fatal(err)
		}
		candidates, err := r.ServicesForLabels("a", podLabels)
		if err != nil {
			t.Fatal(err)
		}
		selecting := func(svcs []*corev1.Service) []string {
			var out []string
			for _, s := range svcs {
				if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(podLabels)) {
					out = append(out, s.Namespace+"/"+s.Name)
				}
			}
			slices.Sort(out)
			return out
		}
		want, got := selecting(all), selecting(candidates)
		if !slices.Equal(got, want) {
			t.Errorf("labels %v: the index gives %v, a scan %v", podLabels, got, want)
		}
		names := make([]string, 0, len(candidates))
		for _, s := range candidates {
			names = append(names, s.Namespace+"/"+s.Name)
		}
		slices.Sort(names)
		if len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Errorf("labels %v: a Service twice among %v", podLabels, names)
		}
	}
}
