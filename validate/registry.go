package validate

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// Object is what validation takes: an API object with metadata.
type Object interface {
	runtime.Object
	metav1.Object
}

// Kind is the validation of one kind of plugin.flomesh.io object. The admission handlers and
// the offline `validate` command both find it in [Kinds], so a kind is validated the same way
// wherever it is checked, and a new kind is one more entry there.
type Kind interface {
	// Name is the kind ("PluginChain"); Resource its plural resource ("pluginchains").
	Name() string
	Resource() string
	// New returns an empty object of the kind, to decode into.
	New() Object
	// Create validates a new object; Update an update of old to obj. Both reject an object of
	// another kind with an internal error.
	Create(r clusterstate.Reader, obj Object, opts Options) (field.ErrorList, []string)
	Update(r clusterstate.Reader, obj, old Object, opts Options) (field.ErrorList, []string)
}

// Kinds are the kinds with validation, in the order they are documented.
var Kinds = []Kind{
	kind[*v1alpha1.Plugin]{
		name: "Plugin", resource: "plugins", newObj: func() *v1alpha1.Plugin { return &v1alpha1.Plugin{} },
		create: func(_ clusterstate.Reader, p *v1alpha1.Plugin, o Options) (field.ErrorList, []string) {
			return PluginCreate(p, o)
		},
		update: func(_ clusterstate.Reader, p, old *v1alpha1.Plugin, o Options) (field.ErrorList, []string) {
			return PluginUpdate(p, old, o)
		},
	},
	kind[*v1alpha1.PluginChain]{name: "PluginChain", resource: "pluginchains",
		newObj: func() *v1alpha1.PluginChain { return &v1alpha1.PluginChain{} },
		create: PluginChainCreate, update: PluginChainUpdate},
	kind[*v1alpha1.PluginConfig]{name: "PluginConfig", resource: "pluginconfigs",
		newObj: func() *v1alpha1.PluginConfig { return &v1alpha1.PluginConfig{} },
		create: PluginConfigCreate, update: PluginConfigUpdate},
}

// KindNamed returns the validation of the named kind.
func KindNamed(name string) (Kind, bool) {
	for _, k := range Kinds {
		if k.Name() == name {
			return k, true
		}
	}
	return nil, false
}

// KindNames are the names of [Kinds].
func KindNames() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = k.Name()
	}
	return out
}

type kind[T Object] struct {
	name, resource string
	newObj         func() T
	create         func(clusterstate.Reader, T, Options) (field.ErrorList, []string)
	update         func(clusterstate.Reader, T, T, Options) (field.ErrorList, []string)
}

func (k kind[T]) Name() string     { return k.name }
func (k kind[T]) Resource() string { return k.resource }

func (k kind[T]) New() Object { return k.newObj() }

func (k kind[T]) Create(r clusterstate.Reader, obj Object, opts Options) (field.ErrorList, []string) {
	o, ok := obj.(T)
	if !ok {
		return k.wrongKind(obj), nil
	}
	return k.create(r, o, opts)
}

func (k kind[T]) Update(r clusterstate.Reader, obj, old Object, opts Options) (field.ErrorList, []string) {
	o, ok1 := obj.(T)
	p, ok2 := old.(T)
	if !ok1 || !ok2 {
		return k.wrongKind(obj), nil
	}
	return k.update(r, o, p, opts)
}

func (k kind[T]) wrongKind(obj Object) field.ErrorList {
	return field.ErrorList{field.InternalError(field.NewPath("kind"), &wrongKindError{want: k.name, got: obj.GetObjectKind().GroupVersionKind().Kind})}
}

type wrongKindError struct{ want, got string }

func (e *wrongKindError) Error() string { return "validation of " + e.want + " called with a " + e.got }
