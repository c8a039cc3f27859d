package inject

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// selection is what the PluginChains say about one pod.
type selection struct {
	// chains are the matching chains that mount a declared CORS plugin, as "namespace/name".
	chains []string
	// plugins are the declared CORS plugins those chains mount, sorted and unique.
	plugins []string
	// undeclared explains matching chains whose CORS plugin has no Plugin declaration: they
	// have no effect, as in FSM, but a user wondering why a pod has no sidecar needs to know.
	undeclared []string
}

func (s *selection) selected() bool { return len(s.plugins) > 0 }

func (s *selection) equal(o *selection) bool {
	return slices.Equal(s.chains, o.chains) && slices.Equal(s.plugins, o.plugins) && slices.Equal(s.undeclared, o.undeclared)
}

// selectChains finds the PluginChains that select a pod with these labels in namespace ns and
// mount a CORS plugin in inbound-http: through the Reader's chains.Index when it keeps one of
// the injector's rule, otherwise among the chains that may reach the namespace
// (chains.Selection.Candidates). It does not allocate for chains that do not match, which is
// almost every chain for almost every pod.
func (in *Injector) selectChains(podLabels map[string]string, ns *corev1.Namespace, r clusterstate.Reader) (selection, error) {
	var sel selection
	ix, err := in.selection.IndexOf(r)
	if err != nil {
		return sel, fmt.Errorf("reading the PluginChain index: %w", err)
	}
	if ix != nil {
		if err := in.selectIndexed(ix, podLabels, ns, &sel, r); err != nil {
			return sel, err
		}
		return sel.sorted(), nil
	}
	candidates, err := in.selection.Candidates(r, ns.Name)
	if err != nil {
		return sel, fmt.Errorf("listing the PluginChains that may reach namespace %s: %w", ns.Name, err)
	}
	for _, c := range candidates {
		if !in.selection.Acts(c, podLabels, ns) {
			continue
		}
		if err := in.addChain(&sel, c, ns, r); err != nil {
			return sel, err
		}
	}
	return sel.sorted(), nil
}

// selectIndexed is selectChains over an index.
func (in *Injector) selectIndexed(ix *chains.Index, podLabels map[string]string, ns *corev1.Namespace, sel *selection, r clusterstate.Reader) error {
	return ix.Selecting(podLabels, ns, func(c *v1alpha1.PluginChain) error { return in.addChain(sel, c, ns, r) })
}

// sorted makes the selection independent of the order chains were visited in.
func (s selection) sorted() selection {
	slices.Sort(s.chains)
	s.chains = slices.Compact(s.chains)
	slices.Sort(s.plugins)
	s.plugins = slices.Compact(s.plugins)
	slices.Sort(s.undeclared)
	s.undeclared = slices.Compact(s.undeclared)
	return s
}

// addChain adds c, a chain that mounts a CORS plugin and selects the pod, to sel with the
// CORS plugins it mounts that are declared.
func (in *Injector) addChain(sel *selection, c *v1alpha1.PluginChain, podNS *corev1.Namespace, r clusterstate.Reader) error {
	key := chains.Key(c)
	if c.Namespace != podNS.Name {
		// A chain reaching in from a namespace the webhooks skip by its label is ignored (in
		// its own namespace, the pod's namespace opt-out already applies).
		chainNS, err := r.Namespace(c.Namespace)
		if err != nil {
			return fmt.Errorf("reading namespace %s: %w", c.Namespace, err)
		}
		if in.selection.IgnoresIn(c, chainNS) {
			return nil
		}
	}
	declared := false
	for _, p := range in.selection.Plugins.InboundHTTP(c) {
		plugin, err := r.Plugin(p)
		if err != nil {
			return fmt.Errorf("reading Plugin %s: %w", p, err)
		}
		if plugin == nil {
			sel.undeclared = append(sel.undeclared, fmt.Sprintf("PluginChain %s mounts %s, but no Plugin %s is declared", key, p, p))
			continue
		}
		sel.plugins = append(sel.plugins, p)
		declared = true
	}
	if declared {
		sel.chains = append(sel.chains, key)
	}
	return nil
}

// serviceSelects reports whether a Service's selector selects the pod's labels. A Service
// without a selector selects no pod (its endpoints are managed by hand).
func serviceSelects(svc *corev1.Service, podLabels map[string]string) bool {
	if len(svc.Spec.Selector) == 0 {
		return false
	}
	for k, v := range svc.Spec.Selector {
		if got, ok := podLabels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
