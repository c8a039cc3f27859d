package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cors-webhook/cors-webhook/examples"
	"github.com/cors-webhook/cors-webhook/validate"
)

// runValidate runs `cors-webhook validate ARGS` with stdin and returns its output and exit code,
// handling errors as run does.
func runValidate(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return runCommand(t, stdin, append([]string{"validate"}, args...)...)
}

// The guide's objects (examples/manifests), as a user's repository would hold them.
var (
	seedNamespaces = `
apiVersion: v1
kind: Namespace
metadata:
  name: pipy
  labels:
    openservicemesh.io/monitored-by: fsm
`
	seedPlugin = `
kind: Plugin
apiVersion: plugin.flomesh.io/v1alpha1
metadata:
  name: cors-policy
spec:
  priority: 165
  pipyscript: "(() => 0)()"
`
	seedChain    = "\n" + examples.Manifest(examples.PluginChain)
	seedConfig   = "\n" + examples.Manifest(examples.PluginConfig)
	seedServices = `
apiVersion: v1
kind: Service
metadata: {name: pipy-ok, namespace: pipy}
spec:
  ports: [{name: pipy, port: 8080, targetPort: 8080}]
  selector: {app: pipy-ok}
---
apiVersion: v1
kind: Service
metadata: {name: pipy-ok-v1, namespace: pipy}
spec:
  ports: [{name: pipy, port: 8080, targetPort: 8080}]
  selector: {app: pipy-ok, version: v1}
`
)

func docs(parts ...string) string { return strings.Join(parts, "\n---\n") }

var seedAll = docs(seedNamespaces, seedPlugin, seedChain, seedConfig, seedServices)

func TestValidateSeed(t *testing.T) {
	stdout, stderr, code := runValidate(t, seedAll, "-f", "-")
	if code != exitOK || stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	for _, want := range []string{
		"Warning: PluginConfig pipy/cors-policy-config: spec.config.allowOrigins[0].regex: regex 'http.*://www.test.cn' is not anchored",
		"Warning: PluginConfig pipy/cors-policy-config: spec.config.allowOrigins[0].regex: regex 'http.*://www.test.cn' has an unescaped \".\"",
		`Warning: PluginConfig pipy/cors-policy-config: spec.config.allowOrigins[2].prefix: prefix "http://www.bbb.com" has no host boundary`,
		"Warning: PluginConfig pipy/cors-policy-config: spec.config.maxAge:",
		`Warning: PluginChain pipy/cors-policy-chain: spec.selectors.namespaceSelector: selects namespaces other than "pipy"`,
		"3 objects: 3 valid, 0 invalid, 5 warnings",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}

	// --strict turns the security warnings into errors.
	stdout, _, code = runValidate(t, seedAll, "-f", "-", "--strict")
	if code != exitInvalid {
		t.Fatalf("--strict: exit %d, want %d", code, exitInvalid)
	}
	for _, want := range []string{
		`PluginConfig pipy/cors-policy-config: spec.config.allowOrigins[0].regex: Invalid value: "http.*://www.test.cn": regex 'http.*://www.test.cn' is not anchored`,
		`PluginConfig pipy/cors-policy-config: spec.config.allowOrigins[2].prefix: Invalid value: "http://www.bbb.com": prefix "http://www.bbb.com" has no host boundary`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--strict stdout lacks %q:\n%s", want, stdout)
		}
	}
}

