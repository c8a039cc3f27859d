package certs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestServingLeafFromFiles(t *testing.T) {
	now := time.Now()
	ca, caKey, err := newCA(time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, certPEM, _, err := newLeaf(ca, caKey, []string{"svc"}, 30*time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	read := ServingLeaf(files{}, dir)
	if _, err := read(); err == nil {
		t.Fatal("no tls.crt yet, but a certificate was read")
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), append(certPEM, encodeCerts(nil)...), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := read()
	if err != nil {
		t.Fatal(err)
	}
	if !got.NotAfter.Equal(leaf.NotAfter) {
		t.Errorf("NotAfter %v, want %v", got.NotAfter, leaf.NotAfter)
	}
}
