// Package validate is the admission validation of the plugin.flomesh.io resources: Plugin,
// PluginChain and PluginConfig. Each kind has a Create and an Update function returning
// (field.ErrorList, warnings), in the style of Kubernetes' own API validation.
//
// The functions are pure over their inputs: existing objects are read through a
// clusterstate.Reader, which is the webhook server's informer cache in admission and an
// in-memory snapshot of files in the offline `cors-webhook validate` command, so both give the
// same answers. The rules are those of docs/design.md sections 3, 4 and 8 (see docs/validation.md).
//
// Errors carry an Origin naming the rule that produced them (see the Origin* constants), so
// that metrics and tests can tell rules apart without parsing messages.
package validate

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/chains"
)

// Options are the server-wide settings validation depends on.
type Options struct {
	// Plugins are the CORS plugins (--cors-plugins); the zero value is the default set.
	Plugins chains.Plugins

	// Tenancy says which namespaces' chains may reach other namespaces
	// (--cluster-chain-namespaces) and which are ignored.
	Tenancy chains.Tenancy

	// Strict turns the security warnings (risky origin matchers, the null origin, credentials
	// for any origin) into errors (--strict).
	Strict bool
}

// selection is the chain selection rule of these options, shared with injection and
// reconciliation through package chains.
func (o Options) selection() chains.Selection {
	return chains.Selection{Plugins: o.Plugins, Tenancy: o.Tenancy}
}

// Origins of errors: the rule that produced each error, for metrics (rejections by reason) and
// tests. Errors without one of these come from generic checks (metadata, label selectors,
// field shapes).
const (
	OriginCORSConfig      = "corsConfig"      // spec.config of a CORS plugin
	OriginOrigin          = "origin"          // an allowOrigins entry that can never match
	OriginDestinationRefs = "destinationRefs" // shape of spec.destinationRefs
	OriginChain           = "chain"           // chain names and plugin lists of a PluginChain
	OriginSelector        = "selector"        // label selector syntax
	OriginChainConflict   = "chainConflict"   // two PluginChains put different CORS plugins on one pod
	OriginConfigConflict  = "configConflict"  // two PluginConfigs give one pod port two policies
	OriginPlugin          = "plugin"          // Plugin declaration
	OriginMetadata        = "metadata"        // object metadata (names)
	OriginStrict          = "strict"          // a security warning turned into an error by Strict
	OriginLimit           = "limit"           // a size limit (see MaxConfigBytes and the other limits)
)

// Reasons lists every value Reason can return for the validation of a PluginConfig,
// PluginChain or Plugin: the Origin* constants and the field error types of generic checks.
// Metrics create every label value from the start with it.
var Reasons = []string{
	OriginCORSConfig, OriginOrigin, OriginDestinationRefs, OriginChain, OriginSelector,
	OriginChainConflict, OriginConfigConflict, OriginPlugin, OriginMetadata, OriginStrict, OriginLimit,
	"notfound", "required", "duplicate", "invalid", "notsupported", "forbidden", "toolong", "toomany",
	"toofew", "tooshort", "typeinvalid", "internalerror", "other",
}

// Reason is the short, bounded name of the rule behind an error, for metrics labels: its Origin
// when it is one of the Origin* constants, else its type ("FieldValueInvalid" becomes
// "invalid"); always one of Reasons ("other" for anything else).
func Reason(e *field.Error) string {
	r := e.Origin
	if r == "" {
		r = strings.ToLower(strings.TrimPrefix(string(e.Type), "FieldValue"))
	}
	if !slices.Contains(Reasons, r) {
		return "other"
	}
	return r
}

// collector gathers the errors and warnings of one object.
type collector struct {
	opts     Options
	errs     field.ErrorList
	warnings []string
}

func (c *collector) add(origin string, errs ...*field.Error) {
	for _, e := range errs {
		if e.Origin == "" {
			e.Origin = origin
		}
		c.errs = append(c.errs, e)
	}
}

// warn records a warning about a legal setting, prefixed with its field path as kubectl
// prints field errors.
func (c *collector) warn(p *field.Path, format string, args ...any) {
	c.warnings = append(c.warnings, p.String()+": "+fmt.Sprintf(format, args...))
}

// risk records a security warning: a warning, or in strict mode an Invalid error.
func (c *collector) risk(p *field.Path, value any, detail string) {
	if c.opts.Strict {
		c.add(OriginStrict, field.Invalid(p, value, detail+" (rejected in strict mode)"))
		return
	}
	c.warn(p, "%s", detail)
}

func (c *collector) result() (field.ErrorList, []string) { return c.errs, c.warnings }

// validateMeta runs the apiserver's own metadata validation, which matters for the offline
// command (in admission the apiserver has already done it).
func (c *collector) validateMeta(meta *metav1.ObjectMeta, namespaced bool) {
	c.add(OriginMetadata, apimachineryvalidation.ValidateObjectMeta(meta, namespaced,
		apimachineryvalidation.NameIsDNSSubdomain, field.NewPath("metadata"))...)
}

// unchangedSpec reports whether an update leaves nothing to validate: the object is being
// deleted (removing a finalizer must never be blocked) or its spec is unchanged (labels,
// annotations and finalizers stay editable even on objects that predate the webhook).
func unchangedSpec(newMeta *metav1.ObjectMeta, newSpec, oldSpec any) bool {
	return newMeta.DeletionTimestamp != nil || equality.Semantic.DeepEqual(newSpec, oldSpec)
}

// key identifies a namespaced object in messages: "namespace/name".
func key(namespace, name string) string { return namespace + "/" + name }
