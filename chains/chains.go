// Package chains decides which PluginChain acts on which pod: the CORS plugins a chain mounts
// in inbound-http, and whether its selectors select a pod in a namespace. Validation, injection
// and Day-2 reconciliation all ask it, so they cannot disagree.
//
// The rule: a chain selects a pod when its podSelector matches the pod's labels and its
// namespaceSelector matches the pod's namespace. A nil podSelector selects every pod; a nil
// namespaceSelector selects only the chain's own namespace; an empty selector selects
// everything; a selector that does not convert (metav1.LabelSelectorAsSelector fails) selects
// nothing. A namespace always carries its kubernetes.io/metadata.name label, even when it was
// read from a file without it.
package chains

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// DefaultPlugin is the CORS plugin name of the FSM guide, the default of --cors-plugins.
const DefaultPlugin = "cors-policy"

// Plugins is the set of plugin names that mean CORS (the --cors-plugins flag). The zero value
// is the default set, {DefaultPlugin}.
type Plugins struct {
	names []string // in the order given, unique; nil: the default set
}

// NewPlugins returns the set of names; no names means the default set.
func NewPlugins(names ...string) Plugins {
	if len(names) == 0 {
		return Plugins{}
	}
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return Plugins{names: out}
}

// Names returns the plugin names in the order they were given.
func (p Plugins) Names() []string {
	if p.names == nil {
		return []string{DefaultPlugin}
	}
	return slices.Clone(p.names)
}

// Has reports whether name is a CORS plugin.
func (p Plugins) Has(name string) bool {
	if p.names == nil {
		return name == DefaultPlugin
	}
	// A handful of names: a linear scan beats a map and does not allocate.
	return slices.Contains(p.names, name)
}

// String is the set as --cors-plugins spells it: "a,b".
func (p Plugins) String() string { return strings.Join(p.Names(), ",") }

