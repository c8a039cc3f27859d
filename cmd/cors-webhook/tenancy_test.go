package main

import (
	"strings"
	"testing"
)

// tenancyManifests: a tenant (namespace tenant-a) and the admin (namespace ops) each have a
// chain with namespaceSelector {}; a pod runs in namespace web.
const tenancyManifests = `
apiVersion: v1
kind: Namespace
metadata: {name: web}
---
apiVersion: v1
kind: Namespace
metadata: {name: tenant-a}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: Plugin
metadata: {name: cors-policy}
spec: {priority: 165}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: everywhere, namespace: tenant-a}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {namespaceSelector: {}, podSelector: {matchLabels: {app: tenant}}}
---
apiVersion: plugin.flomesh.io/v1alpha1
kind: PluginChain
metadata: {name: everywhere, namespace: ops}
spec:
  chains: [{name: inbound-http, plugins: [cors-policy]}]
  selectors: {namespaceSelector: {}, podSelector: {matchLabels: {app: admin}}}
---
apiVersion: v1
kind: Pod
metadata: {name: tenant, namespace: web, labels: {app: tenant}}
spec: {containers: [{name: app, image: app}]}
---
apiVersion: v1
kind: Pod
metadata: {name: admin, namespace: web, labels: {app: admin}}
spec: {containers: [{name: app, image: app}]}
`

// TestOfflineTenancy: inject, validate and describe apply the webhook's tenancy rule.
func TestOfflineTenancy(t *testing.T) {
	// No namespace designated: neither chain reaches web.
	out, _, code := runCommand(t, tenancyManifests, "inject", "-f", "-")
	if code != exitOK || strings.Contains(out, "cors-sidecar") {
		t.Errorf("inject without --cluster-chain-namespaces: exit %d, sidecar injected: %v", code, strings.Contains(out, "cors-sidecar"))
	}
	// ops designated: its chain reaches web, the tenant's does not.
	out, errOut, code := runCommand(t, tenancyManifests, "inject", "-f", "-", "--cluster-chain-namespaces", "ops")
	if code != exitOK {
		t.Fatalf("inject: exit %d\n%s", code, errOut)
	}
	if n := strings.Count(out, "name: cors-sidecar"); n != 1 {
		t.Errorf("inject with --cluster-chain-namespaces=ops: %d pods injected, want 1 (the admin's)\n%s", n, errOut)
	}
	// ops designated but excluded from the webhooks is still honoured; excluded alone is ignored.
	out, _, _ = runCommand(t, tenancyManifests, "inject", "-f", "-", "--excluded-namespaces", "ops", "--cluster-chain-namespaces", "ops")
	if n := strings.Count(out, "name: cors-sidecar"); n != 1 {
		t.Errorf("designated and excluded: %d pods injected, want 1", n)
	}

	stdout, stderr, code := runCommand(t, tenancyManifests, "validate", "-f", "-", "--cluster-chain-namespaces", "ops")
	if code != exitOK {
		t.Errorf("validate: exit %d (warnings only expected)", code)
	}
	all := stdout + stderr
	if !strings.Contains(all, `selects namespaces other than "tenant-a"`) || strings.Contains(all, `other than "ops"`) {
		t.Errorf("validate: want a tenancy warning for tenant-a/everywhere only:\n%s", all)
	}

	stdout, stderr, code = runCommand(t, tenancyManifests, "describe", "-f", "-", "-n", "web", "tenant", "--cluster-chain-namespaces", "ops")
	if code != exitOK || !strings.Contains(stdout, "namespace tenant-a is not a cluster-chain namespace") {
		t.Errorf("describe: exit %d, want the tenancy reason:\n%s%s", code, stdout, stderr)
	}
}

// TestOfflineSkipsPodSecurityNamespaces: inject and describe name the reason a pod of a
// namespace enforcing Pod Security baseline is not injected; inject exits 1 (a selected
// workload that cannot be injected) and leaves the workload unchanged.
func TestOfflineSkipsPodSecurityNamespaces(t *testing.T) {
	manifests := strings.Replace(injectContext, "metadata: {name: shop, labels: {team: shop}}",
		"metadata: {name: shop, labels: {team: shop, pod-security.kubernetes.io/enforce: baseline}}", 1) + "---" + webPod
	out, errOut, code := runCommand(t, manifests, "inject", "-f", "-")
	if code != exitInvalid || strings.Contains(out, "cors-sidecar") || !strings.Contains(errOut, `pod-security`) ||
		!strings.Contains(errOut, `namespace shop enforces Pod Security "baseline"`) {
		t.Errorf("inject: exit %d, want 1, the pod unchanged and the reason on stderr:\n%s", code, errOut)
	}
	out, errOut, code = runCommand(t, manifests, "describe", "-f", "-", "-n", "shop", "web")
	if code != exitOK || !strings.Contains(out, "not injected: pod-security (") {
		t.Errorf("describe: exit %d, want the pod-security outcome:\n%s%s", code, out, errOut)
	}
}
