package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
)

// Values of status.currentStatus of PluginChains and PluginConfigs: one word, what the object
// does now. status.reason says it in a sentence.
const (
	// StatusActive: it takes effect on running pods.
	StatusActive = "Active"
	// StatusPending: it selects pods that do not have the sidecar (yet): their workloads are
	// being rolled, or they must be recreated (the Events on them say which).
	StatusPending = "Pending"
	// StatusNoMatch: it is valid but reaches no running pod.
	StatusNoMatch = "NoMatch"
	// StatusPluginNotDeclared: its CORS plugin has no Plugin resource, so, as in FSM, it has
	// no effect.
	StatusPluginNotDeclared = "PluginNotDeclared"
	// StatusIgnored: it is not about a CORS plugin of this server.
	StatusIgnored = "Ignored"
	// StatusInvalid: it is malformed (the validating webhook would have refused it).
	StatusInvalid = "Invalid"
	// StatusNoService: a PluginConfig names no existing Service.
	StatusNoService = "NoService"
	// StatusNotSelected: a PluginConfig's Services select pods, but no PluginChain mounts its
	// plugin on them.
	StatusNotSelected = "NotSelected"
	// StatusOverridden: another PluginConfig configures the same ports of the same pods and
	// applies instead.
	StatusOverridden = "Overridden"
)

// chainObservation is what the reconciler saw of one PluginChain in the cache.
type chainObservation struct {
	// corsPlugins are the CORS plugins it mounts in inbound-http, serverPlugins the server's
	// CORS plugin names (--cors-plugins), undeclared those of corsPlugins with no Plugin.
	corsPlugins, serverPlugins, undeclared []string
	// invalid is the error of a selector that does not parse.
	invalid string
	// ignored: the webhooks skip the chain's namespace, so the chain is ignored (tenancy).
	ignored bool
	// namespaces are the namespaces its selectors reach, podNamespaces those of them with
	// selected pods.
	namespaces, podNamespaces []string
	// Pods its selectors match: all active ones, those with the sidecar, and those that will
	// not get it: opted out, or never injected, by why (inject.Uninjectable).
	selected, injected, optedOut int
	never                        map[inject.Outcome]int
}

// chainStatus says what a chain does now.
func chainStatus(o chainObservation) v1alpha1.PluginStatus {
	if len(o.corsPlugins) == 0 {
		return v1alpha1.PluginStatus{CurrentStatus: StatusIgnored, Reason: fmt.Sprintf(
			"mounts no CORS plugin (%s) in %s: this server does not act on it", strings.Join(o.serverPlugins, ", "), v1alpha1.ChainInboundHTTP)}
	}
	if o.ignored {
		return v1alpha1.PluginStatus{CurrentStatus: StatusIgnored, Reason: "its namespace is skipped by the webhooks (an excluded namespace, or labelled " + contract.LabelNamespaceInject + "=" + contract.NamespaceInjectDisabled +
			"), so nothing validated it and it acts on no pod; only PluginChains of the cluster-chain namespaces may live there"}
	}
	if len(o.undeclared) == len(o.corsPlugins) {
		return v1alpha1.PluginStatus{CurrentStatus: StatusPluginNotDeclared, Reason: fmt.Sprintf(
			"no Plugin %s is declared, so the chain has no effect until one is (kubectl get plugins)", strings.Join(o.undeclared, ", "))}
	}
	if o.invalid != "" {
		return v1alpha1.PluginStatus{CurrentStatus: StatusInvalid, Reason: "its selectors select nothing: " + o.invalid}
	}
	var extra []string
	if len(o.undeclared) > 0 {
		extra = append(extra, fmt.Sprintf("no Plugin %s is declared", strings.Join(o.undeclared, ", ")))
	}
	if o.selected == 0 {
		why := "its namespaceSelector matches no namespace"
		if len(o.namespaces) > 0 {
			why = "no running pod matches its podSelector in namespace " + names(o.namespaces)
		}
		return v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: sentence(why, extra)}
	}
	if o.optedOut > 0 {
		extra = append(extra, fmt.Sprintf("%d opted out", o.optedOut))
	}
	never := 0
	for _, why := range slices.Sorted(maps.Keys(o.never)) {
		never += o.never[why]
		extra = append(extra, fmt.Sprintf("%d never injected: %s", o.never[why], neverWords[why]))
	}
	waiting := o.selected - o.injected - o.optedOut - never
	head := fmt.Sprintf("selects %d pod(s) in namespace %s", o.selected, names(o.podNamespaces))
	if waiting > 0 {
		return v1alpha1.PluginStatus{CurrentStatus: StatusPending, Reason: sentence(fmt.Sprintf(
			"%s: %d injected, %d without the sidecar yet (their workloads roll, or the pods must be recreated: see their Events)", head, o.injected, waiting), extra)}
	}
	if o.injected == 0 {
		return v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: sentence(head+": none can be injected", extra)}
	}
	return v1alpha1.PluginStatus{CurrentStatus: StatusActive, Reason: sentence(fmt.Sprintf(
		"%s: %d injected with %s", head, o.injected, strings.Join(minus(o.corsPlugins, o.undeclared), ", ")), extra)}
}

