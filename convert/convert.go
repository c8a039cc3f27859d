// Package convert imports CORS settings written for other systems — ingress-nginx annotations,
// Istio VirtualService corsPolicy, Gateway API HTTPRoute CORS filters — as the PluginChain and
// PluginConfig resources cors-webhook reads. It returns structure; the CLI renders it.
//
// Every importer keeps the source's answers where the sidecar can give them, and reports what it
// cannot: the sidecar applies one policy per Service port, for every host and path, so host and
// path scoping, non-Service backends and a second policy for the same Service are reported, not
// silently merged. No importer widens what the source allowed.
package convert

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// Options shape the output.
type Options struct {
	// Plugin is the CORS plugin's name (default "cors-policy").
	Plugin string
	// WithPlugin also emits the cluster-scoped Plugin, for clusters that do not declare it yet.
	WithPlugin bool
	// PodSelector, when set, narrows the generated PluginChains to these pods; without it a
	// chain selects every pod of its namespace (pods without a config get a pass-through
	// sidecar).
	PodSelector *metav1.LabelSelector
}

// Result is what Convert produced.
type Result struct {
	Plugin  *v1alpha1.Plugin // only with Options.WithPlugin
	Chains  []*v1alpha1.PluginChain
	Configs []*v1alpha1.PluginConfig
	Reports []Report
}

// Report says, for one input object, what became of it.
type Report struct {
	// Source names the input: "Ingress shop/web".
	Source string
	// Configs are the PluginConfigs made from it, as namespace/name.
	Configs []string
	// Lost lists what could not be carried over; empty when the conversion is faithful.
	Lost []string
	// Notes are changes that keep what browsers are allowed but differ in the bytes answered.
	Notes []string
}

// Complete reports whether every input was carried over without loss.
func (r *Result) Complete() bool {
	for _, rep := range r.Reports {
		if len(rep.Lost) > 0 {
			return false
		}
	}
	return true
}

// policy is one converted CORS config with the Services it applies to.
type policy struct {
	cfg      corsconfig.CORSConfig
	services []serviceRef
}

type serviceRef struct{ namespace, name string }

// defaultPorts are the ports browsers leave out of an Origin.
var defaultPorts = map[string]string{"http": "80", "https": "443"}

// source is what an importer extracts from one object.
type source struct {
	report   Report
	policies []policy
	name     string       // base for the PluginConfig names
	attached []serviceRef // every Service a policy of this source applies to
}

// Convert imports every recognized object of objs; objects of other kinds are ignored (they may
// be the rest of a manifest directory). Sources are processed in input order, so when two name
// the same Service the first keeps it and the second reports the loss.
func Convert(objs []*unstructured.Unstructured, opts Options) *Result {
	if opts.Plugin == "" {
		opts.Plugin = "cors-policy"
	}
	res := &Result{}
	owner := map[serviceRef]string{} // Service -> PluginConfig that configures it
	namespaces := map[string]bool{}
	for _, obj := range objs {
		var src *source
		switch gvk := obj.GroupVersionKind(); {
		case gvk.Group == "networking.k8s.io" && gvk.Kind == "Ingress":
			src = fromIngress(obj)
		case gvk.Group == "networking.istio.io" && gvk.Kind == "VirtualService":
			src = fromVirtualService(obj)
		case gvk.Group == "gateway.networking.k8s.io" && gvk.Kind == "HTTPRoute":
			src = fromHTTPRoute(obj)
		default:
			continue
		}
		for i, p := range src.policies {
			name := src.name + "-cors"
			if i > 0 {
				name = fmt.Sprintf("%s-cors-%d", src.name, i+1)
			}
			byNS := map[string][]string{}
			var order []string
			for _, svc := range p.services {
				key := serviceRef{svc.namespace, svc.name}
				if other, taken := owner[key]; taken {
					if other != svc.namespace+"/"+name {
						src.report.Lost = append(src.report.Lost, fmt.Sprintf(
							"Service %s/%s already has the CORS config of %s: a Service port takes one policy; this source's policy for it is dropped", svc.namespace, svc.name, other))
					}
					continue
				}
				owner[key] = svc.namespace + "/" + name
				if _, ok := byNS[svc.namespace]; !ok {
					order = append(order, svc.namespace)
				}
				byNS[svc.namespace] = append(byNS[svc.namespace], svc.name)
			}
			for _, ns := range order {
				res.Configs = append(res.Configs, pluginConfig(ns, name, opts.Plugin, p.cfg, byNS[ns]))
				src.report.Configs = append(src.report.Configs, ns+"/"+name)
				namespaces[ns] = true
			}
		}
		if len(src.policies) == 0 && len(src.report.Lost) == 0 {
			src.report.Lost = append(src.report.Lost, "no CORS settings found")
		}
		res.Reports = append(res.Reports, src.report)
	}
	nsList := make([]string, 0, len(namespaces))
	for ns := range namespaces {
		nsList = append(nsList, ns)
	}
	slices.Sort(nsList)
	for _, ns := range nsList {
		res.Chains = append(res.Chains, pluginChain(ns, opts))
	}
	if opts.WithPlugin {
		res.Plugin = &v1alpha1.Plugin{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Plugin"},
			ObjectMeta: metav1.ObjectMeta{Name: opts.Plugin},
			Spec: v1alpha1.PluginSpec{
				Priority: 165,
				// cors-webhook's sidecar implements the plugin natively; FSM would run this script.
				Script: "// CORS is answered by the cors-webhook sidecar from the PluginConfig.\n",
			},
		}
	}
	return res
}

