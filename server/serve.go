package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/certs"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/validate"
	"github.com/cors-webhook/cors-webhook/webhook"
)

// ServeOptions configure `cors-webhook serve`. The zero value of each field is its default.
type ServeOptions struct {
	// Host and Port are where the webhook server listens (default: all addresses, port 9443).
	Host string
	Port int
	// CertDir holds the serving certificate as tls.crt and tls.key in cert-manager mode; the
	// files are watched and reloaded when they change (certificate rotation).
	CertDir string
	// EnableHTTP2 serves HTTP/2 as well; off by default because of HTTP/2 stream-reset attacks
	// (CVE-2023-44487, CVE-2023-39325) against servers that do not need it.
	EnableHTTP2 bool

	// MetricsAddr is the bind address of /metrics ("0" disables it; default ":8080").
	MetricsAddr string
	// ProbeAddr is the bind address of /healthz and /readyz ("0" disables them; default ":8081").
	ProbeAddr string

	// ShutdownDelay is how long the server keeps serving after it was told to stop, with
	// /readyz failing, so that the endpoints controller and every API server stop sending it
	// requests before its listener closes.
	ShutdownDelay time.Duration

	// Validation are the settings of package validate (--cors-plugins, --strict).
	Validation validate.Options

	// Injection are the settings of the pod injector (--sidecar-image, ...); its CORS plugins
	// default to Validation's.
	Injection inject.Settings

	// MemoAnswers is how many injected pods' answers the pod injector keeps, so that the
	// other replicas of a workload are answered from memory while nothing their injection read
	// has changed (--memo-answers): 0 keeps webhook.DefaultMemoAnswers, a negative number none.
	MemoAnswers int
	// MemoBytes bounds the memory those answers keep (--memo-bytes): 0 keeps
	// webhook.DefaultMemoBytes.
	MemoBytes int

	// Certs choose the serving certificate's source (--cert-mode and its flags; package certs)
	// and the webhook configurations whose caBundle must trust it before the server is ready.
	Certs certs.Options
}

// ReadyzShutdown names the readiness check that fails once the server is shutting down.
const ReadyzShutdown = "shutdown"

// Serve is the admission process: a manager with the webhook server, its cache and probes.
type Serve struct {
	manager.Manager
	delay    time.Duration
	draining atomic.Bool
}

