package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestWebhookAddress(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cc         admissionregistrationv1.WebhookClientConfig
		addr, host string
	}{
		{"url with port", admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://127.0.0.1:9443/mutate-v1-pod")}, "127.0.0.1:9443", "127.0.0.1"},
		{"url without port", admissionregistrationv1.WebhookClientConfig{URL: ptr.To("https://hook.example/x")}, "hook.example:443", "hook.example"},
		{"service with port", admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "cors-system", Name: "cors-webhook", Port: ptr.To[int32](8443)}}, "cors-webhook.cors-system.svc:8443", "cors-webhook.cors-system.svc"},
		{"service default port", admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{Namespace: "ns", Name: "svc"}}, "svc.ns.svc:443", "svc.ns.svc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, host, err := webhookAddress(tc.cc)
			if err != nil || addr != tc.addr || host != tc.host {
				t.Errorf("webhookAddress = %q, %q, %v; want %q, %q", addr, host, err, tc.addr, tc.host)
			}
		})
	}
	if _, _, err := webhookAddress(admissionregistrationv1.WebhookClientConfig{}); err == nil {
		t.Error("no url and no service: want an error")
	}
}

func TestAdmissionProbe(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	caBundle := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	// A port that refuses connections: listen, note the address, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := ln.Addr().String()
	ln.Close()
	// httptest's certificate is valid for 127.0.0.1 and example.com.
	up := "https://" + srv.Listener.Addr().String() + "/mutate-v1-pod"
	for _, tc := range []struct {
		name, url string
		caBundle  []byte
		wantErr   string
	}{
		{"answers with a trusted certificate", up, caBundle, ""},
		{"empty caBundle", up, nil, "caBundle holds no certificate"},
		{"untrusted certificate", up, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: otherCert(t)}), "certificate"},
		{"down", "https://" + refused + "/mutate-v1-pod", caBundle, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scheme := runtime.NewScheme()
			_ = admissionregistrationv1.AddToScheme(scheme)
			mwc := &admissionregistrationv1.MutatingWebhookConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: "cors-webhook"},
				Webhooks: []admissionregistrationv1.MutatingWebhook{{
					Name:         "pods.cors-webhook.io",
					ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: ptr.To(tc.url), CABundle: tc.caBundle},
				}},
			}
			probe := admissionProbe(fake.NewClientBuilder().WithScheme(scheme).WithObjects(mwc).Build(), "cors-webhook")
			err := probe(context.Background())
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("probe: %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("probe: %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
	if err := admissionProbe(fake.NewClientBuilder().Build(), "missing")(context.Background()); err == nil {
		t.Error("missing configuration: want an error")
	}
}

// otherCert is a self-signed certificate of another CA, which does not sign srv's.
func otherCert(t *testing.T) []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
