package cors

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

// FuzzDecode: Decode takes user input (PluginConfig.spec.config, through the validating
// webhook and `cors-webhook validate`). For any bytes it must not panic and must return a
// config exactly when it reports no error; a config it accepts is the one encoding/json decodes
// from the same bytes, compiles or is refused by Compile without a panic, and, once compiled
// and normalized (the pod policy annotation), decodes and compiles again to the same
// normalized config.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{
		`{"allowOrigins":[{"exact":"http://www.aaa.com"},{"prefix":"http://www.bbb.com"},{"regex":"http.*://www.test.cn"}],"allowMethods":["POST","GET"],"allowHeaders":["X-Foo-Bar-1"],"exposeHeaders":["Content-Encoding"],"allowCredentials":true,"maxAge":"24h"}`,
		`{"allowOrigins":[{"wildcard":"https://*.example.com"}],"maxAge":86400,"unmatchedPreflights":"Ignore"}`,
		`{"allowOrigin":[{"exact":"x"}]}`,
		`{"allowOrigins":null,"maxAge":"1d"}`,
		`{"allowOrigins":[{"exact":"a","prefix":"b"}],"allowCredentials":"yes"}`,
		`null`, ``, `[]`, `{"allowOrigins":[{"regex":"(?=x)"}]}`,
	} {
		f.Add([]byte(seed))
	}
	path := field.NewPath("spec", "config")
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, errs := Decode(raw, path)
		if (cfg == nil) == (len(errs) == 0) {
			t.Fatalf("%q: config %v with errors %v", raw, cfg, errs)
		}
		if cfg == nil {
			return
		}
		var std corsconfig.CORSConfig
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&std); err != nil {
			t.Fatalf("%q: Decode accepts what encoding/json refuses: %v", raw, err)
		}
		if diff := cmp.Diff(&std, cfg, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%q: Decode differs from encoding/json (-encoding/json +Decode):\n%s", raw, diff)
		}
		if _, errs := Compile(cfg, path); len(errs) > 0 {
			return
		}
		norm, err := Normalize(cfg)
		if err != nil {
			t.Fatalf("%q: compiles but does not normalize: %v", raw, err)
		}
		again, err := json.Marshal(norm)
		if err != nil {
			t.Fatal(err)
		}
		cfg2, errs := Decode(again, path)
		if len(errs) > 0 {
			t.Fatalf("%q: its normalized form %s does not decode: %v", raw, again, errs)
		}
		if _, errs := Compile(cfg2, path); len(errs) > 0 {
			t.Fatalf("%q: its normalized form %s does not compile: %v", raw, again, errs)
		}
		norm2, err := Normalize(cfg2)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(norm, norm2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%q: normalizing twice differs:\n%s", raw, diff)
		}
	})
}
