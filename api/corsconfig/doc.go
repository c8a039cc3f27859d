// Package corsconfig holds the typed configuration of the CORS plugin (PluginConfig.spec.config),
// apart from the CRD types so that the sidecar, which only needs this, links neither
// k8s.io/api nor the rest of the API machinery. api/v1alpha1 re-exports the types.
//
// +kubebuilder:object:generate=true
package corsconfig
