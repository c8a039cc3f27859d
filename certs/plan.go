package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Keys of the self-signed mode's Secret. tls.crt and tls.key are the usual names, so the Secret
// can also be mounted or inspected with standard tools; ca.crt is the bundle written into the
// webhook configurations' caBundle.
const (
	// KeyCABundle is a PEM bundle: the current CA first, then older CAs that are still trusted
	// because a replica may still serve a certificate they signed.
	KeyCABundle = "ca.crt"
	// KeyCAKey is the private key of the current CA (the first certificate of KeyCABundle).
	KeyCAKey = "ca.key"
	// KeyTLSCert and KeyTLSKey are the serving certificate and its key.
	KeyTLSCert = corev1.TLSCertKey
	KeyTLSKey  = corev1.TLSPrivateKeyKey
)

// Annotations of the Secret.
const (
	// AnnotationRotate forces a rotation on the leader's next pass: "ca" renews the CA (and then
	// the serving certificate), any other non-empty value renews the serving certificate. The
	// leader removes the annotation once it has acted on it, e.g.
	//   kubectl annotate secret cors-webhook-tls cors-webhook.io/rotate=cert --overwrite
	AnnotationRotate = "cors-webhook.io/rotate"
	// AnnotationCAActiveSince records when the current CA entered the bundle (RFC 3339). The
	// serving certificate moves to a new CA only PropagationDelay after that, once the API
	// server has seen the new caBundle, so that no TLS handshake fails during a CA rotation.
	AnnotationCAActiveSince = "cors-webhook.io/ca-active-since"
)

// RotateCA is the AnnotationRotate value that renews the CA.
const RotateCA = "ca"

// maxOlderCAs bounds the previous CAs kept in the bundle (besides the one that signed the
// serving certificate).
const maxOlderCAs = 2

// Request is what the Secret must provide.
type Request struct {
	// Hosts are the DNS names and IP addresses the serving certificate covers; the first one is
	// also its common name.
	Hosts []string
	// CertValidity and CAValidity are the lifetimes of new certificates. Each is renewed when a
	// third of its lifetime is left.
	CertValidity time.Duration
	CAValidity   time.Duration
	// PropagationDelay is how long a new CA is trusted (in the caBundle) before the serving
	// certificate switches to it.
	PropagationDelay time.Duration
	// Rotate is the value of AnnotationRotate ("" when absent).
	Rotate string
	// CAActiveSince is the value of AnnotationCAActiveSince (zero when absent or unparsable).
	CAActiveSince time.Time
}

// Plan is the Secret content the leader should store, and when to look again.
type Plan struct {
	// Data is the Secret's next data (equal to the input when nothing changes).
	Data map[string][]byte
	// CAActiveSince is the next value of AnnotationCAActiveSince.
	CAActiveSince time.Time
	// Changed reports whether Data or CAActiveSince differ from the input, i.e. whether the
	// Secret must be written.
	Changed bool
	// RotateHandled reports that the rotation asked for by Request.Rotate is done (or not
	// needed), so the caller removes AnnotationRotate.
	RotateHandled bool
	// Reasons say why, for the log.
	Reasons []string
	// NextCheck is the earliest time something will need renewing.
	NextCheck time.Time
}

