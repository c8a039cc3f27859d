package clusterstate

import (
	"sort"

	corev1 "k8s.io/api/core/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
)

// Snapshot is an in-memory Reader over a fixed set of objects, for the offline commands and for
// tests. Build it with Add; it is not safe for concurrent Add and reads.
type Snapshot struct {
	plugins    map[string]*v1alpha1.Plugin
	chains     []*v1alpha1.PluginChain
	configs    []*v1alpha1.PluginConfig
	namespaces map[string]*corev1.Namespace
	services   []*corev1.Service
}

var _ Reader = (*Snapshot)(nil)

// NewSnapshot returns a Snapshot holding objs (see Add).
func NewSnapshot(objs ...any) *Snapshot {
	s := &Snapshot{
		plugins:    map[string]*v1alpha1.Plugin{},
		namespaces: map[string]*corev1.Namespace{},
	}
	for _, o := range objs {
		s.Add(o)
	}
	return s
}

// Add stores an object of a kind Reader serves (Plugin, PluginChain, PluginConfig, Namespace,
// Service, as pointers) and reports whether it was one; other objects are ignored. An object
// with the same identity as a stored one replaces it.
func (s *Snapshot) Add(obj any) bool {
	switch o := obj.(type) {
	case *v1alpha1.Plugin:
		s.plugins[o.Name] = o
	case *v1alpha1.PluginChain:
		s.chains = replaceOrAppend(s.chains, o, func(c *v1alpha1.PluginChain) bool {
			return c.Namespace == o.Namespace && c.Name == o.Name
		})
	case *v1alpha1.PluginConfig:
		s.configs = replaceOrAppend(s.configs, o, func(c *v1alpha1.PluginConfig) bool {
			return c.Namespace == o.Namespace && c.Name == o.Name
		})
	case *corev1.Namespace:
		s.namespaces[o.Name] = o
	case *corev1.Service:
		s.services = replaceOrAppend(s.services, o, func(c *corev1.Service) bool {
			return c.Namespace == o.Namespace && c.Name == o.Name
		})
	default:
		return false
	}
	return true
}

func replaceOrAppend[T any](list []T, v T, same func(T) bool) []T {
	for i := range list {
		if same(list[i]) {
			list[i] = v
			return list
		}
	}
	return append(list, v)
}

// Plugin implements Reader.
func (s *Snapshot) Plugin(name string) (*v1alpha1.Plugin, error) { return s.plugins[name], nil }

// PluginChainsInNamespace implements Reader.
func (s *Snapshot) PluginChainsInNamespace(namespace string) ([]*v1alpha1.PluginChain, error) {
	return filter(s.chains, func(c *v1alpha1.PluginChain) bool { return c.Namespace == namespace }), nil
}

// PluginChainsWithNamespaceSelector implements Reader.
func (s *Snapshot) PluginChainsWithNamespaceSelector() ([]*v1alpha1.PluginChain, error) {
	return filter(s.chains, func(c *v1alpha1.PluginChain) bool { return c.Spec.Selectors.NamespaceSelector != nil }), nil
}

// PluginConfigsForPlugin implements Reader.
func (s *Snapshot) PluginConfigsForPlugin(namespace, plugin string) ([]*v1alpha1.PluginConfig, error) {
	return filter(s.configs, func(c *v1alpha1.PluginConfig) bool {
		return c.Namespace == namespace && c.Spec.Plugin == plugin
	}), nil
}

// PluginConfigsForService implements Reader.
func (s *Snapshot) PluginConfigsForService(namespace, service string) ([]*v1alpha1.PluginConfig, error) {
	return filter(s.configs, func(c *v1alpha1.PluginConfig) bool {
		if c.Namespace != namespace {
			return false
		}
		for _, ref := range c.Spec.DestinationRefs {
			if ref.Name == service {
				return true
			}
		}
		return false
	}), nil
}

// Namespace implements Reader.
func (s *Snapshot) Namespace(name string) (*corev1.Namespace, error) { return s.namespaces[name], nil }

// Namespaces implements Reader; they come sorted by name.
func (s *Snapshot) Namespaces() ([]*corev1.Namespace, error) {
	out := make([]*corev1.Namespace, 0, len(s.namespaces))
	for _, ns := range s.namespaces {
		out = append(out, ns)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Service implements Reader.
func (s *Snapshot) Service(namespace, name string) (*corev1.Service, error) {
	for _, svc := range s.services {
		if svc.Namespace == namespace && svc.Name == name {
			return svc, nil
		}
	}
	return nil, nil
}

// ServicesInNamespace implements Reader.
func (s *Snapshot) ServicesInNamespace(namespace string) ([]*corev1.Service, error) {
	return filter(s.services, func(svc *corev1.Service) bool { return svc.Namespace == namespace }), nil
}

func filter[T any](list []T, keep func(T) bool) []T {
	var out []T
	for _, v := range list {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}

// IndexedSnapshot is a Snapshot that also keeps a chains.Index of its PluginChains, as the
// server's CacheReader does, so that tests can hold the indexed lookups to the listed ones.
// Index must hold the Snapshot's chains.
type IndexedSnapshot struct {
	*Snapshot
	Index *chains.Index
}

// ChainIndex implements chains.Indexed.
func (s IndexedSnapshot) ChainIndex() (*chains.Index, error) { return s.Index, nil }
