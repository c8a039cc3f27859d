// Package webhook is the cors-webhook server: a controller-runtime manager whose webhook server
// serves the admission handlers, backed by the manager's informer cache (read through indexes,
// see CacheReader) as the clusterstate.Reader, plus health probes and Prometheus metrics.
//
// Handlers are thin: they decode the request, call the pure functions of package validate (and
// inject), and translate the result. The validating handlers are mounted in registerHandlers,
// the pod injector in registerPodInjector.
package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/certs"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/reconcile"
	"github.com/cors-webhook/cors-webhook/validate"
)

// Options configure the server. The zero value of each field is its default.
type Options struct {
	// Host and Port are where the webhook server listens (default: all addresses, port 9443).
	Host string
	Port int
	// CertDir holds the serving certificate as tls.crt and tls.key; the files are watched and
	// reloaded when they change (certificate rotation).
	CertDir string
	// EnableHTTP2 serves HTTP/2 as well; off by default because of HTTP/2 stream-reset attacks
	// (CVE-2023-44487, CVE-2023-39325) against servers that do not need it.
	EnableHTTP2 bool

	// MetricsAddr is the bind address of /metrics ("0" disables it; default ":8080").
	MetricsAddr string
	// ProbeAddr is the bind address of /healthz and /readyz ("0" disables them; default ":8081").
	ProbeAddr string

	// LeaderElection elects one replica for the work that needs a single writer (the Day-2
	// reconcilers). Admission is served by every replica regardless.
	LeaderElection bool
	// LeaderElectionNamespace is where the election lease lives (default: the pod's namespace).
	LeaderElectionNamespace string

	// Validation are the settings of package validate (--cors-plugins, --strict).
	Validation validate.Options

	// Injection are the settings of the pod injector (--sidecar-image, ...); its CORS plugins
	// default to Validation's.
	Injection inject.Settings

	// Certs choose the serving certificate's source (--cert-mode and the self-signed mode's
	// flags; package certs). The zero value serves tls.crt/tls.key from CertDir.
	Certs certs.Options

	// Reconcile are the settings of the Day-2 reconciler (package reconcile; --rollout).
	Reconcile reconcile.Options
}

// LeaderElectionID names the lease of the leader election.
const LeaderElectionID = "cors-webhook.cors-webhook.io"

// NewScheme returns the scheme of the server: the built-in kinds and plugin.flomesh.io/v1alpha1.
func NewScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		return nil, err
	}
	if err := v1alpha1.AddToScheme(s); err != nil {
		return nil, err
	}
	return s, nil
}

// NewManager builds the manager: webhook server, metrics and probe endpoints, the informers
// and indexes of the cache, and every admission handler. Start it with mgr.Start.
func NewManager(cfg *rest.Config, opts Options) (manager.Manager, error) {
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	if opts.MetricsAddr == "" {
		opts.MetricsAddr = ":8080"
	}
	if opts.ProbeAddr == "" {
		opts.ProbeAddr = ":8081"
	}
	var tlsOpts []func(*tls.Config)
	if !opts.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	certSource, err := certs.New(opts.Certs)
	if err != nil {
		return nil, err
	}
	tlsOpts = append(tlsOpts, certSource.ConfigureTLS)
	SetServingCertificate(certs.ServingLeaf(certSource, opts.CertDir))
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                  scheme,
		Metrics:                 metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress:  opts.ProbeAddr,
		LeaderElection:          opts.LeaderElection,
		LeaderElectionID:        LeaderElectionID,
		LeaderElectionNamespace: opts.LeaderElectionNamespace,
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host: opts.Host, Port: opts.Port, CertDir: opts.CertDir, TLSOpts: tlsOpts,
		}),
		Cache: cache.Options{
			// The handlers read labels, selectors and specs; managedFields are dead weight
			// in a cluster-wide cache of Services and Namespaces.
			DefaultTransform: cache.TransformStripManagedFields(),
		},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	if err := certSource.Setup(mgr); err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	// Creating the informers now makes them start, and sync, with the cache rather than lazily
	// on the first admission request.
	reader, err := NewCacheReader(context.Background(), mgr.GetCache())
	if err != nil {
		return nil, err
	}
	// One injector, and with it one CORS plugin set, for validation, injection and Day 2.
	injector, err := inject.New(opts.InjectionSettings())
	if err != nil {
		return nil, err
	}
	opts.Validation.Plugins = injector.Selection().Plugins
	opts.Validation.Tenancy = injector.Selection().Tenancy
	RegisterMetrics()
	decoder := admission.NewDecoder(scheme)
	registerHandlers(mgr.GetWebhookServer(), decoder, reader, opts)
	if err := registerPodInjector(mgr, decoder, reader, injector); err != nil {
		return nil, err
	}
	// The Day-2 controllers read the CacheReader itself, which answers from the informer
	// stores, not through the pod injector's chain index, which an informer event handler
	// rebuilds and which could lag behind the event that triggered a reconcile.
	if err := reconcile.Setup(mgr, injector, reader, opts.Reconcile); err != nil {
		return nil, err
	}

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("cache", cacheSynced(reader)); err != nil {
		return nil, err
	}
	return mgr, nil
}

// registerHandlers mounts the validating handler of every kind of validate.Kinds on the
// webhook server.
func registerHandlers(srv ctrlwebhook.Server, decoder admission.Decoder, r clusterstate.Reader, opts Options) {
	for _, kind := range validate.Kinds {
		srv.Register(ValidatePath(kind), &admission.Webhook{Handler: NewValidator(decoder, kind, r, opts.Validation)})
	}
}

// cacheSynced is ready once every informer the Reader uses has synced: before that,
// validation would compare against an incomplete view and could accept conflicts.
func cacheSynced(r *CacheReader) healthz.Checker {
	return func(*http.Request) error {
		if !r.HasSynced() {
			return errors.New("informer cache has not synced yet")
		}
		return nil
	}
}

// Run builds the manager and runs it until ctx is done.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	mgr, err := NewManager(cfg, opts)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}
