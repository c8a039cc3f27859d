package validate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// maxReported caps the conflicts (and overlaps) reported for one object, so that a chain that
// collides with hundreds of others still gets a readable answer.
const maxReported = 5

// PluginChainCreate validates a new PluginChain: chain names (known, once each), plugin lists
// (non-empty, no duplicates, CORS plugins only in inbound-http and at most one per chain), label
// selectors, and, against the existing chains in r, that no pod it can select would get a
// different CORS plugin from another chain. Overlaps with chains of the same CORS plugin, and
// plugins that are undeclared or not CORS plugins, are warnings.
func PluginChainCreate(r clusterstate.Reader, chain *v1alpha1.PluginChain, opts Options) (field.ErrorList, []string) {
	c := &collector{opts: opts}
	c.validateMeta(&chain.ObjectMeta, true)
	corsPlugin, ok := c.validateChains(r, chain)
	if c.validateSelectors(chain) {
		c.checkTenancy(chain)
		if ok && corsPlugin != "" {
			c.checkChainConflicts(r, chain, corsPlugin)
		}
	}
	return c.result()
}

// PluginChainUpdate validates an update of a PluginChain like a create, the chain itself
// excluded from the existing ones. An update that leaves the spec unchanged, or of a chain being
// deleted, is always accepted.
func PluginChainUpdate(r clusterstate.Reader, chain, old *v1alpha1.PluginChain, opts Options) (field.ErrorList, []string) {
	if unchangedSpec(&chain.ObjectMeta, chain.Spec, old.Spec) {
		return nil, nil
	}
	return PluginChainCreate(r, chain, opts)
}

// validateChains checks spec.chains and returns the chain's CORS plugin in inbound-http ("" for
// none); ok is false when the CORS plugins are themselves invalid, so conflicts are not checked.
func (c *collector) validateChains(r clusterstate.Reader, chain *v1alpha1.PluginChain) (corsPlugin string, ok bool) {
	chainsPath := field.NewPath("spec", "chains")
	if len(chain.Spec.Chains) == 0 {
		c.add(OriginChain, field.Required(chainsPath, "at least one chain is required"))
	}
	ok = true
	seenChains := map[string]bool{}
	warned := map[string]bool{}
	for i, ch := range chain.Spec.Chains {
		p := chainsPath.Index(i)
		knownName := slices.Contains(v1alpha1.ChainNames, ch.Name)
		switch {
		case !knownName:
			c.add(OriginChain, field.NotSupported(p.Child("name"), ch.Name, v1alpha1.ChainNames))
		case seenChains[ch.Name]:
			c.add(OriginChain, withDetail(field.Duplicate(p.Child("name"), ch.Name),
				"each chain name may appear once; merge the plugin lists"))
		}
		seenChains[ch.Name] = true
		if len(ch.Plugins) == 0 {
			c.add(OriginChain, field.Required(p.Child("plugins"), "at least one plugin is required"))
		}
		if len(ch.Plugins) > MaxChainPlugins {
			c.add(OriginLimit, field.TooMany(p.Child("plugins"), len(ch.Plugins), MaxChainPlugins))
		}
		seenPlugins := map[string]bool{}
		for j, name := range ch.Plugins {
			pp := p.Child("plugins").Index(j)
			if name == "" {
				c.add(OriginChain, field.Required(pp, "a plugin name is required"))
				continue
			}
			if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
				c.add(OriginChain, field.Invalid(pp, name, "must be the name of a Plugin: "+strings.Join(msgs, "; ")))
				continue
			}
			if seenPlugins[name] {
				c.add(OriginChain, withDetail(field.Duplicate(pp, name), "a plugin may appear once per chain"))
				continue
			}
			seenPlugins[name] = true
			if !c.opts.Plugins.Has(name) {
				if !warned[name] {
					warned[name] = true
					c.warn(pp, "%q is not a CORS plugin (--cors-plugins=%s): cors-webhook ignores it", name, c.opts.Plugins.String())
				}
				continue
			}
			switch {
			case ch.Name != v1alpha1.ChainInboundHTTP:
				ok = false
				if !knownName {
					continue // the unknown name is the error
				}
				c.add(OriginChain, field.Forbidden(pp, fmt.Sprintf(
					"CORS plugin %q may only be in chain %q: the sidecar applies CORS to inbound HTTP requests", name, v1alpha1.ChainInboundHTTP)))
				continue
			case corsPlugin != "":
				ok = false
				c.add(OriginChain, field.Forbidden(pp, fmt.Sprintf(
					"%s already lists CORS plugin %q: a pod can have only one CORS plugin", chainsPath.Index(i).Child("plugins"), corsPlugin)))
				continue
			}
			corsPlugin = name
			if declared, err := r.Plugin(name); err != nil {
				c.add("", field.InternalError(pp, err))
			} else if declared == nil && !warned[name] {
				warned[name] = true
				c.warn(pp, "Plugin %q is not declared: the chain has no effect until a Plugin of that name exists", name)
			}
		}
	}
	return corsPlugin, ok
}

