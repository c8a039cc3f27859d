package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Chain names are FSM's mount points for plugins.
const (
	ChainInboundTCP   = "inbound-tcp"
	ChainInboundHTTP  = "inbound-http"
	ChainOutboundTCP  = "outbound-tcp"
	ChainOutboundHTTP = "outbound-http"
)

// ChainNames lists every chain name FSM accepts, in FSM's order.
var ChainNames = []string{ChainInboundTCP, ChainInboundHTTP, ChainOutboundTCP, ChainOutboundHTTP}

// Plugin declares a plugin cluster-wide. Only declared plugins take effect, so cluster admins
// decide which plugins exist at all.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=pi
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Priority",type=number,JSONPath=`.spec.priority`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.currentStatus`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Plugin struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PluginSpec   `json:"spec,omitempty"`
	Status PluginStatus `json:"status,omitempty"`
}

// PluginSpec is FSM's plugin declaration. The script is kept for FSM compatibility; this product
// implements CORS natively and never executes it.
type PluginSpec struct {
	// Priority orders plugins in a chain in FSM (higher runs first).
	// +optional
	Priority float64 `json:"priority,omitempty"`

	// Script is the plugin's PipyJS source.
	// +kubebuilder:validation:MaxLength=1048576
	// +optional
	Script string `json:"pipyscript,omitempty"`
}

// PluginStatus reports what a plugin resource does now.
type PluginStatus struct {
	// CurrentStatus is a one-word state.
	// +optional
	CurrentStatus string `json:"currentStatus,omitempty"`

	// Reason explains CurrentStatus.
	// +optional
	Reason string `json:"reason,omitempty"`
}

// +kubebuilder:object:root=true

// PluginList is a list of Plugins.
type PluginList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Plugin `json:"items"`
}

// PluginChain mounts plugins on the chains of the pods it selects.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=pichn
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.currentStatus`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PluginChain struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PluginChainSpec `json:"spec,omitempty"`
	Status PluginStatus    `json:"status,omitempty"`
}

// PluginChainSpec says which plugins run on which chain, for which pods.
type PluginChainSpec struct {
	// Chains lists the mount points and their plugins, each mount point once.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=4
	Chains []ChainPluginSpec `json:"chains"`

	// Selectors choose the pods the chains apply to.
	// +optional
	Selectors ChainSelectorSpec `json:"selectors,omitempty"`
}

// ChainPluginSpec is one mount point and the plugins mounted on it.
type ChainPluginSpec struct {
	// Name is the mount point.
	// +kubebuilder:validation:Enum=inbound-tcp;inbound-http;outbound-tcp;outbound-http
	Name string `json:"name"`

	// Plugins are plugin names, as declared by Plugin resources.
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=253
	Plugins []string `json:"plugins"`
}

// ChainSelectorSpec selects pods by their labels and by their namespace's labels.
type ChainSelectorSpec struct {
	// PodSelector selects pods by label; nil selects every pod in scope.
	// +optional
	PodSelector *metav1.LabelSelector `json:"podSelector,omitempty"`

	// NamespaceSelector selects namespaces by label; nil means only the chain's own namespace
	// (FSM would match every namespace: this product is deliberately narrower).
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`
}

// +kubebuilder:object:root=true

// PluginChainList is a list of PluginChains.
type PluginChainList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PluginChain `json:"items"`
}

// PluginConfig configures a plugin for the Services it names.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:shortName=picfg
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Plugin",type=string,JSONPath=`.spec.plugin`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.currentStatus`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.reason`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type PluginConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   PluginConfigSpec `json:"spec,omitempty"`
	Status PluginStatus     `json:"status,omitempty"`
}

// PluginConfigSpec is a plugin's configuration and the Services it applies to.
type PluginConfigSpec struct {
	// Config is the plugin's own configuration; for the CORS plugin it is a CORSConfig.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Type=object
	// +optional
	Config runtime.RawExtension `json:"config,omitzero"`

	// Plugin is the name of the plugin this configures.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Plugin string `json:"plugin"`

	// DestinationRefs are the Services (in this namespace) whose pods get this configuration.
	// +kubebuilder:validation:MaxItems=64
	// +optional
	DestinationRefs []corev1.ObjectReference `json:"destinationRefs,omitempty"`
}

// +kubebuilder:object:root=true

// PluginConfigList is a list of PluginConfigs.
type PluginConfigList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []PluginConfig `json:"items"`
}
