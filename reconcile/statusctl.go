package reconcile

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/workqueue"
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
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/inject"
)

// statusReconciler observes PluginChains and PluginConfigs in the cache and writes what they
// do now into their status (chainStatus, configStatus).
type statusReconciler struct {
	client   client.Client
	reader   clusterstate.Reader
	injector *inject.Injector
}

func (s *statusReconciler) setup(mgr manager.Manager, opts Options) error {
	m := &mapper{client: s.client, reader: s.reader, selection: s.injector.Selection()}
	ctrlOpts := controller.Options{SkipNameValidation: &opts.SkipNameValidation}
	// Our own status writes change no generation, so they do not come back as work.
	generation := builder.WithPredicates(predicate.GenerationChangedPredicate{})
	podLabels := builder.WithPredicates(predicate.LabelChangedPredicate{})
	nsLabels := builder.WithPredicates(predicate.LabelChangedPredicate{})

	err := builder.ControllerManagedBy(mgr).
		Named(ControllerChainStatus).
		WithOptions(ctrlOpts).
		For(&v1alpha1.PluginChain{}, generation).
		Watches(&corev1.Pod{}, delayed(opts.StatusDelay, s.chainsOfPod), podLabels).
		Watches(&v1alpha1.Plugin{}, handler.EnqueueRequestsFromMapFunc(s.chainsOfPlugin(m)), generation).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(s.chainsOfNamespace), nsLabels).
		Complete(ctrlreconcile.Func(s.reconcileChain))
	if err != nil {
		return err
	}
	return builder.ControllerManagedBy(mgr).
		Named(ControllerConfigStatus).
		WithOptions(ctrlOpts).
		For(&v1alpha1.PluginConfig{}, generation).
		Watches(&corev1.Pod{}, delayed(opts.StatusDelay, s.configsOfPod), podLabels).
		Watches(&corev1.Service{}, handler.EnqueueRequestsFromMapFunc(s.configsOfService), builder.WithPredicates(serviceRoutingChanged())).
		Watches(&v1alpha1.PluginChain{}, handler.EnqueueRequestsFromMapFunc(s.configsOfChain), generation).
		Watches(&v1alpha1.Plugin{}, handler.EnqueueRequestsFromMapFunc(s.configsOfPlugin), generation).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(s.configsOfNamespace), nsLabels).
		Complete(ctrlreconcile.Func(s.reconcileConfig))
}

// delayed enqueues what fn maps an object to after delay, so that a burst of pod changes (a
// rollout) costs one recount rather than one per pod.
func delayed(delay time.Duration, fn handler.MapFunc) handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[ctrlreconcile.Request]
	enqueue := func(ctx context.Context, q queue, objs ...client.Object) {
		for _, o := range objs {
			if o == nil {
				continue
			}
			for _, req := range fn(ctx, o) {
				q.AddAfter(req, delay)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q queue) { enqueue(ctx, q, e.Object) },
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q queue) { enqueue(ctx, q, e.ObjectOld, e.ObjectNew) },
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q queue) { enqueue(ctx, q, e.Object) },
	}
}

func (s *statusReconciler) corsPlugins() []string { return s.injector.Selection().Plugins.Names() }

func (s *statusReconciler) isCORS(plugin string) bool {
	return s.injector.Selection().Plugins.Has(plugin)
}

// reconcileChain observes one PluginChain and writes its status.
func (s *statusReconciler) reconcileChain(ctx context.Context, req ctrlreconcile.Request) (ctrlreconcile.Result, error) {
	chain := &v1alpha1.PluginChain{}
	if err := s.client.Get(ctx, req.NamespacedName, chain); err != nil {
		return ctrlreconcile.Result{}, client.IgnoreNotFound(err)
	}
	if chain.DeletionTimestamp != nil {
		return ctrlreconcile.Result{}, nil
	}
	o, err := s.observeChain(ctx, chain)
	if err != nil {
		return ctrlreconcile.Result{}, err
	}
	return ctrlreconcile.Result{}, writeStatus(ctx, s.client, chain, chain.Status, chainStatus(o))
}

