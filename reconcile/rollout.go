package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/inject"
)

// rolloutReconciler rolls the workloads whose pods need replacing (see decideRollout).
type rolloutReconciler struct {
	client   client.Client
	reader   clusterstate.Reader
	injector *inject.Injector
	recorder events.EventRecorder
	opts     Options
	limiter  *rate.Limiter
	gate     rolloutGate
	notes    *noteLog
	now      func() time.Time
	// podSecurity, when set, asks the API server before a roll (Options.PodSecurityDryRun).
	podSecurity *podSecurityProbe

	mu sync.Mutex
	// pending holds when each workload first needed a rollout that has not happened yet (the
	// settle delay). It is memory only: a new leader waits the settle delay again.
	pending map[workloadKey]time.Time
}

func (r *rolloutReconciler) setup(mgr manager.Manager, requests <-chan event.TypedGenericEvent[workloadKey], opts Options) error {
	enqueue := func(kind string) handler.TypedEventHandler[client.Object, workloadKey] {
		return handler.TypedEnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []workloadKey {
			return []workloadKey{{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()}}
		})
	}
	log := mgr.GetLogger().WithValues("controller", ControllerRollout)
	return builder.TypedControllerManagedBy[workloadKey](mgr).
		Named(ControllerRollout).
		WithOptions(controller.TypedOptions[workloadKey]{
			SkipNameValidation: &opts.SkipNameValidation,
			LogConstructor: func(k *workloadKey) logr.Logger {
				if k == nil {
					return log
				}
				return log.WithValues("kind", k.Kind, "namespace", k.Namespace, "name", k.Name)
			},
		}).
		// Every change of a workload counts: its status says when a rollout has finished,
		// its annotations whether it may be rolled.
		Watches(&appsv1.Deployment{}, enqueue(kindDeployment)).
		Watches(&appsv1.StatefulSet{}, enqueue(kindStatefulSet)).
		Watches(&appsv1.DaemonSet{}, enqueue(kindDaemonSet)).
		// The pod controller names the workloads of pods that need replacing.
		WatchesRawSource(source.TypedChannel(requests, handler.TypedFuncs[workloadKey, workloadKey]{
			GenericFunc: func(_ context.Context, e event.TypedGenericEvent[workloadKey], q workqueue.TypedRateLimitingInterface[workloadKey]) {
				q.Add(e.Object)
			},
		})).
		Complete(r)
}

// Reconcile implements reconcile.TypedReconciler for one workload: observe (load, judge,
// observe), decide (decideRollout), act.
func (r *rolloutReconciler) Reconcile(ctx context.Context, key workloadKey) (ctrlreconcile.Result, error) {
	obj, tmpl, state, err := r.load(ctx, key)
	if err != nil {
		return ctrlreconcile.Result{}, err
	}
	if obj == nil || obj.GetDeletionTimestamp() != nil {
		r.forget(key)
		r.gate.drop(key)
		return ctrlreconcile.Result{}, nil
	}
	recheck := r.judge(ctx, key, obj, state)
	f, err := r.observe(ctx, key, obj, tmpl, state)
	if err != nil || f == nil {
		return ctrlreconcile.Result{RequeueAfter: recheck}, err
	}
	res, err := r.act(ctx, key, obj, f, decideRollout(*f))
	if recheck > 0 && (res.RequeueAfter == 0 || recheck < res.RequeueAfter) {
		res.RequeueAfter = recheck
	}
	return res, err
}

// judge gives the verdict on key's rollout if one is in flight, and returns when to look
// again if it is still progressing (its deadline passes without any event).
func (r *rolloutReconciler) judge(ctx context.Context, key workloadKey, obj client.Object, state workloadState) time.Duration {
	since, ok := r.gate.since(key)
	if !ok {
		return 0
	}
	v := judgeRollout(state.health, state.healthWhy, since, r.now(), r.opts.RolloutDeadline)
	if v.health == healthProgressing {
		return v.recheck
	}
	failures := r.gate.finish(key, v.health)
	log := logf.FromContext(ctx)
	if v.health == healthDone {
		log.Info("rollout healthy", "took", r.now().Sub(since))
		return 0
	}
	RolloutFailures.WithLabelValues(key.Kind).Inc()
	note := fmt.Sprintf("the rollout of %s did not become healthy: %s. Its earlier pods keep running; find the cause in `kubectl describe %s -n %s` and its new pods' Events, then fix it or undo the rollout (kubectl rollout undo %s -n %s)",
		key.ref(), v.why, key.ref(), key.Namespace, key.ref(), key.Namespace)
	if failures >= r.opts.RolloutFailureLimit {
		RolloutsHalted.Set(1)
		note += fmt.Sprintf(". That makes %d failed rollout(s): no more rollouts start until the controller restarts", failures)
	}
	log.Info("rollout failed", "why", v.why, "failures", failures)
	r.recorder.Eventf(obj, nil, corev1.EventTypeWarning, ReasonRolloutFailed, "Rollout", note)
	return 0
}

