package chains

import (
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// Index files a cluster's PluginChains for the lookups every admission makes: which chains
// select this pod (injection), which chains may select a pod together with this chain
// (validation), which chains may reach this namespace (Day 2, describe). Without it each
// lookup lists and evaluates every chain that may reach a namespace; FSM-style chains all
// carry a namespaceSelector (the guide's does), so with thousands of chains that is
// milliseconds per request.
//
// It splits chains by one rule, [Selection.OwnNamespaceOnly]: a chain that can select pods of
// its own namespace only is filed under that namespace, every other chain among the wide
// ones. Within each group, chains are filed by the label their podSelector pins
// ([Pinned]). Injection and validation both read this one index, so they cannot split
// chains differently.
//
// It holds every chain, whatever it mounts: validation compares a new chain with chains that
// mount other plugins too. It is updated in place, one chain at a time ([Index.Set],
// [Index.Delete]), as the informer's one event handler delivers changes (a rebuild would cost
// every admission O(chains): inject's BenchmarkChainIndexChange). It is safe for concurrent use; a lookup
// sees each update whole or not at all.
type Index struct {
	sel Selection
	// mu guards the maps below: Set and Delete against the lookups of admissions.
	mu sync.RWMutex
	// filed is every chain by namespace/name, for Set and Delete.
	filed map[string]*indexed
	// own are the chains that select pods of their own namespace only, by namespace; ownAll
	// the same chains together, for a chain that reaches many namespaces.
	own    map[string]*Pinned[*indexed]
	ownAll *Pinned[*indexed]
	// wide are the chains that may reach other namespaces.
	wide *Pinned[*indexed]
}

// indexed is a chain as filed: the chain, and its selectors converted once.
type indexed struct {
	chain *v1alpha1.PluginChain
	// compiled is nil when the chain selects nothing: it is ignored ([Selection.Ignores]) or
	// a selector does not convert.
	compiled *Compiled
}

func indexedPodSelector(e *indexed) *metav1.LabelSelector { return e.chain.Spec.Selectors.PodSelector }

// Key is a chain's key in an Index and in messages: "namespace/name".
func Key(c *v1alpha1.PluginChain) string { return c.Namespace + "/" + c.Name }

// NewIndex files list under the rule s (later versions of a chain replace earlier ones).
func NewIndex(s Selection, list ...*v1alpha1.PluginChain) *Index {
	x := &Index{sel: s, filed: make(map[string]*indexed, len(list)), own: map[string]*Pinned[*indexed]{}}
	for _, c := range list {
		x.filed[Key(c)] = x.entry(c)
	}
	var own, wide []*indexed
	ownByNS := map[string][]*indexed{}
	for _, e := range x.filed {
		if !s.OwnNamespaceOnly(e.chain) {
			wide = append(wide, e)
			continue
		}
		own = append(own, e)
		ownByNS[e.chain.Namespace] = append(ownByNS[e.chain.Namespace], e)
	}
	x.ownAll = NewPinned(indexedPodSelector, own)
	x.wide = NewPinned(indexedPodSelector, wide)
	for ns, list := range ownByNS {
		x.own[ns] = NewPinned(indexedPodSelector, list)
	}
	return x
}

func (x *Index) entry(c *v1alpha1.PluginChain) *indexed {
	e := &indexed{chain: c}
	if cc, ok := x.sel.Compile(c); ok {
		e.compiled = cc
	}
	return e
}

// Selection is the rule the index files chains by.
func (x *Index) Selection() Selection { return x.sel }

// Set files c, a PluginChain added or updated, in place of the chain of the same namespace and
// name. The index keeps c itself: it must not be modified afterwards (informer objects are
// not).
func (x *Index) Set(c *v1alpha1.PluginChain) {
	k := Key(c)
	x.mu.RLock()
	same := x.filed[k] != nil && x.filed[k].chain == c
	x.mu.RUnlock()
	if same {
		return
	}
	e := x.entry(c) // compiled outside the lock: lookups go on meanwhile
	x.mu.Lock()
	defer x.mu.Unlock()
	x.unfile(k)
	x.filed[k] = e
	if !x.sel.OwnNamespaceOnly(c) {
		x.wide.Add(e)
		return
	}
	x.ownAll.Add(e)
	own := x.own[c.Namespace]
	if own == nil {
		own = NewPinned(indexedPodSelector, nil)
		x.own[c.Namespace] = own
	}
	own.Add(e)
}

// Delete unfiles the chain of that namespace and name, if filed.
func (x *Index) Delete(namespace, name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.unfile(namespace + "/" + name)
}

func (x *Index) unfile(key string) {
	old := x.filed[key]
	if old == nil {
		return
	}
	delete(x.filed, key)
	if !x.sel.OwnNamespaceOnly(old.chain) {
		x.wide.Remove(old)
		return
	}
	x.ownAll.Remove(old)
	ns := old.chain.Namespace
	if own := x.own[ns]; own != nil {
		if own.Remove(old); own.Len() == 0 {
			delete(x.own, ns)
		}
	}
}

// Len is the number of chains filed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.filed)
}

