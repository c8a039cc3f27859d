package certs

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Mode chooses where the serving certificate comes from.
type Mode string

const (
	// ModeCertManager serves tls.crt and tls.key from the certificate directory and reloads
	// them when they change: cert-manager's Secret mounted there (or any files put there).
	ModeCertManager Mode = "cert-manager"
	// ModeSelfSigned runs the built-in CA: the leader keeps a Secret with a CA and a serving
	// certificate and writes the CA into the webhook configurations' caBundle.
	ModeSelfSigned Mode = "self-signed"
)

// Defaults of the self-signed mode.
const (
	DefaultCertValidity     = 365 * 24 * time.Hour
	DefaultCAValidity       = 10 * 365 * 24 * time.Hour
	DefaultPropagationDelay = 30 * time.Second
	DefaultClusterDomain    = "cluster.local"
)

// Options configure the serving certificate. The zero value is cert-manager mode.
type Options struct {
	// Mode is cert-manager (the default when empty) or self-signed.
	Mode Mode
	// CertDir is where cert-manager mode's tls.crt is (the webhook server's --cert-dir).
	CertDir string

	// The rest is for self-signed mode.

	// SecretName and SecretNamespace name the Secret holding the CA and the serving
	// certificate. SecretNamespace defaults to $POD_NAMESPACE, then to the in-cluster
	// service account's namespace.
	SecretName      string
	SecretNamespace string
	// ServiceName is the webhook Service; the certificate covers <svc>, <svc>.<ns>,
	// <svc>.<ns>.svc and <svc>.<ns>.svc.<ClusterDomain>.
	ServiceName   string
	ClusterDomain string
	// Hosts are more DNS names or IP addresses for the certificate (e.g. 127.0.0.1 when the
	// API server reaches the webhook by URL in development).
	Hosts []string
	// MutatingWebhookConfiguration and ValidatingWebhookConfiguration name the configurations
	// whose webhooks get the CA bundle as clientConfig.caBundle (empty: none of that kind).
	MutatingWebhookConfiguration   string
	ValidatingWebhookConfiguration string
	// CertValidity and CAValidity are the certificates' lifetimes; each is renewed when a third
	// of it is left.
	CertValidity time.Duration
	CAValidity   time.Duration
	// PropagationDelay is how long a new CA is in the caBundle before the serving certificate
	// moves to it.
	PropagationDelay time.Duration
}

// AddFlags registers the --cert-mode flag and the self-signed mode's flags.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar((*string)(&o.Mode), "cert-mode", string(ModeCertManager),
		`where the serving certificate comes from: "cert-manager" (tls.crt/tls.key in --cert-dir, e.g. cert-manager's mounted Secret, reloaded on change) or "self-signed" (built-in CA kept in --cert-secret, caBundle patched by the controller's leader)`)
	fs.StringVar(&o.SecretName, "cert-secret", "", "self-signed: name of the Secret holding the CA and the serving certificate")
	fs.StringVar(&o.SecretNamespace, "cert-secret-namespace", "", "self-signed: namespace of --cert-secret (default: $POD_NAMESPACE, else the in-cluster namespace)")
	fs.StringVar(&o.ServiceName, "cert-service", "", "self-signed: the webhook Service, whose in-cluster DNS names the certificate covers")
	fs.StringVar(&o.ClusterDomain, "cert-cluster-domain", DefaultClusterDomain, "self-signed: the cluster's DNS domain")
	fs.StringSliceVar(&o.Hosts, "cert-hosts", nil, "self-signed: more DNS names or IP addresses for the serving certificate")
	fs.StringVar(&o.MutatingWebhookConfiguration, "mutating-webhook-configuration", "", "the MutatingWebhookConfiguration whose caBundle must trust the serving certificate (serve: readiness; self-signed controller: kept current)")
	fs.StringVar(&o.ValidatingWebhookConfiguration, "validating-webhook-configuration", "", "the ValidatingWebhookConfiguration whose caBundle must trust the serving certificate (serve: readiness; self-signed controller: kept current)")
	fs.DurationVar(&o.CertValidity, "cert-validity", DefaultCertValidity, "self-signed: lifetime of the serving certificate (renewed when a third is left)")
	fs.DurationVar(&o.CAValidity, "ca-validity", DefaultCAValidity, "self-signed: lifetime of the CA (renewed when a third is left)")
	fs.DurationVar(&o.PropagationDelay, "ca-propagation-delay", DefaultPropagationDelay, "self-signed: how long a new CA is in the caBundle before the serving certificate moves to it")
}