// NewServe builds the admission manager: webhook server, metrics and probe endpoints, the
// informers and indexes admission reads, and every admission handler. No leader election:
// every replica serves alone, so admission does not depend on a lease or on the controller.
func NewServe(cfg *rest.Config, opts ServeOptions) (*Serve, error) {
	scheme, err := clusterstate.NewScheme()
	if err != nil {
		return nil, err
	}
	opts.MetricsAddr, opts.ProbeAddr = endpoints(opts.MetricsAddr, opts.ProbeAddr)
	var tlsOpts []func(*tls.Config)
	if !opts.EnableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	opts.Certs.CertDir = opts.CertDir
	certSource, err := certs.New(opts.Certs)
	if err != nil {
		return nil, err
	}
	tlsOpts = append(tlsOpts, certSource.ConfigureTLS)
	webhook.SetServingCertificate(certs.ServingLeaf(certSource, opts.CertDir))
	mgr, err := manager.New(cfg, manager.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: opts.MetricsAddr},
		HealthProbeBindAddress: opts.ProbeAddr,
		WebhookServer: ctrlwebhook.NewServer(ctrlwebhook.Options{
			Host: opts.Host, Port: opts.Port, CertDir: opts.CertDir, TLSOpts: tlsOpts,
		}),
		Cache: cache.Options{
			// The handlers read labels, selectors and specs; managedFields are dead weight
			// in a cluster-wide cache of Services and Namespaces.
			DefaultTransform: cache.TransformStripManagedFields(),
			// Admission caches only clusterstate.CachedKinds: a read of anything else is a bug
			// that must fail, not a cluster-wide informer started on the first request.
			ReaderFailOnMissingInformer: true,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	s := &Serve{Manager: mgr, delay: opts.ShutdownDelay}
	if err := certs.SetupServing(mgr, certSource, opts.Certs); err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	// Creating the informers now makes them start, and sync, with the cache rather than lazily
	// on the first admission request.
	reader, err := clusterstate.NewCacheReader(context.Background(), mgr.GetCache())
	if err != nil {
		return nil, err
	}
	webhook.RegisterMetrics()
	decoder := admission.NewDecoder(scheme)
	srv := mgr.GetWebhookServer()
	register := func(path string, h admission.Handler) {
		srv.Register(path, s.closeWhenDraining(&admission.Webhook{Handler: h}))
	}
	// One injector, and with it one CORS plugin set, for validation and injection.
	injector, err := inject.New(injectionSettings(opts.Injection, opts.Validation.Plugins.Names()))
	if err != nil {
		return nil, err
	}
	opts.Validation.Plugins = injector.Selection().Plugins
	opts.Validation.Tenancy = injector.Selection().Tenancy
	// One chains.Index, under the injector's rule, for injection and validation alike.
	if err := reader.IndexChains(injector.Selection()); err != nil {
		return nil, err
	}
	for _, kind := range validate.Kinds {
		register(webhook.ValidatePath(kind), webhook.NewValidator(decoder, kind, reader, opts.Validation))
	}
	podInjector, err := newPodInjector(mgr, reader, injector, opts.MemoAnswers, opts.MemoBytes)
	if err != nil {
		return nil, err
	}
	register(webhook.MutatePodPath, podInjector)

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("webhook", srv.StartedChecker()); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("cache", cacheSynced(reader)); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck(ReadyzShutdown, func(*http.Request) error {
		if s.draining.Load() {
			return errors.New("shutting down")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// newPodInjector is the pod injection handler, reading chains through the Reader's index.
func newPodInjector(mgr manager.Manager, r *clusterstate.CacheReader, injector *inject.Injector, memoAnswers, memoBytes int) (*webhook.PodInjector, error) {
	webhook.RegisterInjectionMetrics()
	h := webhook.NewPodInjector(r, injector)
	if memoAnswers != 0 || memoBytes != 0 {
		if memoAnswers == 0 {
			memoAnswers = webhook.DefaultMemoAnswers
		}
		if memoBytes == 0 {
			memoBytes = webhook.DefaultMemoBytes
		}
		h.Memo(memoAnswers, memoBytes)
	}
	h.APIReader = mgr.GetAPIReader()
	h.Recorder = mgr.GetEventRecorder("cors-webhook")
	return h, nil
}

// closeWhenDraining answers with "Connection: close" once the server is shutting down: the API
// servers' keep-alive connections, which a Service or load balancer keeps routing here after
// the endpoint is gone, are closed after their next request and reopened to a ready replica,
// instead of being cut when the listener closes.
func (s *Serve) closeWhenDraining(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}

// cacheSynced is ready once every informer the Reader uses has synced: before that,
// validation would compare against an incomplete view and could accept conflicts.
func cacheSynced(r *clusterstate.CacheReader) healthz.Checker {
	return func(*http.Request) error {
		if !r.HasSynced() {
			return errors.New("informer cache has not synced yet")
		}
		return nil
	}
}

// Run serves until ctx is done, then keeps serving for the shutdown delay with /readyz
// failing (a rolling update or a drain removes the pod from the Service's endpoints while it
// still answers what was already routed to it), then stops: the webhook server finishes the
// requests in flight before the listener closes.
func (s *Serve) Run(ctx context.Context) error {
	mgrCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- s.Start(mgrCtx) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	log := logf.Log.WithName("serve")
	log.Info("shutting down: still serving while endpoints drain", "shutdownDelay", s.delay.String())
	timer := time.NewTimer(s.delay)
	defer timer.Stop()
	select {
	case <-timer.C:
	case err := <-errc:
		return err
	}
	log.Info("shutdown delay over, stopping")
	stop()
	return <-errc
}

// RunServe builds the admission process and runs it until ctx is done (see Serve.Run).
func RunServe(ctx context.Context, cfg *rest.Config, opts ServeOptions) error {
	s, err := NewServe(cfg, opts)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
