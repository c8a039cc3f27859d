package corsconfig

import "k8s.io/apimachinery/pkg/util/intstr"

// CORSConfig is the configuration of a CORS plugin (PluginConfig.spec.config), field for field
// the one FSM's cors-policy plugin reads.
type CORSConfig struct {
	// AllowOrigins are the origins that get CORS headers; each entry has exactly one matcher.
	AllowOrigins []OriginMatcher `json:"allowOrigins"`

	// AllowMethods are answered in access-control-allow-methods of a preflight.
	AllowMethods []string `json:"allowMethods,omitempty"`

	// AllowHeaders are answered in access-control-allow-headers of a preflight.
	AllowHeaders []string `json:"allowHeaders,omitempty"`

	// ExposeHeaders are sent in access-control-expose-headers.
	ExposeHeaders []string `json:"exposeHeaders,omitempty"`

	// AllowCredentials sends access-control-allow-credentials: true.
	AllowCredentials bool `json:"allowCredentials,omitempty"`

	// MaxAge is how long a preflight may be cached: a Go duration ("24h"), "<n>d", or seconds.
	MaxAge *intstr.IntOrString `json:"maxAge,omitempty"`

	// UnmatchedPreflights is what happens to a preflight whose Origin no entry allows: "Forward"
	// (or empty) sends it to the application, as FSM does; "Ignore" answers it at the sidecar,
	// 200 without CORS headers, as GEP-1767 wants and Istio offers under the same names.
	UnmatchedPreflights string `json:"unmatchedPreflights,omitempty"`
}

// Values of CORSConfig.UnmatchedPreflights.
const (
	UnmatchedPreflightsForward = "Forward"
	UnmatchedPreflightsIgnore  = "Ignore"
)

// OriginMatcher matches the Origin request header one way.
type OriginMatcher struct {
	// Exact matches an Origin equal to it.
	Exact string `json:"exact,omitempty"`
	// Prefix matches an Origin that starts with it.
	Prefix string `json:"prefix,omitempty"`
	// Regex is an RE2 expression matched anywhere in the Origin (unanchored, as FSM does).
	Regex string `json:"regex,omitempty"`
	// Wildcard is a GEP-1767 origin pattern: "*" (any origin), or scheme://*.host[:port] where
	// "*." stands for one or more DNS labels and a missing port is the scheme's default. It is
	// what users of Gateway API, Istio and ingress-nginx mean by "*.example.com", without the
	// pitfalls of writing the regex by hand.
	Wildcard string `json:"wildcard,omitempty"`
}