// validateSelectors checks both label selectors and reports whether they are valid.
func (c *collector) validateSelectors(chain *v1alpha1.PluginChain) bool {
	sel := field.NewPath("spec", "selectors")
	valid := true
	for _, s := range []struct {
		path *field.Path
		sel  *metav1.LabelSelector
	}{
		{sel.Child("podSelector"), chain.Spec.Selectors.PodSelector},
		{sel.Child("namespaceSelector"), chain.Spec.Selectors.NamespaceSelector},
	} {
		if s.sel == nil {
			continue
		}
		errs := metav1validation.ValidateLabelSelector(s.sel, metav1validation.LabelSelectorValidationOptions{}, s.path)
		if len(errs) == 0 {
			// The apimachinery conversion is what consumers use; any error it still finds is
			// reported at the selector.
			if _, err := metav1.LabelSelectorAsSelector(s.sel); err != nil {
				errs = append(errs, field.Invalid(s.path, field.OmitValueType{}, err.Error()))
			}
		}
		if len(errs) > 0 {
			valid = false
			c.add(OriginSelector, errs...)
		}
	}
	return valid
}

// checkTenancy warns when a chain's namespaceSelector would reach other namespaces although
// its namespace is not a cluster-chain namespace: the chain acts in its own namespace only.
func (c *collector) checkTenancy(chain *v1alpha1.PluginChain) {
	sel := c.opts.selection()
	if chain.Spec.Selectors.NamespaceSelector == nil || !sel.Confined(chain) {
		return
	}
	path := field.NewPath("spec", "selectors", "namespaceSelector")
	if sel.WouldReachFurther(chain) {
		designated := strings.Join(c.opts.Tenancy.ClusterNamespaces, ",")
		if designated == "" {
			designated = "none"
		}
		c.warn(path, "selects namespaces other than %q, but only PluginChains in the cluster-chain namespaces (%s) act beyond their own namespace: this chain acts in namespace %q only",
			chain.Namespace, designated, chain.Namespace)
	}
}

// chainScope is where a chain's pods can be, compiled for overlap checks.
type chainScope struct {
	namespace string       // the chain's own namespace, when it has no namespaceSelector
	nsSel     *constraints // the namespaceSelector, when set
	pods      constraints  // the podSelector (nil selects every pod)
}

// compileScope compiles a chain's selectors; ok is false when they are invalid, in which case
// the chain selects nothing (as a selector that fails to convert matches nothing).
// The namespaceSelector is the one the tenancy rule applies (chains.Selection.NamespaceSelector).
func compileScope(chain *v1alpha1.PluginChain, sel chains.Selection) (chainScope, bool) {
	s := chainScope{namespace: chain.Namespace}
	pods, err := compileSelector(chain.Spec.Selectors.PodSelector)
	if err != nil {
		return s, false
	}
	s.pods = pods
	if ns := sel.NamespaceSelector(chain); ns != nil {
		nsSel, err := compileSelector(ns)
		if err != nil {
			return s, false
		}
		s.nsSel = &nsSel
	}
	return s, true
}

