package certs

import (
	"crypto/x509"
	"maps"
	"strings"
	"testing"
	"time"
)

var (
	t0    = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hosts = []string{"cors-webhook.sys.svc", "cors-webhook", "127.0.0.1"}
)

func baseRequest() Request {
	return Request{Hosts: hosts, CertValidity: 30 * time.Hour, CAValidity: 300 * time.Hour, PropagationDelay: time.Minute}
}

// mustPlan runs PlanRotation and checks the invariant that holds after every pass: the served
// certificate verifies against the bundle for every host, and the CA key signs the bundle's
// first certificate.
func mustPlan(t *testing.T, data map[string][]byte, req Request, now time.Time) Plan {
	t.Helper()
	p, err := PlanRotation(data, req, now)
	if err != nil {
		t.Fatalf("PlanRotation: %v", err)
	}
	leaf, ok := parseLeaf(p.Data[KeyTLSCert], p.Data[KeyTLSKey])
	if !ok {
		t.Fatalf("plan has no usable serving certificate")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(p.Data[KeyCABundle]) {
		t.Fatalf("plan has no CA bundle")
	}
	for _, h := range req.Hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: pool, CurrentTime: now}); err != nil {
			t.Fatalf("serving certificate does not verify for %s at %s: %v", h, now, err)
		}
	}
	key, err := parseKey(p.Data[KeyCAKey])
	if err != nil || !publicKeysEqual(parseCerts(p.Data[KeyCABundle])[0].PublicKey, key.Public()) {
		t.Fatalf("ca.key does not belong to the bundle's first certificate (%v)", err)
	}
	if p.NextCheck.IsZero() || !p.NextCheck.After(now) && p.Changed {
		t.Fatalf("NextCheck %s is not after now %s", p.NextCheck, now)
	}
	return p
}

func leafOf(t *testing.T, p Plan) *x509.Certificate {
	t.Helper()
	leaf, _ := parseLeaf(p.Data[KeyTLSCert], p.Data[KeyTLSKey])
	return leaf
}

func currentCA(p Plan) *x509.Certificate { return parseCerts(p.Data[KeyCABundle])[0] }

func TestPlanRotationFromNothing(t *testing.T) {
	for _, data := range []map[string][]byte{nil, {}, {KeyTLSCert: []byte("garbage"), KeyCABundle: []byte("junk")}} {
		p := mustPlan(t, data, baseRequest(), t0)
		if !p.Changed || len(p.Reasons) == 0 {
			t.Fatalf("a new Secret must be written: %+v", p.Reasons)
		}
		if n := len(parseCerts(p.Data[KeyCABundle])); n != 1 {
			t.Fatalf("bundle has %d CAs, want 1", n)
		}
		leaf := leafOf(t, p)
		if leaf.Subject.CommonName != hosts[0] || len(leaf.IPAddresses) != 1 || len(leaf.DNSNames) != 2 {
			t.Fatalf("leaf names: CN %q DNS %v IP %v", leaf.Subject.CommonName, leaf.DNSNames, leaf.IPAddresses)
		}
		if want := leaf.NotAfter.Add(-leaf.NotAfter.Sub(leaf.NotBefore) / 3); !p.NextCheck.Equal(want) {
			t.Fatalf("NextCheck %s, want the leaf's renewal time %s", p.NextCheck, want)
		}
		if !p.CAActiveSince.Equal(t0) {
			t.Fatalf("CAActiveSince %s, want %s", p.CAActiveSince, t0)
		}
	}
}

