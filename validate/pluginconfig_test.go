package validate

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// configWith returns a PluginConfig pipy/c of plugin cors-policy for Service pipy-ok with the
// given spec.config (YAML, indented by the caller at column 0).
func configWith(t *testing.T, config string) *v1alpha1.PluginConfig {
	t.Helper()
	return configSpec(t, "plugin: cors-policy\ndestinationRefs: [{kind: Service, name: pipy-ok}]\nconfig:\n"+indent(config, "  "))
}

// configSpec returns a PluginConfig pipy/c with the given spec (YAML at column 0).
func configSpec(t *testing.T, spec string) *v1alpha1.PluginConfig {
	t.Helper()
	return mustYAML[v1alpha1.PluginConfig](t, "metadata: {name: c, namespace: pipy}\nspec:\n"+indent(spec, "  "))
}

func indent(s, prefix string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = prefix + l
	}
	return strings.Join(lines, "\n") + "\n"
}

func TestPluginConfigSeed(t *testing.T) {
	r := clusterstate.NewSnapshot(append(seedServices(), corsPlugin("cors-policy"), fsmNamespace("pipy"))...)
	errs, warnings := PluginConfigCreate(r, seedConfig(t), Options{})
	checkResult(t, errs, warnings, nil, []string{
		`spec.config.allowOrigins[0].regex: regex 'http.*://www.test.cn' is not anchored`,
		`spec.config.allowOrigins[0].regex: regex 'http.*://www.test.cn' has an unescaped "."`,
		`spec.config.allowOrigins[2].prefix: prefix "http://www.bbb.com" has no host boundary: it also matches "http://www.bbb.com.evil.example"`,
		`spec.config.maxAge: 24h (86400s) is longer than browsers cache a preflight`,
	}, true)

	// In strict mode the three security warnings are errors; the maxAge warning stays one.
	errs, warnings = PluginConfigCreate(r, seedConfig(t), Options{Strict: true})
	checkResult(t, errs, warnings, []wantErr{
		{"spec.config.allowOrigins[0].regex", "not anchored"},
		{"spec.config.allowOrigins[0].regex", "unescaped"},
		{"spec.config.allowOrigins[2].prefix", "no host boundary"},
	}, []string{"spec.config.maxAge"}, true)
	for _, e := range errs {
		if e.Origin != OriginStrict {
			t.Errorf("strict error %v has origin %q", e, e.Origin)
		}
	}
}

const goodOrigins = "allowOrigins: [{exact: 'http://www.aaa.com'}]\n"

