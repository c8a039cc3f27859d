package clusterstate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
)

// Indexes the CacheReader adds to the informers of the manager's cache. Admission answers from
// the cache, never from a live API call per request, and these indexes keep each lookup
// proportional to what it returns rather than to the size of the cluster. The informers also
// carry client-go's namespace index (toolscache.NamespaceIndex), which controller-runtime adds.
const (
	// IndexChainNamespaceSelector holds "true" for PluginChains with a namespaceSelector: the
	// only chains that reach beyond their own namespace.
	IndexChainNamespaceSelector = "cors-webhook.io/chain-namespace-selector"
	// IndexConfigPlugin indexes PluginConfigs by "namespace/plugin" (spec.plugin: the CORS
	// plugin they configure).
	IndexConfigPlugin = "cors-webhook.io/config-plugin"
	// IndexConfigService indexes PluginConfigs by "namespace/service" for each Service named
	// in spec.destinationRefs.
	IndexConfigService = "cors-webhook.io/config-service"
	// IndexServiceSelector files each Service with a selector under "namespace/key=value" for
	// the first key of its selector: only pods with that label can be selected by it.
	IndexServiceSelector = "cors-webhook.io/service-selector"
)

// CachedKinds are the kinds the cache-backed Reader serves.
func CachedKinds() []client.Object {
	return []client.Object{
		&v1alpha1.Plugin{}, &v1alpha1.PluginChain{}, &v1alpha1.PluginConfig{},
		&corev1.Namespace{}, &corev1.Service{},
	}
}

// DefaultLookupTimeout bounds how long a lookup waits for the informers' first sync. Past it,
// the lookup fails, and admission with it (failurePolicy Fail refuses the request), rather
// than validating against an incomplete cache.
const DefaultLookupTimeout = 5 * time.Second

// CacheReader is the Reader of the server: the informers of the manager's cache,
// read through their indexers. It returns the cached objects themselves, without the copy a
// cache List makes of every item, as the Reader contract allows (callers must not modify
// them): a PluginChain admission compares the chain with every chain that can reach its
// namespaces, and copying them would dominate its cost.
//
// It also keeps the chains.Index of the PluginChains, so that a pod admission visits only the
// chains filed under the pod's labels and a PluginChain admission compares the chain only with
// those whose podSelector may overlap its own. The informer's one event handler files each
// change as it arrives (no rebuild: every such admission follows a change), and lookups wait
// until the handler has filed the initial list.
type CacheReader struct {
	plugins, chains, configs, namespaces, services toolscache.SharedIndexInformer

	chainIndex       *chains.Index
	chainIndexSynced func() bool

	synced  atomic.Bool
	timeout time.Duration
}

var (
	_ Reader         = (*CacheReader)(nil)
	_ chains.Indexed = (*CacheReader)(nil)
)

// NewCacheReader creates (or finds) the informers of c (normally mgr.GetCache()) for
// CachedKinds and adds the indexes above. Call it before the cache starts, as package server does,
// so that the informers start and sync with the cache rather than on the first admission.
// Several readers over one cache share the indexes.
func NewCacheReader(ctx context.Context, c cache.Informers) (*CacheReader, error) {
	r := &CacheReader{timeout: DefaultLookupTimeout}
	if err := r.setup(ctx, c); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *CacheReader) setup(ctx context.Context, c cache.Informers) error {
	targets := []*toolscache.SharedIndexInformer{&r.plugins, &r.chains, &r.configs, &r.namespaces, &r.services}
	for i, obj := range CachedKinds() {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer for %T: %w", obj, err)
		}
		sii, ok := inf.(toolscache.SharedIndexInformer)
		if !ok {
			return fmt.Errorf("informer for %T is a %T, not a client-go SharedIndexInformer", obj, inf)
		}
		*targets[i] = sii
	}
	if err := addIndexers(r.chains, toolscache.Indexers{
		IndexChainNamespaceSelector: func(o any) ([]string, error) {
			if c, ok := o.(*v1alpha1.PluginChain); ok && c.Spec.Selectors.NamespaceSelector != nil {
				return []string{"true"}, nil
			}
			return nil, nil
		},
	}); err != nil {
		return fmt.Errorf("indexing PluginChains: %w", err)
	}
	if err := addIndexers(r.configs, toolscache.Indexers{
		IndexConfigPlugin: func(o any) ([]string, error) {
			if c, ok := o.(*v1alpha1.PluginConfig); ok && c.Spec.Plugin != "" {
				return []string{c.Namespace + "/" + c.Spec.Plugin}, nil
			}
			return nil, nil
		},
		IndexConfigService: func(o any) ([]string, error) {
			c, ok := o.(*v1alpha1.PluginConfig)
			if !ok {
				return nil, nil
			}
			var keys []string
			for _, ref := range c.Spec.DestinationRefs {
				if ref.Name != "" {
					keys = append(keys, c.Namespace+"/"+ref.Name)
				}
			}
			return keys, nil
		},
	}); err != nil {
		return fmt.Errorf("indexing PluginConfigs: %w", err)
	}
	if err := addIndexers(r.services, toolscache.Indexers{
		IndexServiceSelector: func(o any) ([]string, error) {
			svc, ok := o.(*corev1.Service)
			if !ok || len(svc.Spec.Selector) == 0 {
				return nil, nil // a Service without a selector selects no pod
			}
			k := slices.Min(slices.Collect(maps.Keys(svc.Spec.Selector)))
			return []string{serviceSelectorKey(svc.Namespace, k, svc.Spec.Selector[k])}, nil
		},
	}); err != nil {
		return fmt.Errorf("indexing Services: %w", err)
	}
	return nil
}

