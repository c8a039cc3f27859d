package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/manifests"
)

func newInjectCommand() *cobra.Command {
	var (
		files       []string
		namespace   string
		flags       inject.Flags
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
			injector, err := injectorOf(&flags, corsPlugins)
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
	flags.Register(f)
	addCORSPluginsFlag(f, &corsPlugins)
	return cmd
}

// injectorOf is the injector of the flags and --cors-plugins, as the offline commands use it.
func injectorOf(fl *inject.Flags, corsPlugins []string) (*inject.Injector, error) {
	settings, err := injectionSettings(fl, corsPlugins)
	if err != nil {
		return nil, err
	}
	return inject.New(settings)
}

// injectionSettings are the settings of the injector flags and --cors-plugins.
func injectionSettings(fl *inject.Flags, corsPlugins []string) (inject.Settings, error) {
	if err := checkCORSPlugins(corsPlugins); err != nil {
		return inject.Settings{}, err
	}
	return fl.Settings(corsPlugins)
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
