package inject

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/cors"
)

// Resolution is what the cluster's PluginChains, PluginConfigs and Services say about one pod:
// whether it should carry the sidecar and with which per-port policy. It is computed without
// touching the pod, so Day-2 reconciliation can compare it with what a running pod carries.
type Resolution struct {
	// Selected is true when a PluginChain selects the pod and mounts a declared CORS plugin in
	// inbound-http. Nothing else is meaningful when it is false.
	Selected bool
	// Chains are the selecting chains ("namespace/name"), sorted.
	Chains []string
	// Plugins are the declared CORS plugins they mount, sorted.
	Plugins []string
	// Ports say, per configured port (sorted), which PluginConfig applies and which others
	// were overridden: the structure behind Policy.
	Ports []PortPolicy
	// Invalid are the PluginConfigs of the selecting CORS plugins, naming a Service that
	// selects the pod, that do not decode or compile and are therefore ignored.
	Invalid []InvalidConfig
	// Policy is the effective per-port policy; its Ports map is empty, not nil, when no
	// PluginConfig configures the pod yet (pass-through).
	Policy cors.PodPolicy
	// PolicyJSON is Policy marshalled: the value of the contract.AnnotationPolicy annotation.
	PolicyJSON string
	// RedirectPorts are the ports cors-init redirects to the sidecar, sorted: the ports with a
	// policy, the target ports of selecting Services whose port says HTTP, and the ports of
	// the contract.AnnotationInboundPorts annotation.
	RedirectPorts []int32
	// Problems are errors in the inputs that the validating webhook would have rejected
	// (invalid or conflicting PluginConfigs, a malformed annotation). Resolution still
	// succeeds, deterministically, without the offending piece.
	Problems []string
	// Notes explain choices that are not errors (an empty policy, a Service port that does not
	// reach this pod, a chain whose plugin is not declared).
	Notes []string
}

// ConfigRef names a PluginConfig, and the Service through which it reaches a pod port.
type ConfigRef struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Service   string `json:"service,omitempty"`
}

// Key is "namespace/name", how messages and statuses name the PluginConfig.
func (c ConfigRef) Key() string { return c.Namespace + "/" + c.Name }

// PortPolicy is the resolution of one pod port: the PluginConfig whose policy the port gets,
// and the other PluginConfigs that name a Service reaching the port, which are ignored (the
// first by namespace/name wins; the validating webhook rejects such overlaps).
type PortPolicy struct {
	Port       int32       `json:"port"`
	Applied    ConfigRef   `json:"applied"`
	Overridden []ConfigRef `json:"overridden,omitempty"`
}

// InvalidConfig is a PluginConfig that is ignored because its config is invalid.
type InvalidConfig struct {
	Config ConfigRef `json:"config"`
	Error  string    `json:"error"`
}

// AppliedPorts are the ports whose policy comes from the PluginConfig namespace/name, sorted.
func (r *Resolution) AppliedPorts(namespace, name string) []int32 {
	var out []int32
	for _, p := range r.Ports {
		if p.Applied.Namespace == namespace && p.Applied.Name == name {
			out = append(out, p.Port)
		}
	}
	return out
}

// OverriddenPorts are the ports where the PluginConfig namespace/name names a Service that
// reaches the port but another PluginConfig applies, sorted.
func (r *Resolution) OverriddenPorts(namespace, name string) []int32 {
	var out []int32
	for _, p := range r.Ports {
		if slices.ContainsFunc(p.Overridden, func(c ConfigRef) bool { return c.Namespace == namespace && c.Name == name }) {
			out = append(out, p.Port)
		}
	}
	return out
}

// RedirectPortsValue is the contract.AnnotationRedirectPorts value: RedirectPorts as a port list.
func (r *Resolution) RedirectPortsValue() string { return contract.FormatPorts(r.RedirectPorts) }

