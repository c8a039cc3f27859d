package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/validate"
)

func request(t *testing.T, op admissionv1.Operation, resource string, obj, old runtime.Object) admission.Request {
	t.Helper()
	raw := func(o runtime.Object) runtime.RawExtension {
		if o == nil {
			return runtime.RawExtension{}
		}
		b, err := json.Marshal(o)
		if err != nil {
			t.Fatal(err)
		}
		return runtime.RawExtension{Raw: b}
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID:       "1",
		Operation: op,
		Resource:  metav1.GroupVersionResource{Group: v1alpha1.GroupVersion.Group, Version: "v1alpha1", Resource: resource},
		Object:    raw(obj),
		OldObject: raw(old),
	}}
	if m, ok := obj.(metav1.Object); ok {
		req.Name, req.Namespace = m.GetName(), m.GetNamespace()
	}
	return req
}

func seedConfigObject() *v1alpha1.PluginConfig {
	c := pluginConfig("pipy", "cors-policy-config", "cors-policy", "pipy-ok")
	c.Spec.Config.Raw = []byte(`{"allowCredentials":true,"allowOrigins":[{"regex":"http.*://www.test.cn"},{"exact":"http://www.aaa.com"},{"prefix":"http://www.bbb.com"}],"maxAge":"24h"}`)
	return c
}

