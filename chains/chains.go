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
//
// Tenancy: namespaces are tenants. A chain outside the admin-designated cluster-chain
// namespaces acts only in its own namespace, whatever its namespaceSelector says (the
// selector still filters). Chains in the namespaces the webhooks skip are ignored, unless
// those namespaces are designated.
package chains

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/contract"
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

// Tenancy says which namespaces' chains may reach pods of other namespaces, and which
// namespaces' chains are ignored. The zero value designates no namespace and ignores none:
// every chain acts in its own namespace only.
type Tenancy struct {
	// ClusterNamespaces are the admin-designated namespaces (--cluster-chain-namespaces) whose
	// chains' namespaceSelectors may select other namespaces.
	ClusterNamespaces []string
	// SkippedNamespaces are the namespaces the webhooks are not called for (kube-system, the
	// release namespace): nothing validates their chains, so those chains are ignored unless
	// their namespace is also a cluster-chain namespace. (Namespaces labelled
	// cors-webhook.io/inject=disabled are skipped too; see [Selection.IgnoresIn].)
	SkippedNamespaces []string
}

// Reaches reports whether chains of namespace may select pods of other namespaces.
func (t Tenancy) Reaches(namespace string) bool {
	return slices.Contains(t.ClusterNamespaces, namespace)
}

// Ignores reports whether chains of namespace are ignored because the webhooks skip it.
func (t Tenancy) Ignores(namespace string) bool {
	return slices.Contains(t.SkippedNamespaces, namespace) && !t.Reaches(namespace)
}

// The scope: what the pod webhook is called for. The chart renders the webhooks'
// namespaceSelector and objectSelector as [Tenancy.AdmissionNamespaceSelector] and
// [AdmissionObjectSelector] (a chart test holds them equal), and the selection rule applies
// the same scope to pods, so the controller never rolls or patches a pod the webhook cannot
// see: not kube-system's, not the release namespace's, not the webhook's own.

// AdmissionNamespaceSelector selects the namespaces the webhooks are called for: not skipped
// by name, not labelled cors-webhook.io/inject=disabled.
func (t Tenancy) AdmissionNamespaceSelector() *metav1.LabelSelector {
	skipped := slices.Clone(t.SkippedNamespaces)
	slices.Sort(skipped)
	skipped = slices.Compact(skipped)
	sel := &metav1.LabelSelector{}
	if len(skipped) > 0 {
		sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: skipped})
	}
	sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: contract.LabelNamespaceInject, Operator: metav1.LabelSelectorOpNotIn, Values: []string{contract.NamespaceInjectDisabled}})
	return sel
}

// AdmissionObjectSelector selects the objects the webhooks are called for: those not labelled
// cors-webhook.io/ignore=true.
func AdmissionObjectSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: contract.LabelIgnore, Operator: metav1.LabelSelectorOpNotIn, Values: []string{contract.LabelIgnoreTrue}}}}
}

// InScope reports whether the pod webhook is called for pods of ns:
// [Tenancy.AdmissionNamespaceSelector] matches it. (It decides without converting the
// selector, since every pod admission asks it for every candidate chain.)
func (t Tenancy) InScope(ns *corev1.Namespace) bool {
	return !slices.Contains(t.SkippedNamespaces, ns.Name) &&
		ns.Labels[contract.LabelNamespaceInject] != contract.NamespaceInjectDisabled
}

// PodInScope reports whether the pod webhook is called for a pod with podLabels:
// [AdmissionObjectSelector] matches them.
func PodInScope(podLabels map[string]string) bool {
	return podLabels[contract.LabelIgnore] != contract.LabelIgnoreTrue
}

// Selection is the rule that says which chain selects which pod, with the server-wide
// settings it depends on. It is a value, so that a setting that changes the rule (for example
// which namespaces may reach beyond themselves) is added here and reaches every caller.
type Selection struct {
	// Plugins are the CORS plugins.
	Plugins Plugins
	// Tenancy confines chains to their own namespace.
	Tenancy Tenancy
}

// Confined reports whether c acts in its own namespace only, whatever its namespaceSelector
// says: its namespace is not a cluster-chain namespace.
func (s Selection) Confined(c *v1alpha1.PluginChain) bool { return !s.Tenancy.Reaches(c.Namespace) }

// WouldReachFurther reports whether c is confined to its own namespace while its
// namespaceSelector is not limited to it (by kubernetes.io/metadata.name): the selector
// promises more than the chain does. It reads c alone, never the namespaces that exist: a
// warning that depended on them would tell a tenant whether other namespaces carry a label.
func (s Selection) WouldReachFurther(c *v1alpha1.PluginChain) bool {
	nss := c.Spec.Selectors.NamespaceSelector
	if nss == nil || !s.Confined(c) {
		return false
	}
	return !limitedTo(nss, c.Namespace)
}

// limitedTo reports whether sel can select namespace ns only, whatever labels namespaces carry.
func limitedTo(sel *metav1.LabelSelector, ns string) bool {
	if v, ok := sel.MatchLabels[corev1.LabelMetadataName]; ok && v == ns {
		return true
	}
	for _, r := range sel.MatchExpressions {
		if r.Key == corev1.LabelMetadataName && r.Operator == metav1.LabelSelectorOpIn && len(r.Values) == 1 && r.Values[0] == ns {
			return true
		}
	}
	return false
}

