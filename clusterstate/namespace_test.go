package clusterstate

import (
	"context"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestNamespaceOrLive(t *testing.T) {
	labeled := func(name, v string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"from": v}}}
	}
	cached := NewSnapshot(labeled("cached", "cache"))
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	live := fake.NewClientBuilder().WithScheme(scheme).WithObjects(labeled("cached", "api"), labeled("new", "api")).Build()
	broken := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Get: func(context.Context, client.WithWatch, client.ObjectKey, client.Object, ...client.GetOption) error {
			return errors.New("unreachable")
		},
	}).Build()
	for _, tc := range []struct {
		name, ns string
		live     client.Reader
		want     string // the "from" label; "" for the label-less stand-in
		wantErr  bool
	}{
		{"the cache first", "cached", live, "cache", false},
		{"the API server when the cache has not seen it", "new", live, "api", false},
		{"a stand-in when neither has it", "gone", live, "", false},
		{"a stand-in without an API reader", "new", nil, "", false},
		{"the API server's error", "new", broken, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, err := NamespaceOrLive(context.Background(), cached, tc.live, tc.ns)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("got %v, want an error", ns)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ns.Name != tc.ns || ns.Labels["from"] != tc.want {
				t.Errorf("got %s from %q, want %s from %q", ns.Name, ns.Labels["from"], tc.ns, tc.want)
			}
		})
	}
}
