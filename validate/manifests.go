package validate

import (
	"fmt"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/internal/manifests"
)

// Report is the outcome of validating a set of manifests; its JSON form is the output of
// `cors-webhook validate -o json`.
type Report struct {
	Valid   bool           `json:"valid"`
	Objects []ObjectReport `json:"objects"`
}

// ObjectReport is the outcome for one Plugin, PluginChain or PluginConfig.
type ObjectReport struct {
	Kind      string        `json:"kind"`
	Namespace string        `json:"namespace,omitempty"`
	Name      string        `json:"name"`
	Source    string        `json:"source"`
	Line      int           `json:"line"`
	Valid     bool          `json:"valid"`
	Errors    []ErrorReport `json:"errors,omitempty"`
	Warnings  []string      `json:"warnings,omitempty"`
}

// ErrorReport is one field error.
type ErrorReport struct {
	Field   string `json:"field,omitempty"`
	Type    string `json:"type"`
	Reason  string `json:"reason"`
	Detail  string `json:"detail,omitempty"`
	Message string `json:"message"`
}

// ID names the object for messages: "Kind namespace/name".
func (o ObjectReport) ID() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// pluginGroup is the API group of the kinds validate checks.
var pluginGroup = v1alpha1.GroupVersion.Group

// Manifests validates every plugin.flomesh.io object of docs against a snapshot of all of
// them (plus the Namespaces and Services among them), as the webhook would on their creation;
// namespaced objects without a namespace are in namespace. A plugin object that cannot
// be decoded (an unknown field, a wrong type, an unknown kind or version) is reported as
// invalid; any other document that cannot be decoded is a read error.
func Manifests(docs []manifests.Document, namespace string, opts Options) (*Report, error) {
	type entry struct {
		rep   ObjectReport
		clean int // index of the object among the decodable documents, or -1
	}
	var (
		clean   []manifests.Document
		entries []entry
	)
	for _, d := range docs {
		gvk := d.Object.GroupVersionKind()
		ours := gvk.Group == pluginGroup
		d, errs, decoded, err := manifests.DecodeStrict(d, ours, KindNames())
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
			e := entry{rep: ObjectReport{Kind: gvk.Kind, Namespace: ns, Name: d.Object.GetName(), Source: d.Source, Line: d.Line}, clean: idx}
			e.rep.addErrors(errs)
			entries = append(entries, e)
		}
	}
	snap, objs, err := manifests.Snapshot(clean, namespace)
	if err != nil {
		return nil, err
	}
	rep := &Report{Valid: true, Objects: []ObjectReport{}}
	seen := map[string]string{}
	for _, e := range entries {
		o := e.rep
		if e.clean >= 0 {
			if prev, dup := seen[o.ID()]; dup {
				o.Warnings = append(o.Warnings, fmt.Sprintf("also defined at %s; this later definition is the one the other objects are checked against", prev))
			}
			seen[o.ID()] = fmt.Sprintf("%s:%d", o.Source, o.Line)
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
func validateObject(r clusterstate.Reader, obj runtime.Object, opts Options) (field.ErrorList, []string) {
	kind, ok := KindNamed(obj.GetObjectKind().GroupVersionKind().Kind)
	o, isObject := obj.(Object)
	if !ok || !isObject {
		return nil, nil
	}
	return kind.Create(r, o, opts)
}

func (o *ObjectReport) addErrors(errs field.ErrorList) {
	for _, e := range errs {
		msg := e.Error()
		if e.Field == "" {
			msg = e.ErrorBody()
			if e.Type == field.ErrorTypeInvalid {
				msg = e.Detail
			}
		}
		o.Errors = append(o.Errors, ErrorReport{
			Field: e.Field, Type: string(e.Type), Reason: Reason(e), Detail: e.Detail, Message: msg,
		})
	}
}
