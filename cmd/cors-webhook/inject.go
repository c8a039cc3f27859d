package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/manifests"
)

func newInjectCommand() *cobra.Command {
	var (
		files       []string
		namespace   string
		flags       injectorFlags
		corsPlugins []string
	)
	cmd := &cobra.Command{
		Use:   "inject -f PATH...",
		Short: "Inject the CORS sidecar into the pod templates of manifests offline, as the webhook would",
		Long: `Print the input documents with the CORS sidecar injected into the pod template of every
Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob that a PluginChain selects,
exactly as the mutating webhook would inject their pods. The PluginChains, PluginConfigs, Plugins,
Services and Namespaces in the input are the cluster context (a namespace that only objects
mention exists without labels). Other documents pass through unchanged. This is for clusters that
do not run the webhook (GitOps), and to see what the webhook would do.

What happened to each workload is reported on standard error.

Exit status: 0 when every selected workload was injected, 1 when a PluginChain selects a workload
that cannot be injected (a port collision, hostNetwork, a mirror or Windows pod, a namespace
enforcing Pod Security baseline or restricted) or when the CORS inputs are invalid or
conflicting, 2 when the input cannot be read or parsed, or on a usage error.`,
		Example: `  cors-webhook inject -f manifests/ > injected.yaml
  kubectl kustomize overlays/prod | cors-webhook inject -f - --sidecar-image registry.example/cors-sidecar:v1 | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			injector, err := flags.injector(corsPlugins)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			docs, err := manifests.Read(files, cmd.InOrStdin())
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			failed, err := injectDocuments(docs, namespace, injector, cmd.OutOrStdout(), cmd.ErrOrStderr())
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if failed {
				return &exitError{code: exitInvalid}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&files, "filename", "f", nil, "file, directory (its *.yaml, *.yml, *.json) or - for stdin; repeat or separate with commas")
	f.StringVarP(&namespace, "namespace", "n", "default", "namespace of namespaced objects that do not set one, as kubectl apply -n")
	addInjectorFlags(f, &flags)
	addCORSPluginsFlag(f, &corsPlugins)
	return cmd
}

// injectorFlags are the flags that choose what is injected; `serve` and `inject` share them so
// that the offline output equals what the webhook does with the same flags.
type injectorFlags struct {
	image         string
	pullPolicy    string
	initAsRoot    bool
	redirectMode  string
	inboundPort   int32
	adminPort     int32
	cpuRequest    string
	memoryRequest string
	// The ephemeral-storage request and the limits; "" leaves the resource out.
	ephemeralStorageRequest, cpuLimit, memoryLimit, ephemeralStorageLimit string
	tenancy                                                               tenancyFlags
}

// addInjectorFlags registers the injector flags on f.
func addInjectorFlags(f *pflag.FlagSet, fl *injectorFlags) {
	f.StringVar(&fl.image, "sidecar-image", inject.DefaultSidecarImage, "image of the injected cors-init and cors-sidecar containers, by tag or digest (the chart's appVersion tag by default)")
	f.StringVar(&fl.redirectMode, "redirect-mode", string(inject.RedirectInit), "who installs the injected pods' redirect: init (the cors-init container, with NET_ADMIN) or cni (the node's cors-cni plugin: no capability in the pod, Pod Security restricted namespaces are injected)")
	f.BoolVar(&fl.initAsRoot, "init-as-root", false, "run cors-init as root with no_new_privs (cors-sidecar redirect) instead of user 65532 with its file capability, for runtimes that drop the image's extended attributes")
	f.StringVar(&fl.pullPolicy, "sidecar-image-pull-policy", "", "imagePullPolicy of the injected containers: Always, IfNotPresent or Never (default: Kubernetes' default for the tag)")
	f.Int32Var(&fl.inboundPort, "inbound-port", contract.DefaultInboundPort, "port of the sidecar that redirected traffic reaches; must not be used by the application")
	f.Int32Var(&fl.adminPort, "admin-port", contract.DefaultAdminPort, "port of the sidecar's readiness endpoint; must not be used by the application")
	f.StringVar(&fl.cpuRequest, "sidecar-cpu-request", inject.DefaultCPURequest, "CPU request of each injected container")
	f.StringVar(&fl.memoryRequest, "sidecar-memory-request", inject.DefaultMemoryRequest, "memory request of each injected container")
	f.StringVar(&fl.ephemeralStorageRequest, "sidecar-ephemeral-storage-request", inject.DefaultEphemeralStorageRequest, `ephemeral-storage request of each injected container ("" for none)`)
	f.StringVar(&fl.cpuLimit, "sidecar-cpu-limit", inject.DefaultCPULimit, `CPU limit of each injected container ("" for none)`)
	f.StringVar(&fl.memoryLimit, "sidecar-memory-limit", inject.DefaultMemoryLimit, `memory limit of each injected container ("" for none)`)
	f.StringVar(&fl.ephemeralStorageLimit, "sidecar-ephemeral-storage-limit", inject.DefaultEphemeralStorageLimit, `ephemeral-storage limit of each injected container ("" for none)`)
	addTenancyFlags(f, &fl.tenancy)
}

// injector is the injector of the flags and --cors-plugins, as the offline commands use it.
func (fl *injectorFlags) injector(corsPlugins []string) (*inject.Injector, error) {
	if err := checkCORSPlugins(corsPlugins); err != nil {
		return nil, err
	}
	settings, err := fl.settings(corsPlugins)
	if err != nil {
		return nil, err
	}
	return inject.New(settings)
}

// settings turns the flags into injector settings; bad quantities are usage errors.
func (fl *injectorFlags) settings(corsPlugins []string) (inject.Settings, error) {
	mode, err := inject.ParseRedirectMode(fl.redirectMode)
	if err != nil {
		return inject.Settings{}, fmt.Errorf("--redirect-mode: %w", err)
	}
	s := inject.Settings{
		SidecarImage:           fl.image,
		RedirectMode:           mode,
		SidecarImagePullPolicy: corev1.PullPolicy(fl.pullPolicy),
		InitAsRoot:             fl.initAsRoot,
		InboundPort:            fl.inboundPort,
		AdminPort:              fl.adminPort,
		Requests:               corev1.ResourceList{},
		Limits:                 corev1.ResourceList{},
		CORSPlugins:            corsPlugins,
		Tenancy:                fl.tenancy.tenancy(),
	}
	for _, q := range []struct {
		flag, value string
		name        corev1.ResourceName
		into        corev1.ResourceList
	}{
		{"--sidecar-cpu-request", fl.cpuRequest, corev1.ResourceCPU, s.Requests},
		{"--sidecar-memory-request", fl.memoryRequest, corev1.ResourceMemory, s.Requests},
		{"--sidecar-ephemeral-storage-request", fl.ephemeralStorageRequest, corev1.ResourceEphemeralStorage, s.Requests},
		{"--sidecar-cpu-limit", fl.cpuLimit, corev1.ResourceCPU, s.Limits},
		{"--sidecar-memory-limit", fl.memoryLimit, corev1.ResourceMemory, s.Limits},
		{"--sidecar-ephemeral-storage-limit", fl.ephemeralStorageLimit, corev1.ResourceEphemeralStorage, s.Limits},
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

// injectDocuments writes every document to out, with the pod templates injected
// (manifests.Inject), and reports each workload on errOut. It returns whether any injection
// failed (manifests.Injection.Failed).
func injectDocuments(docs []manifests.Document, namespace string, injector *inject.Injector, out, errOut io.Writer) (bool, error) {
	injections, err := manifests.Inject(docs, namespace, injector)
	if err != nil {
		return false, err
	}
	failed := false
	for i, d := range docs {
		if in := injections[i]; in != nil {
			printInjection(errOut, in)
			failed = failed || in.Failed()
		}
		y, err := sigsyaml.Marshal(d.Object.Object)
		if err != nil {
			return false, fmt.Errorf("%s: %w", d.Where(), err)
		}
		if i > 0 {
			fmt.Fprintln(out, "---")
		}
		if _, err := out.Write(y); err != nil {
			return false, err
		}
	}
	return failed, nil
}

// printInjection is the report of one workload: its outcome, the problems of its CORS inputs
// and, when injected, the notes.
func printInjection(w io.Writer, in *manifests.Injection) {
	res := in.Result
	if res.Outcome == inject.Injected {
		fmt.Fprintf(w, "%s: injected: %s\n", in.ID, res.Reasons[0])
	} else {
		fmt.Fprintf(w, "%s: not injected (%s): %s\n", in.ID, res.Outcome, strings.Join(res.Reasons, "; "))
	}
	if res.Resolution == nil {
		return
	}
	for _, p := range res.Resolution.Problems {
		fmt.Fprintf(w, "Error: %s: %s\n", in.ID, p)
	}
	if res.Outcome == inject.Injected {
		for _, n := range res.Resolution.Notes {
			fmt.Fprintf(w, "Note: %s: %s\n", in.ID, n)
		}
	}
}
