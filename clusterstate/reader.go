// Package clusterstate is what validation and injection read of the cluster. One interface, two
// implementations: the server's informer cache (CacheReader, with its indexes) and an in-memory
// Snapshot of objects read from files (the offline `validate` and `inject` commands), so that
// admission and the CLI share one code path.
package clusterstate

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// Reader looks up existing objects. Returned objects are shared with the store: callers must
// not modify them, and neither does the store: a change replaces an object with a new one, as
// an informer's store and Snapshot.Add do, so the same object means the same content
// (inject.Injector.SameInputs relies on it). Lookups of missing objects return nil and no
// error; errors mean the store itself failed.
type Reader interface {
	// Plugin returns the cluster-scoped Plugin declaration of that name, or nil when the
	// plugin is not declared.
	Plugin(name string) (*v1alpha1.Plugin, error)

	// PluginChainsInNamespace returns the PluginChains declared in a namespace.
	PluginChainsInNamespace(namespace string) ([]*v1alpha1.PluginChain, error)

	// PluginChainsWithNamespaceSelector returns the PluginChains of every namespace that
	// declare a namespaceSelector: the only chains that can reach beyond their own namespace.
	PluginChainsWithNamespaceSelector() ([]*v1alpha1.PluginChain, error)

	// PluginConfigsForPlugin returns the PluginConfigs in a namespace that configure a plugin.
	PluginConfigsForPlugin(namespace, plugin string) ([]*v1alpha1.PluginConfig, error)

	// PluginConfigsForService returns the PluginConfigs in a namespace whose destinationRefs
	// name that Service.
	PluginConfigsForService(namespace, service string) ([]*v1alpha1.PluginConfig, error)

	// Namespace returns the namespace of that name, or nil when it does not exist.
	Namespace(name string) (*corev1.Namespace, error)

	// Namespaces returns every namespace.
	Namespaces() ([]*corev1.Namespace, error)

	// Service returns the Service, or nil when it does not exist.
	Service(namespace, name string) (*corev1.Service, error)

	// ServicesInNamespace returns the Services of a namespace.
	ServicesInNamespace(namespace string) ([]*corev1.Service, error)
}
