// Package v1alpha1 holds the plugin.flomesh.io/v1alpha1 API types of FSM (Plugin, PluginChain,
// PluginConfig), wire-compatible with FSM so that FSM manifests apply unchanged, plus the typed
// configuration of the CORS plugin.
//
// +kubebuilder:object:generate=true
// +groupName=plugin.flomesh.io
package v1alpha1