// Resolve computes the Resolution of pod in namespace ns: what its cors-webhook.io/policy and
// cors-webhook.io/redirect-ports annotations should be now. Day-2 reconciliation calls it for
// running pods and compares: a different PolicyJSON is patched in place (the sidecar reloads
// it), a RedirectPorts set the pod's redirect-ports do not cover means the workload must roll.
// Resolve neither mutates the pod nor looks at the opt-outs or at whether the pod is injected
// (callers that act on pods check those); when Selected is false, PolicyJSON is empty.
//
// The pod's own namespace field is ignored (admission requests may leave it empty): ns is the
// namespace it runs in. Errors come only from the Reader.
func (in *Injector) Resolve(pod *corev1.Pod, ns *corev1.Namespace, r clusterstate.Reader) (*Resolution, error) {
	sel, err := in.selectChains(pod.Labels, ns, r)
	if err != nil {
		return nil, err
	}
	res, _, err := in.resolve(pod, ns, sel, r)
	return res, err
}

// candidate is a PluginConfig that may apply on a port.
type candidate struct {
	ref    ConfigRef
	policy *cors.Policy
	// version identifies the config's content: "uid@resourceVersion", or "" when the object
	// has neither (read from files).
	version string
}

// applicable are the valid configs among configs that name svc for a CORS plugin of the
// selection. compiled holds each config's policy by key (nil: invalid), so a config naming
// several Services is compiled, and reported in res when invalid, once.
func (in *Injector) applicable(svc *corev1.Service, configs []*v1alpha1.PluginConfig, sel selection, compiled map[string]*cors.Policy, res *Resolution) []candidate {
	var out []candidate
	for _, pc := range configs {
		if !slices.Contains(sel.plugins, pc.Spec.Plugin) || !pc.NamesService(svc.Name) {
			continue
		}
		key := pc.Namespace + "/" + pc.Name
		pol, seen := compiled[key]
		if !seen {
			var err error
			if pol, err = in.configs.compile(pc); err != nil {
				res.Invalid = append(res.Invalid, InvalidConfig{Config: ConfigRef{Namespace: pc.Namespace, Name: pc.Name}, Error: err.Error()})
				res.Problems = append(res.Problems, fmt.Sprintf("PluginConfig %s is invalid and is ignored: %v", key, err))
			}
			compiled[key] = pol
		}
		if pol != nil {
			out = append(out, candidate{ref: ConfigRef{Namespace: pc.Namespace, Name: pc.Name, Service: svc.Name}, policy: pol, version: configVersion(pc)})
		}
	}
	return out
}

