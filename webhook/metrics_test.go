package webhook

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/validate"
)

// sumRejections is the total of the rejection counter over every reason of kind.
func sumRejections(kind string) float64 {
	total := 0.0
	for _, r := range append([]string{reasonDecode, reasonInternal}, validate.Reasons...) {
		total += testutil.ToFloat64(Rejections.WithLabelValues(kind, r))
	}
	return total
}

func TestRejectionsOncePerRequest(t *testing.T) {
	RegisterMetrics()
	scheme, err := clusterstate.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	r := clusterstate.NewSnapshot(&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pipy"}})
	configs := NewPluginConfigValidator(admission.NewDecoder(scheme), r, validate.Options{})
	// Four errors of three rules: a bad destinationRef, a bad exact origin twice, a bad maxAge.
	cfg := pluginConfig("pipy", "c", "cors-policy", "pipy-ok")
	cfg.Spec.DestinationRefs[0].Kind = "Deployment"
	cfg.Spec.Config.Raw = []byte(`{"allowOrigins":[{"exact":"http://a.com/"},{"exact":"http://b.com/"}],"maxAge":"1w"}`)
	before := sumRejections("PluginConfig")
	first := testutil.ToFloat64(Rejections.WithLabelValues("PluginConfig", validate.OriginDestinationRefs))
	resp := configs.Handle(context.Background(), request(t, admissionv1.Create, "pluginconfigs", cfg, nil))
	if resp.Allowed || len(resp.Result.Details.Causes) != 4 {
		t.Fatalf("response %+v", resp.Result)
	}
	if d := sumRejections("PluginConfig") - before; d != 1 {
		t.Errorf("one rejected request moved the counter by %v, want 1", d)
	}
	if d := testutil.ToFloat64(Rejections.WithLabelValues("PluginConfig", validate.OriginDestinationRefs)) - first; d != 1 {
		t.Errorf("the reason of the first error (destinationRefs) moved by %v, want 1", d)
	}
}

func TestMetricsPresentFromStart(t *testing.T) {
	RegisterMetrics()
	RegisterInjectionMetrics()
	want := len(validatedKinds) * (2 + len(validate.Reasons))
	if got := testutil.CollectAndCount(Rejections); got != want {
		t.Errorf("%d rejection series, want every kind and reason (%d)", got, want)
	}
	if got := testutil.CollectAndCount(Warnings); got != len(validatedKinds) {
		t.Errorf("%d warning series, want %d", got, len(validatedKinds))
	}
	if got := testutil.CollectAndCount(Injections); got != len(inject.Outcomes)+1 {
		t.Errorf("%d injection series, want %d", got, len(inject.Outcomes)+1)
	}
	// "injected" would claim more than the webhook knows.
	for _, o := range inject.Outcomes {
		if admissionOutcome(o) == string(inject.Injected) {
			t.Errorf("outcome %s is labelled %q: the API server may still refuse a patched pod", o, inject.Injected)
		}
	}
}

func TestServingCertificateExpiry(t *testing.T) {
	notAfter := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	SetServingCertificate(func() (*x509.Certificate, error) { return &x509.Certificate{NotAfter: notAfter}, nil })
	if got := testutil.ToFloat64(ServingCertificateExpiry); got != float64(notAfter.Unix()) {
		t.Errorf("expiry %v, want %v", got, notAfter.Unix())
	}
	SetServingCertificate(func() (*x509.Certificate, error) { return nil, errors.New("no certificate yet") })
	if got := testutil.ToFloat64(ServingCertificateExpiry); got != 0 {
		t.Errorf("expiry without a certificate %v, want 0", got)
	}
}

func TestInjectionMetricsByNamespace(t *testing.T) {
	RegisterMetrics()
	const ns = "injection-metrics-test"
	for _, tc := range []struct {
		outcome                string
		success, skip, failure float64
		skipReason             string
	}{
		{outcome: outcomePatched, success: 1},
		{outcome: string(inject.NotSelected), skip: 1, skipReason: string(inject.NotSelected)},
		{outcome: string(inject.HostNetwork), skip: 1, skipReason: string(inject.HostNetwork)},
		{outcome: outcomeError, failure: 1},
	} {
		t.Run(tc.outcome, func(t *testing.T) {
			value := func() (req, success, skip, failure float64) {
				req = testutil.ToFloat64(InjectionRequests.WithLabelValues(ns))
				success = testutil.ToFloat64(InjectionSuccesses.WithLabelValues(ns))
				if tc.skipReason != "" {
					skip = testutil.ToFloat64(InjectionSkips.WithLabelValues(ns, tc.skipReason))
				}
				failure = testutil.ToFloat64(InjectionFailures.WithLabelValues(ns))
				return
			}
			r0, s0, k0, f0 := value()
			countInjection(ns, tc.outcome)
			r1, s1, k1, f1 := value()
			if r1-r0 != 1 || s1-s0 != tc.success || k1-k0 != tc.skip || f1-f0 != tc.failure {
				t.Errorf("requests +%v success +%v skip +%v failure +%v, want +1 +%v +%v +%v",
					r1-r0, s1-s0, k1-k0, f1-f0, tc.success, tc.skip, tc.failure)
			}
		})
	}
}
