package reconcile

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	ctrlreconcile "sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
)

// podReconciler keeps the policy annotation of every injected pod in step, and hands the pods
// that need replacing to the rollout controller.
type podReconciler struct {
	client   client.Client
	reader   clusterstate.Reader
	injector *inject.Injector
	recorder events.EventRecorder
	rollouts chan<- event.TypedGenericEvent[workloadKey]
	notes    *noteLog
	missing  *missingPods
	// rollOutdated is Options.RollOutdatedSidecars.
	rollOutdated bool
}

func (r *podReconciler) setup(mgr manager.Manager, opts Options) error {
	m := &mapper{client: r.client, reader: r.reader, selection: r.injector.Selection()}
	return builder.ControllerManagedBy(mgr).
		Named(ControllerPodPolicy).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.PodWorkers, SkipNameValidation: &opts.SkipNameValidation}).
		// Pod status changes (the kubelet's) do not matter; labels and annotations do.
		For(&corev1.Pod{}, builder.WithPredicates(predicate.Or(predicate.LabelChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		// Status writes (ours) do not change a generation, so they trigger nothing here.
		Watches(&v1alpha1.PluginChain{}, handler.EnqueueRequestsFromMapFunc(m.podsOfChain),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.PluginConfig{}, handler.EnqueueRequestsFromMapFunc(m.injectedPodsInNamespace),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&v1alpha1.Plugin{}, handler.EnqueueRequestsFromMapFunc(m.podsOfPlugin),
			builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(m.injectedPodsInNamespace),
			builder.WithPredicates(serviceRoutingChanged())).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(m.podsOfNamespace),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Complete(r)
}

// serviceRoutingChanged passes Service events that can change which pods a Service selects or
// which ports it sends to, and drops the rest (status, unrelated metadata).
func serviceRoutingChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		o, ok1 := e.ObjectOld.(*corev1.Service)
		n, ok2 := e.ObjectNew.(*corev1.Service)
		if !ok1 || !ok2 {
			return true
		}
		return !equality.Semantic.DeepEqual(o.Spec.Selector, n.Spec.Selector) || !equality.Semantic.DeepEqual(o.Spec.Ports, n.Spec.Ports)
	}}
}

// Reconcile implements reconcile.Reconciler for one pod.
func (r *podReconciler) Reconcile(ctx context.Context, req ctrlreconcile.Request) (ctrlreconcile.Result, error) {
	pod := &corev1.Pod{}
	if err := r.client.Get(ctx, req.NamespacedName, pod); err != nil {
		if apierrors.IsNotFound(err) {
			r.missing.set(req.NamespacedName, false)
			r.notes.forget(req.String())
			r.notes.forget(req.String() + "/policy")
			return ctrlreconcile.Result{}, nil
		}
		return ctrlreconcile.Result{}, err
	}
	if !active(pod) {
		r.missing.set(req.NamespacedName, false)
		return ctrlreconcile.Result{}, nil
	}
	ns, err := r.reader.Namespace(pod.Namespace)
	if err != nil || ns == nil {
		return ctrlreconcile.Result{}, err
	}
	res, err := r.injector.Resolve(pod, ns, r.reader)
	if err != nil {
		return ctrlreconcile.Result{}, err
	}
	plan := planPod(factsOf(pod, ns, r.injector.Settings().RedirectMode), res)
	r.missing.set(req.NamespacedName, plan.roll == rollNotInjected)
	if r.rollOutdated && plan.roll == rollNone && outdatedSidecar(pod, res, r.injector) {
		plan.roll = rollOutdatedSidecar
	}
	if plan.patch {
		if err := patchPolicy(ctx, r.client, pod, plan.policy); err != nil {
			return ctrlreconcile.Result{}, client.IgnoreNotFound(err)
		}
		logf.FromContext(ctx).V(1).Info("policy annotation updated", "selected", res.Selected, "chains", res.Chains)
	}
	if plan.tooLarge != "" && r.notes.first(req.String()+"/policy", plan.tooLarge) {
		r.recorder.Eventf(pod, chainRef(res.Chains), corev1.EventTypeWarning, ReasonPolicyTooLarge, "PatchPolicy",
			"the policy of this pod changed, but it is not updated: %s; its sidecar keeps the previous policy", plan.tooLarge)
	}
	if plan.roll == rollNone {
		r.notes.forget(req.String())
		return ctrlreconcile.Result{}, nil
	}
	key, why, err := workloadOf(ctx, r.client, pod)
	if err != nil {
		return ctrlreconcile.Result{}, err
	}
	if why == "" {
		select {
		case r.rollouts <- event.TypedGenericEvent[workloadKey]{Object: key}:
		case <-ctx.Done():
			return ctrlreconcile.Result{}, ctx.Err()
		}
		return ctrlreconcile.Result{}, nil
	}
	// Nothing replaces this pod for us: say so, once per situation.
	note := fmt.Sprintf("PluginChain %s selects this pod, but %s; %s, so it must be deleted and recreated to get it",
		strings.Join(res.Chains, ", "), plan.describe(), why)
	if r.notes.first(req.String(), note) {
		r.recorder.Eventf(pod, chainRef(res.Chains), corev1.EventTypeWarning, ReasonRecreatePod, "Recreate", note)
	}
	return ctrlreconcile.Result{}, nil
}