func TestPlanRotation(t *testing.T) {
	first := mustPlan(t, nil, baseRequest(), t0)
	settled := baseRequest()
	settled.CAActiveSince = first.CAActiveSince
	leaf0, ca0 := leafOf(t, first), currentCA(first)

	tests := []struct {
		name     string
		data     map[string][]byte
		req      func(*Request)
		now      time.Time
		changed  bool
		newLeaf  bool
		newCA    bool
		handled  bool
		nCAs     int
		nextWant time.Time // zero: not checked
	}{
		{name: "steady state", now: t0.Add(time.Hour), nCAs: 1, nextWant: renewAt(leaf0)},
		{name: "just before a third of the leaf's lifetime is left", now: renewAt(leaf0).Add(-time.Second), nCAs: 1},
		{name: "a third of the leaf's lifetime left", now: renewAt(leaf0), changed: true, newLeaf: true, nCAs: 1},
		{name: "leaf expired", now: leaf0.NotAfter.Add(time.Hour), changed: true, newLeaf: true, nCAs: 1},
		{name: "hosts changed", now: t0.Add(time.Hour), req: func(r *Request) { r.Hosts = append([]string{"other.sys.svc"}, hosts...) },
			changed: true, newLeaf: true, nCAs: 1},
		{name: "forced serving certificate rotation", now: t0.Add(time.Hour), req: func(r *Request) { r.Rotate = "now" },
			changed: true, newLeaf: true, handled: true, nCAs: 1},
		{name: "forced CA rotation keeps the old leaf until the new CA propagated", now: t0.Add(time.Hour), req: func(r *Request) { r.Rotate = RotateCA },
			changed: true, newCA: true, handled: true, nCAs: 2, nextWant: t0.Add(time.Hour + time.Minute)},
		{name: "CA at two thirds of its lifetime", now: renewAt(ca0), changed: true, newCA: true, newLeaf: true, nCAs: 2},
		{name: "unparsable leaf is replaced at once", now: t0.Add(time.Hour),
			data: with(first.Data, KeyTLSKey, []byte("x")), changed: true, newLeaf: true, nCAs: 1},
		{name: "lost CA key: new CA, old one stays trusted, leaf waits", now: t0.Add(time.Hour),
			data: with(first.Data, KeyCAKey, nil), changed: true, newCA: true, nCAs: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := first.Data
			if tc.data != nil {
				data = tc.data
			}
			req := settled
			req.Hosts = hosts
			if tc.req != nil {
				tc.req(&req)
			}
			p := mustPlan(t, data, req, tc.now)
			if p.Changed != tc.changed {
				t.Errorf("Changed = %v, want %v (reasons %v)", p.Changed, tc.changed, p.Reasons)
			}
			if got := leafOf(t, p).SerialNumber.Cmp(leaf0.SerialNumber) != 0; got != tc.newLeaf {
				t.Errorf("new leaf = %v, want %v (reasons %v)", got, tc.newLeaf, p.Reasons)
			}
			if got := currentCA(p).SerialNumber.Cmp(ca0.SerialNumber) != 0; got != tc.newCA {
				t.Errorf("new CA = %v, want %v (reasons %v)", got, tc.newCA, p.Reasons)
			}
			if p.RotateHandled != tc.handled {
				t.Errorf("RotateHandled = %v, want %v", p.RotateHandled, tc.handled)
			}
			if n := len(parseCerts(p.Data[KeyCABundle])); n != tc.nCAs {
				t.Errorf("bundle has %d CAs, want %d", n, tc.nCAs)
			}
			if !tc.nextWant.IsZero() && !p.NextCheck.Equal(tc.nextWant) {
				t.Errorf("NextCheck = %s, want %s", p.NextCheck, tc.nextWant)
			}
			if !tc.changed && !maps.EqualFunc(p.Data, data, func(a, b []byte) bool { return string(a) == string(b) }) {
				t.Errorf("unchanged plan altered the data")
			}
		})
	}
}

// TestPlanCARotationStages walks a CA rotation: the new CA enters the bundle first, the serving
// certificate moves to it after the propagation delay, and the old CA leaves the bundle when it
// expires. At every step the served certificate verifies against the bundle (mustPlan).
func TestPlanCARotationStages(t *testing.T) {
	req := baseRequest()
	p := mustPlan(t, nil, req, t0)
	ca0, leaf0 := currentCA(p), leafOf(t, p)

	// Stage 1: forced CA rotation.
	now := t0.Add(time.Hour)
	req.CAActiveSince, req.Rotate = p.CAActiveSince, RotateCA
	p = mustPlan(t, p.Data, req, now)
	ca1 := currentCA(p)
	if ca1.Equal(ca0) || !parseCerts(p.Data[KeyCABundle])[1].Equal(ca0) {
		t.Fatalf("bundle must be [new CA, old CA]")
	}
	if !leafOf(t, p).Equal(leaf0) {
		t.Fatalf("the leaf must not change before the new CA propagated")
	}
	if !p.NextCheck.Equal(now.Add(req.PropagationDelay)) {
		t.Fatalf("NextCheck %s, want the end of the propagation delay", p.NextCheck)
	}

	// Before the delay: nothing to do.
	req.CAActiveSince, req.Rotate = p.CAActiveSince, ""
	q := mustPlan(t, p.Data, req, now.Add(req.PropagationDelay-time.Second))
	if q.Changed {
		t.Fatalf("changed before the propagation delay: %v", q.Reasons)
	}

	// Stage 2: the leaf moves to the new CA; both CAs stay trusted.
	p = mustPlan(t, p.Data, req, now.Add(req.PropagationDelay))
	leaf1 := leafOf(t, p)
	if leaf1.Equal(leaf0) || leaf1.CheckSignatureFrom(ca1) != nil {
		t.Fatalf("the leaf must be reissued by the new CA: %v", p.Reasons)
	}
	if n := len(parseCerts(p.Data[KeyCABundle])); n != 2 {
		t.Fatalf("bundle has %d CAs, want 2 until the old one expires", n)
	}

	// Stage 3: the old CA expired and leaves the bundle (the leaf was renewed meanwhile).
	later := ca0.NotAfter.Add(time.Second)
	p = mustPlan(t, p.Data, req, later)
	for _, c := range parseCerts(p.Data[KeyCABundle]) {
		if c.Equal(ca0) {
			t.Fatalf("expired CA still in the bundle")
		}
	}
}