func (s *statusReconciler) observeChain(ctx context.Context, chain *v1alpha1.PluginChain) (chainObservation, error) {
	o := chainObservation{serverPlugins: s.corsPlugins()}
	for _, p := range s.injector.Selection().Plugins.InboundHTTP(chain) {
		o.corsPlugins = append(o.corsPlugins, p)
		plugin, err := s.reader.Plugin(p)
		if err != nil {
			return o, err
		}
		if plugin == nil {
			o.undeclared = append(o.undeclared, p)
		}
	}
	o.invalid = selectorError(chain)
	chainNS, err := s.reader.Namespace(chain.Namespace)
	if err != nil {
		return o, err
	}
	o.ignored = s.injector.Selection().IgnoresIn(chain, chainNS)
	if len(o.corsPlugins) == 0 || len(o.undeclared) == len(o.corsPlugins) || o.invalid != "" || o.ignored {
		return o, nil
	}
	namespaces, sel := chainScope(s.injector.Selection(), chain, s.reader)
	o.namespaces = namespaces
	for _, name := range namespaces {
		ns, err := s.reader.Namespace(name)
		if err != nil {
			return o, err
		}
		var pods corev1.PodList
		if err := s.client.List(ctx, &pods, client.InNamespace(name), client.MatchingLabelsSelector{Selector: sel}, client.UnsafeDisableDeepCopy); err != nil {
			return o, err
		}
		found := false
		for i := range pods.Items {
			pod := &pods.Items[i]
			if !active(pod) {
				continue
			}
			found = true
			o.selected++
			switch f := factsOf(pod, ns, s.injector.Settings().RedirectMode); {
			case f.injected:
				o.injected++
			case f.optedOut:
				o.optedOut++
			case f.never != "":
				if o.never == nil {
					o.never = map[inject.Outcome]int{}
				}
				o.never[f.never]++
			}
		}
		if found {
			o.podNamespaces = append(o.podNamespaces, name)
		}
	}
	return o, nil
}

// namedServices returns the Services cfg names (PluginConfig.NamesService), each once, and
// records them and the missing ones in o.
func (s *statusReconciler) namedServices(cfg *v1alpha1.PluginConfig, o *configObservation) ([]*corev1.Service, error) {
	var services []*corev1.Service
	for _, ref := range cfg.Spec.DestinationRefs {
		if ref.Name == "" || !cfg.NamesService(ref.Name) || slices.Contains(o.services, ref.Name) {
			continue // the validating webhook refuses the others; they name nothing here
		}
		svc, err := s.reader.Service(cfg.Namespace, ref.Name)
		if err != nil {
			return nil, err
		}
		if svc == nil {
			if !slices.Contains(o.missing, "Service "+ref.Name) {
				o.missing = append(o.missing, "Service "+ref.Name)
			}
			continue
		}
		o.services = append(o.services, svc.Name)
		services = append(services, svc)
	}
	return services, nil
}

// observeBackingPod records in o what cfg does for pod, a pod of one of its Services.
func (s *statusReconciler) observeBackingPod(pod *corev1.Pod, ns *corev1.Namespace, cfg *v1alpha1.PluginConfig, o *configObservation) error {
	o.backing++
	f := factsOf(pod, ns, s.injector.Settings().RedirectMode)
	if f.optedOut || (f.never != "" && !f.injected) {
		o.optedOut++
		return nil
	}
	res, err := s.injector.Resolve(pod, ns, s.reader)
	if err != nil {
		return err
	}
	if !res.Selected || !slices.Contains(res.Plugins, cfg.Spec.Plugin) {
		o.notSelected++
		return nil
	}
	ports := res.AppliedPorts(cfg.Namespace, cfg.Name)
	switch {
	case len(ports) == 0 && len(res.OverriddenPorts(cfg.Namespace, cfg.Name)) > 0:
		o.overridden++
	case len(ports) == 0:
		o.noPort++
	case f.injected:
		o.applied++
		o.ports = unionPorts(o.ports, ports)
	default:
		o.waiting++
	}
	return nil
}

