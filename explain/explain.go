// Package explain says why a pod has (or lacks) CORS: which PluginChains select it and why the
// others do not (the selection rule's own reason codes, chains.Reason), which PluginConfig
// applies on which port and why the others do not, whether the pod carries the sidecar and
// whether its running policy is current, and the CORS answer the sidecar gives to a request.
// It returns structure; `cors-webhook describe` keeps the flags and the rendering.
package explain

import (
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/inject"
)

// Query is a request to answer: the CORS answer of the sidecar on each port.
type Query struct {
	Origin                        string
	Method                        string
	RequestMethod, RequestHeaders string
	Port                          int32
}

// Description explains what cors-webhook does with a pod; its JSON and YAML forms are the
// output of `cors-webhook describe -o json|yaml`.
type Description struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	// Source is "cluster" or "files".
	Source string `json:"source"`
	// Selected: a PluginChain selects the pod with a declared CORS plugin.
	Selected bool    `json:"selected"`
	Chains   []Chain `json:"chains"`
	// Ports are the per-port policy: which PluginConfig applies, which were overridden.
	Ports   []inject.PortPolicy `json:"ports"`
	Configs []Config            `json:"configs"`
	// RedirectPorts are the ports the pod's cors-init should redirect now.
	RedirectPorts []int32  `json:"redirectPorts"`
	Sidecar       Sidecar  `json:"sidecar"`
	CORS          []Answer `json:"cors,omitempty"`
	Problems      []string `json:"problems,omitempty"`
	Notes         []string `json:"notes,omitempty"`
	// Query is the request the CORS answers are for.
	Query Query `json:"-"`
}

// Chain is a PluginChain that mounts a CORS plugin where it may reach the pod.
type Chain struct {
	Name    string   `json:"name"`
	Plugins []string `json:"plugins"`
	Selects bool     `json:"selects"`
	// Reason is the selection rule's reason code (chains.Explain), Why its sentence when the
	// chain has no effect on the pod.
	Reason chains.Reason `json:"reason"`
	Why    string        `json:"why,omitempty"`
}

// Config is a CORS PluginConfig of the pod's namespace.
type Config struct {
	Name       string  `json:"name"`
	Plugin     string  `json:"plugin"`
	Applied    []int32 `json:"applied,omitempty"`
	Overridden []int32 `json:"overridden,omitempty"`
	// Why says why the config applies on no port, when it applies on none.
	Why string `json:"why,omitempty"`
}

// Sidecar is the pod's sidecar, now and as the webhook would inject it.
type Sidecar struct {
	// Injected: the pod carries the cors-sidecar container.
	Injected bool `json:"injected"`
	// Outcome is what the mutating webhook does with such a pod at creation, and Reasons why.
	Outcome inject.Outcome `json:"outcome"`
	Reasons []string       `json:"reasons,omitempty"`
	// PolicyCurrent: the running pod's policy annotation is what the cluster says now (only
	// for injected pods); MissingPorts are ports its policy needs that its cors-init did not
	// redirect (the workload is rolled for them).
	PolicyCurrent *bool   `json:"policyCurrent,omitempty"`
	MissingPorts  []int32 `json:"missingPorts,omitempty"`
	// Redirect is the injected pod's redirect mode and whether it was validated.
	Redirect *Redirect `json:"redirect,omitempty"`
}

// Answer is the sidecar's answer to the Query on one port.
type Answer struct {
	Port   int32  `json:"port"`
	Origin string `json:"origin"`
	Method string `json:"method"`
	// Action is PassThrough, Preflight (answered by the sidecar) or Actual (forwarded, headers
	// added to the response).
	Action  string        `json:"action"`
	Headers []cors.Header `json:"headers,omitempty"`
	Why     string        `json:"why,omitempty"`
}

