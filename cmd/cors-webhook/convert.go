package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/convert"
	"github.com/cors-webhook/cors-webhook/internal/manifests"
	"github.com/cors-webhook/cors-webhook/validate"
)

func newConvertCommand() *cobra.Command {
	var (
		files      []string
		plugin     string
		withPlugin bool
		selector   string
	)
	cmd := &cobra.Command{
		Use:   "convert -f PATH...",
		Short: "Import CORS settings from ingress-nginx Ingresses, Istio VirtualServices and Gateway API HTTPRoutes",
		Long: `Read Ingresses with ingress-nginx CORS annotations, Istio VirtualServices with a corsPolicy
and HTTPRoutes with a CORS filter, and write the PluginChain and PluginConfig resources (and, with
--with-plugin, the Plugin) that give their backend Services the same CORS answers through the
cors-webhook sidecar. Other objects in the input are ignored.

The output is validated as the webhook would validate it. What could not be carried over (host
and path scoping, non-Service backends, a second policy for one Service) is reported per input
on stderr.

Exit status: 0 when everything was carried over, 1 when something was reported lost (or the
output does not validate), 2 when the input cannot be read or on a usage error.`,
		Example: `  cors-webhook convert -f ingress.yaml > cors.yaml
  kubectl get ingress,virtualservice,httproute -A -o yaml | cors-webhook convert -f - --with-plugin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if msgs := validation.IsDNS1123Subdomain(plugin); len(msgs) > 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--plugin: %s", strings.Join(msgs, "; "))}
			}
			opts := convert.Options{Plugin: plugin, WithPlugin: withPlugin}
			if selector != "" {
				sel, err := metav1.ParseToLabelSelector(selector)
				if err != nil {
					return &exitError{code: exitUsage, err: fmt.Errorf("--selector: %w", err)}
				}
				opts.PodSelector = sel
			}
			docs, err := manifests.Read(files, cmd.InOrStdin())
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			var objs []*unstructured.Unstructured
			for _, d := range docs {
				if d.Object != nil {
					objs = append(objs, d.Object)
				}
			}
			res := convert.Convert(objs, opts)
			out, err := res.YAML()
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			errOut := cmd.ErrOrStderr()
			printConversionReports(errOut, res)
			if len(res.Configs) == 0 {
				fmt.Fprintln(errOut, "nothing converted: no Ingress, VirtualService or HTTPRoute with CORS settings in the input")
				return &exitError{code: exitInvalid}
			}
			// The same checks as `validate`, so the output is known to apply.
			rendered, err := manifests.Parse("output", out)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			rep, err := validate.Manifests(rendered, "default", validate.Options{Plugins: chains.NewPlugins(plugin)})
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if _, err := cmd.OutOrStdout().Write(out); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			printText(rep, errOut, errOut)
			if !rep.Valid {
				return &exitError{code: exitInvalid}
			}
			if !res.Complete() {
				return &exitError{code: exitInvalid}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&files, "filename", "f", nil, "file, directory (its *.yaml, *.yml, *.json) or - for stdin; repeat or separate with commas")
	f.StringVar(&plugin, "plugin", chains.DefaultPlugin, "name of the CORS plugin the PluginChains and PluginConfigs use")
	f.BoolVar(&withPlugin, "with-plugin", false, "also write the cluster-scoped Plugin")
	f.StringVarP(&selector, "selector", "l", "", "label selector for the pods the PluginChains select (default: every pod of the namespace)")
	return cmd
}

func printConversionReports(w io.Writer, res *convert.Result) {
	for _, rep := range res.Reports {
		made := "nothing"
		if len(rep.Configs) > 0 {
			made = "PluginConfig " + strings.Join(rep.Configs, ", ")
		}
		fmt.Fprintf(w, "%s -> %s\n", rep.Source, made)
		for _, l := range rep.Lost {
			fmt.Fprintf(w, "  not carried over: %s\n", l)
		}
		for _, n := range rep.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
}
