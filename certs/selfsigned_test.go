package certs

import (
	"crypto/tls"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// TestSelfSignedServesTheSecret covers what every replica does with the Secret it watches: serve
// its certificate, switch on rotation, and keep the last good certificate when the Secret holds
// nothing usable.
func TestSelfSignedServesTheSecret(t *testing.T) {
	s, err := NewSelfSigned(Options{Mode: ModeSelfSigned, SecretName: "tls", SecretNamespace: "sys", ServiceName: "wh"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS10}
	s.ConfigureTLS(cfg)
	if cfg.MinVersion != tls.VersionTLS12 || cfg.GetCertificate == nil {
		t.Fatalf("ConfigureTLS: MinVersion %x, GetCertificate set %v", cfg.MinVersion, cfg.GetCertificate != nil)
	}
	if _, err := cfg.GetCertificate(nil); err == nil {
		t.Fatal("a certificate before the Secret was seen")
	}

	req := Request{Hosts: s.hosts, CertValidity: time.Hour, CAValidity: 10 * time.Hour}
	first, err := PlanRotation(nil, req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	served := func() string {
		t.Helper()
		c, err := cfg.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return Fingerprint(c.Leaf)
	}
	s.load(&corev1.Secret{Data: first.Data})
	want := Fingerprint(leafOf(t, first))
	if got := served(); got != want {
		t.Fatalf("serving %s, want %s", got, want)
	}

	req.Rotate = "now"
	second, err := PlanRotation(first.Data, req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.load(&corev1.Secret{Data: second.Data})
	if got := served(); got == want || got != Fingerprint(leafOf(t, second)) {
		t.Fatalf("rotation not picked up")
	}
	want = served()

	for _, data := range []map[string][]byte{
		nil,
		{KeyTLSCert: []byte("garbage"), KeyTLSKey: []byte("garbage")},
		{KeyTLSCert: second.Data[KeyTLSCert], KeyTLSKey: first.Data[KeyTLSKey]},
	} {
		s.load(&corev1.Secret{Data: data})
		if got := served(); got != want {
			t.Fatalf("an unusable Secret replaced the served certificate")
		}
	}
}
