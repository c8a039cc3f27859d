package validate

import (
	"math"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// PluginCreate validates a new Plugin declaration: metadata, a priority FSM can store (it keeps
// a float32), and a pipyscript for non-CORS plugins. CORS plugins may have an empty script,
// since this product implements CORS natively and never runs it; non-CORS plugins get a warning
// that this product ignores them.
func PluginCreate(p *v1alpha1.Plugin, opts Options) (field.ErrorList, []string) {
	c := &collector{opts: opts}
	c.validateMeta(&p.ObjectMeta, false)
	spec := field.NewPath("spec")
	if math.Abs(p.Spec.Priority) > math.MaxFloat32 {
		c.add(OriginPlugin, field.Invalid(spec.Child("priority"), p.Spec.Priority,
			"must fit in a 32-bit float, as FSM stores it"))
	}
	if len(p.Spec.Script) > MaxScriptBytes {
		c.add(OriginLimit, field.TooLong(spec.Child("pipyscript"), "", MaxScriptBytes))
	}
	if !opts.Plugins.Has(p.Name) {
		if p.Spec.Script == "" {
			c.add(OriginPlugin, field.Required(spec.Child("pipyscript"),
				"a non-CORS plugin needs its script (only the CORS plugins "+opts.Plugins.String()+" may leave it empty)"))
		}
		c.warn(field.NewPath("metadata", "name"),
			"%q is not a CORS plugin (--cors-plugins=%s): cors-webhook ignores it; only FSM would run its script",
			p.Name, opts.Plugins.String())
	}
	return c.result()
}

// PluginUpdate validates an update of a Plugin. An update that leaves the spec unchanged, or of
// a Plugin being deleted, is always accepted.
func PluginUpdate(p, old *v1alpha1.Plugin, opts Options) (field.ErrorList, []string) {
	if unchangedSpec(&p.ObjectMeta, p.Spec, old.Spec) {
		return nil, nil
	}
	return PluginCreate(p, opts)
}
