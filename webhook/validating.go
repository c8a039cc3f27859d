package webhook

import (
	"context"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/validate"
)

// Paths of the validating webhooks, in controller-runtime's naming scheme; the
// ValidatingWebhookConfiguration (chart, e2e) points at them.
// They equal ValidatePath of their kind (TestValidatePaths).
const (
	ValidatePluginPath       = "/validate-plugin-flomesh-io-v1alpha1-plugin"
	ValidatePluginChainPath  = "/validate-plugin-flomesh-io-v1alpha1-pluginchain"
	ValidatePluginConfigPath = "/validate-plugin-flomesh-io-v1alpha1-pluginconfig"
)

// ValidatePath is the path of the validating webhook of a kind of validate.Kinds.
func ValidatePath(kind validate.Kind) string {
	return "/validate-plugin-flomesh-io-v1alpha1-" + strings.ToLower(kind.Name())
}

// NewPluginValidator returns the admission handler of Plugins.
func NewPluginValidator(decoder admission.Decoder, opts validate.Options) admission.Handler {
	return newKindValidator(decoder, "Plugin", nil, opts)
}

// NewPluginChainValidator returns the admission handler of PluginChains, reading existing
// objects from r.
func NewPluginChainValidator(decoder admission.Decoder, r clusterstate.Reader, opts validate.Options) admission.Handler {
	return newKindValidator(decoder, "PluginChain", r, opts)
}

// NewPluginConfigValidator returns the admission handler of PluginConfigs, reading existing
// objects from r.
func NewPluginConfigValidator(decoder admission.Decoder, r clusterstate.Reader, opts validate.Options) admission.Handler {
	return newKindValidator(decoder, "PluginConfig", r, opts)
}

func newKindValidator(decoder admission.Decoder, name string, r clusterstate.Reader, opts validate.Options) admission.Handler {
	kind, ok := validate.KindNamed(name)
	if !ok {
		panic("no validation of kind " + name)
	}
	return NewValidator(decoder, kind, r, opts)
}

// NewValidator is the one thin handler behind every kind of validate.Kinds: decode, call the
// pure validation, translate. DELETE (and CONNECT) is always allowed, so that deleting is
// never blocked by a rule, even if the webhook configuration is widened to those operations.
//
// It is not admission.WithValidator: that handler cannot count decoding failures by kind,
// default the namespace of an object sent without one, nor answer 500 for a store error
// while keeping validation a pure function returning field errors and warnings.
func NewValidator(decoder admission.Decoder, kind validate.Kind, r clusterstate.Reader, opts validate.Options) admission.Handler {
	name := kind.Name()
	return admission.HandlerFunc(func(ctx context.Context, req admission.Request) admission.Response {
		if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
			return admission.Allowed("")
		}
		obj := kind.New()
		if err := decoder.Decode(req, obj); err != nil {
			Rejections.WithLabelValues(name, reasonDecode).Inc()
			return admission.Errored(http.StatusBadRequest, err)
		}
		if obj.GetNamespace() == "" && req.Namespace != "" {
			obj.SetNamespace(req.Namespace)
		}
		var (
			errs     field.ErrorList
			warnings []string
		)
		if req.Operation == admissionv1.Update {
			old := kind.New()
			if err := decoder.DecodeRaw(req.OldObject, old); err != nil {
				Rejections.WithLabelValues(name, reasonDecode).Inc()
				return admission.Errored(http.StatusBadRequest, err)
			}
			errs, warnings = kind.Update(r, obj, old, opts)
		} else {
			errs, warnings = kind.Create(r, obj, opts)
		}
		resp := respond(ctx, schema.GroupKind{Group: v1alpha1.GroupVersion.Group, Kind: name},
			schema.GroupResource{Group: req.Resource.Group, Resource: req.Resource.Resource}, obj.GetName(), errs)
		Warnings.WithLabelValues(name).Add(float64(len(warnings)))
		return resp.WithWarnings(warnings...)
	})
}

// respond translates field errors into an admission response, as the apiserver's own
// validation would answer: 422 Invalid with one cause per field error, or 403 Forbidden when
// every error is a conflict (the object is well-formed but conflicts with what exists).
// An error of the store behind the Reader is a 500, so that the request can be retried.
func respond(ctx context.Context, gk schema.GroupKind, gr schema.GroupResource, name string, errs field.ErrorList) admission.Response {
	if len(errs) == 0 {
		return admission.Allowed("")
	}
	var internal field.ErrorList
	for _, e := range errs {
		if e.Type == field.ErrorTypeInternal {
			internal = append(internal, e)
		}
	}
	if len(internal) > 0 {
		logf.FromContext(ctx).Error(internal.ToAggregate(), "validation could not read the cluster state", "kind", gk.Kind, "name", name)
		Rejections.WithLabelValues(gk.Kind, reasonInternal).Inc()
		return admission.Errored(http.StatusInternalServerError, internal.ToAggregate())
	}
	onlyConflicts := true
	for _, e := range errs {
		onlyConflicts = onlyConflicts && (e.Origin == validate.OriginChainConflict || e.Origin == validate.OriginConfigConflict)
	}
	// Once per request, so that the counter's sum is the number of rejected requests.
	Rejections.WithLabelValues(gk.Kind, validate.Reason(errs[0])).Inc()
	var status *apierrors.StatusError
	if onlyConflicts {
		status = apierrors.NewForbidden(gr, name, errs.ToAggregate())
	} else {
		status = apierrors.NewInvalid(gk, name, errs)
	}
	return admission.Response{AdmissionResponse: admissionv1.AdmissionResponse{Allowed: false, Result: &status.ErrStatus}}
}
