package validate

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// chainIn returns a PluginChain ns/name with the given spec (YAML at column 0).
func chainIn(t testing.TB, ns, name, spec string) *v1alpha1.PluginChain {
	t.Helper()
	return mustYAML[v1alpha1.PluginChain](t, fmt.Sprintf("metadata: {name: %s, namespace: %s}\nspec:\n%s", name, ns, indent(spec, "  ")))
}

// corsChain returns a chain ns/name putting plugin in inbound-http, with the given selectors
// (YAML flow mappings, "" for none).
func corsChain(t testing.TB, ns, name, plugin, podSelector, namespaceSelector string) *v1alpha1.PluginChain {
	t.Helper()
	spec := fmt.Sprintf("chains: [{name: inbound-http, plugins: [%s]}]\nselectors:\n", plugin)
	if podSelector != "" {
		spec += "  podSelector: " + podSelector + "\n"
	}
	if namespaceSelector != "" {
		spec += "  namespaceSelector: " + namespaceSelector + "\n"
	}
	if podSelector == "" && namespaceSelector == "" {
		spec = strings.TrimSuffix(spec, "selectors:\n")
	}
	return chainIn(t, ns, name, spec)
}

// twoCORSPlugins designates the fixtures' namespaces as cluster-chain namespaces, so that
// chains reach across namespaces and the overlap checks across namespaces are exercised.
var twoCORSPlugins = Options{Plugins: chains.NewPlugins("cors-policy", "cors-b"),
	Tenancy: chains.Tenancy{ClusterNamespaces: []string{"pipy", "curl", "future", "plain"}}}

func TestPluginChainSeed(t *testing.T) {
	// The seed's namespaceSelector is a label, but pipy is not a cluster-chain namespace: the
	// chain acts in pipy only, and says so, whether or not another namespace carries the label
	// (a warning that depended on it would reveal other namespaces' labels to a tenant).
	tenancy := `spec.selectors.namespaceSelector: selects namespaces other than "pipy", but only PluginChains in the cluster-chain namespaces (none) act beyond their own namespace`
	for _, r := range []*clusterstate.Snapshot{
		clusterstate.NewSnapshot(corsPlugin("cors-policy"), fsmNamespace("pipy")),
		clusterstate.NewSnapshot(corsPlugin("cors-policy"), fsmNamespace("pipy"), fsmNamespace("curl")),
	} {
		errs, warnings := PluginChainCreate(r, seedChain(t), Options{})
		checkResult(t, errs, warnings, nil, []string{tenancy}, true)
	}
	r := clusterstate.NewSnapshot(corsPlugin("cors-policy"), fsmNamespace("pipy"), fsmNamespace("curl"))
	opts := Options{Tenancy: chains.Tenancy{ClusterNamespaces: []string{"pipy"}}}
	errs, warnings := PluginChainCreate(r, seedChain(t), opts)
	checkResult(t, errs, warnings, nil, nil, true)

	// Without the Plugin declared, the chain is accepted with a warning.
	r = clusterstate.NewSnapshot(fsmNamespace("pipy"))
	errs, warnings = PluginChainCreate(r, seedChain(t), opts)
	checkResult(t, errs, warnings, nil, []string{`spec.chains[0].plugins[0]: Plugin "cors-policy" is not declared`}, true)
}

// TestPluginChainTenancy: chains of tenants reach their own namespace only, so their
// namespaceSelectors cannot make them conflict across namespaces; chains of skipped
// namespaces conflict with nothing.
func TestPluginChainTenancy(t *testing.T) {
	opts := Options{Plugins: chains.NewPlugins("cors-policy", "cors-b"),
		Tenancy: chains.Tenancy{ClusterNamespaces: []string{"ops"}, SkippedNamespaces: []string{"kube-system"}}}
	base := []any{corsPlugin("cors-policy"), corsPlugin("cors-b"), fsmNamespace("pipy"), fsmNamespace("curl"), fsmNamespace("ops"), namespace("kube-system", nil)}
	for _, tt := range []struct {
		name     string
		existing *v1alpha1.PluginChain
		chain    *v1alpha1.PluginChain
		errs     []wantErr
		warnings []string
	}{
		{name: "two tenants with empty namespaceSelectors",
			existing: corsChain(t, "curl", "other", "cors-b", "", "{}"),
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", "{}"),
			warnings: []string{`spec.selectors.namespaceSelector: selects namespaces other than "pipy", but only PluginChains in the cluster-chain namespaces (ops) act beyond their own namespace: this chain acts in namespace "pipy" only`}},
		{name: "a designated chain reaches the tenant",
			existing: corsChain(t, "ops", "other", "cors-b", "", "{}"),
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", ""),
			errs:     []wantErr{{"spec.selectors", `PluginChain ops/other`}}},
		{name: "a tenant does not reach the designated namespace's pods from outside",
			existing: corsChain(t, "curl", "other", "cors-b", "", "{}"),
			chain:    corsChain(t, "ops", "new", "cors-policy", "", "{matchLabels: {kubernetes.io/metadata.name: pipy}}")},
		{name: "a chain of a skipped namespace is ignored",
			existing: corsChain(t, "kube-system", "other", "cors-b", "", "{}"),
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", "")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := clusterstate.NewSnapshot(append(slices.Clone(base), tt.existing)...)
			errs, warnings := PluginChainCreate(r, tt.chain, opts)
			checkResult(t, errs, warnings, tt.errs, tt.warnings, true)
		})
	}
}