// resolve computes the policy part of a Resolution for a selection already made, and the
// Inputs it read when the selection selects the pod.
func (in *Injector) resolve(pod *corev1.Pod, ns *corev1.Namespace, sel selection, r clusterstate.Reader) (*Resolution, *Inputs, error) {
	res := &Resolution{Notes: sel.undeclared}
	if !sel.selected() {
		return res, nil, nil
	}
	res.Selected = true
	res.Chains = sel.chains
	res.Plugins = sel.plugins

	inputs, err := in.read(pod.Labels, ns, sel, r)
	if err != nil {
		return nil, nil, err
	}

	byPort := map[int32][]candidate{}
	redirect := map[int32]bool{}
	compiled := map[string]*cors.Policy{} // by config key; nil: invalid, already reported
	for i, svc := range inputs.services {
		applicable := in.applicable(svc, inputs.configs[i], sel, compiled, res)
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			port, why := targetPort(pod, sp)
			if why != "" {
				if len(applicable) > 0 || isHTTPPort(sp) {
					res.Notes = append(res.Notes, fmt.Sprintf("Service %s port %s: %s", svc.Name, portLabel(sp), why))
				}
				continue
			}
			if isHTTPPort(sp) {
				redirect[port] = true
			}
			byPort[port] = append(byPort[port], applicable...)
		}
	}

	res.Policy = cors.PodPolicy{Version: cors.PodPolicyVersion, Ports: map[string]v1alpha1.CORSConfig{}}
	// The policy's JSON is a function of which config version applies to which port.
	var policyKey strings.Builder
	cacheable := true
	for _, port := range slices.Sorted(maps.Keys(byPort)) {
		cands := byPort[port]
		if len(cands) == 0 {
			continue
		}
		slices.SortStableFunc(cands, func(a, b candidate) int {
			return cmp.Or(cmp.Compare(a.ref.Key(), b.ref.Key()), cmp.Compare(a.ref.Service, b.ref.Service))
		})
		winner := cands[0]
		pp := PortPolicy{Port: port, Applied: winner.ref}
		var losers []string
		for _, c := range cands[1:] {
			if c.ref.Key() != winner.ref.Key() && !slices.Contains(pp.Overridden, c.ref) {
				pp.Overridden = append(pp.Overridden, c.ref)
				losers = append(losers, fmt.Sprintf("%s (through Service %s)", c.ref.Key(), c.ref.Service))
			}
		}
		res.Ports = append(res.Ports, pp)
		if len(losers) > 0 {
			res.Problems = append(res.Problems, fmt.Sprintf(
				"port %d is configured by more than one PluginConfig: %s (through Service %s) applies, first by namespace/name; ignored: %s",
				port, winner.ref.Key(), winner.ref.Service, strings.Join(losers, ", ")))
		}
		res.Policy.Ports[strconv.Itoa(int(port))] = *winner.policy.Config()
		redirect[port] = true
		cacheable = cacheable && winner.version != ""
		policyKey.WriteString(strconv.Itoa(int(port)) + "=" + winner.version + ";")
	}
	if len(res.Policy.Ports) == 0 {
		res.Notes = append(res.Notes, "no PluginConfig of "+strings.Join(sel.plugins, ", ")+
			" configures a Service that selects this pod yet: its policy is empty (pass-through) until one does")
	}

	extra, bad := contract.ParsePorts(pod.Annotations[contract.AnnotationInboundPorts])
	for _, b := range bad {
		res.Problems = append(res.Problems, fmt.Sprintf("annotation %s: %v; ignored", contract.AnnotationInboundPorts, b))
	}
	for _, p := range extra {
		redirect[p] = true
	}
	res.RedirectPorts = slices.Sorted(maps.Keys(redirect))

	if !cacheable {
		policyKey.Reset()
	}
	res.PolicyJSON, err = in.configs.policyJSON(policyKey.String(), res.Policy)
	if err != nil {
		// Every config compiled above, so this is a bug, not bad input.
		return nil, nil, fmt.Errorf("marshalling the pod policy: %w", err)
	}
	return res, inputs, nil
}

// Inputs are what a resolution read of the cluster, as the objects the Reader returned: the
// pod's namespace, the chain selection, the Services that select the pod and the
// PluginConfigs naming each. With the pod, they decide the resolution and the injection
// entirely (the Injector's settings are fixed). A Reader returns a new object for every
// change, as the informer store does (clusterstate.Reader), so the same objects mean the same
// answer: [Injector.SameInputs] checks that without resolving anything.
type Inputs struct {
	namespace *corev1.Namespace
	sel       selection
	// services select the pod, sorted by name; configs[i] name services[i], sorted by name.
	services []*corev1.Service
	configs  [][]*v1alpha1.PluginConfig
}

// read gathers the Inputs of a resolution: every lookup resolve makes, and only those.
func (in *Injector) read(podLabels map[string]string, ns *corev1.Namespace, sel selection, r clusterstate.Reader) (*Inputs, error) {
	services, err := servicesFor(podLabels, ns.Name, r)
	if err != nil {
		return nil, err
	}
	inputs := &Inputs{namespace: ns, sel: sel}
	for _, svc := range services {
		if serviceSelects(svc, podLabels) {
			inputs.services = append(inputs.services, svc)
		}
	}
	slices.SortFunc(inputs.services, func(a, b *corev1.Service) int { return cmp.Compare(a.Name, b.Name) })
	inputs.configs = make([][]*v1alpha1.PluginConfig, len(inputs.services))
	for i, svc := range inputs.services {
		configs, err := r.PluginConfigsForService(ns.Name, svc.Name)
		if err != nil {
			return nil, fmt.Errorf("listing the PluginConfigs of Service %s/%s: %w", ns.Name, svc.Name, err)
		}
		if len(configs) > 1 {
			// Indexes return them in no particular order; sorted, the problems that name
			// them come in the same order every time.
			configs = slices.Clone(configs)
			slices.SortFunc(configs, func(a, b *v1alpha1.PluginConfig) int { return cmp.Compare(a.Name, b.Name) })
		}
		inputs.configs[i] = configs
	}
	return inputs, nil
}

