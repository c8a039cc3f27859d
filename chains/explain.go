package chains

import (
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/contract"
)

// Reason says why a chain does or does not select a pod: the rule's own answer, so that
// `describe` renders it instead of re-deriving it. [Reasons] gives each its sentence (the
// model is Linkerd's pkg/inject Reasons map).
type Reason string

// The reasons [Selection.Explain] returns.
const (
	// ReasonSelected: the chain mounts a CORS plugin and selects the pod.
	ReasonSelected Reason = "Selected"
	// ReasonNoCORSPlugin: the chain mounts no CORS plugin in inbound-http.
	ReasonNoCORSPlugin Reason = "NoCORSPlugin"
	// ReasonNamespaceExcluded: the chain's namespace is one the webhooks skip by name.
	ReasonNamespaceExcluded Reason = "NamespaceExcluded"
	// ReasonNamespaceOptedOut: the chain reaches in from a namespace labelled
	// cors-webhook.io/inject=disabled.
	ReasonNamespaceOptedOut Reason = "NamespaceOptedOut"
	// ReasonConfined: the chain's namespaceSelector reaches the pod's namespace, but its own
	// namespace is not a cluster-chain namespace.
	ReasonConfined Reason = "Confined"
	// ReasonNoNamespaceSelector: the chain has no namespaceSelector and lives elsewhere.
	ReasonNoNamespaceSelector Reason = "NoNamespaceSelector"
	// ReasonNamespaceNotSelected: the chain's namespaceSelector does not select the pod's
	// namespace (or that namespace is out of the webhooks' scope).
	ReasonNamespaceNotSelected Reason = "NamespaceNotSelected"
	// ReasonPodNotSelected: the chain's podSelector does not select the pod's labels (or the
	// pod is out of the webhooks' scope).
	ReasonPodNotSelected Reason = "PodNotSelected"
)

// Reasons are the sentences of the reasons, with placeholders {chainNamespace} and
// {podNamespace} that [Reason.Message] fills in.
var Reasons = map[Reason]string{
	ReasonSelected:             "it selects the pod",
	ReasonNoCORSPlugin:         "it mounts no CORS plugin in " + v1alpha1.ChainInboundHTTP,
	ReasonNamespaceExcluded:    "namespace {chainNamespace} is excluded from the webhooks (--excluded-namespaces), so its PluginChains are ignored",
	ReasonNamespaceOptedOut:    "namespace {chainNamespace} opts out of the webhooks with the label " + contract.LabelNamespaceInject + "=" + contract.NamespaceInjectDisabled + ", so its PluginChains are ignored",
	ReasonConfined:             "namespace {chainNamespace} is not a cluster-chain namespace (--cluster-chain-namespaces), so it selects pods of its own namespace only, whatever its namespaceSelector says",
	ReasonNoNamespaceSelector:  "it has no namespaceSelector, so it selects pods of its own namespace only",
	ReasonNamespaceNotSelected: "its namespaceSelector does not select namespace {podNamespace}",
	ReasonPodNotSelected:       "its podSelector does not select the pod's labels",
}

// Message is the reason's sentence for chain c and a pod of namespace podNS.
func (r Reason) Message(c *v1alpha1.PluginChain, podNS string) string {
	msg, ok := Reasons[r]
	if !ok {
		return string(r)
	}
	return strings.NewReplacer("{chainNamespace}", c.Namespace, "{podNamespace}", podNS).Replace(msg)
}

// Explain says why c does or does not act on a pod with podLabels in podNS; chainNS is c's
// namespace (nil when unknown). It agrees with [Selection.Acts] and [Selection.IgnoresIn]:
// ReasonSelected exactly when the chain acts and is not ignored (TestExplainAgreesWithActs).
func (s Selection) Explain(c *v1alpha1.PluginChain, podLabels map[string]string, podNS, chainNS *corev1.Namespace) Reason {
	elsewhere := c.Namespace != podNS.Name
	switch {
	case !s.Plugins.Mounts(c):
		return ReasonNoCORSPlugin
	case s.Ignores(c):
		return ReasonNamespaceExcluded
	case elsewhere && s.IgnoresIn(c, chainNS):
		return ReasonNamespaceOptedOut
	case elsewhere && c.Spec.Selectors.NamespaceSelector != nil && s.Confined(c):
		return ReasonConfined
	case !s.SelectsNamespace(c, podNS) && c.Spec.Selectors.NamespaceSelector == nil:
		return ReasonNoNamespaceSelector
	case !s.SelectsNamespace(c, podNS):
		return ReasonNamespaceNotSelected
	case !s.Selects(c, podLabels, podNS):
		return ReasonPodNotSelected
	}
	return ReasonSelected
}
