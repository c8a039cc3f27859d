// Package cors is the single implementation of the CORS semantics of cors-webhook.
//
// The validating webhook, the pod injector and the sidecar all go through this package, so
// that "what kubectl accepts", "what the pod annotation carries" and "what the sidecar answers"
// can never disagree:
//
//   - [Decode] strictly decodes PluginConfig.spec.config (unknown fields are errors, with a
//     did-you-mean hint) into a [corsconfig.CORSConfig].
//   - [Compile] checks what the data path needs (origin matchers, RE2 regexes, header tokens,
//     maxAge) and builds an immutable [Policy].
//   - [Normalize] gives the canonical form the pod annotation carries ([PodPolicy]).
//   - [Policy.Decide] and [Policy.AppendHeaders] are the per-request hot path of the sidecar;
//     they do not allocate.
//
// The semantics are pinned to FSM's cors-policy plugin (the seed): exact is string equality,
// prefix is strings.HasPrefix, regex is an unanchored search, origins are tried in order and
// any OPTIONS request with a matching Origin is answered as a preflight. What Gateway API's
// GEP-1767 added since is opt-in through the config itself, so a config written for FSM answers
// byte for byte as before: wildcard origin entries, a credentialed "*" answered with the
// preflight's requested method and headers, and unmatchedPreflights: Ignore.
//
// This package must stay free of controller-runtime and client-go: the sidecar binary imports it.
package cors