func TestPluginChainRules(t *testing.T) {
	tests := []struct {
		name     string
		spec     string
		errs     []wantErr
		warnings []string
	}{
		{name: "no chains", spec: "chains: []", errs: []wantErr{{"spec.chains", "Required value"}}},
		{name: "unknown chain name", spec: "chains: [{name: inbound-https, plugins: [cors-policy]}]",
			errs: []wantErr{{"spec.chains[0].name", `Unsupported value: "inbound-https": supported values: "inbound-tcp", "inbound-http", "outbound-tcp", "outbound-http"`}}},
		{name: "chain name twice", spec: "chains: [{name: inbound-http, plugins: [cors-policy]}, {name: inbound-http, plugins: [other]}]",
			errs: []wantErr{{"spec.chains[1].name", "Duplicate value"}}, warnings: []string{"not a CORS plugin"}},
		{name: "no plugins", spec: "chains: [{name: inbound-http, plugins: []}]",
			errs: []wantErr{{"spec.chains[0].plugins", "Required value"}}},
		{name: "empty plugin name", spec: "chains: [{name: inbound-http, plugins: ['']}]",
			errs: []wantErr{{"spec.chains[0].plugins[0]", "Required value"}}},
		{name: "plugin name that cannot name a Plugin", spec: "chains: [{name: inbound-http, plugins: [Cors_Policy]}]",
			errs: []wantErr{{"spec.chains[0].plugins[0]", "must be the name of a Plugin"}}},
		{name: "plugin twice in a chain", spec: "chains: [{name: inbound-http, plugins: [cors-policy, cors-policy]}]",
			errs: []wantErr{{"spec.chains[0].plugins[1]", "Duplicate value"}}},
		{name: "CORS plugin in inbound-tcp", spec: "chains: [{name: inbound-tcp, plugins: [cors-policy]}]",
			errs: []wantErr{{"spec.chains[0].plugins[0]", `CORS plugin "cors-policy" may only be in chain "inbound-http"`}}},
		{name: "CORS plugin in outbound-http", spec: "chains: [{name: outbound-http, plugins: [cors-policy]}]",
			errs: []wantErr{{"spec.chains[0].plugins[0]", "may only be in chain"}}},
		{name: "two CORS plugins in inbound-http", spec: "chains: [{name: inbound-http, plugins: [cors-policy, cors-b]}]",
			errs: []wantErr{{"spec.chains[0].plugins[1]", `already lists CORS plugin "cors-policy"`}}},
		{name: "non-CORS plugins are ignored", spec: "chains: [{name: inbound-http, plugins: [cors-policy, token-auth]}, {name: outbound-http, plugins: [token-auth]}]",
			warnings: []string{`spec.chains[0].plugins[1]: "token-auth" is not a CORS plugin (--cors-plugins=cors-policy,cors-b): cors-webhook ignores it`}},
		{name: "unknown selector operator", spec: "chains: [{name: inbound-http, plugins: [cors-policy]}]\nselectors: {podSelector: {matchExpressions: [{key: app, operator: Equals, values: [a]}]}}",
			errs: []wantErr{{"spec.selectors.podSelector.matchExpressions[0].operator", "not a valid selector operator"}}},
		{name: "In without values", spec: "chains: [{name: inbound-http, plugins: [cors-policy]}]\nselectors: {namespaceSelector: {matchExpressions: [{key: team, operator: In}]}}",
			errs: []wantErr{{"spec.selectors.namespaceSelector.matchExpressions[0].values", "Required value"}}},
		{name: "Exists with values", spec: "chains: [{name: inbound-http, plugins: [cors-policy]}]\nselectors: {podSelector: {matchExpressions: [{key: team, operator: Exists, values: [a]}]}}",
			errs: []wantErr{{"spec.selectors.podSelector.matchExpressions[0].values", "Forbidden"}}},
		{name: "invalid label key", spec: "chains: [{name: inbound-http, plugins: [cors-policy]}]\nselectors: {podSelector: {matchLabels: {'bad key': x}}}",
			errs: []wantErr{{"spec.selectors.podSelector.matchLabels", "bad key"}}},
		{name: "invalid label value", spec: "chains: [{name: inbound-http, plugins: [cors-policy]}]\nselectors: {podSelector: {matchExpressions: [{key: app, operator: In, values: ['a b']}]}}",
			errs: []wantErr{{"spec.selectors.podSelector.matchExpressions[0].values[0]", "Invalid value"}}},
	}
	r := clusterstate.NewSnapshot(corsPlugin("cors-policy"), corsPlugin("cors-b"), fsmNamespace("pipy"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, warnings := PluginChainCreate(r, chainIn(t, "pipy", "c", tt.spec), twoCORSPlugins)
			checkResult(t, errs, warnings, tt.errs, tt.warnings, true)
		})
	}
}

