package validate

import (
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
)

// ChainIndex files a cluster's PluginChains by the labels their podSelectors pin
// ([chains.Pinned]), for the conflict check of PluginChain validation: a new chain is compared
// with the chains that may select a pod together with it, not with every chain of the
// namespaces it reaches (thousands for a cluster-wide chain).
//
// It holds every chain, whatever it mounts and whatever the tenancy says: the comparison
// decides those, so one index serves any Options. It is updated in place, one chain at a
// time ([ChainIndex.Set], [ChainIndex.Delete]), because every PluginChain admission follows a
// change of PluginChains: rebuilding it on a change would cost each admission O(chains).
// It is safe for concurrent use; a lookup sees each update whole or not at all.
type ChainIndex struct {
	mu     sync.RWMutex
	byName map[string]*v1alpha1.PluginChain // namespace/name: the version filed
	// own are the chains without a namespaceSelector, by namespace: they reach their own
	// namespace only. ownAll are the same chains, for a chain that reaches many namespaces.
	own    map[string]*chains.Pinned[*v1alpha1.PluginChain]
	ownAll *chains.Pinned[*v1alpha1.PluginChain]
	// wide are the chains with a namespaceSelector.
	wide *chains.Pinned[*v1alpha1.PluginChain]
}

// IndexedChains is implemented by Readers that keep a ChainIndex of their PluginChains (the
// webhook server's, fed by the informer of PluginChains). PluginChain validation uses it
// instead of listing the chains of every namespace a chain reaches.
type IndexedChains interface {
	// PluginChainIndex returns the index, holding the Reader's PluginChains.
	PluginChainIndex() (*ChainIndex, error)
}

func chainPodSelector(c *v1alpha1.PluginChain) *metav1.LabelSelector {
	return c.Spec.Selectors.PodSelector
}

// NewChainIndex indexes list (later versions of a chain replace earlier ones).
func NewChainIndex(list ...*v1alpha1.PluginChain) *ChainIndex {
	byName := make(map[string]*v1alpha1.PluginChain, len(list))
	for _, c := range list {
		byName[key(c.Namespace, c.Name)] = c
	}
	var own, wide []*v1alpha1.PluginChain
	ownByNS := map[string][]*v1alpha1.PluginChain{}
	for _, c := range byName {
		if c.Spec.Selectors.NamespaceSelector != nil {
			wide = append(wide, c)
			continue
		}
		own = append(own, c)
		ownByNS[c.Namespace] = append(ownByNS[c.Namespace], c)
	}
	x := &ChainIndex{
		byName: byName,
		own:    make(map[string]*chains.Pinned[*v1alpha1.PluginChain], len(ownByNS)),
		ownAll: chains.NewPinned(chainPodSelector, own),
		wide:   chains.NewPinned(chainPodSelector, wide),
	}
	for ns, list := range ownByNS {
		x.own[ns] = chains.NewPinned(chainPodSelector, list)
	}
	return x
}

// Set files c, replacing the chain of the same namespace and name. The index keeps c itself:
// it must not be modified afterwards (informer objects are not).
func (x *ChainIndex) Set(c *v1alpha1.PluginChain) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := key(c.Namespace, c.Name)
	if old := x.byName[k]; old == c {
		return
	} else if old != nil {
		x.unfile(old)
	}
	x.byName[k] = c
	if c.Spec.Selectors.NamespaceSelector != nil {
		x.wide.Add(c)
		return
	}
	x.ownAll.Add(c)
	own := x.own[c.Namespace]
	if own == nil {
		own = chains.NewPinned(chainPodSelector, []*v1alpha1.PluginChain(nil))
		x.own[c.Namespace] = own
	}
	own.Add(c)
}

// Delete unfiles the chain of that namespace and name, if filed.
func (x *ChainIndex) Delete(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	k := key(namespace, name)
	if old := x.byName[k]; old != nil {
		x.unfile(old)
		delete(x.byName, k)
	}
}

func (x *ChainIndex) unfile(c *v1alpha1.PluginChain) {
	if c.Spec.Selectors.NamespaceSelector != nil {
		x.wide.Remove(c)
		return
	}
	x.ownAll.Remove(c)
	if own := x.own[c.Namespace]; own != nil {
		if own.Remove(c); own.Len() == 0 {
			delete(x.own, c.Namespace)
		}
	}
}

// Len is the number of chains filed.
func (x *ChainIndex) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byName)
}

// candidates returns the chains that may select a pod the chain under check selects: of the
// chains with a namespaceSelector, those whose podSelector may overlap the chain's; of the
// chains without one, those that also live in a namespace the chain reaches. It is a subset of
// what the listing in chainCheck.candidates returns that holds every chain compare accepts.
func (x *ChainIndex) candidates(cc *chainCheck) ([]*v1alpha1.PluginChain, error) {
	var out []*v1alpha1.PluginChain
	collect := func(c *v1alpha1.PluginChain) { out = append(out, c) }
	allows := cc.scope.pods.allows
	x.mu.RLock()
	defer x.mu.RUnlock()
	x.wide.MayOverlap(allows, collect)
	if cc.scope.nsSel == nil {
		if local := x.own[cc.chain.Namespace]; local != nil {
			local.MayOverlap(allows, collect)
		}
		return out, nil
	}
	var err error
	reaches := func(name string) bool {
		ns, e := cc.r.Namespace(name)
		if e != nil && err == nil {
			err = e
		}
		return ns != nil && cc.compiled.SelectsNamespace(ns)
	}
	// When the chain's podSelector narrows the chains of all namespaces to fewer than there
	// are namespaces, look them up and check their namespace; otherwise (it pins no label
	// those chains are filed under) go through the namespaces it reaches.
	if n := x.ownAll.MayOverlapCount(allows); n <= len(x.own) {
		reached := make(map[string]bool, n)
		x.ownAll.MayOverlap(allows, func(c *v1alpha1.PluginChain) {
			ok, seen := reached[c.Namespace]
			if !seen {
				ok = reaches(c.Namespace)
				reached[c.Namespace] = ok
			}
			if ok {
				out = append(out, c)
			}
		})
	} else {
		for name, local := range x.own {
			if reaches(name) {
				local.MayOverlap(allows, collect)
			}
		}
	}
	return out, err
}
