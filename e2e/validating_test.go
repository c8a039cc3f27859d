package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
	"github.com/cors-webhook/cors-webhook/webhook"
)

// pluginValidationWebhook is the ValidatingWebhookConfiguration of the chart for the three
// plugin.flomesh.io kinds (CREATE and UPDATE; DELETE is never sent), with Service clientConfigs
// that envtest rewrites to the local server.
func pluginValidationWebhook() *admissionregistrationv1.ValidatingWebhookConfiguration {
	hook := func(name, resource, path string, scope admissionregistrationv1.ScopeType) admissionregistrationv1.ValidatingWebhook {
		return admissionregistrationv1.ValidatingWebhook{
			Name: name,
			ClientConfig: admissionregistrationv1.WebhookClientConfig{Service: &admissionregistrationv1.ServiceReference{
				Namespace: "cors-webhook", Name: "cors-webhook", Path: ptr.To(strings.TrimPrefix(path, "/")),
			}},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{"plugin.flomesh.io"}, APIVersions: []string{"v1alpha1"}, Resources: []string{resource}, Scope: ptr.To(scope),
				},
			}},
			FailurePolicy:           ptr.To(admissionregistrationv1.Fail),
			SideEffects:             ptr.To(admissionregistrationv1.SideEffectClassNone),
			MatchPolicy:             ptr.To(admissionregistrationv1.Equivalent),
			AdmissionReviewVersions: []string{"v1"},
			TimeoutSeconds:          ptr.To[int32](10),
		}
	}
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: "cors-webhook-validate"},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{
			hook("plugins.validate.cors-webhook.io", "plugins", webhook.ValidatePluginPath, admissionregistrationv1.ClusterScope),
			hook("pluginchains.validate.cors-webhook.io", "pluginchains", webhook.ValidatePluginChainPath, admissionregistrationv1.NamespacedScope),
			hook("pluginconfigs.validate.cors-webhook.io", "pluginconfigs", webhook.ValidatePluginConfigPath, admissionregistrationv1.NamespacedScope),
		},
	}
}