// describe says what is wrong with a pod that needs replacing.
func (p podPlan) describe() string {
	switch p.roll {
	case rollNotInjected:
		return "it was created without the CORS sidecar"
	case rollMissingPorts:
		return fmt.Sprintf("its policy now configures port %s, which its cors-init did not redirect", contract.FormatPorts(p.missing))
	case rollOutdatedSidecar:
		return "it runs an older sidecar than the configured image"
	}
	return "nothing"
}

// active: the pod runs or will run; terminating and finished pods are left alone.
func active(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed
}

// patchPolicy sets the policy annotation with a merge patch that touches nothing else.
func patchPolicy(ctx context.Context, c client.Client, pod *corev1.Pod, policy string) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{contract.AnnotationPolicy: policy},
	}})
	if err != nil {
		return err
	}
	if err := c.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return err
	}
	PolicyPatches.Inc()
	return nil
}

// workloadOf finds the Deployment, StatefulSet or DaemonSet that controls pod (walking
// ReplicaSet -> Deployment through the cache). When there is none, why says what controls the
// pod instead, for the Event.
func workloadOf(ctx context.Context, c client.Client, pod *corev1.Pod) (workloadKey, string, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return workloadKey{}, "no controller manages it (a bare pod)", nil
	}
	if !isApps(ref) {
		return workloadKey{}, fmt.Sprintf("its controller %s %s is not a Deployment, StatefulSet or DaemonSet", ref.Kind, ref.Name), nil
	}
	switch ref.Kind {
	case kindStatefulSet, kindDaemonSet:
		return workloadKey{Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}, "", nil
	case kindReplicaSet:
		rs := replicaSetMetadata()
		if err := c.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, rs); err != nil {
			// The cache may not have the ReplicaSet yet: retry with backoff.
			return workloadKey{}, "", fmt.Errorf("reading the pod's ReplicaSet %s: %w", ref.Name, err)
		}
		if rs.UID != ref.UID {
			return workloadKey{}, "", fmt.Errorf("ReplicaSet %s in the cache is not the pod's (uid %s, want %s)", ref.Name, rs.UID, ref.UID)
		}
		if dref := metav1.GetControllerOf(rs); dref != nil && isApps(dref) && dref.Kind == kindDeployment {
			return workloadKey{Kind: kindDeployment, Namespace: pod.Namespace, Name: dref.Name}, "", nil
		}
		return workloadKey{}, fmt.Sprintf("its ReplicaSet %s belongs to no Deployment (a ReplicaSet does not replace running pods when its template changes)", rs.Name), nil
	}
	return workloadKey{}, fmt.Sprintf("its controller %s %s is not a Deployment, StatefulSet or DaemonSet", ref.Kind, ref.Name), nil
}

