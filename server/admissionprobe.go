package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// admissionProbeTimeout bounds one probe: the API server gives up on the pod webhook after its
// timeoutSeconds (3 s by default), so a slower answer is as good as none.
const admissionProbeTimeout = 3 * time.Second

// admissionProbe reports whether the pod webhook of the named MutatingWebhookConfiguration
// completes a TLS handshake with a certificate its caBundle trusts, as the API server's call
// would. The controller asks before it rolls a workload (reconcile.Options.AdmissionReady).
func admissionProbe(r client.Reader, configName string) func(context.Context) error {
	return func(ctx context.Context) error {
		var cfg admissionregistrationv1.MutatingWebhookConfiguration
		if err := r.Get(ctx, client.ObjectKey{Name: configName}, &cfg); err != nil {
			return fmt.Errorf("read MutatingWebhookConfiguration %s: %w", configName, err)
		}
		if len(cfg.Webhooks) == 0 {
			return fmt.Errorf("MutatingWebhookConfiguration %s has no webhook", configName)
		}
		cc := cfg.Webhooks[0].ClientConfig
		addr, host, err := webhookAddress(cc)
		if err != nil {
			return fmt.Errorf("MutatingWebhookConfiguration %s: %w", configName, err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(cc.CABundle) {
			return fmt.Errorf("MutatingWebhookConfiguration %s: caBundle holds no certificate yet", configName)
		}
		ctx, cancel := context.WithTimeout(ctx, admissionProbeTimeout)
		defer cancel()
		d := tls.Dialer{Config: &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}}
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("pod webhook at %s: %w", addr, err)
		}
		return conn.Close()
	}
}

// webhookAddress is where the API server sends a webhook's requests (host:port) and the name
// its certificate must carry.
func webhookAddress(cc admissionregistrationv1.WebhookClientConfig) (addr, host string, err error) {
	switch {
	case cc.URL != nil:
		u, err := url.Parse(*cc.URL)
		if err != nil {
			return "", "", fmt.Errorf("clientConfig.url: %w", err)
		}
		port := u.Port()
		if port == "" {
			port = "443"
		}
		return net.JoinHostPort(u.Hostname(), port), u.Hostname(), nil
	case cc.Service != nil:
		port := int32(443)
		if cc.Service.Port != nil {
			port = *cc.Service.Port
		}
		host := cc.Service.Name + "." + cc.Service.Namespace + ".svc"
		return net.JoinHostPort(host, strconv.Itoa(int(port))), host, nil
	}
	return "", "", errors.New("clientConfig has neither url nor service")
}
