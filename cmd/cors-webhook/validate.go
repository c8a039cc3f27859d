package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/internal/manifests"
	"github.com/cors-webhook/cors-webhook/validate"
)

func newValidateCommand() *cobra.Command {
	var (
		files       []string
		output      string
		namespace   string
		opts        validate.Options
		corsPlugins []string
	)
	cmd := &cobra.Command{
		Use:   "validate -f PATH...",
		Short: "Validate Plugin, PluginChain and PluginConfig manifests offline, as the webhook would",
		Long: `Validate every Plugin, PluginChain and PluginConfig in the input with the rules of the
validating webhook, including conflicts among them. Namespaces and Services in the input are the
cluster context (a namespace that only objects mention exists without labels). Run it in CI
before kubectl apply.

Exit status: 0 when every object is valid (warnings allowed), 1 when any is invalid, 2 when the
input cannot be read or parsed, or on a usage error.`,
		Example: `  cors-webhook validate -f manifests/
  kubectl kustomize overlays/prod | cors-webhook validate -f - --strict -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--output must be text or json, not %q", output)}
			}
			if err := checkCORSPlugins(corsPlugins); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			opts.Plugins = chains.NewPlugins(corsPlugins...)
			docs, err := manifests.Read(files, cmd.InOrStdin())
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			rep, err := validate.Manifests(docs, namespace, opts)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(rep); err != nil {
					return &exitError{code: exitUsage, err: err}
				}
			} else {
				printText(rep, cmd.OutOrStdout(), cmd.ErrOrStderr())
			}
			if !rep.Valid {
				return &exitError{code: exitInvalid}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&files, "filename", "f", nil, "file, directory (its *.yaml, *.yml, *.json) or - for stdin; repeat or separate with commas")
	f.StringVarP(&output, "output", "o", "text", "output format: text or json")
	f.StringVarP(&namespace, "namespace", "n", "default", "namespace of namespaced objects that do not set one, as kubectl apply -n")
	f.BoolVar(&opts.Strict, "strict", false, "reject what would otherwise be security warnings (risky origin matchers, the null origin, credentials for any origin)")
	addCORSPluginsFlag(f, &corsPlugins)
	opts.Tenancy.Register(f)
	return cmd
}

// addCORSPluginsFlag registers --cors-plugins, which means the same for serve, validate and
// inject: the plugin names that are CORS plugins.
func addCORSPluginsFlag(f *pflag.FlagSet, p *[]string) {
	f.StringSliceVar(p, "cors-plugins", []string{chains.DefaultPlugin}, "names of the CORS plugins (Plugin names whose PluginConfigs are CORS configs)")
}

// checkCORSPlugins rejects a --cors-plugins value that cannot name a Plugin.
func checkCORSPlugins(names []string) error {
	if len(names) == 0 {
		return fmt.Errorf("--cors-plugins must name at least one plugin")
	}
	for _, n := range names {
		if msgs := validation.IsDNS1123Subdomain(n); len(msgs) > 0 {
			return fmt.Errorf("--cors-plugins: %q is not a Plugin name: %s", n, strings.Join(msgs, "; "))
		}
	}
	return nil
}

// printText writes the errors of r to out, its warnings and a summary to errOut.
func printText(r *validate.Report, out, errOut io.Writer) {
	invalid, warnings := 0, 0
	for _, o := range r.Objects {
		for _, e := range o.Errors {
			fmt.Fprintf(out, "%s: %s\n", o.ID(), e.Message)
		}
		for _, w := range o.Warnings {
			fmt.Fprintf(errOut, "Warning: %s: %s\n", o.ID(), w)
		}
		if !o.Valid {
			invalid++
		}
		warnings += len(o.Warnings)
	}
	if len(r.Objects) == 0 {
		fmt.Fprintln(errOut, "no Plugin, PluginChain or PluginConfig in the input")
		return
	}
	fmt.Fprintf(errOut, "%d objects: %d valid, %d invalid, %d warnings\n", len(r.Objects), len(r.Objects)-invalid, invalid, warnings)
}