// IndexChains makes r keep a chains.Index of the PluginChains filed under the rule sel (the
// injector's, inject.Injector.Selection, which validation shares), fed by one event handler on
// the PluginChain informer. Call it once, before the cache starts. The admission process does;
// the controller does not: its reconcilers must see a change as soon as the event that
// triggered them, and the index, updated by a handler, could lag behind it.
func (r *CacheReader) IndexChains(sel chains.Selection) error {
	ix := chains.NewIndex(sel)
	reg, err := r.chains.AddEventHandler(chainEvents(ix.Set, ix.Delete))
	if err != nil {
		return fmt.Errorf("indexing PluginChains: %w", err)
	}
	r.chainIndex, r.chainIndexSynced = ix, reg.HasSynced
	return nil
}

// chainEvents feeds a PluginChain index from an informer: set on every add and update,
// remove on every deletion, including one the watch missed (a tombstone with the store key).
// The informer delivers the chains it already holds as adds, so an index fed from the start
// is whole once the handler's registration has synced.
func chainEvents(set func(*v1alpha1.PluginChain), remove func(namespace, name string)) toolscache.ResourceEventHandlerFuncs {
	add := func(o any) {
		if c, ok := o.(*v1alpha1.PluginChain); ok {
			set(c)
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    add,
		UpdateFunc: func(_, o any) { add(o) },
		DeleteFunc: func(o any) {
			if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
				if ns, name, err := toolscache.SplitMetaNamespaceKey(t.Key); err == nil {
					remove(ns, name)
				}
				return
			}
			if c, ok := o.(*v1alpha1.PluginChain); ok {
				remove(c.Namespace, c.Name)
			}
		},
	}
}

func serviceSelectorKey(namespace, key, value string) string {
	return namespace + "/" + key + "=" + value
}