// chainHit is another chain that can select a pod this chain selects.
type chainHit struct {
	other    *v1alpha1.PluginChain
	conflict bool // it puts a CORS plugin other than this chain's in inbound-http
}

// chainCheck holds what one conflict check needs about the chain under validation.
type chainCheck struct {
	r          clusterstate.Reader
	chain      *v1alpha1.PluginChain
	corsPlugin string
	opts       Options
	scope      chainScope
	// ownNS is the chain's namespace when it has no namespaceSelector and the namespace exists.
	ownNS *corev1.Namespace
	// compiled is the chain under the selection rule of package chains, converted once for
	// the loops over namespaces.
	compiled *chains.Compiled
}

// checkChainConflicts compares the chain with every existing chain that can reach the same
// namespaces and puts a CORS plugin in inbound-http.
//
// It runs on every admission of a PluginChain, against every chain that can reach its
// namespaces, so the comparison of one candidate does not allocate in the common case (see
// compare); only the reported chains get a witness.
func (c *collector) checkChainConflicts(r clusterstate.Reader, chain *v1alpha1.PluginChain, corsPlugin string) {
	scope, ok := compileScope(chain, c.opts.selection())
	if !ok || !scope.pods.satisfiable() || (scope.nsSel != nil && !scope.nsSel.satisfiable()) {
		return // selects no pod at all: nothing to conflict with
	}
	compiled, ok := c.opts.selection().Compile(chain)
	if !ok {
		return // the selectors were validated; a chain that does not convert selects nothing
	}
	cc := &chainCheck{r: r, chain: chain, corsPlugin: corsPlugin, opts: c.opts, scope: scope, compiled: compiled}
	selPath := field.NewPath("spec", "selectors")
	if scope.nsSel == nil {
		ns, err := r.Namespace(chain.Namespace)
		if err != nil {
			c.add("", field.InternalError(selPath, err))
			return
		}
		cc.ownNS = ns
		if ns != nil && !c.opts.selection().Tenancy.InScope(ns) {
			return // its pods are out of the webhooks' scope: it selects none
		}
	}
	candidates, err := cc.candidates()
	if err != nil {
		c.add("", field.InternalError(selPath, err))
		return
	}
	// Only the first maxReported conflicts and overlaps by key are reported, so those are kept
	// in order and the rest only counted: a chain overlapping thousands is not sorted whole.
	var firstConflicts, firstOverlaps []chainHit
	var conflicts, overlaps int
	for _, other := range candidates {
		if hit, conflict := cc.compare(other); hit {
			h := chainHit{other: other, conflict: conflict}
			if conflict {
				conflicts++
				firstConflicts = keepFirst(firstConflicts, h)
			} else {
				overlaps++
				firstOverlaps = keepFirst(firstOverlaps, h)
			}
		}
	}
	reported := slices.Concat(firstConflicts, firstOverlaps)
	slices.SortFunc(reported, compareHits)
	for _, h := range reported {
		witness, err := cc.witness(h.other)
		if err != nil {
			c.add("", field.InternalError(selPath, err))
			return
		}
		other := key(h.other.Namespace, h.other.Name)
		if h.conflict {
			c.add(OriginChainConflict, field.Forbidden(selPath, fmt.Sprintf(
				"selects the same pods as PluginChain %s, which puts CORS plugin %s in %s where this chain puts %q (e.g. %s): a pod can have only one CORS plugin",
				other, quoteAll(c.opts.Plugins.InboundHTTP(h.other)), v1alpha1.ChainInboundHTTP, corsPlugin, witness)))
			continue
		}
		c.warn(selPath, "overlaps PluginChain %s, which also puts %q in %s (e.g. %s): deleting one of them will not remove CORS from those pods",
			other, corsPlugin, v1alpha1.ChainInboundHTTP, witness)
	}
	if conflicts > maxReported {
		c.add(OriginChainConflict, field.Forbidden(selPath, fmt.Sprintf("and %d more conflicting PluginChains", conflicts-maxReported)))
	}
	if overlaps > maxReported {
		c.warn(selPath, "and %d more overlapping PluginChains", overlaps-maxReported)
	}
}