func TestPluginChainConflicts(t *testing.T) {
	const (
		appA      = "{matchLabels: {app: a}}"
		teamA     = "{matchExpressions: [{key: team, operator: In, values: [a]}]}"
		teamB     = "{matchExpressions: [{key: team, operator: In, values: [b]}]}"
		teamNotA  = "{matchExpressions: [{key: team, operator: NotIn, values: [a]}]}"
		fsm       = "{matchExpressions: [{key: openservicemesh.io/monitored-by, operator: In, values: [fsm]}]}"
		envProd   = "{matchLabels: {env: prod}}"
		envDev    = "{matchLabels: {env: dev}}"
		onlyOther = "{matchLabels: {kubernetes.io/metadata.name: other}}"
	)
	tests := []struct {
		name     string
		existing []*v1alpha1.PluginChain
		extra    []any
		chain    *v1alpha1.PluginChain
		errs     []wantErr
		warnings []string
	}{
		{name: "different CORS plugin on the same pods in one namespace",
			existing: []*v1alpha1.PluginChain{corsChain(t, "pipy", "other", "cors-b", appA, "")},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", ""),
			errs:     []wantErr{{"spec.selectors", `selects the same pods as PluginChain pipy/other, which puts CORS plugin "cors-b" in inbound-http where this chain puts "cors-policy" (e.g. pods labelled {app=a} in namespace "pipy")`}}},
		{name: "disjoint pod selectors (team In a vs team In b)",
			existing: []*v1alpha1.PluginChain{corsChain(t, "pipy", "other", "cors-b", teamA, "")},
			chain:    corsChain(t, "pipy", "new", "cors-policy", teamB, "")},
		{name: "team In a vs team NotIn a",
			existing: []*v1alpha1.PluginChain{corsChain(t, "pipy", "other", "cors-b", teamA, "")},
			chain:    corsChain(t, "pipy", "new", "cors-policy", teamNotA, "")},
		{name: "same CORS plugin on the same pods is an overlap warning",
			existing: []*v1alpha1.PluginChain{corsChain(t, "pipy", "other", "cors-policy", teamA, "")},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", ""),
			warnings: []string{`spec.selectors: overlaps PluginChain pipy/other, which also puts "cors-policy" in inbound-http (e.g. pods labelled {team=a} in namespace "pipy"): deleting one of them will not remove CORS from those pods`}},
		{name: "chains in different namespaces without namespaceSelector",
			existing: []*v1alpha1.PluginChain{corsChain(t, "curl", "other", "cors-b", "", "")},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", "")},
		{name: "chain without CORS plugin",
			existing: []*v1alpha1.PluginChain{chainIn(t, "pipy", "other", "chains: [{name: inbound-http, plugins: [token-auth]}]")},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", "")},
		{name: "another namespace's chain whose namespaceSelector matches this namespace",
			existing: []*v1alpha1.PluginChain{corsChain(t, "curl", "other", "cors-b", "", fsm)},
			chain:    corsChain(t, "pipy", "new", "cors-policy", appA, ""),
			errs:     []wantErr{{"spec.selectors", `PluginChain curl/other, which puts CORS plugin "cors-b" in inbound-http where this chain puts "cors-policy" (e.g. pods labelled {app=a} in namespace "pipy")`}}},
		{name: "another namespace's chain whose namespaceSelector does not match this namespace",
			existing: []*v1alpha1.PluginChain{corsChain(t, "curl", "other", "cors-b", "", envProd)},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", "")},
		{name: "namespaceSelector matching a namespace with a chain",
			existing: []*v1alpha1.PluginChain{corsChain(t, "pipy", "other", "cors-b", "", "")},
			chain:    corsChain(t, "curl", "new", "cors-policy", "", fsm),
			errs:     []wantErr{{"spec.selectors", `PluginChain pipy/other`}}},
		{name: "namespaceSelector not matching the namespace of a chain",
			existing: []*v1alpha1.PluginChain{corsChain(t, "plain", "other", "cors-b", "", "")},
			extra:    []any{namespace("plain", nil)},
			chain:    corsChain(t, "curl", "new", "cors-policy", "", fsm)},
		{name: "two namespaceSelectors that no existing namespace satisfies but a label set does",
			existing: []*v1alpha1.PluginChain{corsChain(t, "curl", "other", "cors-b", teamA, envProd)},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", "{matchExpressions: [{key: tier, operator: Exists}]}"),
			errs:     []wantErr{{"spec.selectors", `(e.g. pods labelled {team=a} in a namespace labelled {env=prod,tier=x})`}}},
		{name: "two namespaceSelectors with an existing namespace in common",
			existing: []*v1alpha1.PluginChain{corsChain(t, "curl", "other", "cors-b", "", fsm)},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", "{matchExpressions: [{key: openservicemesh.io/monitored-by, operator: Exists}]}"),
			errs:     []wantErr{{"spec.selectors", `(e.g. any pod in namespace "curl")`}}},
		{name: "two disjoint namespaceSelectors",
			existing: []*v1alpha1.PluginChain{corsChain(t, "curl", "other", "cors-b", "", envProd)},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", envDev)},
		{name: "a namespace that does not exist yet, reachable by labels",
			existing: []*v1alpha1.PluginChain{corsChain(t, "curl", "other", "cors-b", "", envProd)},
			chain:    corsChain(t, "future", "new", "cors-policy", "", ""),
			errs:     []wantErr{{"spec.selectors", `(e.g. any pod in namespace "future" if labelled {env=prod})`}}},
		{name: "a namespace that does not exist yet, excluded by name",
			existing: []*v1alpha1.PluginChain{corsChain(t, "curl", "other", "cors-b", "", onlyOther)},
			chain:    corsChain(t, "future", "new", "cors-policy", "", "")},
		{name: "the seed's chain against a disjoint chain of another CORS plugin",
			existing: []*v1alpha1.PluginChain{corsChain(t, "pipy", "other", "cors-b", "{matchLabels: {app: curl}}", "")},
			chain:    seedChain(t)},
		{name: "the seed's chain against a chain of another CORS plugin on its pods",
			existing: []*v1alpha1.PluginChain{corsChain(t, "pipy", "other", "cors-b", "{matchLabels: {version: v1}}", "")},
			chain:    seedChain(t),
			errs:     []wantErr{{"spec.selectors", `(e.g. pods labelled {app=pipy-ok,version=v1} in namespace "pipy")`}}},
		{name: "a chain with an invalid selector selects nothing",
			existing: []*v1alpha1.PluginChain{corsChain(t, "pipy", "other", "cors-b", "{matchExpressions: [{key: a, operator: In}]}", "")},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", "")},
		{name: "the chain itself (an update)",
			existing: []*v1alpha1.PluginChain{corsChain(t, "pipy", "new", "cors-b", "", "")},
			chain:    corsChain(t, "pipy", "new", "cors-policy", "", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			objs := []any{corsPlugin("cors-policy"), corsPlugin("cors-b"), fsmNamespace("pipy"), fsmNamespace("curl")}
			for _, c := range tt.existing {
				objs = append(objs, c)
			}
			r := clusterstate.NewSnapshot(append(objs, tt.extra...)...)
			errs, warnings := PluginChainCreate(r, tt.chain, twoCORSPlugins)
			checkResult(t, errs, warnings, tt.errs, tt.warnings, true)
			for _, e := range errs {
				if e.Origin != OriginChainConflict {
					t.Errorf("error %v has origin %q", e, e.Origin)
				}
			}
		})
	}
}

func TestPluginChainConflictsAreCapped(t *testing.T) {
	objs := []any{corsPlugin("cors-policy"), corsPlugin("cors-b"), fsmNamespace("pipy")}
	for i := range 8 {
		objs = append(objs, corsChain(t, "pipy", fmt.Sprintf("other-%d", i), "cors-b", "", ""))
	}
	errs, _ := PluginChainCreate(clusterstate.NewSnapshot(objs...), corsChain(t, "pipy", "new", "cors-policy", "", ""), twoCORSPlugins)
	if len(errs) != maxReported+1 || !strings.Contains(errs[maxReported].Error(), "and 3 more conflicting PluginChains") {
		t.Fatalf("errors = %v", errs)
	}
	if !strings.Contains(errs[0].Error(), "pipy/other-0") {
		t.Errorf("conflicts are not reported in name order: %v", errs[0])
	}
}

func TestPluginChainUpdate(t *testing.T) {
	other := corsChain(t, "pipy", "other", "cors-b", "{matchLabels: {team: b}}", "")
	old := corsChain(t, "pipy", "mine", "cors-policy", "{matchLabels: {team: a}}", "")
	r := clusterstate.NewSnapshot(corsPlugin("cors-policy"), corsPlugin("cors-b"), fsmNamespace("pipy"), other, old)

	// An update that creates a conflict is rejected.
	upd := old.DeepCopy()
	upd.Spec.Selectors.PodSelector = nil
	errs, _ := PluginChainUpdate(r, upd, old, twoCORSPlugins)
	checkResult(t, errs, nil, []wantErr{{"spec.selectors", "PluginChain pipy/other"}}, nil, false)

	// An update that keeps the spec is accepted, even when the chain already conflicts.
	conflicting := corsChain(t, "pipy", "mine", "cors-policy", "", "")
	upd = conflicting.DeepCopy()
	upd.Annotations = map[string]string{"note": "x"}
	if errs, _ := PluginChainUpdate(r, upd, conflicting, twoCORSPlugins); len(errs) > 0 {
		t.Errorf("metadata-only update rejected: %v", errs)
	}
	// So is any update of a chain being deleted.
	upd.DeletionTimestamp = &metav1.Time{}
	upd.Spec.Chains = nil
	if errs, _ := PluginChainUpdate(r, upd, conflicting, twoCORSPlugins); len(errs) > 0 {
		t.Errorf("update of a terminating chain rejected: %v", errs)
	}
}

func TestPlugin(t *testing.T) {
	tests := []struct {
		name     string
		plugin   string
		errs     []wantErr
		warnings []string
	}{
		{name: "the seed's plugin", plugin: "metadata: {name: cors-policy}\nspec: {priority: 165, pipyscript: '((x) => x)()'}"},
		{name: "CORS plugin without script", plugin: "metadata: {name: cors-policy}\nspec: {priority: 165}"},
		{name: "non-CORS plugin", plugin: "metadata: {name: token-auth}\nspec: {pipyscript: 'x'}",
			warnings: []string{`metadata.name: "token-auth" is not a CORS plugin (--cors-plugins=cors-policy): cors-webhook ignores it`}},
		{name: "non-CORS plugin without script", plugin: "metadata: {name: token-auth}\nspec: {}",
			errs: []wantErr{{"spec.pipyscript", "Required value"}}, warnings: []string{"not a CORS plugin"}},
		{name: "priority beyond float32", plugin: "metadata: {name: cors-policy}\nspec: {priority: 1e40}",
			errs: []wantErr{{"spec.priority", "32-bit float"}}},
		{name: "name that is not a DNS subdomain", plugin: "metadata: {name: Cors_Policy}\nspec: {pipyscript: x}",
			errs: []wantErr{{"metadata.name", "Invalid value"}}, warnings: []string{"not a CORS plugin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs, warnings := PluginCreate(mustYAML[v1alpha1.Plugin](t, tt.plugin), Options{})
			checkResult(t, errs, warnings, tt.errs, tt.warnings, true)
		})
	}
	old := mustYAML[v1alpha1.Plugin](t, "metadata: {name: x}\nspec: {}")
	upd := old.DeepCopy()
	upd.Labels = map[string]string{"a": "b"}
	if errs, _ := PluginUpdate(upd, old, Options{}); len(errs) > 0 {
		t.Errorf("metadata-only update rejected: %v", errs)
	}
}
