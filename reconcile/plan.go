package reconcile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/inject"
)

// Keys this package adds to the contract of docs/design.md section 7.
const (
	// AnnotationRestartedAt is the pod-template annotation that rolls a workload. Its value is
	// a hash of what the new pods will get (see rolloutToken), not a time: the same change
	// always yields the same value, so deciding twice patches nothing, and a template that
	// already carries the value has been rolled for this change.
	AnnotationRestartedAt = "cors-webhook.io/restartedAt"
	// AnnotationRollout set to "false" on a Deployment, StatefulSet or DaemonSet keeps the
	// reconciler from rolling it; an Event then says what to do instead.
	AnnotationRollout = "cors-webhook.io/rollout"
)

// emptyPolicy is the annotation of an injected pod that no chain selects any more: the sidecar
// stays, and passes everything through unchanged.
var emptyPolicy = func() string {
	raw, err := cors.PodPolicy{Version: cors.PodPolicyVersion}.Marshal()
	if err != nil {
		panic(err) // a constant input: a bug, not bad input
	}
	return string(raw)
}()

// podFacts is what a running pod carries that the decisions need.
type podFacts struct {
	// injected: the pod has the cors-sidecar container, so its policy annotation matters.
	injected bool
	// policy and hasPolicy are its cors-webhook.io/policy annotation.
	policy    string
	hasPolicy bool
	// redirect are the ports of its cors-webhook.io/redirect-ports annotation: what cors-init
	// redirected when the pod started, which an annotation patch cannot change.
	redirect []int32
	// annotations are all of its annotations, for the API server's size bound.
	annotations map[string]string
	// optedOut: the pod annotation cors-webhook.io/inject: "false" or the namespace label
	// cors-webhook.io/inject=disabled. Such a pod gets no CORS, and is never rolled for it.
	optedOut bool
	// never says why the pod is never injected (inject.RedirectMode.Uninjectable: hostNetwork,
	// a mirror or Windows pod, in init mode a namespace enforcing Pod Security), so rolling it
	// would not help; "" when it can be.
	never inject.Outcome
}

// factsOf reads the facts of pod, in namespace ns, for an injector in redirect mode mode.
func factsOf(pod *corev1.Pod, ns *corev1.Namespace, mode inject.RedirectMode) podFacts {
	f := podFacts{injected: inject.HasSidecar(&pod.Spec)}
	f.never, _ = mode.Uninjectable(pod, ns)
	f.annotations = pod.Annotations
	f.policy, f.hasPolicy = pod.Annotations[contract.AnnotationPolicy]
	f.redirect, _ = contract.ParsePorts(pod.Annotations[contract.AnnotationRedirectPorts])
	_, f.optedOut = inject.OptedOut(&pod.ObjectMeta, ns)
	return f
}

// rollReason says why a pod needs to be replaced.
type rollReason int

const (
	rollNone rollReason = iota
	// rollNotInjected: a chain selects the pod, but it was created without the sidecar.
	rollNotInjected
	// rollMissingPorts: the pod's policy configures a port that its cors-init did not
	// redirect, so the sidecar never sees that port's traffic.
	rollMissingPorts
	// rollOutdatedSidecar: the pod runs an older sidecar than the configured image
	// (Options.RollOutdatedSidecars; see outdatedSidecar).
	rollOutdatedSidecar
)

func (r rollReason) String() string {
	switch r {
	case rollNotInjected:
		return "not-injected"
	case rollMissingPorts:
		return "missing-ports"
	case rollOutdatedSidecar:
		return "outdated-sidecar"
	}
	return "none"
}

// podPlan is what the reconciler does about one pod.
type podPlan struct {
	// policy is the annotation value an injected pod must carry; patch says it differs.
	policy string
	patch  bool
	// tooLarge says why the policy is not patched although it differs: the pod's annotations
	// would exceed a size bound (inject.AnnotationsTooLarge), so the API server would refuse it.
	tooLarge string
	// roll says the pod itself cannot be made right in place; missing are the policy ports
	// it does not redirect (rollMissingPorts).
	roll    rollReason
	missing []int32
}