// candidates returns the chains that may select a pod this chain selects: the chains that may
// reach a namespace this chain reaches (its own, or the existing namespaces its
// namespaceSelector matches). A Reader that keeps a chains.Index of the same rule narrows them
// to the chains whose podSelector may overlap this chain's.
func (cc *chainCheck) candidates() ([]*v1alpha1.PluginChain, error) {
	sel := cc.opts.selection()
	ix, err := sel.IndexOf(cc.r)
	if err != nil {
		return nil, fmt.Errorf("reading the PluginChain index: %w", err)
	}
	if ix != nil {
		var out []*v1alpha1.PluginChain
		err := ix.MayOverlap(cc.chain, cc.scope.pods.allows, cc.reaches, func(c *v1alpha1.PluginChain) { out = append(out, c) })
		return out, err
	}
	var reached []string
	switch {
	case cc.chain.Spec.Selectors.NamespaceSelector == nil:
		reached = []string{cc.chain.Namespace} // whatever its labels, or whether it exists
	case sel.OwnNamespaceOnly(cc.chain):
		if ok, err := cc.reaches(cc.chain.Namespace); err != nil {
			return nil, err
		} else if ok {
			reached = []string{cc.chain.Namespace}
		}
	default:
		namespaces, err := cc.r.Namespaces()
		if err != nil {
			return nil, err
		}
		for _, ns := range namespaces {
			if cc.compiled.SelectsNamespace(ns) {
				reached = append(reached, ns.Name)
			}
		}
	}
	return sel.Candidates(cc.r, reached...)
}

// reaches reports whether this chain reaches the namespace of that name, when it exists.
func (cc *chainCheck) reaches(name string) (bool, error) {
	ns, err := cc.r.Namespace(name)
	return ns != nil && cc.compiled.SelectsNamespace(ns), err
}

// keepFirst inserts h into first, which holds the first hits by key, at most maxReported.
func keepFirst(first []chainHit, h chainHit) []chainHit {
	if len(first) == maxReported && compareHits(h, first[maxReported-1]) >= 0 {
		return first
	}
	i, _ := slices.BinarySearchFunc(first, h, compareHits)
	first = slices.Insert(first, i, h)
	if len(first) > maxReported {
		first = first[:maxReported]
	}
	return first
}

func compareHits(a, b chainHit) int {
	return compareKeys(a.other.Namespace, a.other.Name, b.other.Namespace, b.other.Name)
}

