package inject

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/internal/podjson"
)

// Outcome is what Inject did with a pod, in words fit for a metric label.
type Outcome string

// The outcomes of Inject.
const (
	// Injected: the pod gets the sidecar.
	Injected Outcome = "injected"
	// NotSelected: no PluginChain selects the pod with a CORS plugin. Most pods end here.
	NotSelected Outcome = "not-selected"
	// PluginNotDeclared: the only chains that select the pod mount a CORS plugin that no Plugin
	// resource declares, so, as in FSM, they have no effect.
	PluginNotDeclared Outcome = "plugin-not-declared"
	// PodOptedOut: the pod has the annotation cors-webhook.io/inject: "false".
	PodOptedOut Outcome = "pod-opted-out"
	// NamespaceOptedOut: the namespace has the label cors-webhook.io/inject=disabled.
	NamespaceOptedOut Outcome = "namespace-opted-out"
	// AlreadyInjected: the pod has the sidecar already (a reinvocation, or a copied manifest).
	AlreadyInjected Outcome = "already-injected"
	// HostNetwork: a chain selects the pod, but it uses the node's network, which the
	// redirect must not touch.
	HostNetwork Outcome = "host-network"
	// MirrorPod: a chain selects the pod, but it is the API server's mirror of a static pod
	// (annotation kubernetes.io/config.mirror), which the kubelet runs from its own manifest.
	MirrorPod Outcome = "mirror-pod"
	// Windows: a chain selects the pod, but it runs on Windows (spec.os.name, or a
	// kubernetes.io/os=windows nodeSelector); the sidecar and its nftables redirect are Linux.
	Windows Outcome = "windows"
	// PodSecurity: a chain selects the pod, but its namespace enforces the baseline or
	// restricted Pod Security Standard, which would refuse the injected pod (cors-init adds
	// NET_ADMIN and, for restricted, allows privilege escalation).
	PodSecurity Outcome = "pod-security"
	// Collision: a chain selects the pod, but a port, container or volume the injection needs
	// is taken by the pod itself.
	Collision Outcome = "collision"
	// PolicyTooLarge: a chain selects the pod, but its policy annotation would exceed
	// contract.MaxPolicyAnnotationBytes, or the pod's annotations the API server's bound.
	PolicyTooLarge Outcome = "policy-too-large"
)

// Outcomes lists every outcome, for metrics that want all label values to exist from the start.
var Outcomes = []Outcome{Injected, NotSelected, PluginNotDeclared, PodOptedOut, NamespaceOptedOut, AlreadyInjected, HostNetwork, MirrorPod, Windows, PodSecurity, Collision, PolicyTooLarge}

// Impossible reports whether a chain selected the pod but it could not be injected. Those are
// the outcomes a user must hear about (an event, a log line, a non-zero exit of the offline
// command): the pod runs without the CORS behaviour its chain asks for.
func (o Outcome) Impossible() bool {
	switch o {
	case HostNetwork, MirrorPod, Windows, PodSecurity, Collision, PolicyTooLarge:
		return true
	}
	return false
}

// LabelPodSecurityEnforce is Pod Security admission's namespace label; every level but
// privileged refuses cors-init.
const (
	LabelPodSecurityEnforce = "pod-security.kubernetes.io/enforce"
	podSecurityPrivileged   = "privileged"
)

// Uninjectable says why pod, in namespace ns, can never carry the sidecar, judging from the
// pod and its namespace (nil: unknown) alone, with the reason in words; "" when nothing stands
// in the way.
// Inject skips such pods and Day-2 reconciliation never rolls them: a rollout would only
// produce pods that the API server refuses or that cannot run the sidecar.
//
// This is the rule of the init redirect mode; [RedirectMode.Uninjectable] is the rule of each.
func Uninjectable(pod *corev1.Pod, ns *corev1.Namespace) (Outcome, string) {
	if never, why := uninjectablePod(pod); never != "" {
		return never, why
	}
	if ns == nil {
		return "", ""
	}
	if level, ok := ns.Labels[LabelPodSecurityEnforce]; ok && level != podSecurityPrivileged {
		// baseline and restricted forbid adding NET_ADMIN (restricted also privilege
		// escalation); an unknown value is treated as restricted by Pod Security admission,
		// so it refuses cors-init too.
		return PodSecurity, fmt.Sprintf("namespace %s enforces Pod Security %q (label %s), which refuses the injected cors-init (it adds the capability NET_ADMIN)",
			ns.Name, level, LabelPodSecurityEnforce)
	}
	return "", ""
}

