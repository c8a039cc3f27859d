package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

func TestRolloutHealth(t *testing.T) {
	deadline := appsv1.DeploymentCondition{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
		Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "web-2" has timed out progressing.`}
	dep := func(gen, observed int64, st appsv1.DeploymentStatus) *appsv1.Deployment {
		st.ObservedGeneration = observed
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Generation: gen}, Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](2)}, Status: st}
	}
	sts := func(st appsv1.StatefulSetStatus) *appsv1.StatefulSet {
		st.ObservedGeneration = 1
		return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Generation: 1}, Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](2)}, Status: st}
	}
	ds := func(st appsv1.DaemonSetStatus) *appsv1.DaemonSet {
		st.ObservedGeneration = 1
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 1}, Status: st}
	}
	type result struct {
		h   rolloutHealth
		why string
	}
	of := func(h rolloutHealth, why string) result { return result{h, why} }
	tests := []struct {
		name      string
		got, want result
	}{
		{"a Deployment whose controller has not seen the template", of(deploymentHealth(dep(2, 1, appsv1.DeploymentStatus{}))),
			result{healthProgressing, "its controller has not seen the new template yet"}},
		{"a Deployment with one of two replicas updated", of(deploymentHealth(dep(2, 2, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1}))),
			result{healthProgressing, "1 of 2 replicas updated"}},
		{"a Deployment with old replicas terminating", of(deploymentHealth(dep(2, 2, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 2}))),
			result{healthProgressing, "1 old replicas pending termination"}},
		{"a Deployment whose new replicas are not available", of(deploymentHealth(dep(2, 2, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1}))),
			result{healthProgressing, "1 of 2 updated replicas available"}},
		{"a Deployment updated and available", of(deploymentHealth(dep(2, 2, appsv1.DeploymentStatus{Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 2}))),
			result{healthDone, ""}},
		{"a Deployment past its progress deadline", of(deploymentHealth(dep(2, 2, appsv1.DeploymentStatus{Replicas: 3, UpdatedReplicas: 1, Conditions: []appsv1.DeploymentCondition{deadline}}))),
			result{healthFailed, `Progressing=False (ProgressDeadlineExceeded): ReplicaSet "web-2" has timed out progressing.`}},
		{"a StatefulSet mid-update", of(statefulSetHealth(sts(appsv1.StatefulSetStatus{CurrentRevision: "a", UpdateRevision: "b", UpdatedReplicas: 1}))),
			result{healthProgressing, "1 of 2 replicas updated"}},
		{"a StatefulSet updated but not ready", of(statefulSetHealth(sts(appsv1.StatefulSetStatus{CurrentRevision: "b", UpdateRevision: "b", UpdatedReplicas: 2, ReadyReplicas: 1}))),
			result{healthProgressing, "1 of 2 replicas ready"}},
		{"a StatefulSet updated and ready", of(statefulSetHealth(sts(appsv1.StatefulSetStatus{CurrentRevision: "b", UpdateRevision: "b", UpdatedReplicas: 2, ReadyReplicas: 2}))),
			result{healthDone, ""}},
		{"a DaemonSet mid-update", of(daemonSetHealth(ds(appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 2}))),
			result{healthProgressing, "2 of 3 pods updated"}},
		{"a DaemonSet updated, not all available", of(daemonSetHealth(ds(appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 2}))),
			result{healthProgressing, "2 of 3 pods available"}},
		{"a DaemonSet updated and available", of(daemonSetHealth(ds(appsv1.DaemonSetStatus{DesiredNumberScheduled: 3, UpdatedNumberScheduled: 3, NumberAvailable: 3}))),
			result{healthDone, ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %+v, want %+v", tc.got, tc.want)
			}
		})
	}
}

func TestJudgeRollout(t *testing.T) {
	since := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		h      rolloutHealth
		now    time.Time
		want   verdict
		reason string
	}{
		{"progressing within the deadline: look again at the deadline", healthProgressing, since.Add(4 * time.Minute),
			verdict{health: healthProgressing, why: "1 of 2 replicas updated", recheck: 6 * time.Minute}, ""},
		{"progressing at the deadline: failed", healthProgressing, since.Add(10 * time.Minute),
			verdict{health: healthFailed, why: "not healthy 10m0s after it started (1 of 2 replicas updated)"}, ""},
		{"done", healthDone, since.Add(time.Minute), verdict{health: healthDone, why: "1 of 2 replicas updated"}, ""},
		{"failed before the deadline (ProgressDeadlineExceeded)", healthFailed, since.Add(time.Minute),
			verdict{health: healthFailed, why: "1 of 2 replicas updated"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := judgeRollout(tc.h, "1 of 2 replicas updated", since, tc.now, 10*time.Minute); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAdmit(t *testing.T) {
	web := workloadKey{Kind: kindDeployment, Namespace: "a", Name: "web"}
	api := workloadKey{Kind: kindDeployment, Namespace: "a", Name: "api"}
	db := workloadKey{Kind: kindStatefulSet, Namespace: "b", Name: "db"}
	tests := []struct {
		name              string
		gate              gateView
		key               workloadKey
		halted, blockedBy string
	}{
		{"the first rollout is the canary", gateView{limit: 3}, web, "", ""},
		{"nothing else starts while the canary runs, in any namespace", gateView{inFlight: []workloadKey{web}, limit: 3}, db,
			"", "the canary rollout of Deployment a/web must become healthy first"},
		{"a new change of the canary itself may roll it again", gateView{inFlight: []workloadKey{web}, limit: 3}, web, "", ""},
		{"after a healthy canary, other namespaces roll in parallel", gateView{inFlight: []workloadKey{web}, canaryPassed: true, limit: 3}, db, "", ""},
		{"but one workload at a time per namespace", gateView{inFlight: []workloadKey{web}, canaryPassed: true, limit: 3}, api,
			"", "the rollout of Deployment a/web in the same namespace must finish first"},
		{"failures below the limit do not stop rollouts", gateView{failures: 2, limit: 3}, api, "", ""},
		{"the limit of failures stops every rollout", gateView{failures: 3, canaryPassed: true, limit: 3}, api,
			"rollouts are stopped after 3 failed rollout(s) (see the CORSRolloutFailed Events); fix the cause, then restart the controller (kubectl rollout restart deployment/cors-webhook-controller) to resume", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			halted, blockedBy := admit(tc.gate, tc.key)
			if halted != tc.halted || blockedBy != tc.blockedBy {
				t.Errorf("admit = %q, %q\nwant      %q, %q", halted, blockedBy, tc.halted, tc.blockedBy)
			}
		})
	}
}

// TestRolloutReconcilerStopsAfterAFailedCanary: of two workloads that need a rollout, only the
// canary rolls; when its Deployment reports ProgressDeadlineExceeded, a Warning Event and the
// failure metric say so, and (failure limit 1) the other workload is not rolled but told why.
func TestRolloutReconcilerStopsAfterAFailedCanary(t *testing.T) {
	s := newSeedCluster(t)
	d1, rs1, pod1 := s.deployment(t, false)
	d2, rs2, pod2 := d1.DeepCopy(), rs1.DeepCopy(), pod1.DeepCopy()
	d2.Name, d2.UID = "pipy-ok-v2", "d2-uid"
	rs2.Name, rs2.UID, rs2.OwnerReferences[0].Name, rs2.OwnerReferences[0].UID = "pipy-ok-v2-abc", "rs2-uid", d2.Name, d2.UID
	pod2.Name, pod2.OwnerReferences[0].Name, pod2.OwnerReferences[0].UID = "pipy-ok-v2-abc-x", rs2.Name, rs2.UID
	cl := fakeClient(t, d1, rs1, pod1, d2, rs2, pod2)
	rec := events.NewFakeRecorder(8)
	clock := &fakeClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	opts := Options{RolloutFailureLimit: 1}.withDefaults()
	r := &rolloutReconciler{client: cl, reader: s.reader, injector: s.injector, recorder: rec,
		opts: opts, limiter: rate.NewLimiter(rate.Inf, 1),
		pending: map[workloadKey]time.Time{}, notes: newNoteLog(), now: clock.Now}
	ctx := context.Background()
	canary := workloadKey{Kind: kindDeployment, Namespace: "pipy", Name: d1.Name}
	other := workloadKey{Kind: kindDeployment, Namespace: "pipy", Name: d2.Name}
	reconcile := func(key workloadKey) time.Duration {
		t.Helper()
		res, err := r.Reconcile(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return res.RequeueAfter
	}
	token := func(d *appsv1.Deployment) string {
		t.Helper()
		got := &appsv1.Deployment{}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(d), got); err != nil {
			t.Fatal(err)
		}
		return got.Spec.Template.Annotations[AnnotationRestartedAt]
	}
	failuresBefore := testutil.ToFloat64(RolloutFailures.WithLabelValues(kindDeployment))

	reconcile(canary)
	reconcile(other)
	clock.t = clock.t.Add(opts.RolloutSettle)
	if after := reconcile(canary); token(d1) == "" || after != opts.RolloutDeadline {
		t.Fatalf("canary: token %q, requeue %v; want a rollout, looked at again at its deadline %v", token(d1), after, opts.RolloutDeadline)
	}
	<-rec.Events // CORSRollout
	if after := reconcile(other); token(d2) != "" || after != opts.AdmissionRetry {
		t.Fatalf("while the canary runs: token %q, requeue %v; want no rollout, a retry after %v", token(d2), after, opts.AdmissionRetry)
	}

	// The Deployment controller gives up on the canary's new pods.
	got := &appsv1.Deployment{}
	if err := cl.Get(ctx, client.ObjectKeyFromObject(d1), got); err != nil {
		t.Fatal(err)
	}
	got.Status = appsv1.DeploymentStatus{ObservedGeneration: got.Generation, Replicas: 2, UpdatedReplicas: 1, AvailableReplicas: 1,
		Conditions: []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
			Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "pipy-ok-v1-def" has timed out progressing.`}}}
	if err := cl.Status().Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	clock.t = clock.t.Add(time.Minute)
	reconcile(canary)
	if e := <-rec.Events; !strings.Contains(e, "Warning "+ReasonRolloutFailed) ||
		!strings.Contains(e, "ProgressDeadlineExceeded") || !strings.Contains(e, "no more rollouts start until the controller restarts") {
		t.Errorf("failure event %q", e)
	}
	if got := testutil.ToFloat64(RolloutFailures.WithLabelValues(kindDeployment)) - failuresBefore; got != 1 {
		t.Errorf("failure metric grew by %v, want 1", got)
	}
	if testutil.ToFloat64(RolloutsHalted) != 1 {
		t.Error("halted gauge not set")
	}

	clock.t = clock.t.Add(time.Minute)
	if after := reconcile(other); token(d2) != "" || after != 0 {
		t.Fatalf("after the failure: token %q, requeue %v; want no rollout and no retry", token(d2), after)
	}
	if e := <-rec.Events; !strings.Contains(e, "Warning "+ReasonRolloutHalted) || !strings.Contains(e, "restart the controller") {
		t.Errorf("halted event %q", e)
	}
	if token(d1) == "" || len(rec.Events) != 0 {
		t.Errorf("canary token %q, %d more events", token(d1), len(rec.Events))
	}
}
