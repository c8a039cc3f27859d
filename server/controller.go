package server

import (
	"context"
	"fmt"
	"maps"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/cors-webhook/cors-webhook/certs"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/reconcile"
)

// ControllerOptions configure `cors-webhook controller`. The zero value of each field is its
// default.
type ControllerOptions struct {
	// MetricsAddr is the bind address of /metrics ("0" disables it; default ":8080").
	MetricsAddr string
	// ProbeAddr is the bind address of /healthz and /readyz ("0" disables them; default ":8081").
	ProbeAddr string

	// LeaderElection elects one replica to run the reconcilers and the CA rotation.
	LeaderElection bool
	// LeaderElectionNamespace is where the election lease lives (default: the pod's namespace).
	LeaderElectionNamespace string

	// CORSPlugins are the Plugin names whose PluginConfigs are CORS configs (--cors-plugins),
	// as admission has them.
	CORSPlugins []string
	// Injection are the injector settings admission uses, so that the reconcilers compute the
	// same pod policies (--sidecar-image, ...).
	Injection inject.Settings

	// Certs are the certificate settings; in self-signed mode the leader runs the built-in CA.
	Certs certs.Options

	// Reconcile are the settings of the Day-2 reconcilers (--rollout, ...).
	Reconcile reconcile.Options
}

// NewController builds the controller manager: the reconcilers of package reconcile and, in
// self-signed mode, the certificate rotation, both run by the elected leader only; a
// non-leader replica only keeps its caches warm to take over quickly.
func NewController(cfg *rest.Config, opts ControllerOptions) (manager.Manager, error) {
	scheme, err := clusterstate.NewScheme()
	if err != nil {
		return nil, err
	}
	opts.MetricsAddr, opts.ProbeAddr = endpoints(opts.MetricsAddr, opts.ProbeAddr)
	byObject := map[client.Object]cache.ByObject{}
	maps.Copy(byObject, reconcile.CacheByObject())
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:  opts.ProbeAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		// A stopping leader gives the lease back, so that a rolling update hands over at
		// once instead of after the lease duration.
		LeaderElectionReleaseOnCancel: true,
		Cache: cache.Options{
			DefaultTransform: cache.TransformStripManagedFields(),
			ByObject:         byObject,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := certs.SetupRotation(mgr, opts.Certs); err != nil {
		return nil, fmt.Errorf("certificate rotation: %w", err)
	}
	// The reconcilers read the CacheReader without a chains.Index: it answers from the
	// informer stores (an index, which an informer event handler updates, could lag behind
	// the event that triggered a reconcile).
	reader, err := clusterstate.NewCacheReader(context.Background(), mgr.GetCache())
	if err != nil {
		return nil, err
	}
	injector, err := inject.New(injectionSettings(opts.Injection, opts.CORSPlugins))
	if err != nil {
		return nil, err
	}
	if name := opts.Certs.MutatingWebhookConfiguration; name != "" && opts.Reconcile.AdmissionReady == nil {
		opts.Reconcile.AdmissionReady = admissionProbe(mgr.GetAPIReader(), name)
	}
	if err := reconcile.Setup(mgr, injector, reader, opts.Reconcile); err != nil {
		return nil, err
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("cache", cacheSynced(reader)); err != nil {
		return nil, err
	}
	return mgr, nil
}

// RunController builds the controller and runs it until ctx is done.
func RunController(ctx context.Context, cfg *rest.Config, opts ControllerOptions) error {
	mgr, err := NewController(cfg, opts)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}
