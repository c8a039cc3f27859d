// Package webhook holds the admission handlers of cors-webhook: the validating webhooks of
// Plugin, PluginChain and PluginConfig and the pod injector, with their metrics. Package
// server mounts them on a manager's webhook server, reading the cluster through
// clusterstate.CacheReader.
//
// Handlers are thin: they decode the request, call the pure functions of package validate (and
// inject), and translate the result.
package webhook