// PlanRotation decides the next content of the Secret from its current data, the request and the
// clock. It never loses trust that is still needed: a new CA is added in front of the bundle and
// the old one stays until it expires, and the serving certificate is issued by the new CA only
// after PropagationDelay (unless nothing valid is being served, when waiting would not help).
func PlanRotation(data map[string][]byte, req Request, now time.Time) (Plan, error) {
	if len(req.Hosts) == 0 {
		return Plan{}, errors.New("the serving certificate needs at least one host")
	}
	if req.CertValidity <= 0 || req.CAValidity <= 0 {
		return Plan{}, errors.New("certificate lifetimes must be positive")
	}
	st := observeSecret(data, now)
	p := Plan{CAActiveSince: req.CAActiveSince}

	// The CA: renewed when unusable, due or asked for; the current one then stays trusted.
	if p.Reasons = caReasons(st.ca, req, now); len(p.Reasons) > 0 {
		if st.ca != nil {
			st.older = append([]*x509.Certificate{st.ca}, st.older...)
		}
		var err error
		if st.ca, st.caKey, err = newCA(req.CAValidity, now); err != nil {
			return Plan{}, err
		}
		p.CAActiveSince = now
		p.RotateHandled = req.Rotate == RotateCA
	}
	st.older = st.pruneOlder(now)
	if p.CAActiveSince.IsZero() {
		// A Secret from before this annotation, or edited by hand: count from now.
		p.CAActiveSince = now
	}

	// The serving certificate: renewed when unusable, due, for other hosts, asked for, or
	// still from an older CA once the current one has propagated.
	switchAt := p.CAActiveSince.Add(req.PropagationDelay)
	leafReasons, pendingSwitch := st.leafReasons(req, now, switchAt)
	tlsCert, tlsKey := data[KeyTLSCert], data[KeyTLSKey]
	if len(leafReasons) > 0 {
		var err error
		if st.leaf, tlsCert, tlsKey, err = newLeaf(st.ca, st.caKey, req.Hosts, req.CertValidity, now); err != nil {
			return Plan{}, err
		}
		p.Reasons = append(p.Reasons, leafReasons...)
		if req.Rotate != "" && req.Rotate != RotateCA {
			p.RotateHandled = true
		}
	}

	caKeyPEM, err := encodeKey(st.caKey)
	if err != nil {
		return Plan{}, err
	}
	p.Data = map[string][]byte{
		KeyCABundle: encodeCerts(append([]*x509.Certificate{st.ca}, st.older...)),
		KeyCAKey:    caKeyPEM,
		KeyTLSCert:  tlsCert,
		KeyTLSKey:   tlsKey,
	}
	if len(p.Reasons) == 0 {
		// Keep the stored key bytes when nothing changed (its encoding may differ from ours).
		p.Data[KeyCAKey] = data[KeyCAKey]
	}
	p.Changed = !p.CAActiveSince.Equal(req.CAActiveSince) || !dataEqual(data, p.Data)
	p.NextCheck = st.nextCheck(pendingSwitch, switchAt)
	return p, nil
}

// secretState is what PlanRotation reads of the Secret.
type secretState struct {
	// ca and caKey are the current CA, nil when its key is lost or does not match; older are
	// the other CAs of the bundle.
	ca    *x509.Certificate
	caKey crypto.Signer
	older []*x509.Certificate
	// leaf is the serving certificate (leafOK: it parses, with its key); servingValid: it is
	// valid now and signed by a CA of the bundle.
	leaf         *x509.Certificate
	leafOK       bool
	servingValid bool
}

func observeSecret(data map[string][]byte, now time.Time) secretState {
	var st secretState
	bundle := parseCerts(data[KeyCABundle])
	if len(bundle) > 0 {
		if key, err := parseKey(data[KeyCAKey]); err == nil && publicKeysEqual(bundle[0].PublicKey, key.Public()) && bundle[0].IsCA {
			st.ca, st.caKey, st.older = bundle[0], key, bundle[1:]
		} else {
			// The CA's key is lost or does not match: the certificates stay trusted (whatever
			// is served now keeps working) but a new CA must sign from now on.
			st.older = bundle
		}
	}
	st.leaf, st.leafOK = parseLeaf(data[KeyTLSCert], data[KeyTLSKey])
	st.servingValid = st.leafOK && now.Before(st.leaf.NotAfter) && now.After(st.leaf.NotBefore) && verifiedByAny(st.leaf, bundle)
	return st
}

// caReasons say why the CA must be renewed; none when it need not.
func caReasons(ca *x509.Certificate, req Request, now time.Time) []string {
	switch {
	case ca == nil:
		return []string{"no usable CA"}
	case !now.Before(renewAt(ca)):
		return []string{fmt.Sprintf("CA expires %s", ca.NotAfter.Format(time.RFC3339))}
	case req.Rotate == RotateCA:
		return []string{"CA rotation requested (" + AnnotationRotate + "=" + RotateCA + ")"}
	}
	return nil
}

// pruneOlder drops the expired older CAs (nothing they signed can be valid any more) and all
// but the most recent maxOlderCAs, except the one that signed what is served now, so that
// repeated forced rotations cannot grow the bundle without bound.
func (st *secretState) pruneOlder(now time.Time) []*x509.Certificate {
	older := slices.DeleteFunc(st.older, func(c *x509.Certificate) bool { return !now.Before(c.NotAfter) })
	for i := len(older) - 1; i >= maxOlderCAs; i-- {
		if !(st.leafOK && st.leaf.CheckSignatureFrom(older[i]) == nil) {
			older = slices.Delete(older, i, i+1)
		}
	}
	return older
}