// TestValidateRejects covers the rules through the command: each input is the seed plus one
// malformed object, which must make the command exit 1 naming the object and the field.
func TestValidateRejects(t *testing.T) {
	config := func(spec string) string {
		return "apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginConfig\nmetadata: {name: bad, namespace: pipy}\nspec:\n  plugin: cors-policy\n  destinationRefs: [{kind: Service, name: web}]\n" + spec
	}
	corsConfig := func(cfg string) string { return config("  config: " + cfg) }
	chain := func(spec string) string {
		return "apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginChain\nmetadata: {name: bad, namespace: pipy}\nspec:\n" + spec
	}
	tests := []struct {
		name, object, want string
	}{
		{"empty allowOrigins", corsConfig("{allowOrigins: []}"), "PluginConfig pipy/bad: spec.config.allowOrigins: Required value"},
		{"misspelt field", corsConfig("{allowOrigin: [{exact: 'http://a.com'}]}"), `PluginConfig pipy/bad: spec.config.allowOrigin: Invalid value: unknown field "allowOrigin", did you mean "allowOrigins"?`},
		{"two matchers in one entry", corsConfig("{allowOrigins: [{exact: 'http://a.com', regex: '^x$'}]}"), "spec.config.allowOrigins[0].regex: Forbidden"},
		{"entry without matcher", corsConfig("{allowOrigins: [{}]}"), "spec.config.allowOrigins[0]: Required value"},
		{"exact with a path", corsConfig("{allowOrigins: [{exact: 'http://a.com/x'}]}"), "spec.config.allowOrigins[0].exact: Invalid value"},
		{"exact with a trailing slash", corsConfig("{allowOrigins: [{exact: 'http://a.com/'}]}"), "must not end with a slash"},
		{"regex with lookahead", corsConfig(`{allowOrigins: [{regex: '^https://(?!evil)\w+\.com$'}]}`), "spec.config.allowOrigins[0].regex: Invalid value"},
		{"regex that does not compile", corsConfig("{allowOrigins: [{regex: '['}]}"), "spec.config.allowOrigins[0].regex"},
		{"method not a token", corsConfig("{allowOrigins: [{exact: 'http://a.com'}], allowMethods: ['GET,POST']}"), "spec.config.allowMethods[0]"},
		{"header not a token", corsConfig("{allowOrigins: [{exact: 'http://a.com'}], allowHeaders: ['X Foo']}"), "spec.config.allowHeaders[0]"},
		{"maxAge in weeks", corsConfig("{allowOrigins: [{exact: 'http://a.com'}], maxAge: 2w}"), "spec.config.maxAge"},
		{"destinationRef of another kind", "apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginConfig\nmetadata: {name: bad, namespace: pipy}\nspec:\n  plugin: cors-policy\n  config: {allowOrigins: [{exact: 'http://a.com'}]}\n  destinationRefs: [{kind: Deployment, name: web}]", "spec.destinationRefs[0].kind: Unsupported value"},
		{"second config for the seed's Service", config("  config: {allowOrigins: [{exact: 'http://a.com'}]}\n  destinationRefs: [{kind: Service, name: pipy-ok}]"),
			`spec.destinationRefs[0]: Forbidden: Service "pipy-ok" is already configured for plugin "cors-policy" by PluginConfig pipy/cors-policy-config`},
		{"config of a Service selecting the seed's pods", config("  config: {allowOrigins: [{exact: 'http://a.com'}]}\n  destinationRefs: [{kind: Service, name: pipy-ok-v1}]"),
			`on target port 8080: one pod port would have two CORS policies`},
		{"chain name twice", chain("  chains: [{name: inbound-http, plugins: [cors-policy]}, {name: inbound-http, plugins: [x]}]"), "PluginChain pipy/bad: spec.chains[1].name: Duplicate value"},
		{"CORS plugin outside inbound-http", chain("  chains: [{name: outbound-http, plugins: [cors-policy]}]"), "spec.chains[0].plugins[0]: Forbidden"},
		{"invalid selector", chain("  chains: [{name: inbound-http, plugins: [cors-policy]}]\n  selectors: {podSelector: {matchExpressions: [{key: app, operator: Equal, values: [x]}]}}"),
			"spec.selectors.podSelector.matchExpressions[0].operator: Invalid value"},
		{"chain conflicting with the seed's", chain("  chains: [{name: inbound-http, plugins: [cors-b]}]\n  selectors: {podSelector: {matchLabels: {version: v1}}}"),
			`spec.selectors: Forbidden: selects the same pods as PluginChain pipy/cors-policy-chain, which puts CORS plugin "cors-policy" in inbound-http where this chain puts "cors-b" (e.g. pods labelled {app=pipy-ok,version=v1} in namespace "pipy")`},
		{"unknown field outside config", chain("  chains: [{name: inbound-http, plugins: [cors-policy]}]\n  selector: {}"), `PluginChain pipy/bad: spec.selector: Forbidden: unknown field`},
		{"field of the wrong type", chain("  chains: inbound-http"), "PluginChain pipy/bad: cannot be decoded"},
		{"unknown kind of the group", "apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginChains\nmetadata: {name: bad, namespace: pipy}", `PluginChains pipy/bad: kind: Unsupported value: "PluginChains"`},
		{"non-CORS plugin without script", "apiVersion: plugin.flomesh.io/v1alpha1\nkind: Plugin\nmetadata: {name: token-auth}\nspec: {priority: 1}", "Plugin token-auth: spec.pipyscript: Required value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runValidate(t, docs(seedAll, tt.object), "-f", "-", "--cors-plugins", "cors-policy,cors-b")
			if code != exitInvalid {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, exitInvalid, stdout, stderr)
			}
			if !strings.Contains(stdout, tt.want) {
				t.Errorf("stdout lacks %q:\n%s", tt.want, stdout)
			}
			if strings.Contains(stdout, "cors-policy-config: spec.") || strings.Contains(stdout, "cors-policy-chain: spec.") {
				// The seed's own objects only become invalid through a conflict with the new one.
				if !strings.Contains(tt.name, "seed") {
					t.Errorf("the seed objects were reported:\n%s", stdout)
				}
			}
		})
	}
}

