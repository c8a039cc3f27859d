package reconcile

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/inject"
)

// Options configure the reconciler. The zero value of each field is its default.
type Options struct {
	// DisableRollout keeps the reconciler from patching workloads (`controller --rollout=false`);
	// the Events on them then say what to do. Policy annotations and statuses stay current.
	DisableRollout bool

	// RollOutdatedSidecars makes the reconciler roll the workloads whose injected pods run a
	// sidecar older than the configured image (`controller --roll-outdated-sidecars`), so an
	// upgrade reaches running pods; rate limits and the settle delay apply as for any rollout.
	RollOutdatedSidecars bool

	// RolloutSettle is how long a needed rollout waits before it happens, so that a burst of
	// changes (a chain and its config applied together, as the seed guide does) rolls a
	// workload once rather than once per object. Default DefaultRolloutSettle.
	RolloutSettle time.Duration

	// RolloutInterval and RolloutBurst rate-limit rollouts cluster-wide: at most RolloutBurst
	// at once, then one per RolloutInterval, so that a chain selecting every namespace does
	// not restart the whole cluster in one go. Defaults DefaultRolloutInterval and
	// DefaultRolloutBurst.
	RolloutInterval time.Duration
	RolloutBurst    int

	// RolloutDeadline is how long a rollout may take to become healthy (all replicas updated
	// and available) before it counts as failed; a Deployment's ProgressDeadlineExceeded fails
	// it sooner. RolloutFailureLimit failed rollouts stop all further rollouts until the
	// controller restarts (see rolloutGate). Defaults DefaultRolloutDeadline and
	// DefaultRolloutFailureLimit.
	RolloutDeadline     time.Duration
	RolloutFailureLimit int

	// PodWorkers is how many pods are reconciled concurrently (policy patches are independent
	// API calls). Default DefaultPodWorkers.
	PodWorkers int

	// StatusDelay batches the status recounts that pod changes cause (a rollout changes many
	// pods in a row). Default DefaultStatusDelay.
	StatusDelay time.Duration

	// AdmissionReady, when set, reports whether the pod webhook answers now; a rollout waits
	// (retrying every AdmissionRetry) while it does not. The pod webhook fails open, so a
	// workload rolled during an admission outage would only trade its pods for new ones that
	// lack the sidecar too, and the rollout for that change would then count as done.
	AdmissionReady func(context.Context) error
	// AdmissionRetry is how often a rollout held back by AdmissionReady tries again. Default
	// DefaultAdmissionRetry.
	AdmissionRetry time.Duration

	// PodSecurityDryRun makes the rollout controller, in init redirect mode, ask the API server
	// with a server-side dry-run create of an injected pod whether Pod Security admission lets
	// it into the namespace before rolling a workload there (`controller
	// --pod-security-dry-run`): a level set by the cluster-wide default, without a namespace
	// label, is then respected. It needs create on pods (see docs/day2.md).
	PodSecurityDryRun bool
	// PodSecurityVerdictTTL is how long a namespace's dry-run verdict is reused. Default
	// DefaultPodSecurityVerdictTTL.
	PodSecurityVerdictTTL time.Duration

	// SkipNameValidation lets several managers in one process register these controllers
	// (tests); see controller-runtime's controller.Options.
	SkipNameValidation bool
}

// Defaults of Options.
const (
	DefaultRolloutSettle   = 5 * time.Second
	DefaultAdmissionRetry  = 5 * time.Second
	DefaultRolloutInterval = time.Second
	DefaultRolloutBurst    = 5
	// DefaultRolloutDeadline is the Deployment's own default progressDeadlineSeconds.
	DefaultRolloutDeadline     = 10 * time.Minute
	DefaultRolloutFailureLimit = 3
	DefaultPodWorkers          = 8
	DefaultStatusDelay         = time.Second
)