// TestPlanRepeatedCARotationsKeepTheBundleSmall forces CA rotations faster than the serving
// certificate follows: the bundle stays bounded and still holds the CA of the served certificate.
func TestPlanRepeatedCARotationsKeepTheBundleSmall(t *testing.T) {
	req := baseRequest()
	p := mustPlan(t, nil, req, t0)
	leaf0 := leafOf(t, p)
	for i := 1; i <= 5; i++ {
		req.CAActiveSince, req.Rotate = p.CAActiveSince, RotateCA
		p = mustPlan(t, p.Data, req, t0.Add(time.Duration(i)*time.Second))
		if !leafOf(t, p).Equal(leaf0) {
			t.Fatalf("rotation %d replaced the leaf before the propagation delay", i)
		}
		if n := len(parseCerts(p.Data[KeyCABundle])); n > 1+maxOlderCAs+1 {
			t.Fatalf("rotation %d: bundle has %d CAs", i, n)
		}
	}
}

func TestPlanLeafNeverOutlivesItsCA(t *testing.T) {
	req := baseRequest()
	req.CertValidity = req.CAValidity
	p := mustPlan(t, nil, req, t0)
	if leafOf(t, p).NotAfter.After(currentCA(p).NotAfter) {
		t.Fatalf("leaf outlives its CA")
	}
}

func TestPlanRotationRejectsBadRequests(t *testing.T) {
	for _, req := range []Request{
		{CertValidity: time.Hour, CAValidity: time.Hour},
		{Hosts: hosts, CAValidity: time.Hour},
	} {
		if _, err := PlanRotation(nil, req, t0); err == nil {
			t.Errorf("PlanRotation(%+v) succeeded", req)
		}
	}
}

func with(data map[string][]byte, key string, value []byte) map[string][]byte {
	out := maps.Clone(data)
	if value == nil {
		delete(out, key)
	} else {
		out[key] = value
	}
	return out
}

func TestOptionsComplete(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "sys")
	tests := []struct {
		name    string
		opts    Options
		wantErr string
		hosts   []string
	}{
		{name: "zero value is cert-manager mode", opts: Options{}},
		{name: "unknown mode", opts: Options{Mode: "vault"}, wantErr: "is not one of"},
		{name: "self-signed needs a secret", opts: Options{Mode: ModeSelfSigned, ServiceName: "wh"}, wantErr: "--cert-secret"},
		{name: "self-signed needs a host", opts: Options{Mode: ModeSelfSigned, SecretName: "tls"}, wantErr: "--cert-service or --cert-hosts"},
		{name: "bad host", opts: Options{Mode: ModeSelfSigned, SecretName: "tls", Hosts: []string{"not a host"}}, wantErr: "neither"},
		{name: "leaf longer than CA", opts: Options{Mode: ModeSelfSigned, SecretName: "tls", ServiceName: "wh", CertValidity: 2 * time.Hour, CAValidity: time.Hour}, wantErr: "must not exceed"},
		{name: "service names and extra hosts", opts: Options{Mode: ModeSelfSigned, SecretName: "tls", ServiceName: "wh", Hosts: []string{"127.0.0.1", "wh"}},
			hosts: []string{"wh.sys.svc", "wh", "wh.sys", "wh.sys.svc.cluster.local", "127.0.0.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.opts
			err := o.Complete()
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Complete() = %v, want error containing %q", err, tc.wantErr)
			}
			if tc.hosts != nil && strings.Join(o.CertHosts(), ",") != strings.Join(tc.hosts, ",") {
				t.Fatalf("CertHosts() = %v, want %v", o.CertHosts(), tc.hosts)
			}
		})
	}
}
