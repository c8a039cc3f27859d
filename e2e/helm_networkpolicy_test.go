package e2e

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// TestHelmNetworkPolicy pins the rules of the chart's NetworkPolicies, rendered with helm
// template: the test node's bridge CNI does not enforce NetworkPolicy, so their effect cannot
// be shown on it.
func TestHelmNetworkPolicy(t *testing.T) {
	chart := helmChartDir(t)
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	port := func(p corev1.Protocol, n int) networkingv1.NetworkPolicyPort {
		v := intstr.FromInt32(int32(n))
		return networkingv1.NetworkPolicyPort{Protocol: &p, Port: &v}
	}
	both := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	anyPod := networkingv1.NetworkPolicyPeer{NamespaceSelector: &metav1.LabelSelector{}, PodSelector: &metav1.LabelSelector{}}
	apiServer := networkingv1.NetworkPolicyEgressRule{Ports: []networkingv1.NetworkPolicyPort{port(tcp, 443), port(tcp, 6443)}}
	metrics := func(from networkingv1.NetworkPolicyPeer) networkingv1.NetworkPolicyIngressRule {
		return networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{port(tcp, 8080)}, From: []networkingv1.NetworkPolicyPeer{from}}
	}
	webhook := networkingv1.NetworkPolicyIngressRule{Ports: []networkingv1.NetworkPolicyPort{port(tcp, 9443)}}

	monitoring := networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
		PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"app.kubernetes.io/name": "prometheus"}},
	}
	controlPlane := networkingv1.NetworkPolicyPeer{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.0/24"}}
	tunedAPIServer := networkingv1.NetworkPolicyEgressRule{
		Ports: []networkingv1.NetworkPolicyPort{port(tcp, 6443)},
		To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.10/32"}}, {IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.11/32"}}},
	}
	dns := networkingv1.NetworkPolicyEgressRule{
		Ports: []networkingv1.NetworkPolicyPort{port(udp, 53), port(tcp, 53)},
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "kube-system"}},
			PodSelector:       &metav1.LabelSelector{MatchLabels: map[string]string{"k8s-app": "kube-dns"}},
		}},
	}

	defaultWebhook := &networkingv1.NetworkPolicySpec{PolicyTypes: both,
		Ingress: []networkingv1.NetworkPolicyIngressRule{webhook, metrics(anyPod)},
		Egress:  []networkingv1.NetworkPolicyEgressRule{apiServer}}
	defaultController := &networkingv1.NetworkPolicySpec{PolicyTypes: both,
		Ingress: []networkingv1.NetworkPolicyIngressRule{metrics(anyPod)},
		Egress:  []networkingv1.NetworkPolicyEgressRule{apiServer}}

	for _, tc := range []struct {
		name                string
		set                 []string
		webhook, controller *networkingv1.NetworkPolicySpec // nil: no policy
	}{{
		name:       "defaults: webhook port from anywhere, metrics from any pod, egress to the API server ports only",
		webhook:    defaultWebhook,
		controller: defaultController,
	}, {
		name:       "cert-manager mode renders the same policies",
		set:        []string{"certs.mode=cert-manager"},
		webhook:    defaultWebhook,
		controller: defaultController,
	}, {
		name: "tuned: scrapers, webhook callers, API server CIDRs and port, DNS",
		set: []string{
			"networkPolicy.metrics.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=monitoring",
			"networkPolicy.metrics.podSelector.matchLabels.app\\.kubernetes\\.io/name=prometheus",
			"networkPolicy.webhook.from[0].ipBlock.cidr=10.0.0.0/24",
			"networkPolicy.apiServer.cidrs={10.0.0.10/32,10.0.0.11/32}",
			"networkPolicy.apiServer.ports={6443}",
			"networkPolicy.dns.enabled=true",
		},
		webhook: &networkingv1.NetworkPolicySpec{PolicyTypes: both,
			Ingress: []networkingv1.NetworkPolicyIngressRule{
				{Ports: webhook.Ports, From: []networkingv1.NetworkPolicyPeer{controlPlane}}, metrics(monitoring)},
			Egress: []networkingv1.NetworkPolicyEgressRule{tunedAPIServer, dns}},
		controller: &networkingv1.NetworkPolicySpec{PolicyTypes: both,
			Ingress: []networkingv1.NetworkPolicyIngressRule{metrics(monitoring)},
			Egress:  []networkingv1.NetworkPolicyEgressRule{tunedAPIServer, dns}},
	}, {
		name: "the control plane's addresses known: only they may call the webhook port",
		set:  []string{"networkPolicy.webhook.controlPlaneCIDRs={10.0.0.10/32,10.0.0.11/32}"},
		webhook: &networkingv1.NetworkPolicySpec{PolicyTypes: both,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: webhook.Ports, From: []networkingv1.NetworkPolicyPeer{
				{IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.10/32"}}, {IPBlock: &networkingv1.IPBlock{CIDR: "10.0.0.11/32"}}}}, metrics(anyPod)},
			Egress: []networkingv1.NetworkPolicyEgressRule{apiServer}},
		controller: defaultController,
	}, {
		name: "control plane CIDRs add to webhook.from",
		set:  []string{"networkPolicy.webhook.from[0].ipBlock.cidr=10.0.0.0/24", "networkPolicy.webhook.controlPlaneCIDRs={192.0.2.0/28}"},
		webhook: &networkingv1.NetworkPolicySpec{PolicyTypes: both,
			Ingress: []networkingv1.NetworkPolicyIngressRule{{Ports: webhook.Ports, From: []networkingv1.NetworkPolicyPeer{
				controlPlane, {IPBlock: &networkingv1.IPBlock{CIDR: "192.0.2.0/28"}}}}, metrics(anyPod)},
			Egress: []networkingv1.NetworkPolicyEgressRule{apiServer}},
		controller: defaultController,
	}, {
		name: "disabled",
		set:  []string{"networkPolicy.enabled=false"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--namespace", "cors-system"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			objs := helmTemplate(t, chart, args...)
			policies := map[string]networkingv1.NetworkPolicy{}
			var testHooks []networkingv1.NetworkPolicy // helm test's, which exist only while it runs
			for _, doc := range objs["NetworkPolicy"] {
				var np networkingv1.NetworkPolicy
				if err := yaml.UnmarshalStrict([]byte(doc), &np); err != nil {
					t.Fatal(err)
				}
				if np.Annotations["helm.sh/hook"] == "test" {
					testHooks = append(testHooks, np)
					continue
				}
				policies[np.Name] = np
			}
			deployments := map[string]appsv1.Deployment{}
			for _, doc := range objs["Deployment"] {
				var d appsv1.Deployment
				if err := yaml.UnmarshalStrict([]byte(doc), &d); err != nil {
					t.Fatal(err)
				}
				deployments[d.Name] = d
			}
			want := map[string]*networkingv1.NetworkPolicySpec{"cors-webhook": tc.webhook, "cors-webhook-controller": tc.controller}
			for name, spec := range want {
				np, ok := policies[name]
				if spec == nil {
					if ok {
						t.Errorf("NetworkPolicy %s rendered, want none", name)
					}
					continue
				}
				if !ok {
					t.Fatalf("no NetworkPolicy %s; rendered: %v", name, policies)
				}
				d, ok := deployments[name]
				if !ok {
					t.Fatalf("no Deployment %s", name)
				}
				// The policy selects the Deployment's pods, and no other Deployment's.
				for other, od := range deployments {
					sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
					if err != nil {
						t.Fatal(err)
					}
					if got := sel.Matches(labels.Set(od.Spec.Template.Labels)); got != (other == name) {
						t.Errorf("NetworkPolicy %s selects the pods of Deployment %s: %v", name, other, got)
					}
				}
				// The allowed ports are the ones the containers serve.
				served := map[int32]bool{}
				for _, p := range d.Spec.Template.Spec.Containers[0].Ports {
					served[p.ContainerPort] = true
				}
				for _, r := range np.Spec.Ingress {
					for _, p := range r.Ports {
						if !served[p.Port.IntVal] {
							t.Errorf("NetworkPolicy %s allows port %s, which %s does not serve", name, p.Port, name)
						}
					}
				}
				got := np.Spec
				got.PodSelector = metav1.LabelSelector{}
				if diff := cmp.Diff(*spec, got); diff != "" {
					t.Errorf("NetworkPolicy %s rules (-want +got):\n%s", name, diff)
				}
			}
			if len(policies) > 2 {
				t.Errorf("%d NetworkPolicies rendered, want at most 2", len(policies))
			}
			if len(testHooks) != len(policies)/2 {
				t.Errorf("%d NetworkPolicies of helm test rendered with %d of the release, want 1 with them, none without", len(testHooks), len(policies))
			}
			// helm test's policy is the test pod's alone.
			for _, np := range testHooks {
				sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
				if err != nil {
					t.Fatal(err)
				}
				for name, d := range deployments {
					if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
						t.Errorf("helm test's NetworkPolicy %s selects the pods of Deployment %s", np.Name, name)
					}
				}
				if len(np.Spec.Ingress) != 0 || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
					t.Errorf("helm test's NetworkPolicy %s lets traffic in: %+v", np.Name, np.Spec)
				}
			}
		})
	}
}