// selectorError is why a chain's selectors do not parse ("" when they do).
func selectorError(c *v1alpha1.PluginChain) string {
	var errs []string
	for _, s := range []struct {
		name string
		sel  *metav1.LabelSelector
	}{{"podSelector", c.Spec.Selectors.PodSelector}, {"namespaceSelector", c.Spec.Selectors.NamespaceSelector}} {
		if s.sel == nil {
			continue
		}
		if _, err := metav1.LabelSelectorAsSelector(s.sel); err != nil {
			errs = append(errs, "spec.selectors."+s.name+": "+err.Error())
		}
	}
	return strings.Join(errs, "; ")
}

// reconcileConfig observes one PluginConfig and writes its status.
func (s *statusReconciler) reconcileConfig(ctx context.Context, req ctrlreconcile.Request) (ctrlreconcile.Result, error) {
	cfg := &v1alpha1.PluginConfig{}
	if err := s.client.Get(ctx, req.NamespacedName, cfg); err != nil {
		return ctrlreconcile.Result{}, client.IgnoreNotFound(err)
	}
	if cfg.DeletionTimestamp != nil {
		return ctrlreconcile.Result{}, nil
	}
	o, err := s.observeConfig(ctx, cfg)
	if err != nil {
		return ctrlreconcile.Result{}, err
	}
	return ctrlreconcile.Result{}, writeStatus(ctx, s.client, cfg, cfg.Status, configStatus(cfg.Spec.Plugin, o))
}

func (s *statusReconciler) observeConfig(ctx context.Context, cfg *v1alpha1.PluginConfig) (configObservation, error) {
	o := configObservation{serverPlugins: s.corsPlugins(), corsPlugin: s.isCORS(cfg.Spec.Plugin)}
	if !o.corsPlugin {
		return o, nil
	}
	plugin, err := s.reader.Plugin(cfg.Spec.Plugin)
	if err != nil {
		return o, err
	}
	if o.declared = plugin != nil; !o.declared {
		return o, nil
	}
	if o.invalid = configError(cfg); o.invalid != "" {
		return o, nil
	}
	services, err := s.namedServices(cfg, &o)
	if err != nil {
		return o, err
	}
	ns, err := s.reader.Namespace(cfg.Namespace)
	if err != nil || ns == nil {
		return o, err
	}
	seen := map[string]bool{}
	for _, svc := range services {
		if len(svc.Spec.Selector) == 0 {
			continue
		}
		var pods corev1.PodList
		if err := s.client.List(ctx, &pods, client.InNamespace(cfg.Namespace), client.MatchingLabels(svc.Spec.Selector), client.UnsafeDisableDeepCopy); err != nil {
			return o, err
		}
		for i := range pods.Items {
			pod := &pods.Items[i]
			if !active(pod) || seen[pod.Name] {
				continue
			}
			seen[pod.Name] = true
			if err := s.observeBackingPod(pod, ns, cfg, &o); err != nil {
				return o, err
			}
		}
	}
	return o, nil
}

// configError is why a PluginConfig's CORS config is invalid ("" when it is valid).
func configError(cfg *v1alpha1.PluginConfig) string {
	if _, errs := cors.CompileRaw(cfg.Spec.Config.Raw, field.NewPath("spec", "config")); len(errs) > 0 {
		return errs.ToAggregate().Error()
	}
	return ""
}

// writeStatus patches status.currentStatus and status.reason when they differ from want, and
// only then: an unchanged status is never written, so status writes cannot loop.
func writeStatus(ctx context.Context, c client.Client, obj client.Object, current, want v1alpha1.PluginStatus) error {
	if current == want {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"status": map[string]string{
		"currentStatus": want.CurrentStatus, "reason": want.Reason,
	}})
	if err != nil {
		return err
	}
	if err := c.Status().Patch(ctx, obj, client.RawPatch(types.MergePatchType, patch)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	kind := "PluginChain"
	if _, ok := obj.(*v1alpha1.PluginConfig); ok {
		kind = "PluginConfig"
	}
	StatusWrites.WithLabelValues(kind).Inc()
	logf.FromContext(ctx).V(1).Info("status written", "currentStatus", want.CurrentStatus, "reason", want.Reason)
	return nil
}