// uninjectablePod is what rules a pod out in every redirect mode.
func uninjectablePod(pod *corev1.Pod) (Outcome, string) {
	switch {
	case pod.Spec.HostNetwork:
		return HostNetwork, "it uses hostNetwork: pods on the node's network are never injected"
	case pod.Annotations[corev1.MirrorPodAnnotationKey] != "":
		return MirrorPod, "it is the mirror of a static pod (annotation " + corev1.MirrorPodAnnotationKey + "): the kubelet runs it from its own manifest"
	case pod.Spec.OS != nil && pod.Spec.OS.Name == corev1.Windows:
		return Windows, "it runs on Windows (spec.os.name): the sidecar and its redirect are Linux-only"
	case pod.Spec.NodeSelector[corev1.LabelOSStable] == string(corev1.Windows):
		return Windows, "it runs on Windows (nodeSelector " + corev1.LabelOSStable + "=windows): the sidecar and its redirect are Linux-only"
	}
	return "", ""
}

// Result is the outcome of Inject for one pod.
type Result struct {
	Outcome Outcome
	// Changes are what the injection adds to the pod when Outcome is Injected, and nil
	// otherwise. The admission handler builds its patch from them and the offline command
	// applies them to manifests, neither by comparing pods.
	Changes *Changes
	// input is the pod given to Inject, for InjectedPod.
	input *corev1.Pod
	// inputs are what the resolution read, for Inputs.
	inputs *Inputs
	// Chains are the PluginChains ("namespace/name") that select the pod with a declared CORS
	// plugin, once chain matching ran; an event about the pod can point at them.
	Chains []string
	// Resolution is the policy resolution, when a chain selected the pod and it got that far.
	Resolution *Resolution
	// Reasons say why, in order: first the outcome, then the resolution's problems and notes.
	Reasons []string
}

// InjectedPod returns a copy of the input pod with Changes applied when Outcome is Injected,
// and nil otherwise: the input pod is never modified. It is made on each call, not by Inject,
// because the admission handler needs only Changes.
func (r Result) InjectedPod() *corev1.Pod {
	if r.Outcome != Injected || r.Changes == nil || r.input == nil {
		return nil
	}
	return r.Changes.Apply(r.input)
}

// Inputs are what the injection read of the cluster, once a chain selected the pod and the
// resolution ran; nil otherwise. Another pod with the same labels, annotations and spec, as
// far as injection reads them (the opt-outs and every check of the steps above: container,
// port and volume names, hostNetwork, the OS), for which [Injector.SameInputs] holds, gets the
// same Result but for InjectedPod: a caller may keep what it built from this one.
func (r Result) Inputs() *Inputs { return r.inputs }

// Injector injects pods according to fixed Settings. It holds no cluster state but a cache of
// compiled PluginConfigs by UID and resourceVersion, and is safe for concurrent use.
type Injector struct {
	settings  Settings
	selection chains.Selection
	configs   *configCache
	parts     *contractParts
	// sidecarVersion is SidecarVersion(settings.SidecarImage).
	sidecarVersion string
}

// New returns an Injector for valid settings; zero ports and nil requests or limits take the
// defaults.
func New(s Settings) (*Injector, error) {
	d := DefaultSettings()
	if s.RedirectMode == "" {
		s.RedirectMode = RedirectInit
	}
	if s.InboundPort == 0 {
		s.InboundPort = d.InboundPort
	}
	if s.AdminPort == 0 {
		s.AdminPort = d.AdminPort
	}
	if s.Requests == nil {
		s.Requests = d.Requests
	}
	if s.Limits == nil {
		s.Limits = d.Limits
	}
	s.Requests, s.Limits = maps.Clone(s.Requests), maps.Clone(s.Limits)
	s.CORSPlugins = append([]string(nil), s.CORSPlugins...)
	s.Tenancy.ClusterNamespaces = slices.Clone(s.Tenancy.ClusterNamespaces)
	s.Tenancy.SkippedNamespaces = slices.Clone(s.Tenancy.SkippedNamespaces)
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("injector settings: %w", err)
	}
	return &Injector{settings: s, selection: chains.Selection{Plugins: chains.NewPlugins(s.CORSPlugins...), Tenancy: s.Tenancy},
		configs: &configCache{}, parts: &contractParts{}, sidecarVersion: SidecarVersion(s.SidecarImage)}, nil
}