// Selecting calls visit, once each, for the chains that mount a CORS plugin in inbound-http
// and select a pod with podLabels in namespace ns ([Selection.Acts]). It stops at the first
// error. It does not allocate unless visit does, which it is called for only on a match.
func (x *Index) Selecting(podLabels map[string]string, ns *corev1.Namespace, visit func(*v1alpha1.PluginChain) error) error {
	x.mu.RLock()
	defer x.mu.RUnlock()
	check := func(e *indexed) error {
		if e.compiled == nil || !x.sel.Plugins.Mounts(e.chain) || !e.compiled.Selects(podLabels, ns) {
			return nil
		}
		return visit(e.chain)
	}
	if own := x.own[ns.Name]; own != nil {
		if err := own.MaySelect(podLabels, check); err != nil {
			return err
		}
	}
	return x.wide.MaySelect(podLabels, check)
}

// MayOverlap calls visit, once each, for the chains that may select a pod that c selects: the
// wide chains and the own-namespace chains of the namespaces c reaches, narrowed to those
// filed under a label value c's podSelector allows (allows, as [Pinned.MayOverlap] takes it).
// reaches says whether c reaches an existing namespace; it is not asked for the namespace of a
// chain without a namespaceSelector, which reaches its own namespace whatever its labels. It
// holds every chain an exact comparison would accept.
func (x *Index) MayOverlap(c *v1alpha1.PluginChain, allows func(key string) ([]string, bool), reaches func(namespace string) (bool, error), visit func(*v1alpha1.PluginChain)) error {
	collect := func(e *indexed) { visit(e.chain) }
	x.mu.RLock()
	defer x.mu.RUnlock()
	x.wide.MayOverlap(allows, collect)
	var err error
	reached := func(name string) bool {
		ok, e := reaches(name)
		if e != nil && err == nil {
			err = e
		}
		return ok
	}
	if x.sel.OwnNamespaceOnly(c) {
		// Without a namespaceSelector, c reaches its namespace whatever its labels; with
		// one (confined), only when the selector matches it.
		if local := x.own[c.Namespace]; local != nil && (c.Spec.Selectors.NamespaceSelector == nil || reached(c.Namespace)) {
			local.MayOverlap(allows, collect)
		}
		return err
	}
	// When c's podSelector narrows the chains of all namespaces to fewer than there are
	// namespaces, look them up and check their namespace; otherwise (it pins no label those
	// chains are filed under) go through the namespaces it reaches.
	if n := x.ownAll.MayOverlapCount(allows); n <= len(x.own) {
		seen := make(map[string]bool, n)
		x.ownAll.MayOverlap(allows, func(e *indexed) {
			ok, done := seen[e.chain.Namespace]
			if !done {
				ok = reached(e.chain.Namespace)
				seen[e.chain.Namespace] = ok
			}
			if ok {
				visit(e.chain)
			}
		})
	} else {
		for name, local := range x.own {
			if reached(name) {
				local.MayOverlap(allows, collect)
			}
		}
	}
	return err
}