// chainsOfPod: the CORS chains whose selectors match the pod.
func (s *statusReconciler) chainsOfPod(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	ns, err := s.reader.Namespace(o.GetNamespace())
	if err != nil || ns == nil {
		return nil
	}
	candidates, err := s.injector.Selection().Candidates(s.reader, ns.Name)
	if err != nil {
		logf.FromContext(ctx).Error(err, "listing PluginChains")
		return nil
	}
	var out []ctrlreconcile.Request
	for _, c := range candidates {
		if !s.injector.Selection().Acts(c, o.GetLabels(), ns) {
			continue
		}
		out = append(out, requestFor(c))
	}
	return out
}

func (s *statusReconciler) chainsOfPlugin(m *mapper) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []ctrlreconcile.Request {
		var out []ctrlreconcile.Request
		for _, c := range m.chainsMounting(ctx, o.GetName()) {
			out = append(out, requestFor(c))
		}
		return out
	}
}

// chainsOfNamespace: the chains whose reach a namespace's labels can change.
func (s *statusReconciler) chainsOfNamespace(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	candidates, err := s.injector.Selection().Candidates(s.reader, o.GetName())
	if err != nil {
		return nil
	}
	var out []ctrlreconcile.Request
	for _, c := range candidates {
		out = append(out, requestFor(c))
	}
	return out
}

// configsOfPod: the CORS PluginConfigs of the pod's namespace.
func (s *statusReconciler) configsOfPod(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	return s.configsIn(o.GetNamespace(), s.corsPlugins())
}

func (s *statusReconciler) configsOfNamespace(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	return s.configsIn(o.GetName(), s.corsPlugins())
}

func (s *statusReconciler) configsIn(namespace string, plugins []string) []ctrlreconcile.Request {
	var out []ctrlreconcile.Request
	for _, p := range plugins {
		configs, err := s.reader.PluginConfigsForPlugin(namespace, p)
		if err != nil {
			return out
		}
		for _, c := range configs {
			out = append(out, requestFor(c))
		}
	}
	return out
}

func (s *statusReconciler) configsOfService(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	configs, err := s.reader.PluginConfigsForService(o.GetNamespace(), o.GetName())
	if err != nil {
		return nil
	}
	out := make([]ctrlreconcile.Request, 0, len(configs))
	for _, c := range configs {
		out = append(out, requestFor(c))
	}
	return out
}

// configsOfChain: the configs of the chain's CORS plugins in the namespaces it reaches.
func (s *statusReconciler) configsOfChain(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	c, ok := o.(*v1alpha1.PluginChain)
	if !ok {
		return nil
	}
	plugins := s.injector.Selection().Plugins.InboundHTTP(c)
	if len(plugins) == 0 {
		return nil
	}
	namespaces, _ := chainScope(s.injector.Selection(), c, s.reader)
	var out []ctrlreconcile.Request
	for _, ns := range namespaces {
		out = append(out, s.configsIn(ns, plugins)...)
	}
	return out
}

func (s *statusReconciler) configsOfPlugin(ctx context.Context, o client.Object) []ctrlreconcile.Request {
	var list v1alpha1.PluginConfigList
	if err := s.client.List(ctx, &list); err != nil {
		return nil
	}
	var out []ctrlreconcile.Request
	for i := range list.Items {
		if list.Items[i].Spec.Plugin == o.GetName() {
			out = append(out, requestFor(&list.Items[i]))
		}
	}
	return out
}

func requestFor(o client.Object) ctrlreconcile.Request {
	return ctrlreconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}}
}
