package cors

import (
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

// wantErr describes one expected field error: its type, path and words its detail must hold.
type wantErr struct {
	typ    field.ErrorType
	field  string
	detail []string
}

func checkErrs(t *testing.T, got field.ErrorList, want []wantErr) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.Type != w.typ || g.Field != w.field {
			t.Errorf("error %d = %s %s (%q), want %s %s", i, g.Type, g.Field, g.Detail, w.typ, w.field)
		}
		for _, s := range w.detail {
			if !strings.Contains(g.Error(), s) {
				t.Errorf("error %d %q does not contain %q", i, g.Error(), s)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	maxAge := func(v intstr.IntOrString) *intstr.IntOrString { return &v }
	tests := []struct {
		name string
		raw  string
		want *corsconfig.CORSConfig
		errs []wantErr
	}{
		{
			name: "minimal",
			raw:  `{"allowOrigins":[{"exact":"http://a.example"}]}`,
			want: &corsconfig.CORSConfig{AllowOrigins: []corsconfig.OriginMatcher{{Exact: "http://a.example"}}},
		},
		{
			name: "all fields, maxAge as integer",
			raw: `{"allowOrigins":[{"prefix":"https://p"},{"regex":"^x$"}],"allowMethods":["GET"],"allowHeaders":["X-A"],
			       "exposeHeaders":["X-B"],"allowCredentials":false,"maxAge":3600}`,
			want: &corsconfig.CORSConfig{
				AllowOrigins:  []corsconfig.OriginMatcher{{Prefix: "https://p"}, {Regex: "^x$"}},
				AllowMethods:  []string{"GET"},
				AllowHeaders:  []string{"X-A"},
				ExposeHeaders: []string{"X-B"},
				MaxAge:        maxAge(intstr.FromInt32(3600)),
			},
		},
		{
			name: "maxAge as string",
			raw:  `{"allowOrigins":[{"exact":"x"}],"maxAge":"3600"}`,
			want: &corsconfig.CORSConfig{AllowOrigins: []corsconfig.OriginMatcher{{Exact: "x"}}, MaxAge: maxAge(intstr.FromString("3600"))},
		},
		{
			name: "null counts as absent",
			raw:  `{"allowOrigins":[{"exact":"x","prefix":null}],"allowMethods":null,"allowCredentials":null,"maxAge":null}`,
			want: &corsconfig.CORSConfig{AllowOrigins: []corsconfig.OriginMatcher{{Exact: "x"}}},
		},
		{
			name: "empty object decodes; Compile requires allowOrigins",
			raw:  `{}`,
			want: &corsconfig.CORSConfig{},
		},
		{name: "empty raw", raw: ``, errs: []wantErr{{field.ErrorTypeRequired, "spec.config", nil}}},
		{name: "null raw", raw: ` null `, errs: []wantErr{{field.ErrorTypeRequired, "spec.config", nil}}},
		{
			name: "not an object",
			raw:  `["x"]`,
			errs: []wantErr{{field.ErrorTypeTypeInvalid, "spec.config", []string{"must be of type object, got array"}}},
		},
		{
			name: "invalid JSON",
			raw:  `{"allowOrigins":`,
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config", []string{"invalid JSON"}}},
		},
		{
			name: "trailing data",
			raw:  `{} {}`,
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config", []string{"unexpected data after the object"}}},
		},
		{
			name: "unknown field allowOrigin suggests allowOrigins",
			raw:  `{"allowOrigin":[{"exact":"x"}]}`,
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigin", []string{`unknown field "allowOrigin"`, `did you mean "allowOrigins"?`}}},
		},
		{
			name: "unknown field allowedMethods suggests allowMethods",
			raw:  `{"allowOrigins":[{"exact":"x"}],"allowedMethods":["GET"]}`,
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowedMethods", []string{`unknown field "allowedMethods"`, `did you mean "allowMethods"?`}}},
		},
		{
			name: "field names are case-sensitive, with a suggestion",
			raw:  `{"AllowOrigins":[{"exact":"x"}],"MAXAGE":"1h"}`,
			errs: []wantErr{
				{field.ErrorTypeInvalid, "spec.config.AllowOrigins", []string{`did you mean "allowOrigins"?`}},
				{field.ErrorTypeInvalid, "spec.config.MAXAGE", []string{`did you mean "maxAge"?`}},
			},
		},
		{
			name: "unknown field without a close match lists the known ones",
			raw:  `{"allowOrigins":[{"exact":"x"}],"credentials":true}`,
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.credentials", []string{`unknown field "credentials"`, "known fields: allowCredentials, allowHeaders"}}},
		},
		{
			name: "unknown field set to null is still unknown",
			raw:  `{"allowOrigins":[{"exact":"x","exacts":null}],"allowOrigin":null}`,
			errs: []wantErr{
				{field.ErrorTypeInvalid, "spec.config.allowOrigins[0].exacts", []string{`did you mean "exact"?`}},
				{field.ErrorTypeInvalid, "spec.config.allowOrigin", []string{`did you mean "allowOrigins"?`}},
			},
		},
		{
			name: "nested unknown field exacts suggests exact",
			raw:  `{"allowOrigins":[{"exact":"x"},{"exacts":"y"}]}`,
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigins[1].exacts", []string{`unknown field "exacts"`, `did you mean "exact"?`}}},
		},
		{
			name: "nested unknown field regexp suggests regex",
			raw:  `{"allowOrigins":[{"regexp":"x"}]}`,
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.allowOrigins[0].regexp", []string{`did you mean "regex"?`}}},
		},
		{
			name: "duplicate field",
			raw:  `{"allowOrigins":[{"exact":"x"}],"maxAge":"1h","maxAge":"2h"}`,
			errs: []wantErr{{field.ErrorTypeDuplicate, "spec.config.maxAge", []string{"more than once"}}},
		},
		{
			name: "type errors are reported at their paths, all at once",
			raw: `{"allowOrigins":"http://a","allowMethods":"GET","allowHeaders":[1],"exposeHeaders":{},
			       "allowCredentials":"true","maxAge":true}`,
			errs: []wantErr{
				{field.ErrorTypeTypeInvalid, "spec.config.allowOrigins", []string{`"http://a"`, "must be of type array, got string"}},
				{field.ErrorTypeTypeInvalid, "spec.config.allowMethods", []string{"must be of type array, got string"}},
				{field.ErrorTypeTypeInvalid, "spec.config.allowHeaders[0]", []string{"Invalid value: 1", "must be of type string, got number"}},
				{field.ErrorTypeTypeInvalid, "spec.config.exposeHeaders", []string{"must be of type array, got object"}},
				{field.ErrorTypeTypeInvalid, "spec.config.allowCredentials", []string{"must be of type boolean, got string"}},
				{field.ErrorTypeTypeInvalid, "spec.config.maxAge", []string{"must be of type string or integer, got boolean"}},
			},
		},
		{
			name: "origin entry of the wrong type",
			raw:  `{"allowOrigins":["http://a",{"exact":1}]}`,
			errs: []wantErr{
				{field.ErrorTypeTypeInvalid, "spec.config.allowOrigins[0]", []string{`must be of type object, with one of "exact", "prefix", "regex" or "wildcard", got string`}},
				{field.ErrorTypeTypeInvalid, "spec.config.allowOrigins[1].exact", []string{"must be of type string, got number"}},
			},
		},
		{
			name: "fractional maxAge",
			raw:  `{"allowOrigins":[{"exact":"x"}],"maxAge":1.5}`,
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.maxAge", []string{"whole number of seconds"}}},
		},
		{
			name: "maxAge beyond int32",
			raw:  `{"allowOrigins":[{"exact":"x"}],"maxAge":3000000000}`,
			errs: []wantErr{{field.ErrorTypeInvalid, "spec.config.maxAge", []string{"out of range"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := Decode([]byte(tt.raw), field.NewPath("spec", "config"))
			checkErrs(t, errs, tt.errs)
			if len(tt.errs) > 0 {
				if got != nil {
					t.Errorf("Decode returned a config with errors: %+v", got)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Decode =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct{ name, want string }{
		{"allowOrigin", "allowOrigins"},
		{"allowedOrigins", "allowOrigins"},
		{"allowedMethods", "allowMethods"},
		{"allowedHeaders", "allowHeaders"},
		{"exposedHeaders", "exposeHeaders"},
		{"allowCredential", "allowCredentials"},
		{"ALLOWORIGINS", "allowOrigins"},
		{"maxage", "maxAge"},
		{"maxAgeSeconds", ""},
		{"origins", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.name, configFields); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}