// corsRuleTests are spec.config values ("-" for none) with the errors and warnings they get.
// TestSuggestedFixesValidateClean also runs every fix their messages suggest.
var corsRuleTests = []struct {
	name     string
	config   string
	errs     []wantErr
	warnings []string
}{
	{name: "minimal config", config: goodOrigins},
	{name: "no config", config: "-", errs: []wantErr{{"spec.config", "Required value"}}},
	{name: "config not an object", config: "[1]", errs: []wantErr{{"spec.config", "must be of type object"}}},
	{name: "allowOrigins missing", config: "allowMethods: [GET]", errs: []wantErr{{"spec.config.allowOrigins", "Required value"}}},
	{name: "allowOrigins empty", config: "allowOrigins: []", errs: []wantErr{{"spec.config.allowOrigins", "Required value"}}},
	{name: "unknown field with suggestion", config: goodOrigins + "allowOrigin: [{exact: 'http://a.com'}]",
		errs: []wantErr{{"spec.config.allowOrigin", `did you mean "allowOrigins"?`}}},
	{name: "unknown matcher field", config: "allowOrigins: [{exac: 'http://a.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exac", `did you mean "exact"?`}}},
	{name: "entry without matcher", config: "allowOrigins: [{}]",
		errs: []wantErr{{"spec.config.allowOrigins[0]", "exactly one of"}}},
	{name: "entry with two matchers", config: "allowOrigins: [{exact: 'http://a.com', prefix: 'http://a.com:'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].prefix", "may not be set together with exact"}}},
	{name: "exact with a path", config: "allowOrigins: [{exact: 'http://www.aaa.com/app'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", "must not have a path"}}},
	{name: "exact with a trailing slash", config: "allowOrigins: [{exact: 'http://www.aaa.com/'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", "must not end with a slash"}}},
	{name: "exact without scheme", config: "allowOrigins: [{exact: 'www.aaa.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", "serialized origin"}}},
	{name: "exact in upper case", config: "allowOrigins: [{exact: 'http://WWW.aaa.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", `use "http://www.aaa.com"`}}},
	{name: "exact with default port", config: "allowOrigins: [{exact: 'https://a.com:443'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", "default port"}}},
	{name: "regex that does not compile", config: "allowOrigins: [{regex: '^http://(a$'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].regex", "missing closing )"}}},
	{name: "regex with a JavaScript lookahead", config: `allowOrigins: [{regex: '^https://(?!evil)[a-z]+\.com$'}]`,
		errs: []wantErr{{"spec.config.allowOrigins[0].regex", "lookahead"}}},
	{name: "prefix with a path", config: "allowOrigins: [{prefix: 'http://a.com/x'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].prefix", "can never match"}}},
	{name: "method that is not a token", config: goodOrigins + "allowMethods: ['GET POST']",
		errs: []wantErr{{"spec.config.allowMethods[0]", "HTTP method token"}}},
	{name: "header name that is not a token", config: goodOrigins + "allowHeaders: ['X-Foo: 1']",
		errs: []wantErr{{"spec.config.allowHeaders[0]", "header field name"}}},
	{name: "expose header that is not a token", config: goodOrigins + "exposeHeaders: ['']",
		errs: []wantErr{{"spec.config.exposeHeaders[0]", "header field name"}}},
	{name: "allowCredentials not a boolean", config: goodOrigins + "allowCredentials: 'yes'",
		errs: []wantErr{{"spec.config.allowCredentials", "must be of type boolean"}}},
	{name: "maxAge negative", config: goodOrigins + "maxAge: -1h", errs: []wantErr{{"spec.config.maxAge", "negative"}}},
	{name: "maxAge in weeks", config: goodOrigins + "maxAge: 1w", errs: []wantErr{{"spec.config.maxAge", "Go duration"}}},
	{name: "maxAge forms", config: goodOrigins + "maxAge: 3600"},
	{name: "maxAge in days", config: goodOrigins + "maxAge: 1d", warnings: []string{"spec.config.maxAge: 1d (86400s) is longer than browsers"}},
	{name: "the null origin", config: "allowOrigins: [{exact: 'null'}]",
		warnings: []string{`spec.config.allowOrigins[0].exact: exact "null" allows the origin "null"`}},
	{name: "credentials with any origin", config: "allowCredentials: true\nallowOrigins: [{regex: '.*'}]",
		warnings: []string{`spec.config.allowOrigins[0].regex: regex '.*' matches any origin`}},
	{name: "any origin without credentials", config: "allowOrigins: [{regex: '^https?://'}]"},
	{name: "credentials with a scheme-wide prefix", config: "allowCredentials: true\nallowOrigins: [{prefix: 'https://'}]",
		warnings: []string{`prefix "https://" matches any origin`}},
	{name: "anchored escaped regex", config: `allowOrigins: [{regex: '^https://([a-z]+\.)?test\.cn(:[0-9]+)?$'}]`},
	{name: "bounded prefix", config: `allowOrigins: [{prefix: 'http://www.bbb.com:'}]`},
	// Real-world mistakes.
	{name: "wildcard subdomain as a prefix", config: "allowOrigins: [{prefix: 'https://*.example.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].prefix", `use regex '^https://([a-z0-9-]+\.)+example\.com(:[0-9]+)?$'`}}},
	{name: "wildcard subdomain as exact", config: "allowOrigins: [{exact: 'https://*.example.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", `use wildcard "https://*.example.com"`}}},
	{name: "unanchored subdomain regex", config: `allowOrigins: [{regex: 'https://.*\.example\.com'}]`,
		warnings: []string{`spec.config.allowOrigins[0].regex: regex 'https://.*\.example\.com' is not anchored with ^ and $: it is searched anywhere in the Origin, so origins that merely contain a match pass too; use wildcard "https://*.example.com"`}},
	{name: "unanchored subdomain regex with a port and bare dots", config: `allowOrigins: [{regex: 'http://([a-z0-9-]+\.)+example.com:8080'}]`,
		warnings: []string{
			`spec.config.allowOrigins[0].regex: regex 'http://([a-z0-9-]+\.)+example.com:8080' is not anchored with ^ and $: it is searched anywhere in the Origin, so origins that merely contain a match pass too; use wildcard "http://*.example.com:8080"`,
			`spec.config.allowOrigins[0].regex: regex 'http://([a-z0-9-]+\.)+example.com:8080' has an unescaped ".", which matches any character, not only a dot; use wildcard "http://*.example.com:8080"`,
		}},
	// GEP-1767 additions (opt-in).
	{name: "wildcard origins", config: "allowOrigins: [{wildcard: 'https://*.example.com'}, {wildcard: 'http://*.example.com:8080'}]"},
	{name: "wildcard that is not GEP-1767's form", config: "allowOrigins: [{exact: 'https://a.example'}, {wildcard: 'https://api-*.example.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[1].wildcard", `may have "*" only as the whole first label`}}},
	{name: "wildcard in upper case", config: "allowOrigins: [{wildcard: 'https://*.Example.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].wildcard", "lower case"}}},
	{name: "wildcard without a wildcard", config: "allowOrigins: [{wildcard: 'https://example.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].wildcard", `use exact "https://example.com"`}}},
	{name: "wildcard together with exact", config: "allowOrigins: [{exact: 'https://a.example', wildcard: 'https://*.example.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].wildcard", "may not be set together with exact"}}},
	{name: "wildcard misspelt", config: "allowOrigins: [{wildcards: 'https://*.example.com'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].wildcards", `did you mean "wildcard"?`}}},
	{name: "wildcard over a top-level domain", config: "allowOrigins: [{wildcard: 'https://*.com'}]",
		warnings: []string{`spec.config.allowOrigins[0].wildcard: wildcard "https://*.com" allows every site under the top-level domain "com"`}},
	{name: "any origin with credentials", config: "allowCredentials: true\nallowOrigins: [{wildcard: '*'}]",
		warnings: []string{`spec.config.allowOrigins[0].wildcard: wildcard "*" matches any origin`}},
	{name: "any origin without credentials", config: "allowOrigins: [{wildcard: '*'}]"},
	{name: "unmatchedPreflights Ignore", config: goodOrigins + "unmatchedPreflights: Ignore"},
	{name: "unmatchedPreflights Forward", config: goodOrigins + "unmatchedPreflights: Forward"},
	{name: "unmatchedPreflights unknown", config: goodOrigins + "unmatchedPreflights: Reject",
		errs: []wantErr{{"spec.config.unmatchedPreflights", `Unsupported value: "Reject": supported values: "Forward", "Ignore"`}}},
	{name: "unmatchedPreflights misspelt", config: goodOrigins + "unmatchedPreflight: Ignore",
		errs: []wantErr{{"spec.config.unmatchedPreflight", `did you mean "unmatchedPreflights"?`}}},
	{name: "nginx-style list of origins", config: "allowOrigins: [{exact: 'https://a.example, https://b.example'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", `split it into entries {exact: "https://a.example"}, {exact: "https://b.example"}`}}},
	{name: "non-compressed IPv6", config: "allowOrigins: [{exact: 'http://[2001:db8:0:0:0:0:0:1]'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", `(use "http://[2001:db8::1]")`}}},
	{name: "IPv4-mapped IPv6", config: "allowOrigins: [{exact: 'http://[::ffff:10.0.0.1]'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", `(use "http://[::ffff:a00:1]")`}}},
	{name: "octal IPv4", config: "allowOrigins: [{exact: 'http://010.0.0.1'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", `(use "http://8.0.0.1")`}}},
	{name: "lower-case method Fetch does not normalize", config: goodOrigins + "allowMethods: [GET, patch, delete]",
		warnings: []string{`spec.config.allowMethods[1]: browsers compare methods case-sensitively and normalize only DELETE, GET, HEAD, OPTIONS, POST, PUT, so "patch" allows only requests that spell it "patch"; the usual spelling is "PATCH" (use "PATCH")`}},
	// With credentials the sidecar echoes the requested method and headers for "*"; only
	// exposeHeaders has nothing to echo.
	{name: "wildcard headers with credentials", config: goodOrigins + "allowCredentials: true\nallowHeaders: ['*']\nallowMethods: [GET, '*']\nexposeHeaders: ['*']",
		warnings: []string{
			`spec.config.exposeHeaders[0]: "*" is a wildcard only for requests without credentials: with allowCredentials: true browsers would take it literally, so the sidecar leaves it out`,
		}},
	{name: "wildcard headers without credentials", config: goodOrigins + "allowHeaders: ['*']\nallowMethods: ['*']\nexposeHeaders: ['*']"},
	// Limits.
	{name: "a 420 KB regex", config: "allowOrigins: [{regex: '^https://(" + strings.Repeat("a", 420*1024) + ")$'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].regex", "Too long: may not be more than 1024 bytes"}}},
	{name: "too many origins", config: "allowOrigins: [" + strings.Repeat("{exact: 'https://a.example'}, ", MaxOrigins) + "{exact: 'https://b.example'}]",
		errs: []wantErr{{"spec.config.allowOrigins", "Too many: 101: must have at most 100 items"}}},
	{name: "an origin too long", config: "allowOrigins: [{exact: 'https://" + strings.Repeat("a", MaxOriginLength) + ".example'}]",
		errs: []wantErr{{"spec.config.allowOrigins[0].exact", "Too long: may not be more than 300 bytes"}}},
	{name: "too many headers", config: goodOrigins + "allowHeaders: [" + strings.Repeat("x-a, ", MaxListItems) + "x-b]",
		errs: []wantErr{{"spec.config.allowHeaders", "Too many: 65"}}},
	{name: "a header name too long", config: goodOrigins + "exposeHeaders: [x-" + strings.Repeat("a", MaxTokenLength) + "]",
		errs: []wantErr{{"spec.config.exposeHeaders[0]", "Too long: may not be more than 128 bytes"}}},
	{name: "config too large in total", config: "allowOrigins: [" + strings.Repeat("{regex: '^https://"+strings.Repeat("a", 100)+"\\.example$'}, ", MaxOrigins-1) + "{exact: 'https://b.example'}]",
		errs: []wantErr{{"spec.config", "Too long: may not be more than 8192 bytes in the pod annotation"}}},
	{name: "largest config within every limit", config: largestConfig()},
}