// Pod explains pod in ns. live says the pod was read from a cluster (it exists), so its
// annotations are the running state.
func Pod(pod *corev1.Pod, ns *corev1.Namespace, r clusterstate.Reader, injector *inject.Injector, q Query, live bool) (*Description, error) {
	d := &Description{Pod: pod.Name, Namespace: ns.Name, Source: "files", Query: q, Ports: []inject.PortPolicy{}}
	if live {
		d.Source = "cluster"
	}
	res, err := injector.Resolve(pod, ns, r)
	if err != nil {
		return nil, err
	}
	d.Selected = res.Selected
	if res.Ports != nil {
		d.Ports = res.Ports
	}
	d.RedirectPorts = res.RedirectPorts
	d.Problems, d.Notes = res.Problems, res.Notes
	if d.Chains, err = chainsOf(pod, ns, r, injector.Selection()); err != nil {
		return nil, err
	}
	if d.Configs, err = configsOf(ns, r, injector.Selection().Plugins, res); err != nil {
		return nil, err
	}
	if d.Sidecar, err = sidecarOf(pod, ns, r, injector, res, live); err != nil {
		return nil, err
	}
	if q.Origin != "" {
		if d.CORS, err = Answers(res, q); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// chainsOf explains the chains a user may expect to act in ns (chains.Selection.Considered)
// that mount a CORS plugin, by name.
func chainsOf(pod *corev1.Pod, ns *corev1.Namespace, r clusterstate.Reader, sel chains.Selection) ([]Chain, error) {
	considered, err := sel.Considered(r, ns.Name)
	if err != nil {
		return nil, err
	}
	out := []Chain{}
	seen := map[string]bool{}
	for _, c := range considered {
		key := chains.Key(c)
		if seen[key] || !sel.Plugins.Mounts(c) {
			continue
		}
		seen[key] = true
		chainNS, err := r.Namespace(c.Namespace)
		if err != nil {
			return nil, err
		}
		reason := sel.Explain(c, pod.Labels, ns, chainNS)
		cd := Chain{Name: key, Plugins: sel.Plugins.InboundHTTP(c), Selects: reason == chains.ReasonSelected, Reason: reason}
		if !cd.Selects {
			cd.Why = reason.Message(c, ns.Name)
		} else if cd.Why, err = undeclared(cd.Plugins, r); err != nil {
			return nil, err
		}
		out = append(out, cd)
	}
	slices.SortFunc(out, func(a, b Chain) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// undeclared says why a selecting chain has no effect when none of its CORS plugins is
// declared ("" when one is).
func undeclared(plugins []string, r clusterstate.Reader) (string, error) {
	var missing []string
	for _, p := range plugins {
		if pl, err := r.Plugin(p); err != nil {
			return "", err
		} else if pl == nil {
			missing = append(missing, p)
		}
	}
	if len(missing) < len(plugins) {
		return "", nil
	}
	return "no Plugin " + strings.Join(missing, ", ") + " is declared, so it has no effect", nil
}

// configsOf explains the CORS PluginConfigs of ns, by name.
func configsOf(ns *corev1.Namespace, r clusterstate.Reader, plugins chains.Plugins, res *inject.Resolution) ([]Config, error) {
	out := []Config{}
	for _, plugin := range plugins.Names() {
		configs, err := r.PluginConfigsForPlugin(ns.Name, plugin)
		if err != nil {
			return nil, err
		}
		for _, pc := range configs {
			cd := Config{Name: pc.Namespace + "/" + pc.Name, Plugin: plugin,
				Applied: res.AppliedPorts(pc.Namespace, pc.Name), Overridden: res.OverriddenPorts(pc.Namespace, pc.Name)}
			switch {
			case len(cd.Applied) > 0:
			case len(cd.Overridden) > 0:
				cd.Why = "another PluginConfig applies on port " + contract.FormatPorts(cd.Overridden) + " (first by namespace/name)"
			case !slices.Contains(res.Plugins, plugin):
				cd.Why = "no PluginChain that selects the pod mounts " + plugin
			case slices.ContainsFunc(res.Invalid, func(c inject.InvalidConfig) bool { return c.Config.Key() == cd.Name }):
				cd.Why = "its config is invalid, so it is ignored"
			default:
				cd.Why = "none of its destinationRefs is a Service that selects the pod on a TCP port"
			}
			out = append(out, cd)
		}
	}
	slices.SortFunc(out, func(a, b Config) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// sidecarOf is the pod's sidecar: whether it has one, what the webhook would do with such a pod
// now, and, for an injected pod a chain selects, its drift (inject.MissingPorts).
func sidecarOf(pod *corev1.Pod, ns *corev1.Namespace, r clusterstate.Reader, injector *inject.Injector, res *inject.Resolution, live bool) (Sidecar, error) {
	s := Sidecar{Injected: inject.HasSidecar(&pod.Spec)}
	outcome, err := injector.Inject(pod, ns, r)
	if err != nil {
		return s, err
	}
	s.Outcome, s.Reasons = outcome.Outcome, outcome.Reasons
	if s.Injected {
		s.Redirect = RedirectOf(pod, live)
	}
	if s.Injected && res.Selected {
		current := pod.Annotations[contract.AnnotationPolicy] == res.PolicyJSON
		s.PolicyCurrent = &current
		redirected, _ := contract.ParsePorts(pod.Annotations[contract.AnnotationRedirectPorts])
		s.MissingPorts = inject.MissingPorts(res.Policy, redirected)
	}
	return s, nil
}

// Answers are the sidecar's answers to the request q on each port of the policy (or q.Port).
func Answers(res *inject.Resolution, q Query) ([]Answer, error) {
	ports := []int32{q.Port}
	if q.Port == 0 {
		ports = nil
		for _, p := range res.Ports {
			ports = append(ports, p.Port)
		}
	}
	out := []Answer{}
	for _, port := range ports {
		a := Answer{Port: port, Origin: q.Origin, Method: q.Method}
		cfg, ok := res.Policy.Ports[strconv.Itoa(int(port))]
		if !ok {
			a.Action, a.Why = cors.PassThrough.String(), "no policy on this port: the request passes through unchanged"
			out = append(out, a)
			continue
		}
		pol, errs := cors.Compile(&cfg, field.NewPath("ports").Key(strconv.Itoa(int(port))))
		if len(errs) > 0 {
			return nil, errs.ToAggregate()
		}
		decision := pol.Decide(cors.Request{Method: q.Method, Origin: q.Origin, RequestMethod: q.RequestMethod, RequestHeaders: q.RequestHeaders})
		a.Action = decision.Action.String()
		a.Headers = pol.AppendHeaders(nil, decision)
		// Whenever a policy is active, the sidecar adds Vary: Origin.
		a.Headers = append(a.Headers, cors.Header{Name: "vary", Value: cors.MergeVary("")})
		switch {
		case decision.Action == cors.PassThrough:
			a.Why = "the origin matches no allowOrigins entry: no access-control-* header"
		case decision.Action == cors.Preflight && decision.Origin == "":
			a.Why = "unmatchedPreflights: Ignore: the origin matches no allowOrigins entry, so the sidecar answers this preflight 200 without access-control-* headers and the application never sees it"
		}
		out = append(out, a)
	}
	return out, nil
}