// chainRef is the first chain of a list ("namespace/name"), as the related object of an
// Event; nil when there is none.
func chainRef(chains []string) runtime.Object {
	if len(chains) == 0 {
		return nil
	}
	ns, name, _ := strings.Cut(chains[0], "/")
	return &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "PluginChain"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
	}
}

// mapper turns changes of the objects a pod's policy depends on into the pods (or other
// objects) to look at again, reading the cache.
type mapper struct {
	client    client.Client
	reader    clusterstate.Reader
	selection chains.Selection
}

// podsOfChain: the pods a PluginChain's selectors match (for an update, controller-runtime
// calls it with the old and the new chain, so pods it no longer selects are included).
func (m *mapper) podsOfChain(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	c, ok := o.(*v1alpha1.PluginChain)
	if !ok {
		return nil
	}
	namespaces, sel := chainScope(m.selection, c, m.reader)
	var out []ctrlreconcile.Request
	for _, ns := range namespaces {
		out = append(out, m.pods(ctx, ns, sel)...)
	}
	return out
}

// podsOfPlugin: the pods of every chain that mounts the plugin (declaring or deleting a Plugin
// turns those chains on or off).
func (m *mapper) podsOfPlugin(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	var out []ctrlreconcile.Request
	for _, c := range m.chainsMounting(ctx, o.GetName()) {
		out = append(out, m.podsOfChain(ctx, c)...)
	}
	return out
}

// chainsMounting lists the chains that mount plugin in inbound-http.
func (m *mapper) chainsMounting(ctx context.Context, plugin string) []*v1alpha1.PluginChain {
	var list v1alpha1.PluginChainList
	if err := m.client.List(ctx, &list); err != nil {
		logf.FromContext(ctx).Error(err, "listing PluginChains")
		return nil
	}
	var out []*v1alpha1.PluginChain
	for i := range list.Items {
		if slices.Contains(m.selection.Plugins.InboundHTTP(&list.Items[i]), plugin) {
			out = append(out, &list.Items[i])
		}
	}
	return out
}

// injectedPodsInNamespace: PluginConfigs and Services change the policy of the injected pods of
// their namespace only (pods without the sidecar are rolled because of a chain, not of them).
func (m *mapper) injectedPodsInNamespace(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	return m.pods(ctx, o.GetNamespace(), labels.SelectorFromSet(labels.Set{contract.LabelInjected: "true"}))
}

// podsOfNamespace: a namespace's labels decide which chains reach its pods.
func (m *mapper) podsOfNamespace(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	return m.pods(ctx, o.GetName(), labels.Everything())
}

func (m *mapper) pods(ctx context.Context, namespace string, sel labels.Selector) []ctrlreconcile.Request {
	var pods corev1.PodList
	if err := m.client.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "listing pods", "namespace", namespace)
		return nil
	}
	out := make([]ctrlreconcile.Request, 0, len(pods.Items))
	for i := range pods.Items {
		out = append(out, ctrlreconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: pods.Items[i].Name}})
	}
	return out
}

// chainScope is what a chain's selectors reach, by the rule of package chains: the namespaces
// and the pod selector to list its pods with in each. Invalid selectors select nothing.
func chainScope(sel chains.Selection, c *v1alpha1.PluginChain, r clusterstate.Reader) ([]string, labels.Selector) {
	compiled, ok := sel.Compile(c)
	if !ok {
		return nil, labels.Nothing()
	}
	var all []*corev1.Namespace
	if compiled.OwnNamespaceOnly() {
		// Its namespaceSelector, if any, still decides whether it selects its own namespace.
		ns, err := r.Namespace(c.Namespace)
		if err != nil {
			return nil, labels.Nothing()
		}
		if ns != nil {
			all = []*corev1.Namespace{ns}
		}
	} else {
		var err error
		if all, err = r.Namespaces(); err != nil {
			return nil, labels.Nothing()
		}
	}
	return compiled.Namespaces(all), compiled.PodSelector()
}
