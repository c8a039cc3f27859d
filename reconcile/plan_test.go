package reconcile

import (
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/inject"
)

// resolution builds what inject.Resolve says about a selected pod whose policy configures
// ports (nil: selected, pass-through).
func resolution(t *testing.T, ports ...string) *inject.Resolution {
	t.Helper()
	pol := cors.PodPolicy{Version: cors.PodPolicyVersion, Ports: map[string]v1alpha1.CORSConfig{}}
	for _, p := range ports {
		pol.Ports[p] = v1alpha1.CORSConfig{AllowOrigins: []v1alpha1.OriginMatcher{{Exact: "http://www.aaa.com"}}}
	}
	raw, err := pol.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return &inject.Resolution{Selected: true, Chains: []string{"pipy/cors-policy-chain"}, Plugins: []string{"cors-policy"},
		Policy: pol, PolicyJSON: string(raw), RedirectPorts: mustPorts(strings.Join(ports, ","))}
}

func TestPlanPod(t *testing.T) {
	seed := resolution(t, "8080")
	passThrough := resolution(t)
	notSelected := &inject.Resolution{}
	tests := []struct {
		name  string
		facts podFacts
		res   *inject.Resolution
		want  podPlan
	}{
		{name: "a pod no chain selects is left alone",
			facts: podFacts{}, res: notSelected, want: podPlan{}},
		{name: "a selected pod created before the chain must be replaced",
			facts: podFacts{}, res: seed, want: podPlan{roll: rollNotInjected}},
		{name: "a selected pod that opted out is left alone",
			facts: podFacts{optedOut: true}, res: seed, want: podPlan{}},
		{name: "a selected hostNetwork pod is left alone: it would never be injected",
			facts: podFacts{never: inject.HostNetwork}, res: seed, want: podPlan{}},
		{name: "a selected pod of a Pod Security baseline namespace is left alone: no rollout",
			facts: podFacts{never: inject.PodSecurity}, res: seed, want: podPlan{}},
		{name: "an injected pod in step needs nothing",
			facts: podFacts{injected: true, policy: seed.PolicyJSON, hasPolicy: true, redirect: []int32{8080}}, res: seed,
			want: podPlan{policy: seed.PolicyJSON}},
		{name: "an edited config is patched into the annotation",
			facts: podFacts{injected: true, policy: passThrough.PolicyJSON, hasPolicy: true, redirect: []int32{8080}}, res: seed,
			want: podPlan{policy: seed.PolicyJSON, patch: true}},
		{name: "a missing annotation is written",
			facts: podFacts{injected: true, redirect: []int32{8080}}, res: seed,
			want: podPlan{policy: seed.PolicyJSON, patch: true}},
		{name: "a pod no longer selected keeps its sidecar with the pass-through policy",
			facts: podFacts{injected: true, policy: seed.PolicyJSON, hasPolicy: true, redirect: []int32{8080}}, res: notSelected,
			want: podPlan{policy: emptyPolicy, patch: true}},
		{name: "an unselected pod already passing through needs nothing",
			facts: podFacts{injected: true, policy: emptyPolicy, hasPolicy: true}, res: notSelected,
			want: podPlan{policy: emptyPolicy}},
		{name: "an injected pod whose namespace opted out passes through",
			facts: podFacts{injected: true, policy: seed.PolicyJSON, hasPolicy: true, redirect: []int32{8080}, optedOut: true}, res: seed,
			want: podPlan{policy: emptyPolicy, patch: true}},
		{name: "a policy on a port the pod does not redirect is patched, and the pod must be replaced",
			facts: podFacts{injected: true, policy: passThrough.PolicyJSON, hasPolicy: true}, res: seed,
			want: podPlan{policy: seed.PolicyJSON, patch: true, roll: rollMissingPorts, missing: []int32{8080}}},
		{name: "only ports with a policy must be redirected",
			facts: podFacts{injected: true, policy: passThrough.PolicyJSON, hasPolicy: true, redirect: []int32{9090}}, res: passThrough,
			want: podPlan{policy: passThrough.PolicyJSON}},
		{name: "a policy that would take the pod's annotations over the API server's bound is not patched",
			facts: podFacts{injected: true, policy: passThrough.PolicyJSON, hasPolicy: true, redirect: []int32{8080},
				annotations: map[string]string{"example.com/big": strings.Repeat("x", contract.MaxPodAnnotationsBytes-64)}}, res: seed,
			want: podPlan{policy: seed.PolicyJSON, tooLarge: "more than the API server's"}},
		{name: "a policy over the injector's own bound is not patched",
			facts: podFacts{injected: true, policy: passThrough.PolicyJSON, hasPolicy: true},
			res:   &inject.Resolution{Selected: true, PolicyJSON: strings.Repeat("x", contract.MaxPolicyAnnotationBytes+1)},
			want:  podPlan{policy: strings.Repeat("x", contract.MaxPolicyAnnotationBytes+1), tooLarge: "more than the 131072 this injector writes"}},
		{name: "no resolution: an injected pod passes through",
			facts: podFacts{injected: true, policy: seed.PolicyJSON, hasPolicy: true}, res: nil,
			want: podPlan{policy: emptyPolicy, patch: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := planPod(tc.facts, tc.res)
			if got.policy != tc.want.policy || got.patch != tc.want.patch || got.roll != tc.want.roll || !slices.Equal(got.missing, tc.want.missing) {
				t.Errorf("planPod = %+v\nwant      %+v", got, tc.want)
			}
			if !strings.Contains(got.tooLarge, tc.want.tooLarge) || (got.tooLarge == "") != (tc.want.tooLarge == "") {
				t.Errorf("tooLarge %q, want %q", got.tooLarge, tc.want.tooLarge)
			}
		})
	}
}

