package reconcile

import (
	"testing"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/inject"
)

func TestChainStatus(t *testing.T) {
	server := []string{"cors-policy"}
	declared := func(edit func(*chainObservation)) chainObservation {
		o := chainObservation{corsPlugins: []string{"cors-policy"}, serverPlugins: server, namespaces: []string{"pipy"}}
		edit(&o)
		return o
	}
	tests := []struct {
		name string
		obs  chainObservation
		want v1alpha1.PluginStatus
	}{
		{"a chain without a CORS plugin is not this server's business",
			chainObservation{serverPlugins: server},
			v1alpha1.PluginStatus{CurrentStatus: StatusIgnored, Reason: "mounts no CORS plugin (cors-policy) in inbound-http: this server does not act on it"}},
		{"its plugin is not declared",
			chainObservation{corsPlugins: []string{"cors-policy"}, undeclared: []string{"cors-policy"}, serverPlugins: server},
			v1alpha1.PluginStatus{CurrentStatus: StatusPluginNotDeclared, Reason: "no Plugin cors-policy is declared, so the chain has no effect until one is (kubectl get plugins)"}},
		{"an invalid selector",
			declared(func(o *chainObservation) {
				o.invalid = `spec.selectors.podSelector: "=" is not a valid label selector operator`
			}),
			v1alpha1.PluginStatus{CurrentStatus: StatusInvalid, Reason: `its selectors select nothing: spec.selectors.podSelector: "=" is not a valid label selector operator`}},
		{"no namespace matches",
			declared(func(o *chainObservation) { o.namespaces = nil }),
			v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: "its namespaceSelector matches no namespace"}},
		{"no pod matches",
			declared(func(o *chainObservation) {}),
			v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: "no running pod matches its podSelector in namespace pipy"}},
		{"the seed guide right after the chain: pods wait for their rollout",
			declared(func(o *chainObservation) { o.selected, o.podNamespaces = 2, []string{"pipy"} }),
			v1alpha1.PluginStatus{CurrentStatus: StatusPending, Reason: "selects 2 pod(s) in namespace pipy: 0 injected, 2 without the sidecar yet (their workloads roll, or the pods must be recreated: see their Events)"}},
		{"the seed guide once rolled out",
			declared(func(o *chainObservation) { o.selected, o.injected, o.podNamespaces = 2, 2, []string{"pipy"} }),
			v1alpha1.PluginStatus{CurrentStatus: StatusActive, Reason: "selects 2 pod(s) in namespace pipy: 2 injected with cors-policy"}},
		{"opt-outs and host-network pods are counted apart",
			declared(func(o *chainObservation) {
				o.selected, o.injected, o.optedOut, o.never, o.podNamespaces = 4, 2, 1, map[inject.Outcome]int{inject.HostNetwork: 1}, []string{"pipy"}
			}),
			v1alpha1.PluginStatus{CurrentStatus: StatusActive, Reason: "selects 4 pod(s) in namespace pipy: 2 injected with cors-policy (1 opted out; 1 never injected: on the host network)"}},
		{"pods never injected, by reason: no pending rollout",
			declared(func(o *chainObservation) {
				o.selected, o.never, o.podNamespaces = 3, map[inject.Outcome]int{inject.PodSecurity: 2, inject.Windows: 1}, []string{"pipy"}
			}),
			v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: "selects 3 pod(s) in namespace pipy: none can be injected (2 never injected: their namespace enforces Pod Security baseline or restricted; 1 never injected: Windows pods)"}},
		{"a chain of a namespace the webhooks skip",
			declared(func(o *chainObservation) { o.ignored = true }),
			v1alpha1.PluginStatus{CurrentStatus: StatusIgnored, Reason: "its namespace is skipped by the webhooks (an excluded namespace, or labelled cors-webhook.io/inject=disabled), so nothing validated it and it acts on no pod; only PluginChains of the cluster-chain namespaces may live there"}},
		{"only opted-out pods",
			declared(func(o *chainObservation) { o.selected, o.optedOut, o.podNamespaces = 1, 1, []string{"pipy"} }),
			v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: "selects 1 pod(s) in namespace pipy: none can be injected (1 opted out)"}},
		{"one of two plugins undeclared, many namespaces",
			chainObservation{corsPlugins: []string{"cors-a", "cors-b"}, undeclared: []string{"cors-b"}, serverPlugins: []string{"cors-a", "cors-b"},
				namespaces: []string{"a", "b", "c", "d", "e", "f", "g"}, podNamespaces: []string{"a", "b", "c", "d", "e", "f", "g"}, selected: 7, injected: 7},
			v1alpha1.PluginStatus{CurrentStatus: StatusActive, Reason: "selects 7 pod(s) in namespace a, b, c, d, e and 2 more: 7 injected with cors-a (no Plugin cors-b is declared)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := chainStatus(tc.obs); got != tc.want {
				t.Errorf("chainStatus =\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}

func TestConfigStatus(t *testing.T) {
	server := []string{"cors-policy"}
	ok := func(edit func(*configObservation)) configObservation {
		o := configObservation{corsPlugin: true, serverPlugins: server, declared: true, services: []string{"pipy-ok"}}
		edit(&o)
		return o
	}
	tests := []struct {
		name string
		obs  configObservation
		want v1alpha1.PluginStatus
	}{
		{"not a CORS plugin",
			configObservation{serverPlugins: server},
			v1alpha1.PluginStatus{CurrentStatus: StatusIgnored, Reason: "plugin cors-policy is not a CORS plugin of this server (cors-policy): it does not act on it"}},
		{"plugin not declared",
			configObservation{corsPlugin: true, serverPlugins: server},
			v1alpha1.PluginStatus{CurrentStatus: StatusPluginNotDeclared, Reason: "no Plugin cors-policy is declared, so the config has no effect until one is (kubectl get plugins)"}},
		{"invalid config",
			ok(func(o *configObservation) { o.invalid = "spec.config.allowOrigins: Required value" }),
			v1alpha1.PluginStatus{CurrentStatus: StatusInvalid, Reason: "spec.config is ignored: spec.config.allowOrigins: Required value"}},
		{"no Service matches",
			ok(func(o *configObservation) { o.services, o.missing = nil, []string{"Service pipy-ok"} }),
			v1alpha1.PluginStatus{CurrentStatus: StatusNoService, Reason: "no Service matches: Service pipy-ok not found"}},
		{"no destinationRefs",
			ok(func(o *configObservation) { o.services = nil }),
			v1alpha1.PluginStatus{CurrentStatus: StatusNoService, Reason: "destinationRefs name no Service"}},
		{"the Service selects no pod",
			ok(func(o *configObservation) {}),
			v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: "Service pipy-ok selects no running pod"}},
		{"the seed guide before the chain",
			ok(func(o *configObservation) { o.backing, o.notSelected = 2, 2 }),
			v1alpha1.PluginStatus{CurrentStatus: StatusNotSelected, Reason: "Service pipy-ok selects 2 pod(s), but no PluginChain mounts cors-policy on them"}},
		{"the seed guide while rolling",
			ok(func(o *configObservation) { o.backing, o.waiting = 2, 2 }),
			v1alpha1.PluginStatus{CurrentStatus: StatusPending, Reason: "configures Service pipy-ok: applied on 0 pod(s), 2 waiting for the sidecar (their workloads roll, or the pods must be recreated: see their Events)"}},
		{"the seed guide once rolled out",
			ok(func(o *configObservation) { o.backing, o.applied, o.ports = 2, 2, []int32{8080} }),
			v1alpha1.PluginStatus{CurrentStatus: StatusActive, Reason: "configures Service pipy-ok: port 8080 of 2 pod(s)"}},
		{"partly applied, with a missing Service and the rest explained",
			ok(func(o *configObservation) {
				o.missing = []string{"Service gone"}
				o.backing, o.applied, o.ports, o.notSelected, o.optedOut, o.noPort = 5, 2, []int32{8080, 8443}, 1, 1, 1
			}),
			v1alpha1.PluginStatus{CurrentStatus: StatusActive, Reason: "configures Service pipy-ok: port 8080,8443 of 2 pod(s) (Service gone not found; 1 pod(s) behind it are selected by no PluginChain mounting cors-policy; 1 opted out; 1 pod(s) have no TCP port the Service reaches)"}},
		{"another config wins everywhere",
			ok(func(o *configObservation) { o.backing, o.overridden = 2, 2 }),
			v1alpha1.PluginStatus{CurrentStatus: StatusOverridden, Reason: "configures Service pipy-ok (on 2 pod(s) another PluginConfig configures the same port and applies instead)"}},
		{"no port reaches the pods",
			ok(func(o *configObservation) { o.backing, o.noPort = 1, 1 }),
			v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: "configures Service pipy-ok, but on no pod that can carry it (1 pod(s) have no TCP port the Service reaches)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := configStatus("cors-policy", tc.obs); got != tc.want {
				t.Errorf("configStatus =\n  %+v\nwant\n  %+v", got, tc.want)
			}
		})
	}
}
