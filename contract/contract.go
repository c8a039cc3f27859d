// Package contract is the pod contract: the names and formats through which the injection, the
// Day-2 reconciler, the sidecar and the users who opt out talk to each other. It is a leaf
// package (no Kubernetes imports), so the sidecar binary can share it without growing.
package contract

// Annotations and labels of the pod contract.
const (
	// AnnotationPolicy carries the pod's effective per-port policy (cors.PodPolicy JSON). The
	// sidecar reads it through a downwardAPI volume, so reconciliation can change it in place.
	AnnotationPolicy = "cors-webhook.io/policy"
	// AnnotationRedirectPorts records the ports cors-init redirected to the sidecar, in the
	// port-list format of [FormatPorts], so reconciliation can tell when a new policy needs a
	// port the running pod does not redirect (and roll its workload).
	AnnotationRedirectPorts = "cors-webhook.io/redirect-ports"
	// AnnotationInboundPorts lets a pod name extra HTTP ports to redirect (a port list), for
	// ports that no Service marks as HTTP but that a later PluginConfig may configure.
	AnnotationInboundPorts = "cors-webhook.io/inbound-ports"
	// AnnotationSidecarVersion records the version of the injected sidecar (the sidecar
	// image's tag, or its digest), so that an upgrade can find the pods that still run an
	// older one.
	AnnotationSidecarVersion = "cors-webhook.io/sidecar-version"
	// AnnotationUpstreamTimeout sets, for one pod, how long its sidecar waits for the
	// application's response head before answering 504 (cors-sidecar's --upstream-timeout): a
	// duration as [ParseUpstreamTimeout] reads it. For applications that hold requests longer
	// than the default (long polling with a long hold) or want a shorter bound.
	AnnotationUpstreamTimeout = "cors-webhook.io/upstream-timeout"
	// AnnotationInject set to "false" on a pod opts it out of injection.
	AnnotationInject = "cors-webhook.io/inject"
	// LabelInjected marks injected pods, so they can be listed and watched cheaply.
	LabelInjected = "cors-webhook.io/injected"
	// LabelNamespaceInject set to NamespaceInjectDisabled on a namespace opts all its pods out.
	// The same label also keeps the webhook from being called there (see the chart's
	// namespaceSelector), so the injector's check is a second line of defence.
	LabelNamespaceInject = "cors-webhook.io/inject"
	// NamespaceInjectDisabled is the LabelNamespaceInject value that opts a namespace out.
	NamespaceInjectDisabled = "disabled"
	// LabelIgnore set to LabelIgnoreTrue keeps an object away from every webhook (the chart's
	// objectSelector): the webhook's own pods and Plugin carry it, so they are admitted while
	// the webhook is down, and the controller never touches such a pod either.
	LabelIgnore = "cors-webhook.io/ignore"
	// LabelIgnoreTrue is the LabelIgnore value that takes an object out of scope.
	LabelIgnoreTrue = "true"
)

// Names of what the injection adds to a pod. They are fixed, so that the injection can recognise
// its own work (idempotency) and refuse to overwrite somebody else's container or volume.
const (
	// ContainerInit is the init container that installs the redirect rules.
	ContainerInit = "cors-init"
	// ContainerSidecar is the native sidecar running the CORS proxy.
	ContainerSidecar = "cors-sidecar"
	// InitCommand is the cors-init binary in the sidecar image, ContainerInit's command: the
	// image's only file with a file capability (cap_net_admin+ep), which is how cors-init,
	// running as a non-root user, gets CAP_NET_ADMIN.
	InitCommand = "/usr/local/bin/cors-init"
	// VolumePolicy is the downwardAPI volume exposing AnnotationPolicy to the sidecar.
	VolumePolicy = "cors-webhook-policy"
	// PolicyDir is where VolumePolicy is mounted in the sidecar.
	PolicyDir = "/etc/cors-webhook"
	// PolicyFileName is the VolumePolicy item that holds AnnotationPolicy.
	PolicyFileName = "policy.json"
	// PolicyFile is the sidecar's --policy-file in an injected pod.
	PolicyFile = PolicyDir + "/" + PolicyFileName
	// PortNameInbound and PortNameAdmin name the sidecar's container ports (at most 15
	// characters, unique in the pod).
	PortNameInbound = "cors-inbound"
	PortNameAdmin   = "cors-admin"
)

// Annotation size bounds. The API server refuses a pod whose annotations (keys and values)
// exceed 256 KiB in total; the injector refuses, with a reason, to inject a pod that would
// cross either bound below, so the pod is admitted without the sidecar rather than refused.
const (
	// MaxPolicyAnnotationBytes bounds the AnnotationPolicy value: half the API server's
	// budget, leaving the rest to the pod's own annotations.
	MaxPolicyAnnotationBytes = 128 * 1024
	// MaxPodAnnotationsBytes is the API server's bound on all annotations of an object.
	MaxPodAnnotationsBytes = 256 * 1024
)

// The sidecar's ports and admin endpoints.
const (
	// DefaultInboundPort is where redirected traffic reaches the proxy.
	DefaultInboundPort = 15003
	// DefaultAdminPort serves the admin endpoints below and /metrics. It is none of the ports
	// Istio's sidecar reserves (15021 is its health port), so both can share a pod.
	DefaultAdminPort = 15023
	// ReadinessPath answers 200 once a policy is loaded, so the pod receives traffic only
	// when the sidecar enforces its policy.
	ReadinessPath = "/readyz"
	// StartupPath answers 200 once the process serves. Until it does, the kubelet holds back
	// the containers after the sidecar.
	StartupPath = "/healthz"
)