// addIndexers adds the indexers an informer does not have yet (another reader over the same
// cache may have added them).
func addIndexers(inf toolscache.SharedIndexInformer, indexers toolscache.Indexers) error {
	existing := inf.GetIndexer().GetIndexers()
	missing := toolscache.Indexers{}
	for name, fn := range indexers {
		if _, ok := existing[name]; !ok {
			missing[name] = fn
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return inf.AddIndexers(missing)
}

// HasSynced reports whether every informer has synced once, and the PluginChain index, if r
// keeps one, has filed the initial list.
func (r *CacheReader) HasSynced() bool {
	return r.plugins.HasSynced() && r.chains.HasSynced() && r.configs.HasSynced() &&
		r.namespaces.HasSynced() && r.services.HasSynced() && (r.chainIndexSynced == nil || r.chainIndexSynced())
}

// ready waits (up to the sync timeout) for the first sync; afterwards it costs one atomic load.
func (r *CacheReader) ready() error {
	if r.synced.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.timeout)
	defer cancel()
	if !toolscache.WaitForCacheSync(ctx.Done(), r.HasSynced) {
		return errors.New("the informer cache has not synced yet")
	}
	r.synced.Store(true)
	return nil
}

// byIndex returns the objects of an index value, as their stored pointers.
func byIndex[T any](r *CacheReader, inf toolscache.SharedIndexInformer, index, value string) ([]*T, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	items, err := inf.GetIndexer().ByIndex(index, value)
	if err != nil {
		return nil, err
	}
	return typed[T](items)
}

// byKey returns the object of a store key ("namespace/name", or "name" when cluster-scoped).
func byKey[T any](r *CacheReader, inf toolscache.SharedIndexInformer, key string) (*T, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	item, exists, err := inf.GetIndexer().GetByKey(key)
	if err != nil || !exists {
		return nil, err
	}
	obj, ok := item.(*T)
	if !ok {
		return nil, fmt.Errorf("cache holds a %T, want %T", item, obj)
	}
	return obj, nil
}

func typed[T any](items []any) ([]*T, error) {
	if len(items) == 0 {
		return nil, nil
	}
	out := make([]*T, len(items))
	for i, item := range items {
		obj, ok := item.(*T)
		if !ok {
			return nil, fmt.Errorf("cache holds a %T, want %T", item, obj)
		}
		out[i] = obj
	}
	return out, nil
}

// Plugin implements Reader.
func (r *CacheReader) Plugin(name string) (*v1alpha1.Plugin, error) {
	return byKey[v1alpha1.Plugin](r, r.plugins, name)
}

// PluginChainsInNamespace implements Reader.
func (r *CacheReader) PluginChainsInNamespace(namespace string) ([]*v1alpha1.PluginChain, error) {
	return byIndex[v1alpha1.PluginChain](r, r.chains, toolscache.NamespaceIndex, namespace)
}

// PluginChainsWithNamespaceSelector implements Reader.
func (r *CacheReader) PluginChainsWithNamespaceSelector() ([]*v1alpha1.PluginChain, error) {
	return byIndex[v1alpha1.PluginChain](r, r.chains, IndexChainNamespaceSelector, "true")
}

// PluginConfigsForPlugin implements Reader.
func (r *CacheReader) PluginConfigsForPlugin(namespace, plugin string) ([]*v1alpha1.PluginConfig, error) {
	return byIndex[v1alpha1.PluginConfig](r, r.configs, IndexConfigPlugin, namespace+"/"+plugin)
}

// PluginConfigsForService implements Reader.
func (r *CacheReader) PluginConfigsForService(namespace, service string) ([]*v1alpha1.PluginConfig, error) {
	return byIndex[v1alpha1.PluginConfig](r, r.configs, IndexConfigService, namespace+"/"+service)
}

// ChainIndex implements chains.Indexed: the index IndexChains set up, or nil.
func (r *CacheReader) ChainIndex() (*chains.Index, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	return r.chainIndex, nil
}

// Namespace implements Reader.
func (r *CacheReader) Namespace(name string) (*corev1.Namespace, error) {
	return byKey[corev1.Namespace](r, r.namespaces, name)
}

// Namespaces implements Reader.
func (r *CacheReader) Namespaces() ([]*corev1.Namespace, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	return typed[corev1.Namespace](r.namespaces.GetIndexer().List())
}

// Service implements Reader.
func (r *CacheReader) Service(namespace, name string) (*corev1.Service, error) {
	return byKey[corev1.Service](r, r.services, namespace+"/"+name)
}

// ServicesInNamespace implements Reader.
func (r *CacheReader) ServicesInNamespace(namespace string) ([]*corev1.Service, error) {
	return byIndex[corev1.Service](r, r.services, toolscache.NamespaceIndex, namespace)
}

// ServicesForLabels implements inject.IndexedServices: the Services of the namespace filed
// under one of the labels (IndexServiceSelector), each once, among them every Service whose
// selector selects a pod with these labels.
func (r *CacheReader) ServicesForLabels(namespace string, labels map[string]string) ([]*corev1.Service, error) {
	var out []*corev1.Service
	for k, v := range labels {
		svcs, err := byIndex[corev1.Service](r, r.services, IndexServiceSelector, serviceSelectorKey(namespace, k, v))
		if err != nil {
			return nil, err
		}
		out = append(out, svcs...)
	}
	return out, nil
}