// largestConfig is a config just under MaxConfigBytes, made of entries within their limits.
func largestConfig() string {
	var b strings.Builder
	b.WriteString("allowOrigins: [")
	for i := range 26 {
		fmt.Fprintf(&b, "{exact: 'https://%s%02d.example'}, ", strings.Repeat("a", 280), i)
	}
	b.WriteString("{exact: 'https://b.example'}]\n")
	return b.String()
}

func TestPluginConfigCORSRules(t *testing.T) {
	r := clusterstate.NewSnapshot(append(seedServices(), corsPlugin("cors-policy"), fsmNamespace("pipy"))...)
	for _, tt := range corsRuleTests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg *v1alpha1.PluginConfig
			if tt.config == "-" {
				cfg = configSpec(t, "plugin: cors-policy\ndestinationRefs: [{kind: Service, name: pipy-ok}]")
			} else {
				cfg = configWith(t, tt.config)
			}
			errs, warnings := PluginConfigCreate(r, cfg, Options{})
			checkResult(t, errs, warnings, tt.errs, tt.warnings, true)
		})
	}
}

func TestPluginConfigGenericRules(t *testing.T) {
	const cfg = "config: {allowOrigins: [{exact: 'http://a.com'}]}\n"
	tests := []struct {
		name     string
		spec     string
		opts     Options
		errs     []wantErr
		warnings []string
	}{
		{name: "plugin missing", spec: cfg, errs: []wantErr{{"spec.plugin", "Required value"}}},
		{name: "plugin not a name", spec: cfg + "plugin: Cors_Policy", errs: []wantErr{{"spec.plugin", "must be the name of a Plugin"}}},
		{name: "no destinationRefs", spec: cfg + "plugin: cors-policy", warnings: []string{"spec.destinationRefs: names no Service"}},
		{name: "destinationRef of another kind", spec: cfg + "plugin: cors-policy\ndestinationRefs: [{kind: Deployment, name: pipy-ok}]",
			errs: []wantErr{{"spec.destinationRefs[0].kind", `Unsupported value: "Deployment"`}}},
		{name: "destinationRef without kind", spec: cfg + "plugin: cors-policy\ndestinationRefs: [{name: pipy-ok}]",
			errs: []wantErr{{"spec.destinationRefs[0].kind", "Required value"}}},
		{name: "destinationRef without name", spec: cfg + "plugin: cors-policy\ndestinationRefs: [{kind: Service}]",
			errs: []wantErr{{"spec.destinationRefs[0].name", "Required value"}}},
		{name: "destinationRef in another namespace", spec: cfg + "plugin: cors-policy\ndestinationRefs: [{kind: Service, name: pipy-ok, namespace: curl}]",
			errs: []wantErr{{"spec.destinationRefs[0].namespace", `own namespace "pipy"`}}},
		{name: "destinationRef twice", spec: cfg + "plugin: cors-policy\ndestinationRefs: [{kind: Service, name: pipy-ok}, {kind: Service, name: pipy-ok}]",
			errs: []wantErr{{"spec.destinationRefs[1].name", "Duplicate value"}}},
		{name: "destinationRef of another apiVersion", spec: cfg + "plugin: cors-policy\ndestinationRefs: [{kind: Service, apiVersion: apps/v1, name: pipy-ok}]",
			errs: []wantErr{{"spec.destinationRefs[0].apiVersion", "Unsupported value"}}},
		{name: "undeclared CORS plugin", spec: cfg + "plugin: cors-other\ndestinationRefs: [{kind: Service, name: pipy-ok}]",
			opts: Options{Plugins: chains.NewPlugins("cors-policy", "cors-other")}, warnings: []string{`spec.plugin: Plugin "cors-other" is not declared`}},
		{name: "non-CORS plugin: config not checked", spec: "plugin: rate-limit\nconfig: {anything: [1]}\ndestinationRefs: [{kind: Service, name: pipy-ok}]",
			warnings: []string{`spec.plugin: "rate-limit" is not a CORS plugin (--cors-plugins=cors-policy)`}},
		{name: "non-CORS plugin: destinationRefs still checked", spec: "plugin: rate-limit\ndestinationRefs: [{kind: Pod, name: x}]",
			errs: []wantErr{{"spec.destinationRefs[0].kind", "Unsupported value"}}, warnings: []string{"not a CORS plugin"}},
	}
	r := clusterstate.NewSnapshot(append(seedServices(), corsPlugin("cors-policy"), fsmNamespace("pipy"))...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, warnings := PluginConfigCreate(r, configSpec(t, tt.spec), tt.opts)
			checkResult(t, errs, warnings, tt.errs, tt.warnings, true)
		})
	}
}