// RetainedBytes estimates what keeping the Inputs keeps alive beyond the cache: the objects
// they point to stay in memory after the cache has replaced them, until the Inputs go. It
// counts the fields a tenant can make large (a PluginConfig's config, the annotations and
// labels of each object), for a memory budget of kept Inputs, not for exact accounting.
func (in *Inputs) RetainedBytes() int {
	n := 0
	if in.namespace != nil {
		n += objectMetaBytes(&in.namespace.ObjectMeta)
	}
	for _, c := range in.sel.chains {
		n += len(c)
	}
	for i, svc := range in.services {
		n += objectMetaBytes(&svc.ObjectMeta) + 64*len(svc.Spec.Ports)
		for _, pc := range in.configs[i] {
			n += objectMetaBytes(&pc.ObjectMeta) + len(pc.Spec.Config.Raw)
		}
	}
	return n
}

// objectMetaBytes is the size of an object's labels and annotations, plus a fixed share for
// the rest of it.
func objectMetaBytes(m *metav1.ObjectMeta) int {
	n := 512
	for _, kv := range []map[string]string{m.Labels, m.Annotations} {
		for k, v := range kv {
			n += len(k) + len(v)
		}
	}
	return n
}

// SameInputs reports whether a pod with these labels, in namespace ns, with the chains t
// matched, would be resolved from exactly the objects of was: then the injection of a pod
// identical in what injection reads (see Result.Inputs) is the one computed with was. It makes
// the lookups of a resolution, without resolving.
func (in *Injector) SameInputs(was *Inputs, podLabels map[string]string, ns *corev1.Namespace, t *Triaged, r clusterstate.Reader) (bool, error) {
	if was == nil || was.namespace != ns || !t.sel.equal(&was.sel) {
		return false, nil
	}
	// The lookups of read, compared as sets as they come (names are unique in a namespace).
	services, err := servicesFor(podLabels, ns.Name, r)
	if err != nil {
		return false, err
	}
	selecting := 0
	for _, svc := range services {
		if serviceSelects(svc, podLabels) {
			if !slices.Contains(was.services, svc) {
				return false, nil
			}
			selecting++
		}
	}
	if selecting != len(was.services) {
		return false, nil
	}
	for i, svc := range was.services {
		configs, err := r.PluginConfigsForService(ns.Name, svc.Name)
		if err != nil {
			return false, fmt.Errorf("listing the PluginConfigs of Service %s/%s: %w", ns.Name, svc.Name, err)
		}
		if len(configs) != len(was.configs[i]) {
			return false, nil
		}
		for _, pc := range configs {
			if !slices.ContainsFunc(was.configs[i], func(w *v1alpha1.PluginConfig) bool { return sameSpec(w, pc) }) {
				return false, nil
			}
		}
	}
	return true, nil
}

// sameSpec reports whether PluginConfig b is a in all that injection reads: the very object,
// or the same object (uid) at the same generation. The controller writes a config's status as
// the pods it configures come and go (during every rollout); the API server bumps a custom
// resource's generation on spec changes only (the status subresource), so a status write
// leaves the answers computed from the config valid. A generation of 0 (an object that never
// went through an API server) counts as unknown: only the very object is the same.
func sameSpec(a, b *v1alpha1.PluginConfig) bool {
	return a == b || (a.UID != "" && a.UID == b.UID && a.Generation != 0 && a.Generation == b.Generation &&
		a.Name == b.Name && a.Namespace == b.Namespace)
}

