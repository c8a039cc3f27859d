// Package server assembles the two processes of cors-webhook from the packages that do the
// work:
//
//   - serve (NewServeManager, RunServe): admission only. Every replica answers the webhooks of
//     package webhook from an informer cache of exactly the kinds admission reads (Plugins,
//     PluginChains, PluginConfigs, Services, Namespaces); no leader election, so losing the
//     API server's lease, or the controller, never stops admission. Its service account only
//     reads cluster objects. On SIGTERM it keeps serving for a shutdown delay while endpoints
//     drain, and it is ready only when its caches have synced and the webhook configurations'
//     caBundle trusts its serving certificate.
//   - controller (NewControllerManager, RunController): the leader-elected reconcilers of
//     package reconcile and the built-in CA's rotation (package certs). It is the only process
//     that writes pods and workloads; it caches Pods trimmed to what the reconcilers read and
//     ReplicaSets as metadata only.
//
// Both expose /healthz, /readyz and Prometheus /metrics.
package server