func TestPluginConfigConflicts(t *testing.T) {
	existing := func(name, plugin string, services ...string) *v1alpha1.PluginConfig {
		c := &v1alpha1.PluginConfig{ObjectMeta: metav1.ObjectMeta{Namespace: "pipy", Name: name}}
		c.Spec.Plugin = plugin
		for _, s := range services {
			c.Spec.DestinationRefs = append(c.Spec.DestinationRefs, refTo(s))
		}
		return c
	}
	named := func(ns, name string, sel map[string]string, tp intstr.IntOrString) any {
		return service(ns, name, sel, tp)
	}
	tests := []struct {
		name     string
		objs     []any
		refs     []string
		errs     []wantErr
		warnings []string
	}{
		{name: "another config of the plugin for the same Service",
			objs: []any{existing("other", "cors-policy", "pipy-ok")}, refs: []string{"pipy-ok"},
			errs: []wantErr{{"spec.destinationRefs[0]", `Service "pipy-ok" is already configured for plugin "cors-policy" by PluginConfig pipy/other`}}},
		{name: "another plugin's config for the same Service",
			objs: []any{existing("other", "rate-limit", "pipy-ok")}, refs: []string{"pipy-ok"}},
		{name: "a Service selecting the same pods on the same target port",
			objs: []any{existing("other", "cors-policy", "pipy-ok-v1")}, refs: []string{"pipy-ok"},
			errs: []wantErr{{"spec.destinationRefs[0]", `Service "pipy-ok" can select the same pods as Service "pipy-ok-v1" (e.g. pods labelled {app=pipy-ok,version=v1}), which PluginConfig pipy/other configures, on target port 8080`}}},
		{name: "Services selecting disjoint pods",
			objs: []any{existing("other", "cors-policy", "pipy-ok-v2")}, refs: []string{"pipy-ok-v1"}},
		{name: "itself, on update",
			objs: []any{existing("c", "cors-policy", "pipy-ok")}, refs: []string{"pipy-ok"}},
		{name: "a named target port against a number",
			objs: []any{existing("other", "cors-policy", "named"), named("pipy", "named", map[string]string{"app": "pipy-ok"}, intstr.FromString("http"))},
			refs: []string{"pipy-ok"}, warnings: []string{`Service "pipy-ok" can select the same pods as Service "named" of PluginConfig pipy/other (e.g. pods labelled {app=pipy-ok}): if target ports 8080 and http are the same container port`}},
		{name: "equal named target ports",
			objs: []any{existing("other", "cors-policy", "b"),
				named("pipy", "a", map[string]string{"app": "x"}, intstr.FromString("http")),
				named("pipy", "b", map[string]string{"tier": "web"}, intstr.FromString("http"))},
			refs: []string{"a"}, errs: []wantErr{{"spec.destinationRefs[0]", "on target port http"}}},
		{name: "different target ports",
			objs: []any{existing("other", "cors-policy", "b"),
				named("pipy", "a", map[string]string{"app": "x"}, intstr.FromInt32(8080)),
				named("pipy", "b", map[string]string{"app": "x"}, intstr.FromInt32(9090))},
			refs: []string{"a"}},
		{name: "a Service without selector",
			objs: []any{existing("other", "cors-policy", "b"),
				named("pipy", "a", nil, intstr.FromInt32(8080)),
				named("pipy", "b", map[string]string{"app": "x"}, intstr.FromInt32(8080))},
			refs: []string{"a"}},
		{name: "a Service that does not exist yet",
			objs: []any{existing("other", "cors-policy", "pipy-ok")}, refs: []string{"missing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := clusterstate.NewSnapshot(append(append(seedServices(), corsPlugin("cors-policy"), fsmNamespace("pipy")), tt.objs...)...)
			refs := make([]string, len(tt.refs))
			for i, s := range tt.refs {
				refs[i] = fmt.Sprintf("{kind: Service, name: %s}", s)
			}
			cfg := configSpec(t, "plugin: cors-policy\nconfig: {allowOrigins: [{exact: 'http://a.com'}]}\ndestinationRefs: ["+strings.Join(refs, ", ")+"]")
			errs, warnings := PluginConfigCreate(r, cfg, Options{})
			checkResult(t, errs, warnings, tt.errs, tt.warnings, true)
			for _, e := range errs {
				if e.Origin != OriginConfigConflict {
					t.Errorf("error %v has origin %q", e, e.Origin)
				}
			}
		})
	}
}

