package reconcile

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Health gating of rollouts (docs/design.md section 11). A rate limit alone lets a systematic
// failure (a policy engine refusing the injected pod, a lost file capability, a Pod Security
// default) spread to every selected workload of the cluster before anybody looks. So:
//
//   - the first rollout is a canary: no other workload is rolled, anywhere, until one rollout
//     has become healthy;
//   - then at most one rollout per namespace is in flight, so that a namespace-local cause
//     (a quota, a namespace policy) fails one workload, not all of them;
//   - a rollout that does not become healthy within its deadline (or whose Deployment reports
//     ProgressDeadlineExceeded) is a failure: an Event on the workload and a metric; after
//     Options.RolloutFailureLimit failures no more rollouts start until the controller restarts.
//
// The gate's state is memory only, like the settle delay: a new leader starts with a canary
// again, and a workload that failed is not rolled again for the same change (its template
// already carries the token), so a restart resumes rollouts without repeating the failure.

// rolloutHealth is how a rolled workload is doing.
type rolloutHealth int

const (
	// healthProgressing: its controller is still replacing pods.
	healthProgressing rolloutHealth = iota
	// healthDone: every replica runs the current template and is available.
	healthDone
	// healthFailed: its controller gave up (a Deployment's ProgressDeadlineExceeded).
	healthFailed
)

// deploymentHealth follows `kubectl rollout status` and the Deployment's own conditions:
// Progressing=False/ProgressDeadlineExceeded is a failure, all replicas updated and available
// is done.
func deploymentHealth(d *appsv1.Deployment) (rolloutHealth, string) {
	if d.Generation > d.Status.ObservedGeneration {
		return healthProgressing, "its controller has not seen the new template yet"
	}
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse && c.Reason == "ProgressDeadlineExceeded" {
			return healthFailed, fmt.Sprintf("Progressing=False (%s): %s", c.Reason, c.Message)
		}
	}
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	switch st := d.Status; {
	case st.UpdatedReplicas < want:
		return healthProgressing, fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want)
	case st.Replicas > st.UpdatedReplicas:
		return healthProgressing, fmt.Sprintf("%d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < st.UpdatedReplicas:
		return healthProgressing, fmt.Sprintf("%d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas)
	}
	return healthDone, ""
}

// statefulSetHealth: StatefulSets have no progress deadline, so only the controller's own
// deadline can call one failed; done is every replica updated and ready.
func statefulSetHealth(s *appsv1.StatefulSet) (rolloutHealth, string) {
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	switch st := s.Status; {
	case s.Generation > st.ObservedGeneration:
		return healthProgressing, "its controller has not seen the new template yet"
	case st.UpdateRevision != "" && st.CurrentRevision != st.UpdateRevision, st.UpdatedReplicas < want:
		return healthProgressing, fmt.Sprintf("%d of %d replicas updated", st.UpdatedReplicas, want)
	case st.ReadyReplicas < want:
		return healthProgressing, fmt.Sprintf("%d of %d replicas ready", st.ReadyReplicas, want)
	}
	return healthDone, ""
}

// daemonSetHealth: as for StatefulSets, with the scheduled pods as replicas.
func daemonSetHealth(d *appsv1.DaemonSet) (rolloutHealth, string) {
	switch st := d.Status; {
	case d.Generation > st.ObservedGeneration:
		return healthProgressing, "its controller has not seen the new template yet"
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return healthProgressing, fmt.Sprintf("%d of %d pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return healthProgressing, fmt.Sprintf("%d of %d pods available", st.NumberAvailable, st.DesiredNumberScheduled)
	}
	return healthDone, ""
}

// verdict is what judgeRollout says about a rollout in flight.
type verdict struct {
	health rolloutHealth
	// why says what is missing (progressing) or what went wrong (failed).
	why string
	// recheck is when to look again without any event: the deadline (progressing only).
	recheck time.Duration
}

// judgeRollout turns a workload's health into a verdict on the rollout started at since: a
// rollout still progressing at its deadline has failed, whatever the workload says.
func judgeRollout(h rolloutHealth, why string, since, now time.Time, deadline time.Duration) verdict {
	if h != healthProgressing {
		return verdict{health: h, why: why}
	}
	if left := since.Add(deadline).Sub(now); left > 0 {
		return verdict{health: healthProgressing, why: why, recheck: left}
	}
	return verdict{health: healthFailed, why: fmt.Sprintf("not healthy %s after it started (%s)", deadline, why)}
}

// gateView is what admit needs of the gate: a snapshot, so that admit stays pure.
type gateView struct {
	// inFlight are the rollouts started and not yet judged.
	inFlight []workloadKey
	// canaryPassed: a rollout has become healthy since the controller started.
	canaryPassed bool
	// failures counts failed rollouts; limit is Options.RolloutFailureLimit.
	failures, limit int
}

// admit says whether key may start a rollout now: halted (rollouts are stopped, for good) or
// blockedBy (another rollout must finish first) say why not.
func admit(g gateView, key workloadKey) (halted, blockedBy string) {
	if g.failures >= g.limit {
		return fmt.Sprintf("rollouts are stopped after %d failed rollout(s) (see the %s Events); fix the cause, then restart the controller (kubectl rollout restart deployment/cors-webhook-controller) to resume", g.failures, ReasonRolloutFailed), ""
	}
	for _, k := range g.inFlight {
		if k == key {
			continue // a new change of the same workload replaces its own rollout
		}
		if !g.canaryPassed {
			return "", fmt.Sprintf("the canary rollout of %s %s/%s must become healthy first", k.Kind, k.Namespace, k.Name)
		}
		if k.Namespace == key.Namespace {
			return "", fmt.Sprintf("the rollout of %s %s/%s in the same namespace must finish first", k.Kind, k.Namespace, k.Name)
		}
	}
	return "", ""
}

// rolloutGate holds the rollouts in flight and what became of the earlier ones. Its zero value
// is ready to use.
type rolloutGate struct {
	mu           sync.Mutex
	inFlight     map[workloadKey]time.Time
	canaryPassed bool
	failures     int
}

func (g *rolloutGate) view(limit int) gateView {
	g.mu.Lock()
	defer g.mu.Unlock()
	v := gateView{canaryPassed: g.canaryPassed, failures: g.failures, limit: limit}
	for k := range g.inFlight {
		v.inFlight = append(v.inFlight, k)
	}
	slices.SortFunc(v.inFlight, compareKeys)
	return v
}

// started records a rollout that was just patched.
func (g *rolloutGate) started(key workloadKey, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.inFlight == nil {
		g.inFlight = map[workloadKey]time.Time{}
	}
	g.inFlight[key] = now
}

// since says when key's rollout started, if one is in flight.
func (g *rolloutGate) since(key workloadKey) (time.Time, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	t, ok := g.inFlight[key]
	return t, ok
}

// finish records the verdict on key's rollout and returns the failures so far.
func (g *rolloutGate) finish(key workloadKey, h rolloutHealth) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.inFlight, key)
	switch h {
	case healthDone:
		g.canaryPassed = true
	case healthFailed:
		g.failures++
	}
	return g.failures
}

// drop forgets key's rollout without a verdict (the workload is gone).
func (g *rolloutGate) drop(key workloadKey) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.inFlight, key)
}

func compareKeys(a, b workloadKey) int {
	return cmp.Or(strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Kind, b.Kind), strings.Compare(a.Name, b.Name))
}