func (o Options) withDefaults() Options {
	if o.RolloutSettle <= 0 {
		o.RolloutSettle = DefaultRolloutSettle
	}
	if o.RolloutInterval <= 0 {
		o.RolloutInterval = DefaultRolloutInterval
	}
	if o.RolloutBurst <= 0 {
		o.RolloutBurst = DefaultRolloutBurst
	}
	if o.RolloutDeadline <= 0 {
		o.RolloutDeadline = DefaultRolloutDeadline
	}
	if o.RolloutFailureLimit <= 0 {
		o.RolloutFailureLimit = DefaultRolloutFailureLimit
	}
	if o.PodWorkers <= 0 {
		o.PodWorkers = DefaultPodWorkers
	}
	if o.StatusDelay <= 0 {
		o.StatusDelay = DefaultStatusDelay
	}
	if o.AdmissionRetry <= 0 {
		o.AdmissionRetry = DefaultAdmissionRetry
	}
	if o.PodSecurityVerdictTTL <= 0 {
		o.PodSecurityVerdictTTL = DefaultPodSecurityVerdictTTL
	}
	return o
}

// IndexController is the field index of Pods and ReplicaSets by the UID of their controller
// (ownerReference with controller: true), so that a workload's pods are found without listing
// its namespace: Deployment -> ReplicaSets -> Pods, StatefulSet or DaemonSet -> Pods.
const IndexController = "cors-webhook.io/controller-uid"

// Controller names, as in the controller-runtime metrics and logs.
const (
	ControllerPodPolicy    = "cors-pod-policy"
	ControllerRollout      = "cors-rollout"
	ControllerChainStatus  = "cors-chain-status"
	ControllerConfigStatus = "cors-config-status"
)

var (
	// PolicyPatches counts the policy annotations the reconciler patched on running pods.
	PolicyPatches = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "cors_webhook_reconcile_policy_patches_total",
		Help: "Policy annotations patched on running pods by the Day-2 reconciler.",
	})
	// Rollouts counts the workloads rolled by the reconciler, by kind.
	Rollouts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_reconcile_rollouts_total",
		Help: "Workloads rolled by the Day-2 reconciler so that their pods get the CORS sidecar right.",
	}, []string{"kind"})
	// RolloutFailures counts the rollouts that did not become healthy, by kind.
	RolloutFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_reconcile_rollout_failures_total",
		Help: "Rollouts by the Day-2 reconciler that did not become healthy within their deadline.",
	}, []string{"kind"})
	// RolloutsHalted is 1 once failed rollouts have stopped further rollouts.
	RolloutsHalted = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "cors_webhook_reconcile_rollouts_halted",
		Help: "1 when the Day-2 reconciler has stopped rolling workloads after repeated failed rollouts (restart the controller to resume).",
	})
	// StatusWrites counts the status patches of PluginChains and PluginConfigs, by kind.
	StatusWrites = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "cors_webhook_reconcile_status_writes_total",
		Help: "Status patches of PluginChains and PluginConfigs by the Day-2 reconciler.",
	}, []string{"kind"})

	registerMetrics sync.Once
)