// Settings returns the settings in effect (defaults applied).
func (in *Injector) Settings() Settings { return in.settings }

// Selection is the chain selection rule the injector applies, for the callers (Day-2
// reconciliation) that must agree with it.
func (in *Injector) Selection() chains.Selection { return in.selection }

// Inject decides whether pod, created in namespace ns, gets the CORS sidecar and, if so, returns
// the change set (Result.InjectedPod applies it to a copy). The pod's own namespace field is
// ignored (admission requests may leave it empty). It reads the cluster only through r; errors
// come only from r.
func (in *Injector) Inject(pod *corev1.Pod, ns *corev1.Namespace, r clusterstate.Reader) (Result, error) {
	early, done, sel, ns, err := in.triage(&pod.ObjectMeta, ns, r)
	if err != nil || done {
		return early, err
	}
	return in.injectSelected(pod, ns, sel, r)
}

// InjectTriaged is Inject for a pod that [Injector.Triage] could not decide from its metadata,
// without matching its chains a second time: t must be what Triage returned for this pod's
// metadata, in namespace ns.
//
// The opt-outs are checked again on the whole pod: the admission handler's Triage reads only
// what it finds of the metadata before managedFields, where the API server writes it.
func (in *Injector) InjectTriaged(pod *corev1.Pod, ns *corev1.Namespace, t *Triaged, r clusterstate.Reader) (Result, error) {
	if res, out := optedOut(&pod.ObjectMeta, ns); out {
		return res, nil
	}
	return in.injectSelected(pod, ns, t.sel, r)
}

// injectSelected is Inject once chains select the pod.
func (in *Injector) injectSelected(pod *corev1.Pod, ns *corev1.Namespace, sel selection, r clusterstate.Reader) (Result, error) {
	chains := strings.Join(sel.chains, ", ")
	if HasSidecar(&pod.Spec) {
		// A reinvocation (reinvocationPolicy: IfNeeded) after another webhook changed the
		// pod: what it added must not take the sidecar's ports or port names, so the
		// collision check runs before the pod is returned unchanged.
		redirect, _ := contract.ParsePorts(pod.Annotations[contract.AnnotationRedirectPorts])
		if collisions := in.collisions(pod, redirect, true); len(collisions) > 0 {
			out := skipped(Collision, fmt.Sprintf("PluginChain %s selects the pod and it has the sidecar, but what was added since collides with it: %s", chains, strings.Join(collisions, "; ")))
			out.Chains = sel.chains
			return out, nil
		}
		return skipped(AlreadyInjected, "the pod already has the "+contract.ContainerSidecar+" container"), nil
	}
	if never, why := in.settings.RedirectMode.Uninjectable(pod, ns); never != "" {
		out := skipped(never, fmt.Sprintf("PluginChain %s selects the pod, but %s", chains, why))
		out.Chains = sel.chains
		return out, nil
	}

	res, inputs, err := in.resolve(pod, ns, sel, r)
	if err != nil {
		return Result{}, err
	}
	details := append(append([]string(nil), res.Problems...), res.Notes...)
	if collisions := in.collisions(pod, res.RedirectPorts, false); len(collisions) > 0 {
		out := skipped(Collision, fmt.Sprintf("PluginChain %s selects the pod, but it cannot be injected: %s", chains, strings.Join(collisions, "; ")))
		out.Chains, out.Resolution, out.inputs = sel.chains, res, inputs
		out.Reasons = append(out.Reasons, details...)
		return out, nil
	}

	upstreamTimeout, problem := upstreamTimeoutArg(pod.Annotations)
	if problem != "" {
		details = append(details, problem)
	}
	changes, err := in.changes(res, upstreamTimeout)
	if err != nil {
		return Result{}, err
	}
	if why := AnnotationsTooLarge(pod.Annotations, changes.Annotations); why != "" {
		out := skipped(PolicyTooLarge, fmt.Sprintf("PluginChain %s selects the pod, but it cannot be injected: %s", chains, why))
		out.Chains, out.Resolution, out.inputs = sel.chains, res, inputs
		out.Reasons = append(out.Reasons, details...)
		return out, nil
	}

	ports := "no port (cors-init left out)"
	switch {
	case len(res.RedirectPorts) > 0 && in.settings.RedirectMode == RedirectCNI:
		ports = "port " + res.RedirectPortsValue() + " (by the node's cors-cni plugin)"
	case len(res.RedirectPorts) > 0:
		ports = "port " + res.RedirectPortsValue()
	case in.settings.RedirectMode == RedirectCNI:
		ports = "no port"
	}
	return Result{
		Outcome:    Injected,
		Changes:    changes,
		input:      pod,
		inputs:     inputs,
		Chains:     sel.chains,
		Resolution: res,
		Reasons: append([]string{fmt.Sprintf("PluginChain %s selects the pod (plugin %s); policy for %d port(s), redirecting %s",
			chains, strings.Join(sel.plugins, ", "), len(res.Policy.Ports), ports)}, details...),
	}, nil
}

