package validate

import (
	"bytes"
	"encoding/json"
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
	"github.com/cors-webhook/cors-webhook/cors"
)

// Limits of a CORS config. The injector writes every config that applies to a pod into one pod
// annotation (cors.PodPolicyAnnotation), and the API server refuses a pod whose annotations
// exceed 256 KiB in total, so a config must stay small enough for several ports of a pod to
// fit with room to spare (the arithmetic is in docs/validation.md). The per-entry limits are
// far above any real origin, method or header name; they give a precise message before the
// total does, and bound the work of compiling regexes at every admission.
const (
	// MaxConfigBytes bounds the normalized JSON of one config, as the pod annotation carries it.
	MaxConfigBytes = 8 * 1024
	// MaxOrigins bounds allowOrigins.
	MaxOrigins = 100
	// MaxOriginLength bounds an exact or prefix entry: a scheme, a 253-byte DNS name, a port.
	MaxOriginLength = 300
	// MaxRegexLength bounds a regex entry.
	MaxRegexLength = 1024
	// MaxListItems bounds allowMethods, allowHeaders and exposeHeaders each.
	MaxListItems = 64
	// MaxTokenLength bounds one method or header name.
	MaxTokenLength = 128
)

// Limits of the typed fields, the same as the CRD schema's maxItems and maxLength (the
// +kubebuilder markers of api/v1alpha1), so that the offline `validate` gives the API server's
// answer. They are far above what FSM's own examples use.
const (
	// MaxChainPlugins bounds spec.chains[i].plugins of a PluginChain.
	MaxChainPlugins = 32
	// MaxDestinationRefs bounds spec.destinationRefs of a PluginConfig.
	MaxDestinationRefs = 64
	// MaxScriptBytes bounds spec.pipyscript of a Plugin.
	MaxScriptBytes = 1024 * 1024
)

// checkLimits reports every limit cfg exceeds. Configs beyond a limit are not compiled.
func checkLimits(cfg *corsconfig.CORSConfig, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	origins := p.Child("allowOrigins")
	if len(cfg.AllowOrigins) > MaxOrigins {
		errs = append(errs, withDetail(field.TooMany(origins, len(cfg.AllowOrigins), MaxOrigins),
			fmt.Sprintf("must have at most %d items: one regex can cover many origins", MaxOrigins)))
	}
	for i, o := range cfg.AllowOrigins {
		for _, m := range []struct {
			kind, value string
			max         int
		}{{"exact", o.Exact, MaxOriginLength}, {"prefix", o.Prefix, MaxOriginLength}, {"regex", o.Regex, MaxRegexLength}, {"wildcard", o.Wildcard, MaxOriginLength}} {
			if len(m.value) > m.max {
				errs = append(errs, field.TooLong(origins.Index(i).Child(m.kind), "", m.max))
			}
		}
	}
	for _, l := range []struct {
		name string
		vals []string
	}{{"allowMethods", cfg.AllowMethods}, {"allowHeaders", cfg.AllowHeaders}, {"exposeHeaders", cfg.ExposeHeaders}} {
		lp := p.Child(l.name)
		if len(l.vals) > MaxListItems {
			errs = append(errs, field.TooMany(lp, len(l.vals), MaxListItems))
		}
		for i, v := range l.vals {
			if len(v) > MaxTokenLength {
				errs = append(errs, field.TooLong(lp.Index(i), "", MaxTokenLength))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if n, err := configBytes(cfg); err == nil && n > MaxConfigBytes {
		errs = append(errs, withDetail(field.TooLong(p, "", MaxConfigBytes),
			fmt.Sprintf("may not be more than %d bytes in the pod annotation, which carries the config for each configured port of every selected pod (this one takes %d)", MaxConfigBytes, n)))
	}
	return errs
}

// configBytes is the size of cfg's normalized JSON, written as cors.PodPolicy.Marshal writes
// it into the pod annotation.
func configBytes(cfg *corsconfig.CORSConfig) (int, error) {
	norm, err := cors.Normalize(cfg)
	if err != nil {
		norm = cfg // maxAge is reported by Compile; its few bytes do not matter here
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(norm); err != nil {
		return 0, err
	}
	return buf.Len() - 1, nil
}