func TestValidatingHandlers(t *testing.T) {
	RegisterMetrics()
	scheme, err := clusterstate.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	decoder := admission.NewDecoder(scheme)
	opts := validate.Options{Plugins: chains.NewPlugins("cors-policy", "cors-b")}
	existing := chain("pipy", "existing", "cors-b", selector(map[string]string{"app": "a"}), nil)
	r := clusterstate.NewSnapshot(
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "pipy"}},
		existing,
	)
	plugins := NewPluginValidator(decoder, opts)
	chains := NewPluginChainValidator(decoder, r, opts)
	configs := NewPluginConfigValidator(decoder, r, opts)
	ctx := context.Background()

	t.Run("valid config with warnings", func(t *testing.T) {
		resp := configs.Handle(ctx, request(t, admissionv1.Create, "pluginconfigs", seedConfigObject(), nil))
		if !resp.Allowed {
			t.Fatalf("denied: %+v", resp.Result)
		}
		joined := strings.Join(resp.Warnings, "\n")
		for _, want := range []string{"spec.config.allowOrigins[0].regex: regex 'http.*://www.test.cn' is not anchored", "spec.config.allowOrigins[2].prefix"} {
			if !strings.Contains(joined, want) {
				t.Errorf("warnings %q lack %q", resp.Warnings, want)
			}
		}
	})

	t.Run("invalid config is 422 Invalid with one cause per field error", func(t *testing.T) {
		before := testutil.ToFloat64(Rejections.WithLabelValues("PluginConfig", validate.OriginCORSConfig))
		cfg := seedConfigObject()
		cfg.Spec.Config.Raw = []byte(`{"allowOrigins":[{"regex":"(?=x)"}],"maxAge":"1w"}`)
		resp := configs.Handle(ctx, request(t, admissionv1.Create, "pluginconfigs", cfg, nil))
		if resp.Allowed || resp.Result.Code != http.StatusUnprocessableEntity || resp.Result.Reason != metav1.StatusReasonInvalid {
			t.Fatalf("response %+v", resp.Result)
		}
		if d := resp.Result.Details; d == nil || d.Kind != "PluginConfig" || d.Name != "cors-policy-config" || len(d.Causes) != 2 ||
			d.Causes[0].Field != "spec.config.allowOrigins[0].regex" || d.Causes[1].Field != "spec.config.maxAge" {
			t.Errorf("details %+v", resp.Result.Details)
		}
		if !strings.Contains(resp.Result.Message, "lookahead") {
			t.Errorf("message %q does not explain the lookahead", resp.Result.Message)
		}
		if got := testutil.ToFloat64(Rejections.WithLabelValues("PluginConfig", validate.OriginCORSConfig)); got != before+1 {
			t.Errorf("rejections{PluginConfig,corsConfig} = %v, want %v", got, before+1)
		}
	})

	t.Run("conflicting chain is 403 Forbidden naming the other chain", func(t *testing.T) {
		resp := chains.Handle(ctx, request(t, admissionv1.Create, "pluginchains", chain("pipy", "new", "cors-policy", nil, nil), nil))
		if resp.Allowed || resp.Result.Code != http.StatusForbidden || resp.Result.Reason != metav1.StatusReasonForbidden {
			t.Fatalf("response %+v", resp.Result)
		}
		want := `pluginchains.plugin.flomesh.io "new" is forbidden: spec.selectors: Forbidden: selects the same pods as PluginChain pipy/existing`
		if !strings.Contains(resp.Result.Message, want) || !strings.Contains(resp.Result.Message, `pods labelled {app=a} in namespace "pipy"`) {
			t.Errorf("message %q", resp.Result.Message)
		}
	})

	t.Run("an update that creates a conflict is rejected, one that keeps the spec is not", func(t *testing.T) {
		old := chain("pipy", "mine", "cors-policy", selector(map[string]string{"app": "b"}), nil)
		upd := old.DeepCopy()
		upd.Spec.Selectors.PodSelector = nil
		if resp := chains.Handle(ctx, request(t, admissionv1.Update, "pluginchains", upd, old)); resp.Allowed {
			t.Error("conflicting update allowed")
		}
		conflicting := upd.DeepCopy()
		conflicting.Labels = map[string]string{"x": "y"}
		if resp := chains.Handle(ctx, request(t, admissionv1.Update, "pluginchains", conflicting, upd)); !resp.Allowed {
			t.Errorf("metadata-only update denied: %+v", resp.Result)
		}
	})

	t.Run("namespace is taken from the request", func(t *testing.T) {
		c := chain("", "new", "cors-policy", nil, nil)
		req := request(t, admissionv1.Create, "pluginchains", c, nil)
		req.Namespace = "pipy"
		if resp := chains.Handle(ctx, req); resp.Allowed {
			t.Error("chain conflicting in the request's namespace allowed")
		}
	})

	t.Run("delete is never blocked", func(t *testing.T) {
		for _, h := range []admission.Handler{plugins, chains, configs} {
			req := request(t, admissionv1.Delete, "pluginchains", nil, chain("pipy", "existing", "cors-b", nil, nil))
			if resp := h.Handle(ctx, req); !resp.Allowed {
				t.Errorf("delete denied: %+v", resp.Result)
			}
		}
	})

	t.Run("undecodable object is 400", func(t *testing.T) {
		req := request(t, admissionv1.Create, "plugins", nil, nil)
		req.Object.Raw = []byte(`{"spec":{"priority":"high"}}`)
		if resp := plugins.Handle(ctx, req); resp.Allowed || resp.Result.Code != http.StatusBadRequest {
			t.Errorf("response %+v", resp.Result)
		}
	})

	t.Run("a failing store is 500, not a verdict", func(t *testing.T) {
		h := NewPluginChainValidator(decoder, failingReader{r}, opts)
		resp := h.Handle(ctx, request(t, admissionv1.Create, "pluginchains", chain("pipy", "new", "cors-policy", nil, nil), nil))
		if resp.Allowed || resp.Result.Code != http.StatusInternalServerError {
			t.Errorf("response %+v", resp.Result)
		}
	})
}

// failingReader fails the chain lookups, as a cache that cannot sync would.
type failingReader struct{ clusterstate.Reader }

func (failingReader) PluginChainsWithNamespaceSelector() ([]*v1alpha1.PluginChain, error) {
	return nil, errors.New("cache not synced")
}

func TestValidatePaths(t *testing.T) {
	want := map[string]string{"Plugin": ValidatePluginPath, "PluginChain": ValidatePluginChainPath, "PluginConfig": ValidatePluginConfigPath}
	if len(validate.Kinds) != len(want) {
		t.Fatalf("%d kinds, want %d", len(validate.Kinds), len(want))
	}
	for _, k := range validate.Kinds {
		if got := ValidatePath(k); got != want[k.Name()] {
			t.Errorf("ValidatePath(%s) = %s, want %s", k.Name(), got, want[k.Name()])
		}
	}
}