// planPod decides about one pod, given what the cluster says about it (res, from
// inject.Injector.Resolve; nil when it could not be computed for the pod).
func planPod(f podFacts, res *inject.Resolution) podPlan {
	var p podPlan
	selected := res != nil && res.Selected && !f.optedOut
	if !f.injected {
		if selected && f.never == "" {
			p.roll = rollNotInjected
		}
		return p
	}
	p.policy = emptyPolicy
	if selected {
		p.policy = res.PolicyJSON
		if p.missing = inject.MissingPorts(res.Policy, f.redirect); len(p.missing) > 0 {
			p.roll = rollMissingPorts
		}
	}
	p.patch = !f.hasPolicy || f.policy != p.policy
	if p.patch {
		if p.tooLarge = inject.AnnotationsTooLarge(f.annotations, map[string]string{contract.AnnotationPolicy: p.policy}); p.tooLarge != "" {
			p.patch = false
		}
	}
	return p
}

// rolloutToken is the AnnotationRestartedAt value for rolling a workload whose new pods will get
// res (the resolution of its pod template): a hash of the chains, plugins and redirected ports
// the new pods will get, and of the template itself without this annotation. So the same
// change always gives the same value (idempotent patches, one rollout per change), a new
// change a new value, and a template edited by its owner meanwhile a new value too.
func rolloutToken(res *inject.Resolution, tmpl *corev1.PodTemplateSpec) string {
	t := tmpl.DeepCopy()
	delete(t.Annotations, AnnotationRestartedAt)
	h := sha256.New()
	// Encoding a struct of slices and a typed object is deterministic (map keys are sorted).
	_ = json.NewEncoder(h).Encode(struct {
		Chains   []string                `json:"chains"`
		Plugins  []string                `json:"plugins"`
		Ports    []int32                 `json:"ports"`
		Template *corev1.PodTemplateSpec `json:"template"`
	}{res.Chains, res.Plugins, res.RedirectPorts, t})
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// workloadState is how a workload's controller replaces its pods, read from its spec and status.
type workloadState struct {
	// inProgress: pods of an older template still exist, or the controller has not seen the
	// latest template yet. Rolling again then would only pile up ReplicaSets or revisions.
	inProgress bool
	// replaces is false when a template change does not replace pods (OnDelete, a paused
	// Deployment); why then says what the user must do.
	replaces bool
	why      string
	// health is how far its controller has got with the current template; healthWhy says
	// what is missing or what went wrong (see rolloutGate).
	health    rolloutHealth
	healthWhy string
}

func deploymentState(d *appsv1.Deployment) workloadState {
	s := workloadState{replaces: true}
	if d.Spec.Paused {
		s.replaces = false
		s.why = fmt.Sprintf("the Deployment is paused: resume it (kubectl rollout resume deployment/%s -n %s)", d.Name, d.Namespace)
	}
	// Pods that are not available yet do not count: without them being ready, a Deployment
	// whose pods crash would never be rolled. Only pods of older ReplicaSets do.
	s.inProgress = d.Generation != d.Status.ObservedGeneration || d.Status.Replicas > d.Status.UpdatedReplicas
	s.health, s.healthWhy = deploymentHealth(d)
	return s
}

func statefulSetState(s *appsv1.StatefulSet) workloadState {
	st := workloadState{replaces: true}
	if s.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		st.replaces = false
		st.why = "its updateStrategy is OnDelete: delete its pods so that they are recreated" + selectorHint(s.Namespace, s.Spec.Selector)
	}
	st.inProgress = s.Generation != s.Status.ObservedGeneration ||
		(s.Status.UpdateRevision != "" && s.Status.CurrentRevision != s.Status.UpdateRevision)
	st.health, st.healthWhy = statefulSetHealth(s)
	return st
}