// IndexedServices is implemented by Readers that index Services by their selector (the webhook
// server's): resolution then looks only at the Services filed under the pod's labels instead
// of every Service of its namespace.
type IndexedServices interface {
	// ServicesForLabels returns Services of the namespace, each once, among them every Service
	// whose selector selects a pod with these labels.
	ServicesForLabels(namespace string, labels map[string]string) ([]*corev1.Service, error)
}

// servicesFor returns the Services of namespace that may select a pod with these labels (all
// of them when r has no index); serviceSelects decides.
func servicesFor(podLabels map[string]string, namespace string, r clusterstate.Reader) ([]*corev1.Service, error) {
	if ix, ok := r.(IndexedServices); ok {
		services, err := ix.ServicesForLabels(namespace, podLabels)
		if err != nil {
			return nil, fmt.Errorf("reading the Services of namespace %s: %w", namespace, err)
		}
		return services, nil
	}
	services, err := r.ServicesInNamespace(namespace)
	if err != nil {
		return nil, fmt.Errorf("listing the Services of namespace %s: %w", namespace, err)
	}
	return services, nil
}

// compileConfig decodes and compiles a CORS PluginConfig. The compiled policy's Config is the
// normalized form that the annotation carries.
func compileConfig(pc *v1alpha1.PluginConfig) (*cors.Policy, error) {
	pol, errs := cors.CompileRaw(pc.Spec.Config.Raw, field.NewPath("spec", "config"))
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return pol, nil
}

// targetPort resolves the pod port a Service port sends traffic to, as the endpoints controller
// does (k8s.io/endpointslice FindPort): a number is used as is, a name is looked up among the
// ports of the pod's containers and native sidecars. It returns a reason instead when the port
// cannot carry this product's traffic to this pod.
func targetPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, string) {
	if proto := clusterstate.Protocol(sp.Protocol); proto != corev1.ProtocolTCP {
		return 0, fmt.Sprintf("protocol %s is not TCP; the sidecar handles only HTTP over TCP", proto)
	}
	tp := clusterstate.TargetPort(sp) // unset: the Service port, as the API server defaults it
	if tp.Type == intstr.Int {
		if tp.IntVal < 1 || tp.IntVal > 65535 {
			return 0, fmt.Sprintf("targetPort %d is not a port number", tp.IntVal)
		}
		return tp.IntVal, ""
	}
	if p, ok := namedPort(pod, tp.StrVal); ok {
		return p, ""
	}
	return 0, fmt.Sprintf("targetPort %q names no TCP container port of this pod", tp.StrVal)
}

func namedPort(pod *corev1.Pod, name string) (int32, bool) {
	for i := range pod.Spec.Containers {
		if p, ok := findPort(pod.Spec.Containers[i].Ports, name); ok {
			return p, true
		}
	}
	for i := range pod.Spec.InitContainers {
		c := &pod.Spec.InitContainers[i]
		if c.Name == contract.ContainerSidecar || c.RestartPolicy == nil || *c.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			continue
		}
		if p, ok := findPort(c.Ports, name); ok {
			return p, true
		}
	}
	return 0, false
}

func findPort(ports []corev1.ContainerPort, name string) (int32, bool) {
	for _, p := range ports {
		if p.Name == name && clusterstate.Protocol(p.Protocol) == corev1.ProtocolTCP {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

// isHTTPPort reports whether a Service port declares HTTP by the Kubernetes conventions: a name
// "http" or "http-*", or appProtocol http or kubernetes.io/h2c. Such ports are redirected even
// without a policy yet, so a later PluginConfig takes effect without restarting the pod.
func isHTTPPort(sp *corev1.ServicePort) bool {
	if sp.Name == "http" || strings.HasPrefix(sp.Name, "http-") {
		return true
	}
	if sp.AppProtocol != nil {
		switch ap := strings.ToLower(*sp.AppProtocol); ap {
		case "http", "kubernetes.io/h2c":
			return true
		}
	}
	return false
}

func portLabel(sp *corev1.ServicePort) string {
	if sp.Name != "" {
		return fmt.Sprintf("%q (%d)", sp.Name, sp.Port)
	}
	return strconv.Itoa(int(sp.Port))
}
