package certs

import (
	"strings"
	"testing"
	"time"
)

// TestTrustedBy is the readiness rule of serve: every webhook's caBundle must hold a CA that
// signed the served certificate; an empty bundle (right after install) or another CA's is not
// ready, and the error names the webhook.
func TestTrustedBy(t *testing.T) {
	req := Request{Hosts: []string{"wh.sys.svc"}, CertValidity: time.Hour, CAValidity: 10 * time.Hour}
	first, err := PlanRotation(nil, req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := PlanRotation(nil, req, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	leaf := leafOf(t, first)
	both := append(append([]byte(nil), other.Data[KeyCABundle]...), first.Data[KeyCABundle]...)
	for _, tc := range []struct {
		name    string
		bundles map[string][]byte
		wantErr string
	}{
		{"trusted", map[string][]byte{"a": first.Data[KeyCABundle], "b": first.Data[KeyCABundle]}, ""},
		{"one of several CAs", map[string][]byte{"a": both}, ""},
		{"no webhooks", map[string][]byte{}, ""},
		{"empty caBundle", map[string][]byte{"a": first.Data[KeyCABundle], "b": nil}, "b: caBundle is empty"},
		{"another CA", map[string][]byte{"a": other.Data[KeyCABundle]}, "a: caBundle does not trust the serving certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := TrustedBy(leaf, tc.bundles)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("TrustedBy: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("TrustedBy = %v, want an error containing %q", err, tc.wantErr)
			}
		})
	}
}