func pluginConfig(ns, name, plugin string, cfg corsconfig.CORSConfig, services []string) *v1alpha1.PluginConfig {
	raw, err := json.Marshal(cfg)
	if err != nil { // a struct of strings, lists and an IntOrString: cannot fail
		panic(err)
	}
	pc := &v1alpha1.PluginConfig{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PluginConfig"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       v1alpha1.PluginConfigSpec{Plugin: plugin, Config: runtime.RawExtension{Raw: raw}},
	}
	for _, s := range services {
		pc.Spec.DestinationRefs = append(pc.Spec.DestinationRefs, corev1.ObjectReference{Kind: "Service", Name: s, Namespace: ns})
	}
	return pc
}

// pluginChain is named apart from hand-written chains (the guide's is "cors-policy-chain"), so
// that applying the import never replaces one.
func pluginChain(ns string, opts Options) *v1alpha1.PluginChain {
	return &v1alpha1.PluginChain{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PluginChain"},
		ObjectMeta: metav1.ObjectMeta{Name: opts.Plugin + "-converted", Namespace: ns},
		Spec: v1alpha1.PluginChainSpec{
			Chains:    []v1alpha1.ChainPluginSpec{{Name: "inbound-http", Plugins: []string{opts.Plugin}}},
			Selectors: v1alpha1.ChainSelectorSpec{PodSelector: opts.PodSelector.DeepCopy()},
		},
	}
}

// addPolicy appends cfg for services, merging with an identical config of the same source, so
// that rules that repeat one policy give one PluginConfig.
func (s *source) addPolicy(cfg corsconfig.CORSConfig, services []serviceRef) {
	for _, svc := range services {
		if !slices.Contains(s.attached, svc) {
			s.attached = append(s.attached, svc)
		}
	}
	for i := range s.policies {
		if equalConfig(s.policies[i].cfg, cfg) {
			for _, svc := range services {
				if !slices.Contains(s.policies[i].services, svc) {
					s.policies[i].services = append(s.policies[i].services, svc)
				}
			}
			return
		}
	}
	s.policies = append(s.policies, policy{cfg: cfg, services: services})
}

func equalConfig(a, b corsconfig.CORSConfig) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func (s *source) lost(format string, args ...any) {
	s.report.Lost = append(s.report.Lost, fmt.Sprintf(format, args...))
}

func (s *source) note(format string, args ...any) {
	s.report.Notes = append(s.report.Notes, fmt.Sprintf(format, args...))
}

func newSource(obj *unstructured.Unstructured) *source {
	return &source{
		name:   obj.GetName(),
		report: Report{Source: obj.GetKind() + " " + obj.GetNamespace() + "/" + obj.GetName()},
	}
}

// namespaceOf is the object's namespace, "default" when the manifest leaves it out (as kubectl
// apply without -n would place it).
func namespaceOf(obj *unstructured.Unstructured) string {
	if ns := obj.GetNamespace(); ns != "" {
		return ns
	}
	return "default"
}

// splitList splits a comma-separated annotation value, trimming blanks and dropping empties.
func splitList(s string) []string {
	var out []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// stringSlice reads a list of strings at path; other item types are skipped.
func stringSlice(obj map[string]any, path ...string) []string {
	items, _, _ := unstructured.NestedSlice(obj, path...)
	var out []string
	for _, it := range items {
		if s, ok := it.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// scoping reports the host and path scoping the sidecar cannot keep for the Services the
// source's policies apply to.
func (s *source) scoping(hosts, paths []string) {
	if len(s.attached) == 0 {
		return
	}
	names := make([]string, len(s.attached))
	for i, svc := range s.attached {
		names[i] = svc.namespace + "/" + svc.name
	}
	if len(hosts) > 0 {
		s.lost("hostnames %s: the sidecar answers for every host that reaches Service %s", strings.Join(hosts, ", "), strings.Join(names, ", "))
	}
	if len(paths) > 0 {
		s.lost("per-path rules %s: the sidecar answers for every path of Service %s", strings.Join(paths, ", "), strings.Join(names, ", "))
	}
}
