package certs

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ServingLeaf returns a function that reads the certificate the webhook server currently
// serves: the self-signed source's loaded certificate, or tls.crt in certDir (the file
// controller-runtime's certwatcher serves in cert-manager mode). It is read on every call, so
// a rotation shows at once; metrics call it on each scrape.
func ServingLeaf(src Source, certDir string) func() (*x509.Certificate, error) {
	if s, ok := src.(*SelfSigned); ok {
		return s.Leaf
	}
	path := filepath.Join(certDir, "tls.crt")
	return func() (*x509.Certificate, error) { return fileLeaf(path) }
}

// Leaf returns the serving certificate last loaded from the Secret.
func (s *SelfSigned) Leaf() (*x509.Certificate, error) {
	c, err := s.GetCertificate(nil)
	if err != nil {
		return nil, err
	}
	if c.Leaf != nil {
		return c.Leaf, nil
	}
	if len(c.Certificate) == 0 {
		return nil, errors.New("the serving certificate is empty")
	}
	return x509.ParseCertificate(c.Certificate[0])
}

// fileLeaf parses the first certificate of a PEM file.
func fileLeaf(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return nil, fmt.Errorf("%s holds no certificate", path)
		}
		if block.Type == "CERTIFICATE" {
			return x509.ParseCertificate(block.Bytes)
		}
	}
}