// Triage is the part of Inject that needs only the pod's metadata: the opt-outs and the chain
// matching. Most pods of a cluster end here (no chain selects them), so the admission handler
// calls it before decoding the whole pod. When it returns no Triaged, res is what Inject returns
// for any pod with this metadata; otherwise [Injector.InjectTriaged] decides, with the chains
// Triage matched.
func (in *Injector) Triage(meta *metav1.ObjectMeta, ns *corev1.Namespace, r clusterstate.Reader) (res Result, t *Triaged, err error) {
	res, done, sel, _, err := in.triage(meta, ns, r)
	if err != nil || done {
		return res, nil, err
	}
	return Result{}, &Triaged{sel: sel}, nil
}

// Triaged is what Triage matched for a pod that chains select.
type Triaged struct{ sel selection }

// optedOut is the pod's or its namespace's opt-out (OptedOut), if either has one.
func optedOut(meta *metav1.ObjectMeta, ns *corev1.Namespace) (Result, bool) {
	switch o, out := OptedOut(meta, ns); {
	case !out:
		return Result{}, false
	case o == PodOptedOut:
		return skipped(PodOptedOut, fmt.Sprintf("the pod opts out with the annotation %s=%q", contract.AnnotationInject, meta.Annotations[contract.AnnotationInject])), true
	}
	return skipped(NamespaceOptedOut, fmt.Sprintf("namespace %s opts out with the label %s=%s", ns.Name, contract.LabelNamespaceInject, contract.NamespaceInjectDisabled)), true
}

func (in *Injector) triage(meta *metav1.ObjectMeta, ns *corev1.Namespace, r clusterstate.Reader) (Result, bool, selection, *corev1.Namespace, error) {
	var sel selection
	if res, out := optedOut(meta, ns); out {
		return res, true, sel, ns, nil
	}
	sel, err := in.selectChains(meta.Labels, ns, r)
	if err != nil {
		return Result{}, true, sel, ns, err
	}
	if !sel.selected() {
		if len(sel.undeclared) > 0 {
			res := skipped(PluginNotDeclared, "the chains that select the pod mount no declared CORS plugin")
			res.Reasons = append(res.Reasons, sel.undeclared...)
			return res, true, sel, ns, nil
		}
		return skipped(NotSelected, "no PluginChain selects the pod with a CORS plugin in "+v1alpha1.ChainInboundHTTP), true, sel, ns, nil
	}
	return Result{}, false, sel, ns, nil
}