// compareKeys orders chains as strings.Compare orders their keys, key(ns, name), without
// building them: a chain that overlaps thousands is sorted without thousands of allocations.
func compareKeys(aNS, aName, bNS, bName string) int {
	if aNS == bNS {
		return strings.Compare(aName, bName)
	}
	if n := min(len(aNS), len(bNS)); aNS[:n] != bNS[:n] {
		return strings.Compare(aNS[:n], bNS[:n]) // the keys differ within both namespaces
	}
	at := func(ns, name string, i int) byte {
		switch {
		case i < len(ns):
			return ns[i]
		case i == len(ns):
			return '/'
		}
		return name[i-len(ns)-1]
	}
	la, lb := len(aNS)+1+len(aName), len(bNS)+1+len(bName)
	for i := 0; i < la && i < lb; i++ {
		if x, y := at(aNS, aName, i), at(bNS, bName, i); x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	return cmp.Compare(la, lb)
}

// compare decides whether other can select a pod this chain selects and puts a CORS plugin in
// inbound-http (hit), and whether one of its CORS plugins differs from this chain's (conflict).
// It does not allocate unless a selector has matchExpressions.
func (cc *chainCheck) compare(other *v1alpha1.PluginChain) (hit, conflict bool) {
	if other.Namespace == cc.chain.Namespace && other.Name == cc.chain.Name || cc.opts.selection().Ignores(other) {
		return false, false
	}
	hasCORS := false
	for _, ch := range other.Spec.Chains {
		if ch.Name != v1alpha1.ChainInboundHTTP {
			continue
		}
		for _, p := range ch.Plugins {
			if cc.opts.Plugins.Has(p) {
				hasCORS = true
				conflict = conflict || p != cc.corsPlugin
			}
		}
	}
	if !hasCORS || !cc.namespacesOverlap(other) || !cc.scope.pods.jointlyWith(other.Spec.Selectors.PodSelector) {
		return false, false
	}
	return true, conflict
}

// namespacesOverlap decides whether both chains can reach one namespace. A chain without a
// namespaceSelector reaches exactly its own namespace: its labels decide when it exists;
// otherwise the namespace is only known by its kubernetes.io/metadata.name label.
func (cc *chainCheck) namespacesOverlap(other *v1alpha1.PluginChain) bool {
	theirs := cc.opts.selection().NamespaceSelector(other)
	switch {
	case cc.scope.nsSel == nil && theirs == nil:
		return cc.scope.namespace == other.Namespace
	case cc.scope.nsSel == nil && cc.ownNS != nil:
		return cc.opts.selection().SelectsNamespace(other, cc.ownNS)
	case cc.scope.nsSel == nil:
		name := pin(corev1.LabelMetadataName, cc.scope.namespace)
		return name.jointlyWith(theirs)
	case theirs == nil:
		// Only chains in namespaces the selector matches are candidates (see candidates).
		return true
	default:
		return cc.scope.nsSel.jointlyWith(theirs)
	}
}

// witness describes a pod both chains select: its labels and its namespace, preferring an
// existing namespace.
func (cc *chainCheck) witness(other *v1alpha1.PluginChain) (string, error) {
	theirs, _ := compileScope(other, cc.opts.selection())
	_, podLabels := jointly(&cc.scope.pods, &theirs.pods, true)
	pods := "any pod"
	if len(podLabels) > 0 {
		pods = "pods labelled " + formatLabels(podLabels)
	}
	mine := cc.scope
	switch {
	case mine.nsSel == nil && theirs.nsSel == nil:
		return fmt.Sprintf("%s in namespace %q", pods, mine.namespace), nil
	case mine.nsSel == nil:
		return pods + " in " + concreteNamespace(mine.namespace, cc.ownNS != nil, theirs.nsSel), nil
	case theirs.nsSel == nil:
		return fmt.Sprintf("%s in namespace %q", pods, theirs.namespace), nil
	}
	namespaces, err := cc.r.Namespaces()
	if err != nil {
		return "", err
	}
	var common *corev1.Namespace // the first by name, whatever order the Reader uses
	if otherCompiled, ok := cc.opts.selection().Compile(other); ok {
		for _, ns := range namespaces {
			if (common == nil || ns.Name < common.Name) && cc.compiled.SelectsNamespace(ns) && otherCompiled.SelectsNamespace(ns) {
				common = ns
			}
		}
	}
	if common != nil {
		return fmt.Sprintf("%s in namespace %q", pods, common.Name), nil
	}
	_, nsLabels := jointly(mine.nsSel, theirs.nsSel, true)
	if len(nsLabels) == 0 {
		return pods + " in any namespace", nil
	}
	return pods + " in a namespace labelled " + formatLabels(nsLabels), nil
}

// concreteNamespace names a chain's own namespace in a witness; when the namespace does not
// exist yet, with the labels the other chain's namespaceSelector needs it to have.
func concreteNamespace(name string, exists bool, sel *constraints) string {
	if exists {
		return fmt.Sprintf("namespace %q", name)
	}
	_, l := jointly(sel, ptrTo(pin(corev1.LabelMetadataName, name)), true)
	delete(l, corev1.LabelMetadataName)
	if len(l) == 0 {
		return fmt.Sprintf("namespace %q", name)
	}
	return fmt.Sprintf("namespace %q if labelled %s", name, formatLabels(l))
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	return strings.Join(q, ", ")
}

func withDetail(e *field.Error, detail string) *field.Error {
	e.Detail = detail
	return e
}

func ptrTo[T any](v T) *T { return &v }