func TestFactsOf(t *testing.T) {
	sidecar := corev1.Container{Name: contract.ContainerSidecar}
	tests := []struct {
		name string
		pod  *corev1.Pod
		ns   *corev1.Namespace
		want podFacts
	}{
		{name: "plain pod", pod: &corev1.Pod{}, ns: &corev1.Namespace{}, want: podFacts{}},
		{name: "injected pod",
			pod: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{contract.AnnotationPolicy: "{}", contract.AnnotationRedirectPorts: "9090,8080"}},
				Spec:       corev1.PodSpec{InitContainers: []corev1.Container{sidecar}},
			},
			want: podFacts{injected: true, policy: "{}", hasPolicy: true, redirect: []int32{8080, 9090}}},
		{name: "pod opt-out",
			pod:  &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{contract.AnnotationInject: "False"}}},
			want: podFacts{optedOut: true}},
		{name: "an opt-in annotation is no opt-out",
			pod:  &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{contract.AnnotationInject: "true"}}},
			want: podFacts{}},
		{name: "namespace opt-out",
			pod:  &corev1.Pod{},
			ns:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{contract.LabelNamespaceInject: contract.NamespaceInjectDisabled}}},
			want: podFacts{optedOut: true}},
		{name: "hostNetwork, and redirect ports typed by hand",
			pod: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{contract.AnnotationRedirectPorts: " 8080, x, 0, 8080"}},
				Spec:       corev1.PodSpec{HostNetwork: true},
			},
			want: podFacts{never: inject.HostNetwork, redirect: []int32{8080}}},
		{name: "mirror pod",
			pod:  &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{corev1.MirrorPodAnnotationKey: "x"}}},
			want: podFacts{never: inject.MirrorPod}},
		{name: "Windows pod",
			pod:  &corev1.Pod{Spec: corev1.PodSpec{OS: &corev1.PodOS{Name: corev1.Windows}}},
			want: podFacts{never: inject.Windows}},
		{name: "namespace enforcing Pod Security baseline",
			pod:  &corev1.Pod{},
			ns:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"pod-security.kubernetes.io/enforce": "baseline"}}},
			want: podFacts{never: inject.PodSecurity}},
		{name: "namespace enforcing Pod Security privileged",
			pod:  &corev1.Pod{},
			ns:   &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"pod-security.kubernetes.io/enforce": "privileged"}}},
			want: podFacts{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := factsOf(tc.pod, tc.ns, inject.RedirectInit)
			if got.injected != tc.want.injected || got.policy != tc.want.policy || got.hasPolicy != tc.want.hasPolicy ||
				!slices.Equal(got.redirect, tc.want.redirect) || got.optedOut != tc.want.optedOut || got.never != tc.want.never {
				t.Errorf("factsOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestEmptyPolicy(t *testing.T) {
	if emptyPolicy != `{"version":1,"ports":{}}` {
		t.Errorf("emptyPolicy = %s", emptyPolicy)
	}
	if _, err := cors.ParsePodPolicy([]byte(emptyPolicy)); err != nil {
		t.Errorf("the sidecar would not load the pass-through policy: %v", err)
	}
}

func TestRolloutToken(t *testing.T) {
	tmpl := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "pipy-ok"}},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "pipy", Image: "flomesh/pipy"}}},
	}
	seed := resolution(t, "8080")
	base := rolloutToken(seed, tmpl)
	if len(base) != 16 {
		t.Fatalf("token %q: want 16 hex digits", base)
	}

	rolled := tmpl.DeepCopy()
	rolled.Annotations = map[string]string{AnnotationRestartedAt: base}
	other := tmpl.DeepCopy()
	other.Spec.Containers[0].Image = "flomesh/pipy:1.5"
	otherChain := resolution(t, "8080")
	otherChain.Chains = []string{"pipy/another"}
	tests := []struct {
		name string
		res  *inject.Resolution
		tmpl *corev1.PodTemplateSpec
		same bool
	}{
		{"the same change gives the same value", resolution(t, "8080"), tmpl.DeepCopy(), true},
		{"the value of a rollout does not change the value", seed, rolled, true},
		{"a policy edit on the same ports does not change the value", func() *inject.Resolution {
			r := resolution(t, "8080")
			r.PolicyJSON = `{"version":1,"ports":{"8080":{"allowOrigins":[{"exact":"http://other"}]}}}`
			return r
		}(), tmpl, true},
		{"another port is another change", resolution(t, "8080", "9090"), tmpl, false},
		{"another chain is another change", otherChain, tmpl, false},
		{"a template edited by its owner is another change", seed, other, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := rolloutToken(tc.res, tc.tmpl); (got == base) != tc.same {
				t.Errorf("token %s, base %s: same = %v, want %v", got, base, got == base, tc.same)
			}
		})
	}
	if rolled.Annotations[AnnotationRestartedAt] != base {
		t.Error("rolloutToken modified its input")
	}
}