// Setup registers the Day-2 controllers with mgr, before it starts. They read the cluster only
// through mgr's cache: r must be a clusterstate.Reader over that cache (the webhook server's
// CacheReader), and injector the one admission uses, so both compute the same policy.
//
// r should answer from the informer stores directly (not from an index kept by another
// event handler): the controllers run on informer events, and a Reader that lags behind the
// store could let them decide on the state before the event.
func Setup(mgr manager.Manager, injector *inject.Injector, r clusterstate.Reader, opts Options) error {
	opts = opts.withDefaults()
	registerMetrics.Do(func() {
		metrics.Registry.MustRegister(PolicyPatches, Rollouts, RolloutFailures, RolloutsHalted, StatusWrites, PodsMissingSidecar, CNIRepairs, PodSecurityDryRuns)
		for _, v := range []string{verdictAllowed, verdictRefused, verdictUnknown} {
			PodSecurityDryRuns.WithLabelValues(v)
		}
		for _, k := range []string{kindDeployment, kindStatefulSet, kindDaemonSet} {
			Rollouts.WithLabelValues(k)
			RolloutFailures.WithLabelValues(k)
		}
	})
	if err := addIndexes(context.Background(), mgr); err != nil {
		return err
	}
	recorder := mgr.GetEventRecorder("cors-webhook-reconciler")
	rollouts := make(chan event.TypedGenericEvent[workloadKey], 1024)

	pods := &podReconciler{
		client: mgr.GetClient(), reader: r, injector: injector,
		recorder: recorder, rollouts: rollouts, notes: newNoteLog(), missing: newMissingPods(),
		rollOutdated: opts.RollOutdatedSidecars,
	}
	if err := pods.setup(mgr, opts); err != nil {
		return fmt.Errorf("setting up %s: %w", ControllerPodPolicy, err)
	}
	ro := &rolloutReconciler{
		client: mgr.GetClient(), reader: r, injector: injector, recorder: recorder,
		opts:    opts,
		limiter: rate.NewLimiter(rate.Every(opts.RolloutInterval), opts.RolloutBurst),
		pending: map[workloadKey]time.Time{}, notes: newNoteLog(), now: time.Now,
	}
	if opts.PodSecurityDryRun && injector.Settings().RedirectMode != inject.RedirectCNI {
		// CNI mode adds no capability: the label rule (inject.RedirectMode.Uninjectable) is
		// all it needs.
		ro.podSecurity = &podSecurityProbe{client: mgr.GetClient(), verdicts: newVerdictCache(podSecurityVerdictLimit, opts.PodSecurityVerdictTTL), now: time.Now}
	}
	if err := ro.setup(mgr, rollouts, opts); err != nil {
		return fmt.Errorf("setting up %s: %w", ControllerRollout, err)
	}
	st := &statusReconciler{client: mgr.GetClient(), reader: r, injector: injector}
	if err := st.setup(mgr, opts); err != nil {
		return fmt.Errorf("setting up the status controllers: %w", err)
	}
	if injector.Settings().RedirectMode == inject.RedirectCNI {
		// Recreating a pod is a rollout of one: the rollouts' rate limit applies.
		repair := &cniRepair{
			client: mgr.GetClient(), recorder: recorder,
			limiter:  rate.NewLimiter(rate.Every(opts.RolloutInterval), opts.RolloutBurst),
			interval: DefaultCNIRepairInterval, grace: DefaultCNIStartGrace, now: time.Now,
			log: mgr.GetLogger().WithName("cors-cni-repair"),
		}
		if err := mgr.Add(repair); err != nil {
			return fmt.Errorf("setting up the CNI repair: %w", err)
		}
	}
	return nil
}

func addIndexes(ctx context.Context, mgr manager.Manager) error {
	for _, obj := range []client.Object{&corev1.Pod{}, replicaSetMetadata()} {
		if err := mgr.GetFieldIndexer().IndexField(ctx, obj, IndexController, controllerUID); err != nil {
			return fmt.Errorf("indexing %T by controller: %w", obj, err)
		}
	}
	return nil
}

// controllerUID is the IndexController value of an object: its controller's UID.
func controllerUID(o client.Object) []string {
	if ref := metav1.GetControllerOf(o); ref != nil {
		return []string{string(ref.UID)}
	}
	return nil
}

// Kinds of workloads the reconciler rolls.
const (
	kindDeployment  = "Deployment"
	kindStatefulSet = "StatefulSet"
	kindDaemonSet   = "DaemonSet"
	kindReplicaSet  = "ReplicaSet"
)

// workloadKey names a workload: the request type of the rollout controller.
type workloadKey struct {
	Kind, Namespace, Name string
}

func (k workloadKey) String() string { return k.Kind + " " + k.Namespace + "/" + k.Name }

// ref is how kubectl names the workload ("deployment/pipy-ok-v1").
func (k workloadKey) ref() string { return strings.ToLower(k.Kind) + "/" + k.Name }

// isApps reports whether an ownerReference's apiVersion is in the apps group.
func isApps(ref *metav1.OwnerReference) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && gv.Group == appsv1.GroupName
}

// noteLog remembers the last Event emitted per object, so that the same situation is reported
// once, not on every reconcile.
type noteLog struct {
	mu   sync.Mutex
	last map[string]string
}

func newNoteLog() *noteLog { return &noteLog{last: map[string]string{}} }

// first reports whether note is new for key, and remembers it.
func (l *noteLog) first(key, note string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last[key] == note {
		return false
	}
	l.last[key] = note
	return true
}

func (l *noteLog) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.last, key)
}