func TestValidateConflictsWithinTheInput(t *testing.T) {
	chain := func(name, plugin, team string) string {
		return "apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginChain\nmetadata: {name: " + name + ", namespace: teams}\n" +
			"spec:\n  chains: [{name: inbound-http, plugins: [" + plugin + "]}]\n" +
			"  selectors: {podSelector: {matchExpressions: [{key: team, operator: In, values: [" + team + "]}]}}"
	}
	// team In (a) and team In (b) select disjoint pods.
	if stdout, stderr, code := runValidate(t, docs(chain("a", "cors-policy", "a"), chain("b", "cors-b", "b")), "-f", "-", "--cors-plugins", "cors-policy,cors-b"); code != exitOK {
		t.Fatalf("disjoint chains: exit %d\n%s%s", code, stdout, stderr)
	}
	// team In (a, b) overlaps both: each side of a conflict is reported.
	stdout, _, code := runValidate(t, docs(chain("a", "cors-policy", "a"), chain("ab", "cors-b", "a, b")), "-f", "-", "--cors-plugins", "cors-policy,cors-b")
	if code != exitInvalid {
		t.Fatalf("overlapping chains: exit %d", code)
	}
	for _, want := range []string{
		`PluginChain teams/a: spec.selectors: Forbidden: selects the same pods as PluginChain teams/ab`,
		`PluginChain teams/ab: spec.selectors: Forbidden: selects the same pods as PluginChain teams/a`,
		`(e.g. pods labelled {team=a} in namespace "teams")`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, stdout)
		}
	}
}

func TestValidateJSONOutput(t *testing.T) {
	bad := "apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginConfig\nmetadata: {name: bad, namespace: pipy}\nspec:\n  plugin: cors-policy\n  config: {allowOrigins: []}"
	stdout, stderr, code := runValidate(t, docs(seedAll, bad), "-f", "-", "-o", "json")
	if code != exitInvalid || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var rep validate.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, stdout)
	}
	if rep.Valid || len(rep.Objects) != 4 {
		t.Fatalf("report %+v", rep)
	}
	cfg, badCfg := rep.Objects[2], rep.Objects[3]
	if cfg.Kind != "PluginConfig" || cfg.Name != "cors-policy-config" || !cfg.Valid || len(cfg.Warnings) != 4 || cfg.Source != "-" {
		t.Errorf("seed config %+v", cfg)
	}
	if badCfg.Valid || len(badCfg.Errors) != 1 || badCfg.Errors[0].Field != "spec.config.allowOrigins" ||
		badCfg.Errors[0].Type != "FieldValueRequired" || badCfg.Errors[0].Reason != "corsConfig" || badCfg.Line == 0 {
		t.Errorf("bad config %+v", badCfg)
	}
}