// neverWords say in a status reason why pods are never injected.
var neverWords = map[inject.Outcome]string{
	inject.HostNetwork: "on the host network",
	inject.MirrorPod:   "mirror pods of static pods",
	inject.Windows:     "Windows pods",
	inject.PodSecurity: "their namespace enforces Pod Security baseline or restricted",
}

// configObservation is what the reconciler saw of one PluginConfig in the cache.
type configObservation struct {
	// corsPlugin: spec.plugin is one of the server's CORS plugins (serverPlugins); declared:
	// a Plugin of that name exists.
	corsPlugin    bool
	serverPlugins []string
	declared      bool
	// invalid is why spec.config does not decode or compile.
	invalid string
	// services are the named Services that exist; missing the destinationRefs that name no
	// existing Service of this namespace.
	services, missing []string
	// Active pods the existing Services select, and what became of them: no chain mounts
	// the plugin on them, they opted out, another config wins their port, no Service port
	// reaches them, the config is in their policy with or without the sidecar running yet.
	backing, notSelected, optedOut, overridden, noPort, applied, waiting int
	// ports are the pod ports the config applies to (on injected pods).
	ports []int32
}

// configStatus says what a PluginConfig does now.
func configStatus(plugin string, o configObservation) v1alpha1.PluginStatus {
	switch {
	case !o.corsPlugin:
		return v1alpha1.PluginStatus{CurrentStatus: StatusIgnored, Reason: fmt.Sprintf(
			"plugin %s is not a CORS plugin of this server (%s): it does not act on it", plugin, strings.Join(o.serverPlugins, ", "))}
	case !o.declared:
		return v1alpha1.PluginStatus{CurrentStatus: StatusPluginNotDeclared, Reason: fmt.Sprintf(
			"no Plugin %s is declared, so the config has no effect until one is (kubectl get plugins)", plugin)}
	case o.invalid != "":
		return v1alpha1.PluginStatus{CurrentStatus: StatusInvalid, Reason: "spec.config is ignored: " + o.invalid}
	case len(o.services) == 0:
		why := "destinationRefs name no Service"
		if len(o.missing) > 0 {
			why = "no Service matches: " + names(o.missing) + " not found"
		}
		return v1alpha1.PluginStatus{CurrentStatus: StatusNoService, Reason: why}
	}
	var extra []string
	if len(o.missing) > 0 {
		extra = append(extra, names(o.missing)+" not found")
	}
	svc := "Service " + names(o.services)
	if o.backing == 0 {
		return v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: sentence(svc+" selects no running pod", extra)}
	}
	if o.notSelected > 0 {
		extra = append(extra, fmt.Sprintf("%d pod(s) behind it are selected by no PluginChain mounting %s", o.notSelected, plugin))
	}
	if o.optedOut > 0 {
		extra = append(extra, fmt.Sprintf("%d opted out", o.optedOut))
	}
	if o.overridden > 0 {
		extra = append(extra, fmt.Sprintf("on %d pod(s) another PluginConfig configures the same port and applies instead", o.overridden))
	}
	if o.noPort > 0 {
		extra = append(extra, fmt.Sprintf("%d pod(s) have no TCP port the Service reaches", o.noPort))
	}
	switch {
	case o.waiting > 0:
		return v1alpha1.PluginStatus{CurrentStatus: StatusPending, Reason: sentence(fmt.Sprintf(
			"configures %s: applied on %d pod(s), %d waiting for the sidecar (their workloads roll, or the pods must be recreated: see their Events)", svc, o.applied, o.waiting), extra)}
	case o.applied > 0:
		return v1alpha1.PluginStatus{CurrentStatus: StatusActive, Reason: sentence(fmt.Sprintf(
			"configures %s: port %s of %d pod(s)", svc, contract.FormatPorts(o.ports), o.applied), extra)}
	case o.overridden > 0:
		return v1alpha1.PluginStatus{CurrentStatus: StatusOverridden, Reason: sentence("configures "+svc, extra)}
	case o.notSelected > 0:
		return v1alpha1.PluginStatus{CurrentStatus: StatusNotSelected, Reason: fmt.Sprintf(
			"%s selects %d pod(s), but no PluginChain mounts %s on them", svc, o.backing, plugin)}
	}
	return v1alpha1.PluginStatus{CurrentStatus: StatusNoMatch, Reason: sentence("configures "+svc+", but on no pod that can carry it", extra)}
}

// sentence joins a head and details: "head (a; b)".
func sentence(head string, extra []string) string {
	if len(extra) == 0 {
		return head
	}
	return head + " (" + strings.Join(extra, "; ") + ")"
}

// names lists names for a reason, the first few only: reasons are read in a table column.
func names(list []string) string {
	const most = 5
	if len(list) <= most {
		return strings.Join(list, ", ")
	}
	return strings.Join(list[:most], ", ") + " and " + strconv.Itoa(len(list)-most) + " more"
}

// minus returns a without the elements of b.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}