func TestWorkloadStates(t *testing.T) {
	replicas := func(n int32) *int32 { return &n }
	tests := []struct {
		name string
		got  workloadState
		want workloadState
	}{
		{"a Deployment at rest",
			deploymentState(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 2},
				Spec:   appsv1.DeploymentSpec{Replicas: replicas(1)},
				Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1}}),
			workloadState{replaces: true}},
		{"a Deployment whose pods are not ready yet is at rest: only older pods count",
			deploymentState(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 1},
				Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 0}}),
			workloadState{replaces: true}},
		{"a Deployment whose controller has not seen the template yet",
			deploymentState(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 3},
				Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1}}),
			workloadState{replaces: true, inProgress: true}},
		{"a Deployment with pods of an older ReplicaSet",
			deploymentState(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: 3},
				Status: appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 1}}),
			workloadState{replaces: true, inProgress: true}},
		{"a paused Deployment",
			deploymentState(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", Generation: 1},
				Spec: appsv1.DeploymentSpec{Paused: true}, Status: appsv1.DeploymentStatus{ObservedGeneration: 1}}),
			workloadState{why: "the Deployment is paused: resume it (kubectl rollout resume deployment/web -n ns)"}},
		{"a StatefulSet mid-update",
			statefulSetState(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 1},
				Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, CurrentRevision: "a", UpdateRevision: "b"}}),
			workloadState{replaces: true, inProgress: true}},
		{"a StatefulSet at rest",
			statefulSetState(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 1},
				Status: appsv1.StatefulSetStatus{ObservedGeneration: 1, CurrentRevision: "b", UpdateRevision: "b"}}),
			workloadState{replaces: true}},
		{"an OnDelete StatefulSet",
			statefulSetState(&appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"},
				Spec: appsv1.StatefulSetSpec{
					UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
					Selector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
				}}),
			workloadState{why: "its updateStrategy is OnDelete: delete its pods so that they are recreated (kubectl delete pod -n ns -l 'app=db')"}},
		{"a DaemonSet mid-update",
			daemonSetState(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 1},
				Status: appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 3, UpdatedNumberScheduled: 2}}),
			workloadState{replaces: true, inProgress: true}},
		{"an OnDelete DaemonSet",
			daemonSetState(&appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"},
				Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}}}),
			workloadState{why: "its updateStrategy is OnDelete: delete its pods so that they are recreated"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.got
			got.health, got.healthWhy = 0, "" // TestRolloutHealth
			if got != tc.want {
				t.Errorf("state = %+v\nwant    %+v", got, tc.want)
			}
		})
	}
}