// Candidates returns the chains that may reach pods of the namespaces: every wide chain, and
// the own-namespace chains of those namespaces, each once.
func (x *Index) Candidates(namespaces ...string) []*v1alpha1.PluginChain {
	collect := func(out []*v1alpha1.PluginChain, p *Pinned[*indexed]) []*v1alpha1.PluginChain {
		p.MayOverlap(func(string) ([]string, bool) { return nil, true }, func(e *indexed) { out = append(out, e.chain) })
		return out
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := collect(nil, x.wide)
	for _, ns := range uniq(namespaces) {
		if local := x.own[ns]; local != nil {
			out = collect(out, local)
		}
	}
	return out
}

func uniq(s []string) []string {
	if len(s) < 2 {
		return s
	}
	return slices.Compact(slices.Sorted(slices.Values(s)))
}

// Lister lists PluginChains: clusterstate.Reader does.
type Lister interface {
	// PluginChainsInNamespace returns the PluginChains declared in a namespace.
	PluginChainsInNamespace(namespace string) ([]*v1alpha1.PluginChain, error)
	// PluginChainsWithNamespaceSelector returns the PluginChains that declare a
	// namespaceSelector, in every namespace.
	PluginChainsWithNamespaceSelector() ([]*v1alpha1.PluginChain, error)
}

// Indexed is implemented by Readers that keep an Index of their PluginChains (the server's,
// fed by the informer of PluginChains).
type Indexed interface {
	// ChainIndex returns the current index, whole.
	ChainIndex() (*Index, error)
}

// IndexOf returns r's Index when r keeps one filed under the rule s, or nil: an index of
// another rule (other CORS plugins, another tenancy) would answer for that rule, not s.
func (s Selection) IndexOf(r any) (*Index, error) {
	src, ok := r.(Indexed)
	if !ok {
		return nil, nil
	}
	ix, err := src.ChainIndex()
	if err != nil || ix == nil || !ix.sel.Equal(s) {
		return nil, err
	}
	return ix, nil
}

// Candidates returns the chains that may reach pods of the namespaces under the rule: through
// r's Index when it keeps one, otherwise by listing the chains of those namespaces and the
// chains with a namespaceSelector. Every caller that enumerates "the chains that may act in
// namespace N" asks it, then applies [Selection.Selects] or its own test.
func (s Selection) Candidates(r Lister, namespaces ...string) ([]*v1alpha1.PluginChain, error) {
	ix, err := s.IndexOf(r)
	if err != nil {
		return nil, err
	}
	if ix != nil {
		return ix.Candidates(namespaces...), nil
	}
	withSelector, err := r.PluginChainsWithNamespaceSelector()
	if err != nil {
		return nil, err
	}
	var out []*v1alpha1.PluginChain
	for _, c := range withSelector {
		if !s.OwnNamespaceOnly(c) {
			out = append(out, c)
		}
	}
	for _, ns := range uniq(namespaces) {
		local, err := r.PluginChainsInNamespace(ns)
		if err != nil {
			return nil, err
		}
		for _, c := range local {
			if s.OwnNamespaceOnly(c) {
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// Equal reports whether s and o are the same rule.
func (s Selection) Equal(o Selection) bool {
	return s.Plugins.equal(o.Plugins) &&
		slices.Equal(s.Tenancy.ClusterNamespaces, o.Tenancy.ClusterNamespaces) &&
		slices.Equal(s.Tenancy.SkippedNamespaces, o.Tenancy.SkippedNamespaces)
}

// equal reports whether p and o are the same set, in the same order, without allocating.
func (p Plugins) equal(o Plugins) bool {
	a, b := p.names, o.names
	if a == nil {
		a = defaultPlugins
	}
	if b == nil {
		b = defaultPlugins
	}
	return slices.Equal(a, b)
}

var defaultPlugins = []string{DefaultPlugin}

// Considered returns the chains a user may expect to act in namespace ns, for explanations:
// the [Selection.Candidates], plus the chains of other namespaces whose namespaceSelector the
// tenancy confines to their own namespace ([ReasonConfined]). Only the candidates can act.
func (s Selection) Considered(r Lister, ns string) ([]*v1alpha1.PluginChain, error) {
	out, err := s.Candidates(r, ns)
	if err != nil {
		return nil, err
	}
	withSelector, err := r.PluginChainsWithNamespaceSelector()
	if err != nil {
		return nil, err
	}
	for _, c := range withSelector {
		if c.Namespace != ns && s.OwnNamespaceOnly(c) {
			out = append(out, c)
		}
	}
	return out, nil
}
