// Package webhook holds the admission handlers of cors-webhook: the validating webhooks of
// Plugin, PluginChain and PluginConfig and the pod injector, plus the informer-backed
// clusterstate.Reader they read (CacheReader) and their metrics. Package server mounts them on
// a manager's webhook server.
//
// Handlers are thin: they decode the request, call the pure functions of package validate (and
// inject), and translate the result.
package webhook

import (
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// NewScheme returns the scheme of the handlers and of both processes: the built-in kinds and
// plugin.flomesh.io/v1alpha1.
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