// AnnotationsTooLarge says why a pod's annotations would be too large once set (ours) is
// written over them, or "". The reconciler's in-place policy patch asks the same question as
// the injection: the API server would refuse the patch, and retrying it would only spin.
func AnnotationsTooLarge(annotations, set map[string]string) string {
	if n := len(set[contract.AnnotationPolicy]); n > contract.MaxPolicyAnnotationBytes {
		return fmt.Sprintf("its policy annotation %s would take %d bytes, more than the %d this injector writes (too many configured ports with large configs)",
			contract.AnnotationPolicy, n, contract.MaxPolicyAnnotationBytes)
	}
	total := 0
	for k, v := range annotations {
		if _, ours := set[k]; !ours {
			total += len(k) + len(v)
		}
	}
	for k, v := range set {
		total += len(k) + len(v)
	}
	if total > contract.MaxPodAnnotationsBytes {
		return fmt.Sprintf("its annotations would take %d bytes with the policy, more than the API server's %d", total, contract.MaxPodAnnotationsBytes)
	}
	return ""
}

func skipped(o Outcome, why string) Result { return Result{Outcome: o, Reasons: []string{why}} }

// collisions lists what the pod already uses that the injection needs. With injected, the pod
// carries the injection already: its own containers and volume are not collisions.
func (in *Injector) collisions(pod *corev1.Pod, redirect []int32, injected bool) []string {
	var out []string
	ours := map[int32]string{in.settings.InboundPort: "inbound port (--inbound-port)", in.settings.AdminPort: "admin port (--admin-port)"}
	for _, p := range redirect {
		if what, ok := ours[p]; ok {
			out = append(out, fmt.Sprintf("port %d must be redirected, but it is the sidecar's %s", p, what))
		}
	}
	visit := func(cs []corev1.Container) {
		for i := range cs {
			c := &cs[i]
			if c.Name == contract.ContainerInit || c.Name == contract.ContainerSidecar {
				if injected {
					continue
				}
				out = append(out, "the pod already has a container named "+c.Name)
			}
			for _, p := range c.Ports {
				if what, ok := ours[p.ContainerPort]; ok {
					out = append(out, fmt.Sprintf("container %s declares port %d, the sidecar's %s", c.Name, p.ContainerPort, what))
				}
				if p.Name == contract.PortNameInbound || p.Name == contract.PortNameAdmin {
					out = append(out, fmt.Sprintf("container %s declares a port named %s, which the sidecar uses", c.Name, p.Name))
				}
			}
		}
	}
	visit(pod.Spec.InitContainers)
	visit(pod.Spec.Containers)
	for _, v := range pod.Spec.Volumes {
		if v.Name == contract.VolumePolicy && !injected {
			out = append(out, "the pod already has a volume named "+contract.VolumePolicy)
		}
	}
	return out
}

// Changes are what an injection adds to a pod: the pod contract. They touch
// metadata.annotations, metadata.labels, spec.initContainers and spec.volumes, and nothing else
// (TestInjectChangesOnlyItsFields). Changes made by an Injector share their containers and
// volumes, and the JSON of those, with every injection of the same redirect ports: they are
// read-only.
type Changes struct {
	// Annotations and Labels are set on the pod, overwriting values of the same keys.
	Annotations map[string]string `json:"annotations"`
	Labels      map[string]string `json:"labels"`
	// InitContainers go before the pod's own, in this order: the redirect must be in place
	// before anything listens, and a native sidecar placed before the pod's own init
	// containers serves them too.
	InitContainers []corev1.Container `json:"initContainers"`
	// Volumes go after the pod's own.
	Volumes []corev1.Volume `json:"volumes"`

	// initJSON and volumesJSON are InitContainers and Volumes encoded, element by element,
	// when the Injector made them (see contractParts).
	initJSON, volumesJSON [][]byte
}

// Apply returns a copy of pod with the changes made. The copy shares nothing with c.
func (c *Changes) Apply(pod *corev1.Pod) *corev1.Pod {
	out := pod.DeepCopy()
	if out.Annotations == nil {
		out.Annotations = map[string]string{}
	}
	maps.Copy(out.Annotations, c.Annotations)
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	maps.Copy(out.Labels, c.Labels)
	inits := make([]corev1.Container, len(c.InitContainers))
	for i := range c.InitContainers {
		c.InitContainers[i].DeepCopyInto(&inits[i])
	}
	out.Spec.InitContainers = slices.Insert(out.Spec.InitContainers, 0, inits...)
	for i := range c.Volumes {
		out.Spec.Volumes = append(out.Spec.Volumes, *c.Volumes[i].DeepCopy())
	}
	return out
}

