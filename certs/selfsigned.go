package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// FieldOwner is the field manager of the Secret and caBundle writes.
const FieldOwner = "cors-webhook-certs"

// SelfSigned is the self-signed mode's Source. Every serve replica serves the certificate of the
// one Secret, watched through an informer restricted to that Secret's name (so the service
// account needs no list access to other Secrets); the controller's leader keeps the Secret's
// content and the webhook configurations' caBundle current (SetupRotation).
type SelfSigned struct {
	opts  Options
	hosts []string
	log   logr.Logger
	now   func() time.Time

	current atomic.Pointer[tls.Certificate]
	kick    chan struct{}
	cache   cache.Cache
}

var _ Source = (*SelfSigned)(nil)

// NewSelfSigned returns the self-signed source; Setup adds it to a manager.
func NewSelfSigned(o Options) (*SelfSigned, error) {
	if err := o.Complete(); err != nil {
		return nil, err
	}
	if o.Mode != ModeSelfSigned {
		return nil, fmt.Errorf("NewSelfSigned with mode %q", o.Mode)
	}
	return &SelfSigned{
		opts:  o,
		hosts: o.CertHosts(),
		log:   logf.Log.WithName("certs").WithValues("secret", o.SecretNamespace+"/"+o.SecretName),
		now:   time.Now,
		kick:  make(chan struct{}, 1),
	}, nil
}

// ConfigureTLS makes the webhook server serve the Secret's current certificate, TLS 1.2 at least.
func (s *SelfSigned) ConfigureTLS(c *tls.Config) {
	MinTLS12(c)
	c.GetCertificate = s.GetCertificate
}

// GetCertificate returns the certificate last loaded from the Secret. A handshake picks up a
// rotation as soon as the informer has seen it.
func (s *SelfSigned) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if c := s.current.Load(); c != nil {
		return c, nil
	}
	return nil, errors.New("no serving certificate yet: waiting for Secret " + s.opts.SecretNamespace + "/" + s.opts.SecretName)
}

// ServingCertificate implements Source.
func (s *SelfSigned) ServingCertificate() (*x509.Certificate, error) {
	c, err := s.GetCertificate(nil)
	if err != nil {
		return nil, err
	}
	return c.Leaf, nil
}

// watchSecret feeds the served certificate from the Secret's informer in c, and wakes the
// rotator (if any) on every change.
func (s *SelfSigned) watchSecret(c cache.Cache) error {
	inf, err := c.GetInformer(context.Background(), &corev1.Secret{})
	if err != nil {
		return fmt.Errorf("informer of the certificate Secret: %w", err)
	}
	_, err = inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { s.load(obj); s.trigger() },
		UpdateFunc: func(_, obj any) { s.load(obj); s.trigger() },
		// A deleted Secret keeps the last certificate served; the leader recreates it.
		DeleteFunc: func(any) { s.trigger() },
	})
	return err
}

// replicaCache puts a cache in the manager's cache group: started in every replica, first.
type replicaCache struct{ cache.Cache }

func (c replicaCache) GetCache() cache.Cache { return c.Cache }

