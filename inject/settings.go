package inject

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/cors-webhook/cors-webhook/cors"
)

// Keys of the pod contract (docs/design.md section 7). They are the interface between the
// webhook, the sidecar, Day-2 reconciliation and the users who opt out, so they live in one place.
const (
	// AnnotationPolicy carries the pod's effective per-port policy (cors.PodPolicy JSON). The
	// sidecar reads it through a downwardAPI volume, so reconciliation can change it in place.
	AnnotationPolicy = cors.PodPolicyAnnotation
	// AnnotationRedirectPorts records the ports cors-init redirected to the sidecar, sorted and
	// comma-separated, so reconciliation can tell when a new policy needs a port the running pod
	// does not redirect (and roll its workload).
	AnnotationRedirectPorts = "cors-webhook.io/redirect-ports"
	// AnnotationInboundPorts lets a pod name extra HTTP ports to redirect (comma-separated), for
	// ports that no Service marks as HTTP but that a later PluginConfig may configure.
	AnnotationInboundPorts = "cors-webhook.io/inbound-ports"
	// AnnotationSidecarVersion records the version of the injected sidecar (the sidecar
	// image's tag, or its digest), so that an upgrade can find the pods that still run an
	// older one (SidecarOutdated).
	AnnotationSidecarVersion = "cors-webhook.io/sidecar-version"
	// AnnotationInject set to "false" on a pod opts it out of injection.
	AnnotationInject = "cors-webhook.io/inject"
	// LabelInjected marks injected pods, so they can be listed and watched cheaply.
	LabelInjected = "cors-webhook.io/injected"
	// LabelNamespaceInject set to NamespaceInjectDisabled on a namespace opts all its pods out.
	// The same label also keeps the webhook from being called there (see the chart's
	// namespaceSelector), so this check is a second line of defence.
	LabelNamespaceInject = "cors-webhook.io/inject"
	// NamespaceInjectDisabled is the LabelNamespaceInject value that opts a namespace out.
	NamespaceInjectDisabled = "disabled"
)

// Names of what the injection adds to a pod. They are fixed, so that the injection can recognise
// its own work (idempotency) and refuse to overwrite somebody else's container or volume.
const (
	// ContainerInit is the init container that installs the redirect rules.
	ContainerInit = "cors-init"
	// ContainerSidecar is the native sidecar running the CORS proxy.
	ContainerSidecar = "cors-sidecar"
	// VolumePolicy is the downwardAPI volume exposing AnnotationPolicy to the sidecar.
	VolumePolicy = "cors-webhook-policy"
	// PolicyDir is where VolumePolicy is mounted in the sidecar.
	PolicyDir = "/etc/cors-webhook"
	// PolicyFile is the sidecar's --policy-file: the volume item of AnnotationPolicy.
	PolicyFile = PolicyDir + "/" + policyFileName
	// PortNameInbound and PortNameAdmin name the sidecar's container ports (at most 15
	// characters, unique in the pod).
	PortNameInbound = "cors-inbound"
	PortNameAdmin   = "cors-admin"
	// ReadinessPath is the sidecar admin endpoint of the readiness probe: 200 once a policy
	// is loaded, so the pod receives traffic only when the sidecar enforces its policy.
	ReadinessPath = "/readyz"
	// StartupPath is the sidecar admin endpoint of the startup probe: 200 once the process
	// serves. Until it answers, the kubelet holds back the containers after the sidecar.
	StartupPath = "/healthz"

	policyFileName = "policy.json"
)

// Defaults of the injector settings, also the defaults of the `serve` and `inject` flags.
const (
	DefaultSidecarImage  = "ghcr.io/cors-webhook/cors-sidecar:latest"
	DefaultInboundPort   = 15003
	DefaultAdminPort     = 15021
	DefaultCPURequest    = "10m"
	DefaultMemoryRequest = "32Mi"
	// DefaultCORSPlugin is the plugin name of the seed guide (FSM's cors-policy).
	DefaultCORSPlugin = "cors-policy"
	// SidecarUID is the user the sidecar runs as: non-root (distroless "nonroot"), so the
	// container passes the restricted Pod Security Standard.
	SidecarUID int64 = 65532
)

// Settings are the server's choices about what to inject. The `serve` and `inject` commands
// fill them from flags; the zero values of the optional fields take the defaults above.
type Settings struct {
	// SidecarImage runs both cors-init (`redirect`) and cors-sidecar (`proxy`); its entrypoint
	// is the cors-sidecar binary.
	SidecarImage string
	// SidecarImagePullPolicy of both containers; empty leaves Kubernetes' default.
	SidecarImagePullPolicy corev1.PullPolicy
	// InboundPort is where redirected traffic reaches the proxy.
	InboundPort int32
	// AdminPort serves the proxy's readiness endpoint.
	AdminPort int32
	// Requests are the resource requests of both containers.
	Requests corev1.ResourceList
	// CORSPlugins are the plugin names that mean CORS (the `--cors-plugins` flag).
	CORSPlugins []string
}

// DefaultSettings returns the settings the flags default to.
func DefaultSettings() Settings {
	return Settings{
		SidecarImage: DefaultSidecarImage,
		InboundPort:  DefaultInboundPort,
		AdminPort:    DefaultAdminPort,
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(DefaultCPURequest),
			corev1.ResourceMemory: resource.MustParse(DefaultMemoryRequest),
		},
		CORSPlugins: []string{DefaultCORSPlugin},
	}
}

// Validate reports settings that would produce broken pods, so the server refuses to start
// rather than injecting them.
func (s Settings) Validate() error {
	var errs []error
	if strings.TrimSpace(s.SidecarImage) == "" {
		errs = append(errs, errors.New("the sidecar image must not be empty"))
	}
	switch s.SidecarImagePullPolicy {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		errs = append(errs, fmt.Errorf("sidecar image pull policy %q is not one of Always, IfNotPresent, Never", s.SidecarImagePullPolicy))
	}
	for _, p := range []struct {
		name string
		port int32
	}{{"inbound", s.InboundPort}, {"admin", s.AdminPort}} {
		if p.port < 1 || p.port > 65535 {
			errs = append(errs, fmt.Errorf("the %s port %d is not in 1..65535", p.name, p.port))
		}
	}
	if s.InboundPort == s.AdminPort {
		errs = append(errs, fmt.Errorf("the inbound and admin ports must differ (both %d)", s.InboundPort))
	}
	for name, q := range s.Requests {
		if q.Sign() < 0 {
			errs = append(errs, fmt.Errorf("the %s request must not be negative", name))
		}
	}
	if len(s.CORSPlugins) == 0 || slices.Contains(s.CORSPlugins, "") {
		errs = append(errs, errors.New("the CORS plugin names must be non-empty"))
	}
	return errors.Join(errs...)
}