// InitContainersJSON returns InitContainers as JSON, one document per container, and
// VolumesJSON the Volumes: what a JSON patch of the injection adds. Those of an Injector's
// Changes were encoded once for its settings and the redirect ports; the result is shared and
// must not be modified.
func (c *Changes) InitContainersJSON() ([][]byte, error) {
	return encodedOr(c.initJSON, c.InitContainers)
}

// VolumesJSON returns Volumes as JSON, one document per volume (see InitContainersJSON).
func (c *Changes) VolumesJSON() ([][]byte, error) { return encodedOr(c.volumesJSON, c.Volumes) }

// JSONPatch is the JSON patch that makes pod the injected pod: podjson.Patch of the change set,
// with the containers and volumes encoded once (InitContainersJSON, VolumesJSON).
func (c *Changes) JSONPatch(pod *corev1.Pod) ([]byte, error) {
	inits, err := c.InitContainersJSON()
	if err != nil {
		return nil, err
	}
	volumes, err := c.VolumesJSON()
	if err != nil {
		return nil, err
	}
	return podjson.Patch(pod, podjson.Changes{Annotations: c.Annotations, Labels: c.Labels, InitContainers: inits, Volumes: volumes})
}

// changes are the pod contract for a resolution. Without a port to redirect, cors-init would
// have nothing to do but hold NET_ADMIN, so it is left out; a later policy that needs a port
// makes reconciliation roll the workload.
// upstreamTimeout is the sidecar's --upstream-timeout from the pod's annotation, empty for the
// sidecar's default.
func (in *Injector) changes(res *Resolution, upstreamTimeout string) (*Changes, error) {
	redirect := res.RedirectPortsValue()
	parts, err := in.parts.forPorts(in, res.RedirectPorts, redirect, upstreamTimeout)
	if err != nil {
		return nil, err
	}
	annotations := map[string]string{
		contract.AnnotationPolicy:         res.PolicyJSON,
		contract.AnnotationRedirectPorts:  redirect,
		contract.AnnotationSidecarVersion: in.sidecarVersion,
	}
	in.cniAnnotations(annotations)
	return &Changes{
		Annotations:    annotations,
		Labels:         map[string]string{contract.LabelInjected: "true"},
		InitContainers: parts.initContainers,
		Volumes:        parts.volumes,
		initJSON:       parts.initJSON,
		volumesJSON:    parts.volumesJSON,
	}, nil
}

func (in *Injector) policyVolume() corev1.Volume {
	return corev1.Volume{
		Name: contract.VolumePolicy,
		VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{{
				Path:     contract.PolicyFileName,
				FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['" + contract.AnnotationPolicy + "']"},
			}},
		}},
	}
}