// load serves the Secret's certificate when it holds a valid key pair.
func (s *SelfSigned) load(obj any) {
	secret, ok := obj.(*corev1.Secret)
	if !ok {
		return
	}
	certPEM, keyPEM := secret.Data[KeyTLSCert], secret.Data[KeyTLSKey]
	if len(certPEM) == 0 {
		return
	}
	if cur := s.current.Load(); cur != nil && len(cur.Certificate) > 0 {
		if leaf := parseCerts(certPEM); len(leaf) > 0 && bytes.Equal(leaf[0].Raw, cur.Certificate[0]) {
			return
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		s.log.Error(err, "the Secret's serving certificate is unusable; still serving the previous one")
		return
	}
	s.current.Store(&pair)
	s.log.Info("serving certificate loaded", "serial", pair.Leaf.SerialNumber.Text(16),
		"notAfter", pair.Leaf.NotAfter.Format(time.RFC3339), "sha256", Fingerprint(pair.Leaf))
}

func (s *SelfSigned) trigger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// resync bounds the time between two passes of the leader.
const resync = 10 * time.Minute

// rotator is the leader's loop: it keeps the Secret and the caBundles current, waking on changes
// of the Secret or of the webhook configurations, at the next renewal time, and after errors.
type rotator struct {
	s      *SelfSigned
	reader client.Reader
	writer client.Client
}

// NeedLeaderElection makes only the leader write: replicas racing to create a CA would each
// invalidate the others' certificates.
func (*rotator) NeedLeaderElection() bool { return true }

func (r *rotator) Start(ctx context.Context) error {
	s := r.s
	// The webhook configurations are watched only by the leader, for repairs: a `helm upgrade`
	// or a `kubectl apply` may reset caBundle.
	var watched []client.Object
	if s.opts.MutatingWebhookConfiguration != "" {
		watched = append(watched, &admissionregistrationv1.MutatingWebhookConfiguration{})
	}
	if s.opts.ValidatingWebhookConfiguration != "" {
		watched = append(watched, &admissionregistrationv1.ValidatingWebhookConfiguration{})
	}
	for _, obj := range watched {
		inf, err := s.cache.GetInformer(ctx, obj)
		if err != nil {
			return fmt.Errorf("informer of %T: %w", obj, err)
		}
		h := toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(any) { s.trigger() },
			UpdateFunc: func(any, any) { s.trigger() },
		}
		if _, err := inf.AddEventHandler(h); err != nil {
			return err
		}
	}
	s.log.Info("keeping the webhook certificate as leader", "hosts", s.hosts)
	backoff := time.Duration(0)
	for {
		next, err := r.reconcile(ctx)
		var wait time.Duration
		if err != nil {
			backoff = min(max(2*backoff, 500*time.Millisecond), 30*time.Second)
			wait = backoff
			s.log.Error(err, "keeping the webhook certificate", "retryIn", wait)
		} else {
			backoff = 0
			// A periodic pass as well, in case an event was missed.
			wait = min(max(next.Sub(s.now()), 0), resync)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-s.kick:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// reconcile does one pass: read the Secret, write it when the plan changes it, then make every
// caBundle equal to its CA bundle. It returns when to look again.
func (r *rotator) reconcile(ctx context.Context) (time.Time, error) {
	s := r.s
	key := client.ObjectKey{Namespace: s.opts.SecretNamespace, Name: s.opts.SecretName}
	secret := &corev1.Secret{}
	exists := true
	if err := r.reader.Get(ctx, key, secret); apierrors.IsNotFound(err) {
		exists = false
		secret = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{"app.kubernetes.io/managed-by": "cors-webhook"},
		}, Type: corev1.SecretTypeOpaque}
	} else if err != nil {
		return time.Time{}, fmt.Errorf("get Secret %s: %w", key, err)
	}

	req := Request{
		Hosts:            s.hosts,
		CertValidity:     s.opts.CertValidity,
		CAValidity:       s.opts.CAValidity,
		PropagationDelay: s.opts.PropagationDelay,
		Rotate:           secret.Annotations[AnnotationRotate],
	}
	if t, err := time.Parse(time.RFC3339Nano, secret.Annotations[AnnotationCAActiveSince]); err == nil {
		req.CAActiveSince = t
	}
	plan, err := PlanRotation(secret.Data, req, s.now())
	if err != nil {
		return time.Time{}, err
	}
	removeRotate := req.Rotate != "" && plan.RotateHandled
	if plan.Changed || removeRotate || !exists {
		if secret.Annotations == nil {
			secret.Annotations = map[string]string{}
		}
		secret.Annotations[AnnotationCAActiveSince] = plan.CAActiveSince.UTC().Format(time.RFC3339Nano)
		if removeRotate {
			delete(secret.Annotations, AnnotationRotate)
		}
		secret.Data = plan.Data
		if exists {
			err = r.writer.Update(ctx, secret, client.FieldOwner(FieldOwner))
		} else {
			err = r.writer.Create(ctx, secret, client.FieldOwner(FieldOwner))
		}
		switch {
		case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
			// Somebody else wrote it: plan again from what is there now.
			return s.now(), nil
		case apierrors.IsForbidden(err) && !exists:
			return time.Time{}, fmt.Errorf("the Secret %s does not exist and may not be created: create it empty (the Helm chart does) or grant create on secrets: %w", key, err)
		case err != nil:
			return time.Time{}, fmt.Errorf("write Secret %s: %w", key, err)
		}
		s.log.Info("webhook certificate updated", "reasons", plan.Reasons, "nextCheck", plan.NextCheck.Format(time.RFC3339))
		// Serve the new certificate here at once; other replicas get it from their informers.
		s.load(secret)
	}
	if err := r.syncCABundles(ctx, plan.Data[KeyCABundle]); err != nil {
		return time.Time{}, err
	}
	return plan.NextCheck, nil
}

// syncCABundles writes bundle into the clientConfig.caBundle of every webhook of the named
// configurations, with a strategic merge patch that changes nothing else and fails on a
// concurrent change (then the next pass retries).
func (r *rotator) syncCABundles(ctx context.Context, bundle []byte) error {
	var errs []error
	if name := r.s.opts.MutatingWebhookConfiguration; name != "" {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		errs = append(errs, r.patch(ctx, "MutatingWebhookConfiguration", name, cfg, func() bool {
			changed := false
			for i := range cfg.Webhooks {
				if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, bundle) {
					cfg.Webhooks[i].ClientConfig.CABundle, changed = bundle, true
				}
			}
			return changed
		}))
	}
	if name := r.s.opts.ValidatingWebhookConfiguration; name != "" {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		errs = append(errs, r.patch(ctx, "ValidatingWebhookConfiguration", name, cfg, func() bool {
			changed := false
			for i := range cfg.Webhooks {
				if !bytes.Equal(cfg.Webhooks[i].ClientConfig.CABundle, bundle) {
					cfg.Webhooks[i].ClientConfig.CABundle, changed = bundle, true
				}
			}
			return changed
		}))
	}
	return errors.Join(errs...)
}

func (r *rotator) patch(ctx context.Context, kind, name string, obj client.Object, mutate func() bool) error {
	if err := r.reader.Get(ctx, client.ObjectKey{Name: name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			// Not installed yet: its informer wakes us when it is.
			r.s.log.Info("webhook configuration not found yet", "kind", kind, "name", name)
			return nil
		}
		return fmt.Errorf("get %s %s: %w", kind, name, err)
	}
	orig := obj.DeepCopyObject().(client.Object)
	if !mutate() {
		return nil
	}
	if err := r.writer.Patch(ctx, obj, client.StrategicMergeFrom(orig, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("patch caBundle of %s %s: %w", kind, name, err)
	}
	r.s.log.Info("caBundle updated", "kind", kind, "name", name)
	return nil
}