func TestValidateInputs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("1-ns.yaml", seedNamespaces)
	write("2-plugin.yml", seedPlugin)
	write("3-chain.json", `{"apiVersion":"plugin.flomesh.io/v1alpha1","kind":"PluginChain","metadata":{"name":"c","namespace":"pipy"},"spec":{"chains":[{"name":"inbound-http","plugins":["cors-policy"]}]}}`)
	write("README.md", "not a manifest")
	write("4-config.yaml", seedConfig)

	t.Run("directory", func(t *testing.T) {
		if stdout, stderr, code := runValidate(t, "", "-f", dir); code != exitOK || !strings.Contains(stderr, "3 objects: 3 valid") {
			t.Errorf("exit %d\n%s%s", code, stdout, stderr)
		}
	})
	t.Run("files, repeated and comma-separated", func(t *testing.T) {
		_, stderr, code := runValidate(t, "", "-f", filepath.Join(dir, "1-ns.yaml")+","+filepath.Join(dir, "3-chain.json"), "-f", filepath.Join(dir, "4-config.yaml"))
		if code != exitOK || !strings.Contains(stderr, "2 objects: 2 valid") {
			t.Errorf("exit %d\n%s", code, stderr)
		}
		// Without the Plugin in the input, its use is a warning.
		if !strings.Contains(stderr, `Plugin "cors-policy" is not declared`) {
			t.Errorf("no undeclared-plugin warning:\n%s", stderr)
		}
	})
	t.Run("default namespace", func(t *testing.T) {
		chain := "apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginChain\nmetadata: {name: c}\nspec: {chains: [{name: inbound-http, plugins: [cors-policy]}]}"
		other := "apiVersion: plugin.flomesh.io/v1alpha1\nkind: PluginChain\nmetadata: {name: d, namespace: shop}\nspec: {chains: [{name: inbound-http, plugins: [cors-b]}]}"
		stdout, _, code := runValidate(t, docs(chain, other), "-f", "-", "-n", "shop", "--cors-plugins", "cors-policy,cors-b")
		if code != exitInvalid || !strings.Contains(stdout, "PluginChain shop/c: spec.selectors: Forbidden: selects the same pods as PluginChain shop/d") {
			t.Errorf("exit %d\n%s", code, stdout)
		}
	})
	t.Run("the same object twice", func(t *testing.T) {
		_, stderr, code := runValidate(t, docs(seedPlugin, seedPlugin), "-f", "-")
		if code != exitOK || !strings.Contains(stderr, "Warning: Plugin cors-policy: also defined at -:") {
			t.Errorf("exit %d\n%s", code, stderr)
		}
	})
	t.Run("no plugin objects", func(t *testing.T) {
		if _, stderr, code := runValidate(t, seedNamespaces, "-f", "-"); code != exitOK || !strings.Contains(stderr, "no Plugin, PluginChain or PluginConfig") {
			t.Errorf("exit %d\n%s", code, stderr)
		}
	})
}

func TestValidateUsageAndReadErrors(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.yaml")
	if err := os.WriteFile(broken, []byte(seedPlugin+"---\nkind: PluginChain\nmetadata: {name: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"no input", "", nil, "no input"},
		{"missing file", "", []string{"-f", filepath.Join(dir, "nope.yaml")}, "no such file"},
		{"YAML syntax error names file and line", "", []string{"-f", broken}, broken + ":9: yaml: line 2"},
		{"undecodable built-in object", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {ports: 80}", []string{"-f", "-"}, "-:1:"},
		{"bad output format", seedPlugin, []string{"-f", "-", "-o", "yaml"}, "--output must be text or json"},
		{"bad CORS plugin name", seedPlugin, []string{"-f", "-", "--cors-plugins", "Not_A_Name"}, "--cors-plugins"},
		{"argument instead of -f", seedPlugin, []string{"file.yaml"}, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := runValidate(t, tt.stdin, tt.args...)
			if code != exitUsage || !strings.Contains(stderr, tt.want) {
				t.Errorf("exit %d, want %d; stderr lacks %q:\n%s", code, exitUsage, tt.want, stderr)
			}
		})
	}
}