// initContainer installs the nftables redirect. It needs CAP_NET_ADMIN in the pod's network
// namespace, and nothing else. It runs the image's cors-init binary as the non-root
// SidecarUID: the container's bounding set holds NET_ADMIN alone, and the binary's file
// capability (cap_net_admin+ep) raises it when it starts. no_new_privs would void that file
// capability, so privilege escalation is allowed: it lets the process gain what the file
// grants, within the bounding set, and nothing in the image but cors-init grants anything.
// With Settings.InitAsRoot it is the earlier cors-init instead: `cors-sidecar redirect` as root
// with no_new_privs, holding NET_ADMIN from the start.
func (in *Injector) initContainer(redirect []int32) corev1.Container {
	c := corev1.Container{
		Name:            contract.ContainerInit,
		Image:           in.settings.SidecarImage,
		ImagePullPolicy: in.settings.SidecarImagePullPolicy,
		Command:         []string{contract.InitCommand},
		Args:            []string{"--proxy-port", port(in.settings.InboundPort), "--ports", contract.FormatPorts(redirect)},
		Resources:       in.resources(),
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To(SidecarUID),
			RunAsGroup:               ptr.To(SidecarUID),
			RunAsNonRoot:             ptr.To(true),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(true),
			Capabilities: &corev1.Capabilities{
				Add:  []corev1.Capability{"NET_ADMIN"},
				Drop: []corev1.Capability{"ALL"},
			},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if in.settings.InitAsRoot {
		c.Command, c.Args = nil, append([]string{"redirect"}, c.Args...)
		sc := c.SecurityContext
		sc.RunAsUser, sc.RunAsGroup, sc.RunAsNonRoot = ptr.To[int64](0), nil, ptr.To(false)
		sc.AllowPrivilegeEscalation = ptr.To(false)
	}
	return c
}

// sidecarContainer is the CORS proxy as a native sidecar: it starts before the app containers,
// and the startup probe holds them back until it listens, so no redirected request is refused.
//
// GOMEMLIMIT is its memory limit (the sidecar keeps a tenth of it as headroom), so that the Go
// runtime collects garbage harder as it nears the limit instead of being OOM-killed: an OOM kill
// refuses the pod's connections while the sidecar restarts.
func (in *Injector) sidecarContainer(upstreamTimeout string) corev1.Container {
	probe := func(path string) corev1.ProbeHandler {
		return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(in.settings.AdminPort)}}
	}
	args := []string{"proxy",
		"--inbound-port", port(in.settings.InboundPort),
		"--admin-port", port(in.settings.AdminPort),
		"--policy-file", contract.PolicyFile}
	if upstreamTimeout != "" {
		args = append(args, "--upstream-timeout", upstreamTimeout)
	}
	var env []corev1.EnvVar
	if _, ok := in.settings.Limits[corev1.ResourceMemory]; ok {
		env = []corev1.EnvVar{{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{
			ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory"}}}}
	}
	return corev1.Container{
		Name:            contract.ContainerSidecar,
		Image:           in.settings.SidecarImage,
		ImagePullPolicy: in.settings.SidecarImagePullPolicy,
		Args:            args,
		Env:             env,
		RestartPolicy:   ptr.To(corev1.ContainerRestartPolicyAlways),
		Ports: []corev1.ContainerPort{
			{Name: contract.PortNameInbound, ContainerPort: in.settings.InboundPort, Protocol: corev1.ProtocolTCP},
			{Name: contract.PortNameAdmin, ContainerPort: in.settings.AdminPort, Protocol: corev1.ProtocolTCP},
		},
		Resources:      in.resources(),
		VolumeMounts:   []corev1.VolumeMount{{Name: contract.VolumePolicy, MountPath: contract.PolicyDir, ReadOnly: true}},
		StartupProbe:   &corev1.Probe{ProbeHandler: probe(contract.StartupPath), PeriodSeconds: 1, FailureThreshold: 30},
		ReadinessProbe: &corev1.Probe{ProbeHandler: probe(contract.ReadinessPath), PeriodSeconds: 5, FailureThreshold: 3},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To(SidecarUID),
			RunAsGroup:               ptr.To(SidecarUID),
			RunAsNonRoot:             ptr.To(true),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
}

// resources are the requests and limits of each injected container.
func (in *Injector) resources() corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: in.settings.Requests.DeepCopy()}
	if len(in.settings.Limits) > 0 {
		r.Limits = in.settings.Limits.DeepCopy()
	}
	return r
}

func port(p int32) string { return strconv.Itoa(int(p)) }

// upstreamTimeoutArg reads the pod's contract.AnnotationUpstreamTimeout: the sidecar's
// --upstream-timeout value, empty when the annotation is absent or invalid (then the problem
// says why it was ignored).
func upstreamTimeoutArg(annotations map[string]string) (arg, problem string) {
	v, ok := annotations[contract.AnnotationUpstreamTimeout]
	if !ok {
		return "", ""
	}
	arg, err := contract.ParseUpstreamTimeout(v)
	if err != nil {
		return "", fmt.Sprintf("annotation %s: %v; the sidecar's default applies", contract.AnnotationUpstreamTimeout, err)
	}
	return arg, ""
}
