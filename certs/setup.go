package certs

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// ReadyzTrusted names the readiness check of SetupServing.
const ReadyzTrusted = "serving-certificate-trusted"

// SetupServing adds to a serving manager (`cors-webhook serve`, every replica) what serving
// needs: in self-signed mode the Secret's informer that feeds src; in both modes a readiness
// check that passes only once the served certificate is trusted by the caBundle of every
// webhook of the named configurations. Right after an install the caBundle is still empty (the
// controller or cert-manager's CA injector fills it a moment later); a replica that reported
// ready then would receive calls the API server cannot verify.
func SetupServing(mgr manager.Manager, src Source, o Options) error {
	if err := o.Complete(); err != nil {
		return err
	}
	s, selfSigned := src.(*SelfSigned)
	c, err := newCertCache(mgr, o, selfSigned)
	if err != nil {
		return err
	}
	if selfSigned {
		if err := s.watchSecret(c); err != nil {
			return err
		}
	}
	if c != nil {
		// Informers are created now so that they start and sync with the cache.
		for _, obj := range configObjects(o) {
			if _, err := c.GetInformer(context.Background(), obj); err != nil {
				return fmt.Errorf("informer of %T: %w", obj, err)
			}
		}
	}
	return mgr.AddReadyzCheck(ReadyzTrusted, func(r *http.Request) error {
		leaf, err := src.ServingCertificate()
		if err != nil {
			return err
		}
		if c == nil {
			return nil
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		bundles, err := caBundles(ctx, c, o)
		if err != nil {
			return err
		}
		return TrustedBy(leaf, bundles)
	})
}

// SetupRotation adds the built-in CA to a controller manager (`cors-webhook controller`):
// the elected leader creates and renews the Secret's CA and serving certificate and keeps the
// configurations' caBundle equal to the Secret's CA bundle. In cert-manager mode it adds
// nothing: cert-manager renews, its CA injector writes caBundle.
func SetupRotation(mgr manager.Manager, o Options) error {
	if err := o.Complete(); err != nil {
		return err
	}
	if o.Mode != ModeSelfSigned {
		return nil
	}
	s, err := NewSelfSigned(o)
	if err != nil {
		return err
	}
	c, err := newCertCache(mgr, o, true)
	if err != nil {
		return err
	}
	s.cache = c
	if err := s.watchSecret(c); err != nil {
		return err
	}
	return mgr.Add(&rotator{s: s, reader: mgr.GetAPIReader(), writer: mgr.GetClient()})
}

// newCertCache is a cache of the Secret (when secret) and of the named webhook
// configurations, each restricted to its one name: list and watch with a metadata.name field
// selector are authorized by RBAC resourceNames, so the service accounts need no access to
// other Secrets or configurations. It is nil when there is nothing to watch.
func newCertCache(mgr manager.Manager, o Options, secret bool) (cache.Cache, error) {
	byName := func(name string) fields.Selector { return fields.OneTermEqualSelector("metadata.name", name) }
	byObject := map[client.Object]cache.ByObject{}
	if secret {
		byObject[&corev1.Secret{}] = cache.ByObject{
			Namespaces: map[string]cache.Config{o.SecretNamespace: {}},
			Field:      byName(o.SecretName),
		}
	}
	if name := o.MutatingWebhookConfiguration; name != "" {
		byObject[&admissionregistrationv1.MutatingWebhookConfiguration{}] = cache.ByObject{Field: byName(name)}
	}
	if name := o.ValidatingWebhookConfiguration; name != "" {
		byObject[&admissionregistrationv1.ValidatingWebhookConfiguration{}] = cache.ByObject{Field: byName(name)}
	}
	if len(byObject) == 0 {
		return nil, nil
	}
	c, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient:       mgr.GetHTTPClient(),
		Scheme:           mgr.GetScheme(),
		Mapper:           mgr.GetRESTMapper(),
		ByObject:         byObject,
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, fmt.Errorf("certificate cache: %w", err)
	}
	// Added as the manager's other caches are, so it runs in every replica (a cache with
	// per-object namespaces would otherwise count as leader-only) and starts before the
	// runnables that read it.
	if err := mgr.Add(replicaCache{c}); err != nil {
		return nil, err
	}
	return c, nil
}

func configObjects(o Options) []client.Object {
	var objs []client.Object
	if o.MutatingWebhookConfiguration != "" {
		objs = append(objs, &admissionregistrationv1.MutatingWebhookConfiguration{})
	}
	if o.ValidatingWebhookConfiguration != "" {
		objs = append(objs, &admissionregistrationv1.ValidatingWebhookConfiguration{})
	}
	return objs
}

// caBundles reads the caBundle of every webhook of the named configurations, keyed by
// "<kind> <name>/<webhook>".
func caBundles(ctx context.Context, r client.Reader, o Options) (map[string][]byte, error) {
	out := map[string][]byte{}
	if name := o.MutatingWebhookConfiguration; name != "" {
		cfg := &admissionregistrationv1.MutatingWebhookConfiguration{}
		if err := r.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
			return nil, fmt.Errorf("MutatingWebhookConfiguration %s: %w", name, err)
		}
		for _, w := range cfg.Webhooks {
			out["MutatingWebhookConfiguration "+name+"/"+w.Name] = w.ClientConfig.CABundle
		}
	}
	if name := o.ValidatingWebhookConfiguration; name != "" {
		cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
		if err := r.Get(ctx, client.ObjectKey{Name: name}, cfg); err != nil {
			return nil, fmt.Errorf("ValidatingWebhookConfiguration %s: %w", name, err)
		}
		for _, w := range cfg.Webhooks {
			out["ValidatingWebhookConfiguration "+name+"/"+w.Name] = w.ClientConfig.CABundle
		}
	}
	return out, nil
}

// TrustedBy returns an error naming every webhook whose caBundle (PEM) does not hold a CA
// that signed leaf, or that is empty.
func TrustedBy(leaf *x509.Certificate, bundles map[string][]byte) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(bundles)) {
		cas := parseCerts(bundles[name])
		switch {
		case len(cas) == 0:
			errs = append(errs, fmt.Errorf("%s: caBundle is empty", name))
		case !verifiedByAny(leaf, cas):
			errs = append(errs, fmt.Errorf("%s: caBundle does not trust the serving certificate (sha256 %s)", name, Fingerprint(leaf)))
		}
	}
	return errors.Join(errs...)
}
