package inject

import (
	"fmt"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/contract"
)

// Flags are the command-line form of Settings. Four commands share them (serve, controller,
// inject, describe), so that the offline output equals what the webhook does with the same
// flags and the controller computes the policies serve injects.
type Flags struct {
	Image         string
	PullPolicy    string
	InitAsRoot    bool
	RedirectMode  string
	InboundPort   int32
	AdminPort     int32
	CPURequest    string
	MemoryRequest string
	// The ephemeral-storage request and the limits; "" leaves the resource out.
	EphemeralStorageRequest, CPULimit, MemoryLimit, EphemeralStorageLimit string
	Tenancy                                                               chains.Tenancy
}

// Register adds the flags to fs, with the defaults of DefaultSettings.
func (fl *Flags) Register(f *pflag.FlagSet) {
	f.StringVar(&fl.Image, "sidecar-image", DefaultSidecarImage, "image of the injected cors-init and cors-sidecar containers, by tag or digest (the chart's appVersion tag by default)")
	f.StringVar(&fl.RedirectMode, "redirect-mode", string(RedirectInit), "who installs the injected pods' redirect: init (the cors-init container, with NET_ADMIN) or cni (the node's cors-cni plugin: no capability in the pod, Pod Security restricted namespaces are injected)")
	f.BoolVar(&fl.InitAsRoot, "init-as-root", false, "run cors-init as root with no_new_privs (cors-sidecar redirect) instead of user 65532 with its file capability, for runtimes that drop the image's extended attributes")
	f.StringVar(&fl.PullPolicy, "sidecar-image-pull-policy", "", "imagePullPolicy of the injected containers: Always, IfNotPresent or Never (default: Kubernetes' default for the tag)")
	f.Int32Var(&fl.InboundPort, "inbound-port", contract.DefaultInboundPort, "port of the sidecar that redirected traffic reaches; must not be used by the application")
	f.Int32Var(&fl.AdminPort, "admin-port", contract.DefaultAdminPort, "port of the sidecar's readiness endpoint; must not be used by the application")
	f.StringVar(&fl.CPURequest, "sidecar-cpu-request", DefaultCPURequest, "CPU request of each injected container")
	f.StringVar(&fl.MemoryRequest, "sidecar-memory-request", DefaultMemoryRequest, "memory request of each injected container")
	f.StringVar(&fl.EphemeralStorageRequest, "sidecar-ephemeral-storage-request", DefaultEphemeralStorageRequest, `ephemeral-storage request of each injected container ("" for none)`)
	f.StringVar(&fl.CPULimit, "sidecar-cpu-limit", DefaultCPULimit, `CPU limit of each injected container ("" for none)`)
	f.StringVar(&fl.MemoryLimit, "sidecar-memory-limit", DefaultMemoryLimit, `memory limit of each injected container ("" for none)`)
	f.StringVar(&fl.EphemeralStorageLimit, "sidecar-ephemeral-storage-limit", DefaultEphemeralStorageLimit, `ephemeral-storage limit of each injected container ("" for none)`)
	fl.Tenancy.Register(f)
}

// Settings turns the flags and the CORS plugin names into validated settings; an error names
// the flag at fault (a usage error).
func (fl *Flags) Settings(corsPlugins []string) (Settings, error) {
	mode, err := ParseRedirectMode(fl.RedirectMode)
	if err != nil {
		return Settings{}, fmt.Errorf("--redirect-mode: %w", err)
	}
	s := Settings{
		SidecarImage:           fl.Image,
		RedirectMode:           mode,
		SidecarImagePullPolicy: corev1.PullPolicy(fl.PullPolicy),
		InitAsRoot:             fl.InitAsRoot,
		InboundPort:            fl.InboundPort,
		AdminPort:              fl.AdminPort,
		Requests:               corev1.ResourceList{},
		Limits:                 corev1.ResourceList{},
		CORSPlugins:            corsPlugins,
		Tenancy:                fl.Tenancy,
	}
	for _, q := range []struct {
		flag, value string
		name        corev1.ResourceName
		into        corev1.ResourceList
	}{
		{"--sidecar-cpu-request", fl.CPURequest, corev1.ResourceCPU, s.Requests},
		{"--sidecar-memory-request", fl.MemoryRequest, corev1.ResourceMemory, s.Requests},
		{"--sidecar-ephemeral-storage-request", fl.EphemeralStorageRequest, corev1.ResourceEphemeralStorage, s.Requests},
		{"--sidecar-cpu-limit", fl.CPULimit, corev1.ResourceCPU, s.Limits},
		{"--sidecar-memory-limit", fl.MemoryLimit, corev1.ResourceMemory, s.Limits},
		{"--sidecar-ephemeral-storage-limit", fl.EphemeralStorageLimit, corev1.ResourceEphemeralStorage, s.Limits},
	} {
		if q.value == "" {
			continue
		}
		v, err := resource.ParseQuantity(q.value)
		if err != nil {
			return s, fmt.Errorf("%s %q: %w", q.flag, q.value, err)
		}
		q.into[q.name] = v
	}
	return s, s.Validate()
}
