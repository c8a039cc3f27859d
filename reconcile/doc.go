// Package reconcile is Day 2 of the CORS sidecar: the controllers of `cors-webhook serve` that keep
// running pods in step with PluginChains, PluginConfigs, Plugins, Services and Namespaces
// (docs/design.md section 6, last point). Admission injects a pod once, when it is created; the
// seed guide creates its workloads before the chain and the config, and users edit PluginConfigs
// later, so admission alone cannot keep its promise.
//
// Four controllers run in the leader replica only (controller-runtime controllers are
// leader-elected; admission stays in every replica):
//
//   - cors-pod-policy recomputes, for every pod, what [inject.Injector.Resolve] says about it.
//     An injected pod whose cors-webhook.io/policy annotation differs is patched (the sidecar
//     reads the annotation through a downwardAPI file and reloads it); a pod no longer selected
//     keeps its sidecar with the empty, pass-through policy. A pod that needs a new pod to be
//     right (selected but without the sidecar, or its policy needs a port its redirect does not
//     cover) is handed to cors-rollout, or, when nothing controls it, gets an Event.
//   - cors-rollout rolls the Deployment, StatefulSet or DaemonSet of such pods by setting the
//     pod-template annotation cors-webhook.io/restartedAt, once per change: the value is a hash
//     of what the new pods will get, so repeated decisions patch the same value (a no-op), and a
//     workload whose template already carries it is never rolled again for that change. It waits
//     for a running rollout to finish, lets a burst of changes settle first (a chain and its
//     config applied together roll once), and is rate-limited cluster-wide.
//   - cors-chain-status and cors-config-status write status.currentStatus and status.reason of
//     PluginChains and PluginConfigs: what they do now, or why they do nothing.
//
// Every decision is a pure function of objects (plan.go, status.go), tested by tables; the
// controllers only read the manager's cache, call them, and write with merge patches.
package reconcile