// leafReasons say why the serving certificate must be renewed, none when it need not;
// pendingSwitch says it is kept for now, though from an older CA, until switchAt.
//
// A valid certificate from an older CA keeps being served until the current CA has been in
// the caBundle for PropagationDelay, even when it is due for renewal, as long as it is still
// valid then: renewing it earlier would have replicas serve a certificate that the API server
// may not trust yet.
func (st *secretState) leafReasons(req Request, now, switchAt time.Time) (reasons []string, pendingSwitch bool) {
	switch {
	case !st.leafOK:
		reasons = []string{"no usable serving certificate"}
	case !st.servingValid:
		reasons = []string{"serving certificate is not valid now or not signed by a trusted CA"}
	case !now.Before(renewAt(st.leaf)):
		reasons = []string{fmt.Sprintf("serving certificate expires %s", st.leaf.NotAfter.Format(time.RFC3339))}
	case !sameHosts(st.leaf, req.Hosts):
		reasons = []string{"serving certificate hosts changed"}
	case req.Rotate != "" && req.Rotate != RotateCA:
		reasons = []string{"serving certificate rotation requested (" + AnnotationRotate + "=" + req.Rotate + ")"}
	}
	if !st.servingValid || st.leaf.CheckSignatureFrom(st.ca) == nil {
		return reasons, false
	}
	if now.Before(switchAt) && st.leaf.NotAfter.After(switchAt) {
		return nil, true
	}
	if len(reasons) == 0 {
		reasons = []string{"moving the serving certificate to the current CA"}
	}
	return reasons, false
}

// nextCheck is the earliest time something will need renewing or switching.
func (st *secretState) nextCheck(pendingSwitch bool, switchAt time.Time) time.Time {
	next := earliest(renewAt(st.ca), renewAt(st.leaf))
	if pendingSwitch {
		next = earliest(next, switchAt)
	}
	for _, c := range st.older {
		next = earliest(next, c.NotAfter)
	}
	return next
}

// renewAt is when a third of the certificate's lifetime is left.
func renewAt(c *x509.Certificate) time.Time {
	return c.NotAfter.Add(-c.NotAfter.Sub(c.NotBefore) / 3)
}

// backdate moves NotBefore into the past so that a certificate is valid at once on machines whose
// clock is a little behind: a tenth of its lifetime, at most an hour.
func backdate(validity time.Duration) time.Duration {
	return min(validity/10, time.Hour)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func newCA(validity time.Duration, now time.Time) (*x509.Certificate, crypto.Signer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: fmt.Sprintf("cors-webhook-ca@%d", now.Unix()), Organization: []string{"cors-webhook"}},
		NotBefore:             now.Add(-backdate(validity)),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// newLeaf issues a serving certificate for hosts, never outliving its CA.
func newLeaf(ca *x509.Certificate, caKey crypto.Signer, hosts []string, validity time.Duration, now time.Time) (*x509.Certificate, []byte, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: hosts[0], Organization: []string{"cors-webhook"}},
		NotBefore:    now.Add(-backdate(validity)),
		NotAfter:     earliest(now.Add(validity), ca.NotAfter),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create serving certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, nil, nil, err
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

func parseCerts(pemBytes []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, pemBytes = pem.Decode(pemBytes)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var buf bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return buf.Bytes()
}

func parseKey(pemBytes []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("no PEM key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("key cannot sign")
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("unsupported private key")
}

func encodeKey(key crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseLeaf returns the serving certificate when tls.crt and tls.key form a key pair.
func parseLeaf(certPEM, keyPEM []byte) (*x509.Certificate, bool) {
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil || pair.Leaf == nil {
		return nil, false
	}
	return pair.Leaf, true
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func verifiedByAny(leaf *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if leaf.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

func sameHosts(c *x509.Certificate, hosts []string) bool {
	have := slices.Clone(c.DNSNames)
	for _, ip := range c.IPAddresses {
		have = append(have, ip.String())
	}
	want := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			h = ip.String()
		}
		want = append(want, h)
	}
	sort.Strings(have)
	sort.Strings(want)
	return slices.Equal(slices.Compact(have), slices.Compact(want))
}

func dataEqual(a, b map[string][]byte) bool {
	for k, v := range b {
		if !bytes.Equal(a[k], v) {
			return false
		}
	}
	return true
}

// Fingerprint is the SHA-256 of a certificate's DER, as tests and logs compare served
// certificates by it.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