func daemonSetState(d *appsv1.DaemonSet) workloadState {
	s := workloadState{replaces: true}
	if d.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
		s.replaces = false
		s.why = "its updateStrategy is OnDelete: delete its pods so that they are recreated" + selectorHint(d.Namespace, d.Spec.Selector)
	}
	s.inProgress = d.Generation != d.Status.ObservedGeneration || d.Status.UpdatedNumberScheduled < d.Status.DesiredNumberScheduled
	s.health, s.healthWhy = daemonSetHealth(d)
	return s
}

// selectorHint is the kubectl command that deletes a workload's pods, when its selector can be
// written as a -l argument.
func selectorHint(namespace string, sel *metav1.LabelSelector) string {
	if sel == nil {
		return ""
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || s.Empty() {
		return ""
	}
	return fmt.Sprintf(" (kubectl delete pod -n %s -l '%s')", namespace, s.String())
}

// rolloutFacts is everything decideRollout needs about one workload.
type rolloutFacts struct {
	// ref is the workload as kubectl names it ("deployment/pipy-ok-v1") and namespace its
	// namespace, for messages.
	ref, namespace string

	// need counts the pods that need replacing, by reason; chains are the PluginChains behind
	// it and missing the policy ports the running pods do not redirect.
	notInjected, missingPorts int
	// outdated counts the pods with an older sidecar (RollOutdatedSidecars), sidecarVersion
	// is the configured one.
	outdated       int
	sidecarVersion string
	chains         []string
	missing        []int32

	// templateOK: a new pod from the current template would be injected (the injector says
	// so); otherwise templateWhy says why not, and rolling would not help.
	templateOK  bool
	templateWhy string

	// disabledBy says why rolling is off ("" when on).
	disabledBy string
	// halted and blockedBy are the rollout gate's answer (admit): rollouts are stopped, or
	// another rollout must finish first; gateRetry is how soon to ask again.
	halted, blockedBy string
	gateRetry         time.Duration
	state             workloadState

	// current is the template's AnnotationRestartedAt, desired the rolloutToken of now.
	current, desired string

	// pendingSince is when a rollout first looked needed (zero: just now); settle is how long
	// a needed rollout waits for more of the same burst of changes.
	pendingSince, now time.Time
	settle            time.Duration
}

func (f *rolloutFacts) needing() int { return f.notInjected + f.missingPorts + f.outdated }

type rolloutAction int

const (
	// actNone: nothing to do now; the watches bring the workload back when something changes.
	actNone rolloutAction = iota
	// actWait: a rollout is needed but waits for the burst of changes to settle.
	actWait
	// actRoll: patch the template with the desired token.
	actRoll
	// actReport: a rollout is needed but will not (or cannot) happen: tell the user.
	actReport
)

// rolloutDecision is what to do about a workload, and the Event that says so.
type rolloutDecision struct {
	action rolloutAction
	// after is the wait of actWait.
	after time.Duration
	// pending: a rollout is still needed, so the time it first was must be remembered.
	pending bool

	eventType, reason, note string
}

// Event reasons of the rollout controller.
const (
	ReasonRollout            = "CORSRollout"
	ReasonRolloutNeeded      = "CORSRolloutNeeded"
	ReasonRolloutIneffective = "CORSRolloutIneffective"
	ReasonRolloutUnhelpful   = "CORSRolloutWouldNotHelp"
	ReasonRecreatePod        = "CORSRecreatePod"
	// ReasonPolicyTooLarge: a pod's new policy annotation would exceed a size bound.
	ReasonPolicyTooLarge = "CORSPolicyTooLarge"
	// ReasonRolloutFailed: a rollout did not become healthy (see rolloutGate).
	ReasonRolloutFailed = "CORSRolloutFailed"
	// ReasonRolloutHalted: a rollout is needed but rollouts are stopped after failures.
	ReasonRolloutHalted = "CORSRolloutHalted"
)

// decideRollout decides whether to roll a workload some of whose pods need replacing.
func decideRollout(f rolloutFacts) rolloutDecision {
	if f.needing() == 0 {
		return rolloutDecision{action: actNone}
	}
	why := f.needWhy()
	switch {
	case !f.templateOK:
		return rolloutDecision{action: actReport, eventType: corev1.EventTypeWarning, reason: ReasonRolloutUnhelpful,
			note: fmt.Sprintf("%s, but new pods of the current template would not get it right either: %s", why, f.templateWhy)}
	case f.current == f.desired:
		if f.state.inProgress {
			return rolloutDecision{action: actNone} // ours, still running
		}
		return rolloutDecision{action: actReport, eventType: corev1.EventTypeWarning, reason: ReasonRolloutIneffective,
			note: fmt.Sprintf("%s, although the workload was rolled for this change (%s=%s): check that the mutating webhook is called for namespace %s (its namespaceSelector, failurePolicy) and the cors-webhook log",
				why, AnnotationRestartedAt, f.desired, f.namespace)}
	case f.disabledBy != "":
		return rolloutDecision{action: actReport, eventType: corev1.EventTypeWarning, reason: ReasonRolloutNeeded,
			note: fmt.Sprintf("%s, and rolling is off (%s): run `kubectl rollout restart %s -n %s` to replace them", why, f.disabledBy, f.ref, f.namespace)}
	case !f.state.replaces:
		return rolloutDecision{action: actReport, eventType: corev1.EventTypeWarning, reason: ReasonRolloutNeeded,
			note: fmt.Sprintf("%s, but a template change would not replace them: %s", why, f.state.why)}
	case f.state.inProgress:
		// Somebody's rollout (maybe ours for an earlier change) is running; its end brings
		// the workload back here.
		return rolloutDecision{action: actNone, pending: true}
	case f.halted != "":
		return rolloutDecision{action: actReport, eventType: corev1.EventTypeWarning, reason: ReasonRolloutHalted,
			note: fmt.Sprintf("%s, but %s", why, f.halted)}
	}
	if f.pendingSince.IsZero() {
		return rolloutDecision{action: actWait, after: f.settle, pending: true}
	}
	if waited := f.now.Sub(f.pendingSince); waited < f.settle {
		return rolloutDecision{action: actWait, after: f.settle - waited, pending: true}
	}
	if f.blockedBy != "" {
		return rolloutDecision{action: actWait, after: f.gateRetry, pending: true, note: f.blockedBy}
	}
	return rolloutDecision{action: actRoll, eventType: corev1.EventTypeNormal, reason: ReasonRollout,
		note: fmt.Sprintf("%s: rolling it out so that its new pods get it (%s=%s)", why, AnnotationRestartedAt, f.desired)}
}

// needWhy says in words why pods need replacing, naming the chains.
func (f *rolloutFacts) needWhy() string {
	var parts []string
	if f.notInjected > 0 {
		parts = append(parts, fmt.Sprintf("%d pod(s) run without the CORS sidecar", f.notInjected))
	}
	if f.missingPorts > 0 {
		parts = append(parts, fmt.Sprintf("%d pod(s) do not redirect port %s that their policy now configures", f.missingPorts, contract.FormatPorts(f.missing)))
	}
	if f.outdated > 0 {
		parts = append(parts, fmt.Sprintf("%d pod(s) run a sidecar older than version %s", f.outdated, f.sidecarVersion))
	}
	return fmt.Sprintf("PluginChain %s selects pods of %s: %s", strings.Join(f.chains, ", "), f.ref, strings.Join(parts, "; "))
}

// union merges sorted-or-not string sets into a sorted set.
func union(sets ...[]string) []string {
	m := map[string]bool{}
	for _, s := range sets {
		for _, v := range s {
			m[v] = true
		}
	}
	return slices.Sorted(maps.Keys(m))
}

// compactSorted sorts ports and drops duplicates.
func compactSorted(ports []int32) []int32 {
	slices.Sort(ports)
	return slices.Compact(ports)
}