func TestPluginConfigUpdate(t *testing.T) {
	r := clusterstate.NewSnapshot(append(seedServices(), corsPlugin("cors-policy"), fsmNamespace("pipy"))...)
	old := configWith(t, "allowOrigins: [{exact: 'http://a.com/'}]") // invalid, e.g. from before the webhook
	// An update that leaves the spec as it is (a label, a finalizer) is accepted.
	upd := old.DeepCopy()
	upd.Labels = map[string]string{"team": "a"}
	if errs, _ := PluginConfigUpdate(r, upd, old, Options{}); len(errs) > 0 {
		t.Errorf("metadata-only update rejected: %v", errs)
	}
	// Deleting (finalizer removal on a terminating object) is never blocked.
	upd = old.DeepCopy()
	upd.DeletionTimestamp = &metav1.Time{}
	upd.Spec.Plugin = ""
	if errs, _ := PluginConfigUpdate(r, upd, old, Options{}); len(errs) > 0 {
		t.Errorf("update of a terminating object rejected: %v", errs)
	}
	// A spec change is validated in full.
	upd = old.DeepCopy()
	upd.Spec.Config.Raw = []byte(`{"allowOrigins":[{"exact":"http://b.com/"}]}`)
	errs, _ := PluginConfigUpdate(r, upd, old, Options{})
	checkResult(t, errs, nil, []wantErr{{"spec.config.allowOrigins[0].exact", "slash"}}, nil, false)
}

func refTo(service string) corev1ObjectReference {
	return corev1ObjectReference{Kind: "Service", Name: service}
}
