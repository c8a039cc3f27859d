package e2e

import (
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/chains"
)

// TestHelmWebhookScopeIsTheRulesScope holds the chart's webhook selectors equal to the scope
// package chains defines from the flags the chart passes both processes: the pods the webhook
// is called for are exactly those the controller may patch or roll.
func TestHelmWebhookScopeIsTheRulesScope(t *testing.T) {
	chart := helmChartDir(t)
	for _, tc := range []struct {
		name         string
		set          []string
		wantExcluded []string
	}{
		{name: "defaults", wantExcluded: []string{"kube-system", "cors-system"}},
		{name: "more excluded namespaces", set: []string{"webhook.excludeNamespaces={kube-system,monitoring}"},
			wantExcluded: []string{"kube-system", "monitoring", "cors-system"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--namespace", "cors-system"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			objs := helmTemplate(t, chart, args...)

			// The scope each process is told, from its own arguments.
			var tenancy *chains.Tenancy
			for _, doc := range objs["Deployment"] {
				var d appsv1.Deployment
				if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
					t.Fatal(err)
				}
				excluded := excludedNamespacesArg(t, d)
				if strings.Join(excluded, ",") != strings.Join(tc.wantExcluded, ",") {
					t.Errorf("deployment %s: --excluded-namespaces=%v, want %v", d.Name, excluded, tc.wantExcluded)
				}
				if tenancy == nil {
					tenancy = &chains.Tenancy{SkippedNamespaces: excluded}
				}
			}
			if len(objs["Deployment"]) != 2 || tenancy == nil {
				t.Fatalf("%d Deployments rendered, want serve's and the controller's", len(objs["Deployment"]))
			}
			wantNS, wantObj := selectorString(t, tenancy.AdmissionNamespaceSelector()), selectorString(t, chains.AdmissionObjectSelector())

			mutating := helmFind[admissionregistrationv1.MutatingWebhookConfiguration](t, objs, "MutatingWebhookConfiguration")
			if len(mutating.Webhooks) != 1 {
				t.Fatalf("%d mutating webhooks, want the pod webhook", len(mutating.Webhooks))
			}
			pods := mutating.Webhooks[0]
			if got := selectorString(t, pods.NamespaceSelector); got != wantNS {
				t.Errorf("pod webhook namespaceSelector %q, the rule's scope is %q", got, wantNS)
			}
			if got := selectorString(t, pods.ObjectSelector); got != wantObj {
				t.Errorf("pod webhook objectSelector %q, the rule's scope is %q", got, wantObj)
			}
			validating := helmFind[admissionregistrationv1.ValidatingWebhookConfiguration](t, objs, "ValidatingWebhookConfiguration")
			for _, w := range validating.Webhooks {
				if w.Rules[0].Scope != nil && *w.Rules[0].Scope == admissionregistrationv1.ClusterScope {
					continue // Plugins are cluster-scoped: no namespace to select
				}
				if got := selectorString(t, w.NamespaceSelector); got != wantNS {
					t.Errorf("%s namespaceSelector %q, the rule's scope is %q", w.Name, got, wantNS)
				}
			}
		})
	}
}

// excludedNamespacesArg returns the values of the first container's --excluded-namespaces.
func excludedNamespacesArg(t *testing.T, d appsv1.Deployment) []string {
	t.Helper()
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if v, ok := strings.CutPrefix(a, "--excluded-namespaces="); ok {
			return strings.Split(v, ",")
		}
	}
	t.Fatalf("deployment %s has no --excluded-namespaces", d.Name)
	return nil
}

// selectorString is the selector in labels.Selector's canonical form (requirements and values
// sorted), so that two selectors that select the same compare equal.
func selectorString(t *testing.T, s *metav1.LabelSelector) string {
	t.Helper()
	if s == nil {
		return "<nil>"
	}
	sel, err := metav1.LabelSelectorAsSelector(s)
	if err != nil {
		t.Fatal(err)
	}
	return sel.String()
}