// InboundHTTP returns the CORS plugins c mounts in inbound-http, the only mount point where
// this product acts: distinct, in the order the chain lists them.
func (p Plugins) InboundHTTP(c *v1alpha1.PluginChain) []string {
	var out []string
	for _, ch := range c.Spec.Chains {
		if ch.Name != v1alpha1.ChainInboundHTTP {
			continue
		}
		for _, name := range ch.Plugins {
			if p.Has(name) && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}

// Mounts reports whether c mounts a CORS plugin in inbound-http, without allocating: the
// cheapest test, so callers run it before any selector.
func (p Plugins) Mounts(c *v1alpha1.PluginChain) bool {
	for _, ch := range c.Spec.Chains {
		if ch.Name != v1alpha1.ChainInboundHTTP {
			continue
		}
		if slices.ContainsFunc(ch.Plugins, p.Has) {
			return true
		}
	}
	return false
}

// Selection is the rule that says which chain selects which pod, with the server-wide
// settings it depends on. It is a value, so that a setting that changes the rule (for example
// which namespaces may reach beyond themselves) is added here and reaches every caller.
type Selection struct {
	// Plugins are the CORS plugins.
	Plugins Plugins
}

// Selects reports whether c's selectors select a pod with podLabels in namespace ns. It does
// not allocate for chains that do not match, which is almost every chain for almost every pod.
func (s Selection) Selects(c *v1alpha1.PluginChain, podLabels map[string]string, ns *corev1.Namespace) bool {
	ps, nss := c.Spec.Selectors.PodSelector, c.Spec.Selectors.NamespaceSelector
	if nss == nil && ns.Name != c.Namespace {
		return false
	}
	pods, nsLabels := labelSet(podLabels), NamespaceLabels(ns)
	// Both cheap pre-checks first: in clusters where chains carry a namespaceSelector that
	// every namespace satisfies (the seed's style), only the podSelector tells chains apart,
	// and converting every namespaceSelector would dominate.
	if (ps != nil && !mayMatch(ps, pods)) || (nss != nil && !mayMatch(nss, nsLabels)) {
		return false
	}
	return (nss == nil || selectorMatches(nss, nsLabels, false)) && selectorMatches(ps, pods, true)
}

// SelectsNamespace reports whether c reaches pods of namespace ns at all.
func (s Selection) SelectsNamespace(c *v1alpha1.PluginChain, ns *corev1.Namespace) bool {
	nss := c.Spec.Selectors.NamespaceSelector
	if nss == nil {
		return ns.Name == c.Namespace
	}
	return selectorMatches(nss, NamespaceLabels(ns), false)
}

// OwnNamespaceOnly reports whether c can select pods of its own namespace only, whatever the
// labels of the namespaces: then its namespace is the one place to look for its pods.
func (s Selection) OwnNamespaceOnly(c *v1alpha1.PluginChain) bool {
	return c.Spec.Selectors.NamespaceSelector == nil
}

// Acts reports whether c acts on a pod: it mounts a CORS plugin in inbound-http and selects
// the pod. (Whether the plugin is declared is the caller's business: it needs a Reader.)
func (s Selection) Acts(c *v1alpha1.PluginChain, podLabels map[string]string, ns *corev1.Namespace) bool {
	return s.Plugins.Mounts(c) && s.Selects(c, podLabels, ns)
}

// Compiled is a chain with its selectors converted once, for callers that match one chain
// against many pods or namespaces (the admission index, the reconciler's pod lists).
type Compiled struct {
	Chain *v1alpha1.PluginChain
	// pods is nil for every pod; namespaces is nil for the chain's own namespace only.
	pods, namespaces labels.Selector
}

// Compile converts c's selectors. ok is false when one does not convert: such a chain selects
// nothing.
func (s Selection) Compile(c *v1alpha1.PluginChain) (cc *Compiled, ok bool) {
	cc = &Compiled{Chain: c}
	var err error
	if ps := c.Spec.Selectors.PodSelector; ps != nil {
		if cc.pods, err = metav1.LabelSelectorAsSelector(ps); err != nil {
			return nil, false
		}
	}
	if nss := c.Spec.Selectors.NamespaceSelector; nss != nil {
		if cc.namespaces, err = metav1.LabelSelectorAsSelector(nss); err != nil {
			return nil, false
		}
	}
	return cc, true
}

// Selects is [Selection.Selects] for the compiled chain.
func (c *Compiled) Selects(podLabels map[string]string, ns *corev1.Namespace) bool {
	return c.SelectsNamespace(ns) && c.SelectsPodLabels(podLabels)
}

// SelectsPodLabels applies the podSelector alone.
func (c *Compiled) SelectsPodLabels(podLabels map[string]string) bool {
	return c.pods == nil || c.pods.Matches(labelSet(podLabels))
}

// SelectsNamespace is [Selection.SelectsNamespace] for the compiled chain.
func (c *Compiled) SelectsNamespace(ns *corev1.Namespace) bool {
	if c.namespaces == nil {
		return ns.Name == c.Chain.Namespace
	}
	return c.namespaces.Matches(NamespaceLabels(ns))
}

// OwnNamespaceOnly is [Selection.OwnNamespaceOnly] for the compiled chain.
func (c *Compiled) OwnNamespaceOnly() bool { return c.namespaces == nil }

// PodSelector is the podSelector as a labels.Selector, for listing the chain's pods in one
// namespace from a cache.
func (c *Compiled) PodSelector() labels.Selector {
	if c.pods == nil {
		return labels.Everything()
	}
	return c.pods
}

// Namespaces returns the names of the namespaces in all that c reaches, sorted. A chain that
// reaches only its own namespace names it whether or not all lists it.
func (c *Compiled) Namespaces(all []*corev1.Namespace) []string {
	if c.OwnNamespaceOnly() {
		return []string{c.Chain.Namespace}
	}
	var out []string
	for _, ns := range all {
		if c.SelectsNamespace(ns) {
			out = append(out, ns.Name)
		}
	}
	slices.Sort(out)
	return out
}
