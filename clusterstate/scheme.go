package clusterstate

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// NewScheme returns the scheme of both processes, the admission handlers and the offline
// commands' manifest reading: the built-in kinds and plugin.flomesh.io/v1alpha1.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// Scheme is NewScheme's scheme, built once, for those that only decode with it (the offline
// commands' manifest reader, the test cluster's clients).
var Scheme = func() *runtime.Scheme {
	s, err := NewScheme()
	if err != nil {
		panic(err)
	}
	return s
}()
