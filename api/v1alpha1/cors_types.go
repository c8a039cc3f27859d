package v1alpha1

import "github.com/cors-webhook/cors-webhook/api/corsconfig"

// CORSConfig is the configuration of a CORS plugin (PluginConfig.spec.config); see package
// corsconfig, which keeps it apart from the CRD types for the sidecar's sake.
type CORSConfig = corsconfig.CORSConfig

// OriginMatcher matches the Origin request header one way; see package corsconfig.
type OriginMatcher = corsconfig.OriginMatcher