// observe gathers the facts decideRollout needs; nil when the workload needs no rollout.
func (r *rolloutReconciler) observe(ctx context.Context, key workloadKey, obj client.Object, tmpl *corev1.PodTemplateSpec, state workloadState) (*rolloutFacts, error) {
	ns, err := r.reader.Namespace(key.Namespace)
	if err != nil || ns == nil {
		return nil, err
	}
	// What a new pod of the template would get: the injection itself, run on the template.
	// Most workloads are selected by no chain, and then rolling cannot be the answer.
	ir, err := r.injector.Inject(&corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}, ns, r.reader)
	if err != nil {
		return nil, err
	}
	switch ir.Outcome {
	case inject.NotSelected, inject.PluginNotDeclared, inject.PodOptedOut, inject.NamespaceOptedOut:
		r.forget(key)
		return nil, nil
	}
	f := &rolloutFacts{ref: key.ref(), namespace: key.Namespace, state: state, now: r.now(), settle: r.opts.RolloutSettle}
	if err := r.countPods(ctx, key, obj, ns, f); err != nil {
		return nil, err
	}
	if f.needing() == 0 {
		r.forget(key)
		return nil, nil
	}
	if f.templateOK = ir.Outcome == inject.Injected; f.templateOK {
		f.desired = rolloutToken(ir.Resolution, tmpl)
		if f.outdated > 0 {
			// A new sidecar version is a change of its own: the token of an earlier rollout
			// for the same chains must not make this one look done.
			f.sidecarVersion = inject.SidecarVersion(r.injector.Settings().SidecarImage)
			f.desired = upgradeToken(f.desired, f.sidecarVersion)
		}
	} else {
		f.templateWhy = strings.Join(ir.Reasons, "; ")
	}
	if f.templateOK && r.podSecurity != nil {
		why, err := r.podSecurity.refusal(ctx, key.Namespace, ir.InjectedPod())
		if err != nil {
			// The label rule stays the judge; the next reconcile asks again.
			logf.FromContext(ctx).Info("no Pod Security verdict from the API server, judging by the namespace label", "error", err.Error())
		}
		f.templateOK, f.templateWhy = why == "", why
	}
	f.current = tmpl.Annotations[AnnotationRestartedAt]
	switch {
	case r.opts.DisableRollout:
		f.disabledBy = "cors-webhook controller --rollout=false"
	case optedOutOfRollout(obj):
		f.disabledBy = fmt.Sprintf("the annotation %s=%q on the %s", AnnotationRollout, obj.GetAnnotations()[AnnotationRollout], key.Kind)
	}
	f.pendingSince = r.pendingSince(key)
	f.halted, f.blockedBy = admit(r.gate.view(r.opts.RolloutFailureLimit), key)
	f.gateRetry = r.opts.AdmissionRetry
	return f, nil
}

// countPods counts, into f, the workload's running pods that need replacing, and why.
func (r *rolloutReconciler) countPods(ctx context.Context, key workloadKey, obj client.Object, ns *corev1.Namespace, f *rolloutFacts) error {
	pods, err := r.podsOf(ctx, key, obj.GetUID())
	if err != nil {
		return err
	}
	for i := range pods {
		pod := &pods[i]
		if !active(pod) {
			continue
		}
		res, err := r.injector.Resolve(pod, ns, r.reader)
		if err != nil {
			return err
		}
		plan := planPod(factsOf(pod, ns, r.injector.Settings().RedirectMode), res)
		if r.opts.RollOutdatedSidecars && plan.roll == rollNone && outdatedSidecar(pod, res, r.injector) {
			plan.roll = rollOutdatedSidecar
		}
		switch plan.roll {
		case rollNone:
			continue
		case rollNotInjected:
			f.notInjected++
		case rollMissingPorts:
			f.missingPorts++
			f.missing = unionPorts(f.missing, plan.missing)
		case rollOutdatedSidecar:
			f.outdated++
		}
		f.chains = union(f.chains, res.Chains)
	}
	return nil
}