func TestDecideRollout(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	// needs is a Deployment one of whose pods a chain newly selects, at rest, rolling on.
	needs := func(edit func(*rolloutFacts)) rolloutFacts {
		f := rolloutFacts{
			ref: "deployment/pipy-ok-v1", namespace: "pipy",
			notInjected: 1, chains: []string{"pipy/cors-policy-chain"},
			templateOK: true, state: workloadState{replaces: true},
			current: "", desired: "0123456789abcdef",
			now: now, settle: 5 * time.Second,
		}
		if edit != nil {
			edit(&f)
		}
		return f
	}
	tests := []struct {
		name     string
		facts    rolloutFacts
		action   rolloutAction
		after    time.Duration
		pending  bool
		reason   string
		contains []string
	}{
		{name: "no pod needs replacing",
			facts: needs(func(f *rolloutFacts) { f.notInjected = 0 }), action: actNone},
		{name: "a newly needed rollout waits for the changes to settle",
			facts: needs(nil), action: actWait, after: 5 * time.Second, pending: true},
		{name: "it keeps waiting for the rest of the delay",
			facts: needs(func(f *rolloutFacts) { f.pendingSince = now.Add(-2 * time.Second) }), action: actWait, after: 3 * time.Second, pending: true},
		{name: "then it rolls, saying which chain and why",
			facts: needs(func(f *rolloutFacts) { f.pendingSince = now.Add(-5 * time.Second) }), action: actRoll, reason: ReasonRollout,
			contains: []string{"PluginChain pipy/cors-policy-chain selects pods of deployment/pipy-ok-v1", "1 pod(s) run without the CORS sidecar", "cors-webhook.io/restartedAt=0123456789abcdef"}},
		{name: "a port the pods do not redirect rolls too",
			facts: needs(func(f *rolloutFacts) {
				f.notInjected, f.missingPorts, f.missing = 0, 2, []int32{8080}
				f.pendingSince = now.Add(-time.Minute)
			}), action: actRoll, reason: ReasonRollout,
			contains: []string{"2 pod(s) do not redirect port 8080 that their policy now configures"}},
		{name: "a template already rolled for this change is not rolled again while its rollout runs",
			facts: needs(func(f *rolloutFacts) {
				f.current = f.desired
				f.state.inProgress = true
				f.pendingSince = now.Add(-time.Minute)
			}), action: actNone},
		{name: "a rollout for this change that did not help is reported, not repeated",
			facts: needs(func(f *rolloutFacts) {
				f.current = f.desired
				f.pendingSince = now.Add(-time.Minute)
			}), action: actReport, reason: ReasonRolloutIneffective,
			contains: []string{"although the workload was rolled for this change", "mutating webhook is called for namespace pipy"}},
		{name: "another rollout running (ours for an earlier change, or the owner's) is waited for",
			facts: needs(func(f *rolloutFacts) {
				f.current = "fedcba9876543210"
				f.state.inProgress = true
				f.pendingSince = now.Add(-time.Minute)
			}), action: actNone, pending: true},
		{name: "rollouts stopped after failures: the Event says so and how to resume",
			facts: needs(func(f *rolloutFacts) {
				f.halted = "rollouts are stopped after 3 failed rollout(s)"
				f.pendingSince = now.Add(-time.Minute)
			}), action: actReport, reason: ReasonRolloutHalted,
			contains: []string{"1 pod(s) run without the CORS sidecar, but rollouts are stopped after 3 failed rollout(s)"}},
		{name: "another workload's rollout in flight: wait for the gate, after the settle delay",
			facts: needs(func(f *rolloutFacts) {
				f.blockedBy = "the canary rollout of Deployment a/b must become healthy first"
				f.gateRetry = 5 * time.Second
				f.pendingSince = now.Add(-time.Minute)
			}), action: actWait, after: 5 * time.Second, pending: true},
		{name: "rolling turned off: the Event says what to run",
			facts: needs(func(f *rolloutFacts) { f.disabledBy = "cors-webhook serve --rollout=false" }), action: actReport, reason: ReasonRolloutNeeded,
			contains: []string{"rolling is off (cors-webhook serve --rollout=false)", "kubectl rollout restart deployment/pipy-ok-v1 -n pipy"}},
		{name: "a workload whose template change replaces nothing: the Event says what to do",
			facts: needs(func(f *rolloutFacts) {
				f.state = workloadState{why: "its updateStrategy is OnDelete: delete its pods"}
			}), action: actReport, reason: ReasonRolloutNeeded, contains: []string{"a template change would not replace them: its updateStrategy is OnDelete"}},
		{name: "new pods would not be injected either: no rollout, an Event",
			facts: needs(func(f *rolloutFacts) {
				f.templateOK, f.desired, f.templateWhy = false, "", "PluginChain pipy/c selects the pod, but it uses hostNetwork"
			}), action: actReport, reason: ReasonRolloutUnhelpful, contains: []string{"would not get it right either: PluginChain pipy/c selects the pod, but it uses hostNetwork"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := decideRollout(tc.facts)
			if d.action != tc.action || d.after != tc.after || d.pending != tc.pending || d.reason != tc.reason {
				t.Errorf("decision = %+v\nwant action %v after %v pending %v reason %q", d, tc.action, tc.after, tc.pending, tc.reason)
			}
			for _, s := range tc.contains {
				if !strings.Contains(d.note, s) {
					t.Errorf("note %q lacks %q", d.note, s)
				}
			}
		})
	}
}

func mustPorts(list string) []int32 {
	ports, bad := contract.ParsePorts(list)
	if len(bad) > 0 {
		panic(bad)
	}
	return ports
}
