package inject

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/contract"
)

// Defaults of the injector settings, also the defaults of the `serve` and `inject` flags.
const (
	// AppVersion is the chart's appVersion (charts/cors-webhook/Chart.yaml; a unit test keeps
	// the two equal): the tag a release gives the product images, so the default sidecar image
	// names what the release of this source pushes, and never `latest`.
	AppVersion           = "0.1.0"
	DefaultSidecarImage  = "ghcr.io/cors-webhook/cors-sidecar:" + AppVersion
	DefaultCPURequest    = "10m"
	DefaultMemoryRequest = "32Mi"
	// DefaultEphemeralStorageRequest and the limits below bound each injected container, so
	// that namespaces whose ResourceQuota or LimitRange covers limits.* admit injected pods.
	// The sidecar holds no more than its policy in memory and writes only its logs.
	DefaultEphemeralStorageRequest = "16Mi"
	DefaultCPULimit                = "500m"
	DefaultMemoryLimit             = "128Mi"
	DefaultEphemeralStorageLimit   = "64Mi"
	// SidecarUID is the user and group both injected containers run as: non-root (distroless
	// "nonroot"); the sidecar container passes the restricted Pod Security Standard.
	SidecarUID int64 = 65532
)

// Settings are the server's choices about what to inject. The `serve` and `inject` commands
// fill them from flags; the zero values of the optional fields take the defaults above.
type Settings struct {
	// SidecarImage runs both cors-init (its contract.InitCommand binary) and cors-sidecar
	// (`proxy`, on its entrypoint, the cors-sidecar binary).
	SidecarImage string
	// InitAsRoot runs cors-init as root with no_new_privs (`cors-sidecar redirect`, as releases
	// before the non-root cors-init did), for runtimes or image pipelines that drop the image's
	// extended attributes and with them cors-init's file capability. Off by default.
	InitAsRoot bool
	// RedirectMode is who installs the redirect: cors-init (RedirectInit, also for "") or the
	// node's cors-cni plugin (RedirectCNI: no cors-init, no capability in the pod).
	RedirectMode RedirectMode
	// SidecarImagePullPolicy of both containers; empty leaves Kubernetes' default.
	SidecarImagePullPolicy corev1.PullPolicy
	// InboundPort is where redirected traffic reaches the proxy.
	InboundPort int32
	// AdminPort serves the proxy's readiness endpoint.
	AdminPort int32
	// Requests are the resource requests of both containers.
	Requests corev1.ResourceList
	// Limits are the resource limits of both containers; each must be at least its request.
	Limits corev1.ResourceList
	// CORSPlugins are the plugin names that mean CORS (the `--cors-plugins` flag).
	CORSPlugins []string
	// Tenancy confines chains to their own namespace unless they are in a cluster-chain
	// namespace (`--cluster-chain-namespaces`), and ignores chains of skipped namespaces.
	Tenancy chains.Tenancy
}

// DefaultSettings returns the settings the flags default to.
func DefaultSettings() Settings {
	return Settings{
		SidecarImage: DefaultSidecarImage,
		RedirectMode: RedirectInit,
		InboundPort:  contract.DefaultInboundPort,
		AdminPort:    contract.DefaultAdminPort,
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:              resource.MustParse(DefaultCPURequest),
			corev1.ResourceMemory:           resource.MustParse(DefaultMemoryRequest),
			corev1.ResourceEphemeralStorage: resource.MustParse(DefaultEphemeralStorageRequest),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceCPU:              resource.MustParse(DefaultCPULimit),
			corev1.ResourceMemory:           resource.MustParse(DefaultMemoryLimit),
			corev1.ResourceEphemeralStorage: resource.MustParse(DefaultEphemeralStorageLimit),
		},
		CORSPlugins: []string{chains.DefaultPlugin},
	}
}

// Validate reports settings that would produce broken pods, so the server refuses to start
// rather than injecting them.
func (s Settings) Validate() error {
	var errs []error
	if strings.TrimSpace(s.SidecarImage) == "" {
		errs = append(errs, errors.New("the sidecar image must not be empty"))
	}
	if _, err := ParseRedirectMode(string(s.RedirectMode)); err != nil {
		errs = append(errs, err)
	}
	if s.InitAsRoot && s.RedirectMode == RedirectCNI {
		errs = append(errs, errors.New("running cors-init as root applies to the init redirect mode only: the cni mode injects no cors-init"))
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
	for _, name := range slices.Sorted(maps.Keys(s.Requests)) {
		if q := s.Requests[name]; q.Sign() < 0 {
			errs = append(errs, fmt.Errorf("the %s request must not be negative", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(s.Limits)) {
		limit := s.Limits[name]
		if limit.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("the %s limit must be positive", name))
			continue
		}
		if req, ok := s.Requests[name]; ok && req.Cmp(limit) > 0 {
			errs = append(errs, fmt.Errorf("the %s request %s exceeds its limit %s", name, req.String(), limit.String()))
		}
	}
	if len(s.CORSPlugins) == 0 || slices.Contains(s.CORSPlugins, "") {
		errs = append(errs, errors.New("the CORS plugin names must be non-empty"))
	}
	return errors.Join(errs...)
}