// act carries out decision d about the workload obj.
func (r *rolloutReconciler) act(ctx context.Context, key workloadKey, obj client.Object, f *rolloutFacts, d rolloutDecision) (ctrlreconcile.Result, error) {
	log := logf.FromContext(ctx)
	if d.action == actRoll && r.opts.AdmissionReady != nil {
		if err := r.opts.AdmissionReady(ctx); err != nil {
			r.markPending(key, f.now)
			log.Info("rollout waits for the pod webhook to answer", "why", f.needWhy(), "webhook", err.Error(), "retry", r.opts.AdmissionRetry)
			return ctrlreconcile.Result{RequeueAfter: r.opts.AdmissionRetry}, nil
		}
	}
	switch d.action {
	case actNone:
		if !d.pending {
			r.clearPending(key)
		}
	case actWait:
		r.markPending(key, f.now)
		log.V(1).Info("rollout needed, waiting", "after", d.after, "why", f.needWhy(), "for", d.note)
		return ctrlreconcile.Result{RequeueAfter: d.after}, nil
	case actReport:
		r.clearPending(key)
		if r.notes.first(key.String(), strings.Join([]string{d.reason, f.desired, f.disabledBy, f.state.why, f.templateWhy}, "|")) {
			log.Info("rollout needed but not done", "reason", d.reason, "note", d.note)
			r.recorder.Eventf(obj, chainRef(f.chains), d.eventType, d.reason, "Rollout", d.note)
		}
	case actRoll:
		if rs := r.limiter.ReserveN(f.now, 1); !rs.OK() || rs.DelayFrom(f.now) > 0 {
			delay := rs.DelayFrom(f.now)
			rs.CancelAt(f.now)
			log.V(1).Info("rollout rate-limited", "after", delay)
			return ctrlreconcile.Result{RequeueAfter: max(delay, 100*time.Millisecond)}, nil
		}
		if err := patchRestartedAt(ctx, r.client, obj, f.desired); err != nil {
			return ctrlreconcile.Result{}, client.IgnoreNotFound(err)
		}
		r.clearPending(key)
		r.notes.forget(key.String())
		r.gate.started(key, f.now)
		Rollouts.WithLabelValues(key.Kind).Inc()
		log.Info("rolling out", "note", d.note)
		r.recorder.Eventf(obj, chainRef(f.chains), d.eventType, d.reason, "Rollout", d.note)
		// Without an event the deadline would pass unnoticed.
		return ctrlreconcile.Result{RequeueAfter: r.opts.RolloutDeadline}, nil
	}
	return ctrlreconcile.Result{}, nil
}

// load reads a workload from the cache; obj is nil when it does not exist.
func (r *rolloutReconciler) load(ctx context.Context, key workloadKey) (client.Object, *corev1.PodTemplateSpec, workloadState, error) {
	nn := types.NamespacedName{Namespace: key.Namespace, Name: key.Name}
	var (
		obj   client.Object
		tmpl  *corev1.PodTemplateSpec
		state func() workloadState
	)
	switch key.Kind {
	case kindDeployment:
		d := &appsv1.Deployment{}
		obj, tmpl, state = d, &d.Spec.Template, func() workloadState { return deploymentState(d) }
	case kindStatefulSet:
		s := &appsv1.StatefulSet{}
		obj, tmpl, state = s, &s.Spec.Template, func() workloadState { return statefulSetState(s) }
	case kindDaemonSet:
		d := &appsv1.DaemonSet{}
		obj, tmpl, state = d, &d.Spec.Template, func() workloadState { return daemonSetState(d) }
	default:
		return nil, nil, workloadState{}, nil
	}
	if err := r.client.Get(ctx, nn, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, workloadState{}, nil
		}
		return nil, nil, workloadState{}, err
	}
	return obj, tmpl, state(), nil
}

// podsOf lists the pods a workload controls, through the controller-UID indexes of the cache.
func (r *rolloutReconciler) podsOf(ctx context.Context, key workloadKey, uid types.UID) ([]corev1.Pod, error) {
	owners := []types.UID{uid}
	if key.Kind == kindDeployment {
		sets := replicaSetMetadataList()
		if err := r.client.List(ctx, sets, client.InNamespace(key.Namespace), client.MatchingFields{IndexController: string(uid)}); err != nil {
			return nil, err
		}
		owners = owners[:0]
		for i := range sets.Items {
			owners = append(owners, sets.Items[i].UID)
		}
	}
	var out []corev1.Pod
	for _, owner := range owners {
		var pods corev1.PodList
		if err := r.client.List(ctx, &pods, client.InNamespace(key.Namespace), client.MatchingFields{IndexController: string(owner)}); err != nil {
			return nil, err
		}
		out = append(out, pods.Items...)
	}
	return out, nil
}

// optedOutOfRollout reports whether the workload carries AnnotationRollout=false.
func optedOutOfRollout(obj client.Object) bool {
	v, ok := obj.GetAnnotations()[AnnotationRollout]
	if !ok {
		return false
	}
	b, err := strconv.ParseBool(v)
	return err == nil && !b
}

// patchRestartedAt sets the pod-template annotation with a merge patch: the workload's own
// controller then replaces its pods with its own strategy (maxSurge, maxUnavailable, ...).
func patchRestartedAt(ctx context.Context, c client.Client, obj client.Object, token string) error {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{AnnotationRestartedAt: token},
	}}}})
	if err != nil {
		return err
	}
	return c.Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch))
}

func (r *rolloutReconciler) pendingSince(key workloadKey) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending[key]
}

func (r *rolloutReconciler) markPending(key workloadKey, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.pending[key]; !ok {
		r.pending[key] = now
	}
}

func (r *rolloutReconciler) clearPending(key workloadKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, key)
}

func (r *rolloutReconciler) forget(key workloadKey) {
	r.clearPending(key)
	r.notes.forget(key.String())
}

func unionPorts(a, b []int32) []int32 {
	out := append(append([]int32(nil), a...), b...)
	return compactSorted(out)
}
