// Package inject decides which pods get the CORS sidecar and builds what the injection adds: the
// pod contract of docs/design.md section 7.
//
// It is a pure function over objects: a pod, its namespace, a [clusterstate.Reader] over
// PluginChains, PluginConfigs, Services and Plugins, and the injector [Settings]. The admission
// handler (package webhook) and the offline `cors-webhook inject` command both call
// [Injector.Inject], so what a GitOps user renders offline is exactly what the webhook would
// have done. Day-2 reconciliation calls [Injector.Resolve], which computes only the pod's policy
// and redirected ports without mutating anything.
//
// The steps of [Injector.Inject], cheapest first because most pods in a cluster are selected by
// no chain:
//
//  1. opt-outs: the pod annotation cors-webhook.io/inject: "false", the namespace label
//     cors-webhook.io/inject=disabled;
//  2. chain matching: a PluginChain selects the pod by the rule of package chains (which
//     validation and reconciliation share) and mounts a declared CORS plugin in inbound-http,
//     through a [chains.Index] when the Reader keeps one;
//  3. idempotency: a pod that already has the cors-sidecar container is left alone, unless
//     what was added since (a reinvocation after another webhook) collides with the sidecar's
//     ports or port names;
//  4. pods that can never carry the sidecar ([Uninjectable]): hostNetwork (redirecting the
//     node's traffic is not ours to do), mirror pods, Windows pods, and pods of namespaces
//     enforcing Pod Security baseline or restricted;
//  5. policy resolution: Services of the pod's namespace that select it, the PluginConfigs of the
//     CORS plugin naming them, and each Service port's targetPort give the per-port policy;
//  6. collision checks: the sidecar's ports, container and volume names must be free;
//  7. the mutation itself, returned as a change set ([Changes]) with the per-port structure of
//     the policy ([Resolution.Ports]), so that callers build on values rather than re-diffing.
//
// Steps 1 and 2 need only the pod's metadata: [Injector.Triage] runs them alone, so that the
// admission handler decodes the whole pod only for the pods a chain selects.
package inject
