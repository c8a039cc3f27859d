package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
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
		tenancy     tenancyFlags
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
			opts.Tenancy = tenancy.tenancy()
			docs, err := manifests.Read(files, cmd.InOrStdin())
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			rep, err := validateDocuments(docs, namespace, opts)
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
				rep.printText(cmd.OutOrStdout(), cmd.ErrOrStderr())
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
	addTenancyFlags(f, &tenancy)
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

// report is the outcome of validating the input; its JSON form is the -o json output.
type report struct {
	Valid   bool           `json:"valid"`
	Objects []objectReport `json:"objects"`
}

// objectReport is the outcome for one Plugin, PluginChain or PluginConfig.
type objectReport struct {
	Kind      string        `json:"kind"`
	Namespace string        `json:"namespace,omitempty"`
	Name      string        `json:"name"`
	Source    string        `json:"source"`
	Line      int           `json:"line"`
	Valid     bool          `json:"valid"`
	Errors    []errorReport `json:"errors,omitempty"`
	Warnings  []string      `json:"warnings,omitempty"`
}

// errorReport is one field error.
type errorReport struct {
	Field   string `json:"field,omitempty"`
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail,omitempty"`
	Message string `json:"message"`
}

func (o objectReport) id() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

func (r *report) printText(out, errOut io.Writer) {
	invalid, warnings := 0, 0
	for _, o := range r.Objects {
		for _, e := range o.Errors {
			fmt.Fprintf(out, "%s: %s\n", o.id(), e.Message)
		}
		for _, w := range o.Warnings {
			fmt.Fprintf(errOut, "Warning: %s: %s\n", o.id(), w)
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

// pluginGroup is the API group of the kinds validate checks.
var pluginGroup = v1alpha1.GroupVersion.Group

// validateDocuments validates every plugin.flomesh.io object of the input against a snapshot
// of all of them (plus the Namespaces and Services of the input). A plugin object that cannot
// be decoded (an unknown field, a wrong type, an unknown kind or version) is reported as
// invalid; any other document that cannot be decoded is a read error.
func validateDocuments(docs []manifests.Document, namespace string, opts validate.Options) (*report, error) {
	type entry struct {
		rep   objectReport
		clean int // index of the object among the decodable documents, or -1
	}
	var (
		clean   []manifests.Document
		entries []entry
	)
	for _, d := range docs {
		gvk := d.Object.GroupVersionKind()
		ours := gvk.Group == pluginGroup
		d, errs, decoded, err := manifests.DecodeStrict(d, ours, validate.KindNames())
		if err != nil {
			return nil, err
		}
		idx := -1
		if decoded {
			idx = len(clean)
			clean = append(clean, d)
		}
		if ours {
			ns := d.Object.GetNamespace()
			if ns == "" && gvk.Kind != "Plugin" {
				ns = namespace
			}
			e := entry{rep: objectReport{Kind: gvk.Kind, Namespace: ns, Name: d.Object.GetName(), Source: d.Source, Line: d.Line}, clean: idx}
			e.rep.addErrors(errs)
			entries = append(entries, e)
		}
	}
	snap, objs, err := manifests.Snapshot(clean, namespace)
	if err != nil {
		return nil, err
	}
	rep := &report{Valid: true, Objects: []objectReport{}}
	seen := map[string]string{}
	for _, e := range entries {
		o := e.rep
		if e.clean >= 0 {
			if prev, dup := seen[o.id()]; dup {
				o.Warnings = append(o.Warnings, fmt.Sprintf("also defined at %s; this later definition is the one the other objects are checked against", prev))
			}
			seen[o.id()] = fmt.Sprintf("%s:%d", o.Source, o.Line)
			errs, warnings := validateObject(snap, objs[e.clean], opts)
			o.addErrors(errs)
			o.Warnings = append(o.Warnings, warnings...)
		}
		o.Valid = len(o.Errors) == 0
		rep.Valid = rep.Valid && o.Valid
		rep.Objects = append(rep.Objects, o)
	}
	return rep, nil
}

// validateObject runs the create validation of one decoded object, as the webhook does for its
// kind; kinds without validation need none.
func validateObject(r clusterstate.Reader, obj runtime.Object, opts validate.Options) (field.ErrorList, []string) {
	kind, ok := validate.KindNamed(obj.GetObjectKind().GroupVersionKind().Kind)
	o, isObject := obj.(validate.Object)
	if !ok || !isObject {
		return nil, nil
	}
	return kind.Create(r, o, opts)
}

func (o *objectReport) addErrors(errs field.ErrorList) {
	for _, e := range errs {
		msg := e.Error()
		if e.Field == "" {
			msg = e.ErrorBody()
			if e.Type == field.ErrorTypeInvalid {
				msg = e.Detail
			}
		}
		o.Errors = append(o.Errors, errorReport{
			Field: e.Field, Type: string(e.Type), Reason: validate.Reason(e), Detail: e.Detail, Message: msg,
		})
	}
}