// Complete fills the defaults and checks the options.
func (o *Options) Complete() error {
	switch o.Mode {
	case "":
		o.Mode = ModeCertManager
	case ModeCertManager, ModeSelfSigned:
	default:
		return fmt.Errorf("--cert-mode %q is not one of %q, %q", o.Mode, ModeCertManager, ModeSelfSigned)
	}
	if o.Mode != ModeSelfSigned {
		return nil
	}
	if o.SecretNamespace == "" {
		o.SecretNamespace = inClusterNamespace()
	}
	if o.ClusterDomain == "" {
		o.ClusterDomain = DefaultClusterDomain
	}
	if o.CertValidity == 0 {
		o.CertValidity = DefaultCertValidity
	}
	if o.CAValidity == 0 {
		o.CAValidity = DefaultCAValidity
	}
	var errs []error
	if o.SecretName == "" {
		errs = append(errs, errors.New("self-signed mode needs --cert-secret"))
	} else if msgs := validation.IsDNS1123Subdomain(o.SecretName); len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("--cert-secret %q: %s", o.SecretName, strings.Join(msgs, "; ")))
	}
	if o.SecretNamespace == "" {
		errs = append(errs, errors.New("self-signed mode needs --cert-secret-namespace (or $POD_NAMESPACE)"))
	}
	if o.ServiceName == "" && len(o.Hosts) == 0 {
		errs = append(errs, errors.New("self-signed mode needs --cert-service or --cert-hosts"))
	}
	for _, h := range o.Hosts {
		if net.ParseIP(h) == nil && len(validation.IsDNS1123Subdomain(strings.TrimPrefix(h, "*."))) > 0 {
			errs = append(errs, fmt.Errorf("--cert-hosts: %q is neither an IP address nor a DNS name", h))
		}
	}
	if o.CertValidity < 0 || o.CAValidity < 0 || o.PropagationDelay < 0 {
		errs = append(errs, errors.New("--cert-validity, --ca-validity and --ca-propagation-delay must not be negative"))
	}
	if o.CertValidity > o.CAValidity {
		errs = append(errs, fmt.Errorf("--cert-validity %s must not exceed --ca-validity %s", o.CertValidity, o.CAValidity))
	}
	return errors.Join(errs...)
}

// CertHosts are the names and addresses the self-signed serving certificate covers, the
// Service's most specific name first.
func (o *Options) CertHosts() []string {
	var hosts []string
	if o.ServiceName != "" {
		svc, ns := o.ServiceName, o.SecretNamespace
		hosts = append(hosts, svc+"."+ns+".svc", svc, svc+"."+ns, svc+"."+ns+".svc."+o.ClusterDomain)
	}
	for _, h := range o.Hosts {
		if h != "" && !contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// inClusterNamespace is the pod's namespace: $POD_NAMESPACE (the chart sets it from the downward
// API), else the service account's namespace file.
func inClusterNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

// Source is a serving certificate source for the webhook server.
type Source interface {
	// ConfigureTLS is a webhook server TLS option: it sets the minimum version and, unless
	// the certificate comes from files, the certificate callback.
	ConfigureTLS(*tls.Config)
	// ServingCertificate is the certificate served now, for the readiness check that it is
	// trusted by the webhook configurations.
	ServingCertificate() (*x509.Certificate, error)
}

// New returns the Source of the options' mode; call Complete first.
func New(o Options) (Source, error) {
	if err := o.Complete(); err != nil {
		return nil, err
	}
	if o.Mode == ModeSelfSigned {
		return NewSelfSigned(o)
	}
	return files{dir: o.CertDir}, nil
}

// files is cert-manager mode: controller-runtime's webhook server already watches tls.crt and
// tls.key in its CertDir (certwatcher) when no certificate callback is set.
type files struct{ dir string }

func (files) ConfigureTLS(c *tls.Config) { MinTLS12(c) }

// ServingCertificate reads tls.crt as the certwatcher does: the file is the served certificate
// once the watcher has seen it, a moment after a renewal.
func (f files) ServingCertificate() (*x509.Certificate, error) {
	b, err := os.ReadFile(filepath.Join(f.dir, KeyTLSCert))
	if err != nil {
		return nil, err
	}
	leaf := parseCerts(b)
	if len(leaf) == 0 {
		return nil, fmt.Errorf("%s holds no certificate", filepath.Join(f.dir, KeyTLSCert))
	}
	return leaf[0], nil
}

// MinTLS12 is a TLS option that refuses anything older than TLS 1.2.
func MinTLS12(c *tls.Config) {
	if c.MinVersion < tls.VersionTLS12 {
		c.MinVersion = tls.VersionTLS12
	}
}