// TestValidatingWebhook runs `cors-webhook serve` as the validating webhook of a real API
// server and drives it with kubectl: the seed guide is accepted with its warnings, malformed
// objects and conflicts are rejected with their field paths, and deleting is never blocked.
func TestValidatingWebhook(t *testing.T) {
	seed := filepath.Join(mustExamplesDir(t), "manifests")
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{
		Webhook: envtest.WebhookInstallOptions{
			ValidatingWebhooks: []*admissionregistrationv1.ValidatingWebhookConfiguration{pluginValidationWebhook()},
		},
	})
	srv := startServe(t, c, bin, "--cors-plugins", "cors-policy,cors-b")

	t.Run("the seed guide is accepted, with warnings for its regex and prefix", func(t *testing.T) {
		c.MustKubectl(t, "apply", "-f", filepath.Join(seed, "ns.yaml"))
		c.MustKubectl(t, "apply", "-n", "pipy", "-f", filepath.Join(seed, "pipy-ok.pipy.yaml"))
		c.MustKubectl(t, "apply", "-f", filepath.Join(seed, "cors.yaml"))
		res := c.MustKubectl(t, "apply", "-f", filepath.Join(seed, "cors-policy-chain.yaml"))
		// Its namespaceSelector also matches curl, but pipy is a tenant (no
		// --cluster-chain-namespaces): the one warning says the chain acts in pipy only.
		tenancy := `Warning: spec.selectors.namespaceSelector: selects namespaces other than "pipy", but only PluginChains in the cluster-chain namespaces (none) act beyond their own namespace: this chain acts in namespace "pipy" only`
		if strings.Count(res.Stderr, "Warning:") != 1 || !strings.Contains(res.Stderr, tenancy) {
			t.Errorf("the seed chain: want the tenancy warning only:\n%s", res.Stderr)
		}
		res = c.MustKubectl(t, "apply", "-f", filepath.Join(seed, "cors-policy-config.yaml"))
		for _, want := range []string{
			"Warning: spec.config.allowOrigins[0].regex: regex 'http.*://www.test.cn' is not anchored",
			`Warning: spec.config.allowOrigins[0].regex: regex 'http.*://www.test.cn' has an unescaped "."`,
			`Warning: spec.config.allowOrigins[2].prefix: prefix "http://www.bbb.com" has no host boundary: it also matches "http://www.bbb.com.evil.example"`,
		} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("kubectl stderr lacks %q:\n%s", want, res.Stderr)
			}
		}
		if !strings.Contains(res.Stdout, "pluginconfig.plugin.flomesh.io/cors-policy-config created") {
			t.Errorf("stdout: %s", res.Stdout)
		}
	})

	t.Run("the opt-in GEP-1767 fields are accepted, without warnings", func(t *testing.T) {
		const gep = `apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginConfig
metadata: {name: gep, namespace: pipy}
spec:
  plugin: cors-policy
  destinationRefs: [{kind: Service, name: gep}]
  config:
    allowOrigins: [{wildcard: "https://*.example.com"}]
    allowCredentials: true
    allowMethods: ["*"]
    allowHeaders: ["*"]
    unmatchedPreflights: Ignore
`
		res := c.KubectlStdin(t, gep, "apply", "-f", "-")
		if res.ExitCode != 0 || strings.Contains(res.Stderr, "Warning:") {
			t.Errorf("kubectl apply exit %d:\n%s", res.ExitCode, res.Output())
		}
		c.MustKubectl(t, "delete", "pluginconfig", "-n", "pipy", "gep")
	})

	t.Run("malformed objects are rejected with their field paths", func(t *testing.T) {
		for _, tc := range malformedObjects() {
			t.Run(tc.name, func(t *testing.T) {
				res := c.KubectlStdin(t, tc.yaml, "apply", "-f", "-")
				if res.ExitCode != 1 {
					t.Fatalf("kubectl apply exit %d, want 1\n%s", res.ExitCode, res.Output())
				}
				for _, want := range tc.want {
					if !strings.Contains(res.Stderr, want) {
						t.Errorf("kubectl stderr lacks %q:\n%s", want, res.Stderr)
					}
				}
			})
		}
		t.Run("a 420 KB regex", func(t *testing.T) {
			obj := fmt.Sprintf(`{"apiVersion":"plugin.flomesh.io/v1alpha1","kind":"PluginConfig","metadata":{"name":"regex-420k","namespace":"pipy"},`+
				`"spec":{"plugin":"cors-policy","destinationRefs":[{"kind":"Service","name":"web"}],"config":{"allowOrigins":[{"regex":"^https://(%s)$"}]}}}`,
				strings.Repeat("a", 420*1024))
			res := c.KubectlStdin(t, obj, "create", "-f", "-")
			if res.ExitCode != 1 || !strings.Contains(res.Stderr, "spec.config.allowOrigins[0].regex: Too long: may not be more than 1024 bytes") {
				t.Fatalf("kubectl create exit %d, want the regex refused as too long:\n%.2000s", res.ExitCode, res.Stderr)
			}
		})
	})

	chain := func(ns, name, plugin, podSelector string) string {
		return fmt.Sprintf(`apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: %s, namespace: %s}
spec:
  chains: [{name: inbound-http, plugins: [%s]}]
  selectors: {podSelector: %s}
`, name, ns, plugin, podSelector)
	}
	c.MustKubectl(t, "create", "namespace", "teams")

	t.Run("disjoint chains with different CORS plugins are accepted", func(t *testing.T) {
		for _, y := range []string{
			chain("teams", "team-a", "cors-policy", "{matchExpressions: [{key: team, operator: In, values: [a]}]}"),
			chain("teams", "team-b", "cors-b", "{matchExpressions: [{key: team, operator: In, values: [b]}]}"),
		} {
			if res := c.KubectlStdin(t, y, "apply", "-f", "-"); res.ExitCode != 0 {
				t.Fatalf("exit %d\n%s", res.ExitCode, res.Output())
			}
		}
	})

	t.Run("an update that creates a conflict is rejected", func(t *testing.T) {
		res := c.KubectlStdin(t, chain("teams", "team-b", "cors-b", "{matchExpressions: [{key: team, operator: In, values: [a, b]}]}"), "apply", "-f", "-")
		if res.ExitCode != 1 {
			t.Fatalf("exit %d, want 1\n%s", res.ExitCode, res.Output())
		}
		for _, want := range []string{
			`admission webhook "pluginchains.validate.cors-webhook.io" denied the request`,
			`spec.selectors: Forbidden: selects the same pods as PluginChain teams/team-a, which puts CORS plugin "cors-policy" in inbound-http where this chain puts "cors-b" (e.g. pods labelled {team=a} in namespace "teams")`,
		} {
			if !strings.Contains(res.Stderr, want) {
				t.Errorf("kubectl stderr lacks %q:\n%s", want, res.Stderr)
			}
		}
		// The stored chain is unchanged.
		got := c.MustKubectl(t, "get", "pluginchain", "-n", "teams", "team-b", "-o", "jsonpath={.spec.selectors.podSelector.matchExpressions[0].values}")
		if got.Stdout != `["b"]` {
			t.Errorf("stored selector values %s", got.Stdout)
		}
	})

	t.Run("overlapping chains with the same CORS plugin get a warning", func(t *testing.T) {
		res := c.KubectlStdin(t, chain("teams", "team-a-too", "cors-policy", "{matchLabels: {team: a, tier: web}}"), "apply", "-f", "-")
		if res.ExitCode != 0 || !strings.Contains(res.Stderr, "Warning: spec.selectors: overlaps PluginChain teams/team-a") {
			t.Errorf("exit %d\n%s", res.ExitCode, res.Output())
		}
	})

	t.Run("deleting is never blocked", func(t *testing.T) {
		// Make a conflict the webhook could not see: chains that became overlapping when a
		// namespace got a label (namespaces are not validated).
		c.MustKubectl(t, "create", "namespace", "late")
		late := chain("late", "local", "cors-b", "{}") + "  \n"
		late = strings.Replace(late, "metadata: {name: local, namespace: late}", "metadata: {name: local, namespace: late, finalizers: [example.com/hold]}", 1)
		if res := c.KubectlStdin(t, late, "apply", "-f", "-"); res.ExitCode != 0 {
			t.Fatalf("exit %d\n%s", res.ExitCode, res.Output())
		}
		global := `apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: web-everywhere, namespace: teams}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {podSelector: {matchLabels: {tier: edge}}, namespaceSelector: {matchLabels: {tier: web}}}
`
		if res := c.KubectlStdin(t, global, "apply", "-f", "-"); res.ExitCode != 0 {
			t.Fatalf("exit %d\n%s", res.ExitCode, res.Output())
		}
		c.MustKubectl(t, "label", "namespace", "late", "tier=web")

		// Metadata-only updates of a now-conflicting chain pass; so does deleting it, and
		// removing its finalizer while it terminates.
		c.MustKubectl(t, "label", "pluginchain", "-n", "late", "local", "owner=someone")
		c.MustKubectl(t, "delete", "pluginchain", "-n", "late", "local", "--wait=false")
		c.MustKubectl(t, "patch", "pluginchain", "-n", "late", "local", "--type=json", "-p", `[{"op":"remove","path":"/metadata/finalizers"}]`)
		framework.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
			res := c.Kubectl(t, "get", "pluginchain", "-n", "late", "local")
			return res.ExitCode != 0, "pluginchain late/local still exists"
		})
		c.MustKubectl(t, "delete", "pluginchain", "-n", "teams", "web-everywhere", "team-a", "team-b", "team-a-too")
		c.MustKubectl(t, "delete", "-f", filepath.Join(seed, "cors-policy-config.yaml"))
		c.MustKubectl(t, "delete", "-f", filepath.Join(seed, "cors-policy-chain.yaml"))
		c.MustKubectl(t, "delete", "-f", filepath.Join(seed, "cors.yaml"))
	})

	t.Run("rejections are counted by reason", func(t *testing.T) {
		metrics := srv.get(t, "/metrics")
		for _, want := range []string{
			`cors_webhook_admission_rejections_total{kind="PluginChain",reason="chainConflict"}`,
			`cors_webhook_admission_rejections_total{kind="PluginConfig",reason="corsConfig"}`,
			`cors_webhook_admission_rejections_total{kind="PluginConfig",reason="configConflict"}`,
			`controller_runtime_webhook_requests_total{code="200",webhook="` + webhook.ValidatePluginChainPath + `"}`,
		} {
			// Every series exists from the start: the rejections must have counted.
			value := -1.0
			for _, l := range strings.Split(metrics, "\n") {
				if v, ok := strings.CutPrefix(l, want+" "); ok {
					_, _ = fmt.Sscan(v, &value)
				}
			}
			if value < 1 {
				t.Errorf("/metrics has %s = %v, want at least 1", want, value)
			}
		}
		if !strings.Contains(metrics, `cors_webhook_admission_rejections_total{kind="Plugin",reason="limit"} 0`) {
			t.Errorf("/metrics lacks the zero series of a reason that never occurred")
		}
	})
}

