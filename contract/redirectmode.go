package contract

// Redirect modes: who installs a pod's nftables redirect.
const (
	// RedirectModeInit: the injected cors-init container, with NET_ADMIN (the default).
	RedirectModeInit = "init"
	// RedirectModeCNI: the node's chained CNI plugin cors-cni, at sandbox creation; the pod
	// holds no capability and passes Pod Security "restricted".
	RedirectModeCNI = "cni"
)

// Annotations of the CNI redirect mode. The runtime hands a pod's annotations to CNI plugins
// (containerd's io.kubernetes.cri.pod-annotations capability), so they are how the injection
// tells cors-cni what to install: the plugin reads no API.
const (
	// AnnotationRedirectMode is RedirectModeCNI on pods whose redirect cors-cni installs. Pods
	// without it (init mode, and pods injected before the modes existed) are left to cors-init.
	AnnotationRedirectMode = "cors-webhook.io/redirect-mode"
	// AnnotationProxyPort is the sidecar's inbound port in CNI mode, where cors-cni redirects
	// the AnnotationRedirectPorts to (DefaultInboundPort when absent).
	AnnotationProxyPort = "cors-webhook.io/proxy-port"
)

// LabelCNIAgent marks the pods of the cors-cni node agent (the chart's DaemonSet): the
// controller reads their readiness, per node, to know when a pod whose redirect is missing can
// be recreated with it.
const LabelCNIAgent = "cors-webhook.io/cni-agent"
