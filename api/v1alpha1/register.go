package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version FSM uses for its plugin resources.
var GroupVersion = schema.GroupVersion{Group: "plugin.flomesh.io", Version: "v1alpha1"}

var (
	// SchemeBuilder registers the plugin types, so clients and decoders can recognise them.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)
	// AddToScheme adds the plugin types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(scheme *runtime.Scheme) error {
	scheme.AddKnownTypes(GroupVersion,
		&Plugin{}, &PluginList{},
		&PluginChain{}, &PluginChainList{},
		&PluginConfig{}, &PluginConfigList{},
	)
	metav1.AddToGroupVersion(scheme, GroupVersion)
	return nil
}