// NamespaceSelector is the namespaceSelector the rule applies to c: its own, narrowed to its
// own namespace (kubernetes.io/metadata.name) when c is confined; nil for none, which means
// the chain's own namespace. For callers that reason about selectors rather than namespaces
// (the overlap checks of validation).
func (s Selection) NamespaceSelector(c *v1alpha1.PluginChain) *metav1.LabelSelector {
	nss := c.Spec.Selectors.NamespaceSelector
	if nss == nil || !s.Confined(c) {
		return nss
	}
	out := nss.DeepCopy()
	out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
		Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: []string{c.Namespace}})
	return out
}

// Ignores reports whether c is ignored because the webhooks skip its namespace by name.
func (s Selection) Ignores(c *v1alpha1.PluginChain) bool { return s.Tenancy.Ignores(c.Namespace) }

// IgnoresIn reports whether c, living in namespace chainNS, is ignored: its namespace is
// skipped by name, or labelled cors-webhook.io/inject=disabled (the webhooks skip it, so
// nothing validated the chain).
func (s Selection) IgnoresIn(c *v1alpha1.PluginChain, chainNS *corev1.Namespace) bool {
	if s.Ignores(c) {
		return true
	}
	return chainNS != nil && chainNS.Labels[contract.LabelNamespaceInject] == contract.NamespaceInjectDisabled
}

// Selects reports whether c's selectors select a pod with podLabels in namespace ns. It does
// not allocate for chains that do not match, which is almost every chain for almost every pod.
func (s Selection) Selects(c *v1alpha1.PluginChain, podLabels map[string]string, ns *corev1.Namespace) bool {
	ps, nss := c.Spec.Selectors.PodSelector, c.Spec.Selectors.NamespaceSelector
	if ns.Name != c.Namespace && (nss == nil || s.Confined(c)) {
		return false
	}
	if s.Ignores(c) || !s.Tenancy.InScope(ns) || !PodInScope(podLabels) {
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

// SelectsNamespace reports whether c reaches pods of namespace ns at all. Pods of a namespace
// out of the webhooks' scope are reached by no chain.
func (s Selection) SelectsNamespace(c *v1alpha1.PluginChain, ns *corev1.Namespace) bool {
	if s.Ignores(c) || !s.Tenancy.InScope(ns) {
		return false
	}
	nss := c.Spec.Selectors.NamespaceSelector
	if nss == nil || s.Confined(c) {
		if ns.Name != c.Namespace {
			return false
		}
		if nss == nil {
			return true
		}
	}
	return selectorMatches(nss, NamespaceLabels(ns), false)
}

// OwnNamespaceOnly reports whether c can select pods of its own namespace only, whatever the
// labels of the namespaces: then its namespace is the one place to look for its pods. (Its
// namespaceSelector, if any, still decides whether it selects that namespace.)
func (s Selection) OwnNamespaceOnly(c *v1alpha1.PluginChain) bool {
	return c.Spec.Selectors.NamespaceSelector == nil || s.Confined(c)
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
	// confined: the chain acts in its own namespace only (Tenancy), namespaces still filters.
	confined bool
	// tenancy gives the scope: namespaces and pods the webhooks are not called for are
	// selected by no chain.
	tenancy Tenancy
}

// Compile converts c's selectors. ok is false when one does not convert, or when the chain is
// ignored ([Selection.Ignores]): such a chain selects nothing.
func (s Selection) Compile(c *v1alpha1.PluginChain) (cc *Compiled, ok bool) {
	if s.Ignores(c) {
		return nil, false
	}
	cc = &Compiled{Chain: c, confined: s.Confined(c), tenancy: s.Tenancy}
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

// SelectsPodLabels applies the podSelector and the pod scope ([PodInScope]).
func (c *Compiled) SelectsPodLabels(podLabels map[string]string) bool {
	return PodInScope(podLabels) && (c.pods == nil || c.pods.Matches(labelSet(podLabels)))
}

// SelectsNamespace is [Selection.SelectsNamespace] for the compiled chain.
func (c *Compiled) SelectsNamespace(ns *corev1.Namespace) bool {
	if !c.tenancy.InScope(ns) {
		return false
	}
	if c.namespaces == nil || c.confined {
		if ns.Name != c.Chain.Namespace {
			return false
		}
		if c.namespaces == nil {
			return true
		}
	}
	return c.namespaces.Matches(NamespaceLabels(ns))
}

// OwnNamespaceOnly is [Selection.OwnNamespaceOnly] for the compiled chain.
func (c *Compiled) OwnNamespaceOnly() bool { return c.namespaces == nil || c.confined }

// PodSelector is the podSelector as a labels.Selector, with the pod scope's requirement, for
// listing the chain's pods in one namespace from a cache.
func (c *Compiled) PodSelector() labels.Selector {
	sel := c.pods
	if sel == nil {
		sel = labels.Everything()
	}
	return sel.Add(podScope)
}

// podScope is [AdmissionObjectSelector] as a requirement.
var podScope = func() labels.Requirement {
	r, err := labels.NewRequirement(contract.LabelIgnore, selection.NotIn, []string{contract.LabelIgnoreTrue})
	if err != nil {
		panic(err)
	}
	return *r
}()

// Namespaces returns the names of the namespaces in all that c reaches, sorted. A chain
// without a namespaceSelector names its own namespace whether or not all lists it; a confined
// chain with one names its own namespace unless all lists it without the selector matching.
func (c *Compiled) Namespaces(all []*corev1.Namespace) []string {
	if c.OwnNamespaceOnly() {
		if slices.Contains(c.tenancy.SkippedNamespaces, c.Chain.Namespace) {
			return nil
		}
		for _, ns := range all {
			if ns.Name == c.Chain.Namespace && !c.SelectsNamespace(ns) {
				return nil
			}
		}
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