type malformedObject struct {
	name string
	yaml string
	want []string // substrings of kubectl's stderr: the field path, and what makes the case
}

// malformedObjects are PluginConfigs, PluginChains and Plugins that the webhook (not the CRD
// schema) rejects, applied after the seed guide.
func malformedObjects() []malformedObject {
	config := func(name, body string) string {
		return fmt.Sprintf("apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginConfig\nmetadata: {name: %s, namespace: pipy}\nspec:\n  plugin: cors-policy\n%s", name, body)
	}
	cors := func(name, cfg string) string {
		return config(name, "  destinationRefs: [{kind: Service, name: web}]\n  config: "+cfg+"\n")
	}
	chain := func(name, spec string) string {
		return fmt.Sprintf("apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginChain\nmetadata: {name: %s, namespace: pipy}\nspec:\n%s", name, spec)
	}
	invalid := func(kind, name string, fields ...string) []string {
		return append([]string{fmt.Sprintf("The %s %q is invalid", kind, name)}, fields...)
	}
	return []malformedObject{
		{"empty allowOrigins", cors("empty-origins", "{allowOrigins: []}"), invalid("PluginConfig", "empty-origins", "spec.config.allowOrigins: Required value")},
		{"misspelt field", cors("misspelt", "{allowOrigin: [{exact: 'http://a.com'}]}"), invalid("PluginConfig", "misspelt", `spec.config.allowOrigin: Invalid value: unknown field "allowOrigin", did you mean "allowOrigins"?`)},
		{"two matchers in one entry", cors("two-matchers", "{allowOrigins: [{exact: 'http://a.com', prefix: 'http://a.com:'}]}"), invalid("PluginConfig", "two-matchers", "spec.config.allowOrigins[0].prefix: Forbidden")},
		{"entry without matcher", cors("no-matcher", "{allowOrigins: [{}]}"), invalid("PluginConfig", "no-matcher", "spec.config.allowOrigins[0]: Required value")},
		{"exact with a path", cors("exact-path", "{allowOrigins: [{exact: 'http://www.aaa.com/app'}]}"), invalid("PluginConfig", "exact-path", "spec.config.allowOrigins[0].exact: Invalid value", "must not have a path")},
		{"exact with a trailing slash", cors("exact-slash", "{allowOrigins: [{exact: 'http://www.aaa.com/'}]}"), invalid("PluginConfig", "exact-slash", "spec.config.allowOrigins[0].exact: Invalid value", "must not end with a slash")},
		{"regex with a JavaScript lookahead", cors("lookahead", `{allowOrigins: [{regex: '^https://(?!evil)[a-z]+\.com$'}]}`), invalid("PluginConfig", "lookahead", "spec.config.allowOrigins[0].regex: Invalid value", "lookahead")},
		{"regex that does not compile", cors("bad-regex", "{allowOrigins: [{regex: '^http://(a$'}]}"), invalid("PluginConfig", "bad-regex", "spec.config.allowOrigins[0].regex: Invalid value")},
		{"method that is not a token", cors("bad-method", "{allowOrigins: [{exact: 'http://a.com'}], allowMethods: ['GET POST']}"), invalid("PluginConfig", "bad-method", "spec.config.allowMethods[0]: Invalid value")},
		{"header name that is not a token", cors("bad-header", "{allowOrigins: [{exact: 'http://a.com'}], allowHeaders: ['X-Foo: 1']}"), invalid("PluginConfig", "bad-header", "spec.config.allowHeaders[0]: Invalid value")},
		{"expose header that is not a token", cors("bad-expose", "{allowOrigins: [{exact: 'http://a.com'}], exposeHeaders: ['a,b']}"), invalid("PluginConfig", "bad-expose", "spec.config.exposeHeaders[0]: Invalid value")},
		{"negative maxAge", cors("negative-max-age", "{allowOrigins: [{exact: 'http://a.com'}], maxAge: -1h}"), invalid("PluginConfig", "negative-max-age", "spec.config.maxAge: Invalid value")},
		{"maxAge in weeks", cors("weeks", "{allowOrigins: [{exact: 'http://a.com'}], maxAge: 1w}"), invalid("PluginConfig", "weeks", "spec.config.maxAge: Invalid value")},
		{"allowCredentials not a boolean", cors("credentials", "{allowOrigins: [{exact: 'http://a.com'}], allowCredentials: 'yes'}"), invalid("PluginConfig", "credentials", "spec.config.allowCredentials: Invalid value")},
		// kubectl apply copies the object into an annotation, which caps it below 256 KiB;
		// the 420 KB regex of the issue is created without apply, below.
		{"a 200 KB regex", cors("huge-regex", "{allowOrigins: [{regex: '^https://("+strings.Repeat("a", 200*1024)+")$'}]}"), invalid("PluginConfig", "huge-regex", "spec.config.allowOrigins[0].regex: Too long: may not be more than 1024 bytes")},
		{"wildcard subdomain as a prefix", cors("wildcard", "{allowOrigins: [{prefix: 'https://*.example.com'}]}"), invalid("PluginConfig", "wildcard", `for any subdomain use regex '^https://([a-z0-9-]+\.)+example\.com(:[0-9]+)?$'`)},
		{"wildcard not in GEP-1767's form", cors("bad-wildcard", "{allowOrigins: [{wildcard: 'https://api-*.example.com'}]}"), invalid("PluginConfig", "bad-wildcard", "spec.config.allowOrigins[0].wildcard: Invalid value", `may have "*" only as the whole first label`)},
		{"unmatchedPreflights neither Forward nor Ignore", cors("unmatched", "{allowOrigins: [{exact: 'http://a.com'}], unmatchedPreflights: Reject}"), invalid("PluginConfig", "unmatched", `spec.config.unmatchedPreflights: Unsupported value: "Reject"`)},
		{"nginx-style origin list", cors("origin-list", "{allowOrigins: [{exact: 'https://a.example, https://b.example'}]}"), invalid("PluginConfig", "origin-list", `split it into entries {exact: "https://a.example"}, {exact: "https://b.example"}`)},
		{"octal IPv4 origin", cors("octal", "{allowOrigins: [{exact: 'http://010.0.0.1'}]}"), invalid("PluginConfig", "octal", `(use "http://8.0.0.1")`)},
		{"too many destinationRefs (CRD schema)", config("many-refs", "  config: {allowOrigins: [{exact: 'http://a.com'}]}\n  destinationRefs: ["+strings.Repeat("{kind: Service, name: web}, ", 64)+"{kind: Service, name: web}]\n"), invalid("PluginConfig", "many-refs", "spec.destinationRefs: Too many: 65: must have at most 64 items")},
		{"no config", config("no-config", "  destinationRefs: [{kind: Service, name: web}]\n"), invalid("PluginConfig", "no-config", "spec.config: Required value")},
		{"destinationRef of another kind", config("deployment-ref", "  config: {allowOrigins: [{exact: 'http://a.com'}]}\n  destinationRefs: [{kind: Deployment, name: web}]\n"), invalid("PluginConfig", "deployment-ref", `spec.destinationRefs[0].kind: Unsupported value: "Deployment"`)},
		{"destinationRef in another namespace", config("other-ns", "  config: {allowOrigins: [{exact: 'http://a.com'}]}\n  destinationRefs: [{kind: Service, name: curl, namespace: curl}]\n"), invalid("PluginConfig", "other-ns", "spec.destinationRefs[0].namespace: Forbidden")},
		{"destinationRef without name", config("no-name", "  config: {allowOrigins: [{exact: 'http://a.com'}]}\n  destinationRefs: [{kind: Service}]\n"), invalid("PluginConfig", "no-name", "spec.destinationRefs[0].name: Required value")},
		{"second config for the seed's Service", config("second", "  config: {allowOrigins: [{exact: 'http://a.com'}]}\n  destinationRefs: [{kind: Service, name: pipy-ok}]\n"),
			[]string{`admission webhook "pluginconfigs.validate.cors-webhook.io" denied the request: pluginconfigs.plugin.flomesh.io "second" is forbidden: spec.destinationRefs[0]: Forbidden: Service "pipy-ok" is already configured for plugin "cors-policy" by PluginConfig pipy/cors-policy-config`}},
		{"config of a Service selecting the seed's pods on the same port", config("v1-only", "  config: {allowOrigins: [{exact: 'http://a.com'}]}\n  destinationRefs: [{kind: Service, name: pipy-ok-v1}]\n"),
			[]string{`spec.destinationRefs[0]: Forbidden: Service "pipy-ok-v1" can select the same pods as Service "pipy-ok" (e.g. pods labelled {app=pipy-ok,version=v1}), which PluginConfig pipy/cors-policy-config configures, on target port 8080`}},
		{"chain name twice", chain("twice", "  chains: [{name: inbound-http, plugins: [cors-policy]}, {name: inbound-http, plugins: [token-auth]}]\n"), invalid("PluginChain", "twice", "spec.chains[1].name: Duplicate value")},
		{"plugin twice in a chain", chain("plugin-twice", "  chains: [{name: outbound-http, plugins: [token-auth, token-auth]}]\n"), invalid("PluginChain", "plugin-twice", "spec.chains[0].plugins[1]: Duplicate value")},
		{"CORS plugin outside inbound-http", chain("inbound-tcp", "  chains: [{name: inbound-tcp, plugins: [cors-policy]}]\n"), invalid("PluginChain", "inbound-tcp", `spec.chains[0].plugins[0]: Forbidden: CORS plugin "cors-policy" may only be in chain "inbound-http"`)},
		{"two CORS plugins in inbound-http", chain("two-cors", "  chains: [{name: inbound-http, plugins: [cors-policy, cors-b]}]\n"), invalid("PluginChain", "two-cors", `spec.chains[0].plugins[1]: Forbidden`, `already lists CORS plugin "cors-policy"`)},
		{"unknown selector operator", chain("operator", "  chains: [{name: inbound-http, plugins: [cors-policy]}]\n  selectors: {podSelector: {matchExpressions: [{key: app, operator: Equals, values: [x]}]}}\n"),
			invalid("PluginChain", "operator", "spec.selectors.podSelector.matchExpressions[0].operator: Invalid value")},
		{"In without values", chain("no-values", "  chains: [{name: inbound-http, plugins: [cors-policy]}]\n  selectors: {namespaceSelector: {matchExpressions: [{key: team, operator: In}]}}\n"),
			invalid("PluginChain", "no-values", "spec.selectors.namespaceSelector.matchExpressions[0].values: Required value")},
		{"invalid label key", chain("label-key", "  chains: [{name: inbound-http, plugins: [cors-policy]}]\n  selectors: {podSelector: {matchLabels: {'not a key': x}}}\n"),
			invalid("PluginChain", "label-key", "spec.selectors.podSelector.matchLabels: Invalid value")},
		{"chain putting another CORS plugin on the seed's pods", chain("conflict", "  chains: [{name: inbound-http, plugins: [cors-b]}]\n  selectors: {podSelector: {matchLabels: {version: v1}}}\n"),
			[]string{`admission webhook "pluginchains.validate.cors-webhook.io" denied the request`,
				`spec.selectors: Forbidden: selects the same pods as PluginChain pipy/cors-policy-chain, which puts CORS plugin "cors-policy" in inbound-http where this chain puts "cors-b" (e.g. pods labelled {app=pipy-ok,version=v1} in namespace "pipy")`}},
		{"non-CORS plugin without script", "apiVersion: plugin.flomesh.io/v1alpha1\nkind: Plugin\nmetadata: {name: token-auth}\nspec: {priority: 10}\n", invalid("Plugin", "token-auth", "spec.pipyscript: Required value")},
	}
}
