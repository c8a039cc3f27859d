package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	sigsyaml "sigs.k8s.io/yaml"

	goflag "flag"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/inject"
)

func newDescribeCommand() *cobra.Command {
	var (
		files       []string
		namespace   string
		output      string
		query       corsQuery
		flags       injectorFlags
		corsPlugins []string
	)
	cmd := &cobra.Command{
		Use:   "describe POD",
		Short: "Explain what cors-webhook does with a pod: chains, per-port policy, injection, CORS answers",
		Long: `Describe one pod as cors-webhook sees it: which PluginChains select it (and why the others
do not), which PluginConfig applies on which port and why the others do not, whether it carries
the sidecar and whether its running policy is current, and, with --origin, the CORS answer the
sidecar gives on each configured port.

Live, the pod and the plugin.flomesh.io objects, Services and Namespaces are read from the
cluster (--kubeconfig, else $KUBECONFIG, else the in-cluster configuration, else ~/.kube/config).
Offline, with -f, they are read from manifests as for inject; POD then names a Pod or a workload
(Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob) whose pod template is described.`,
		Example: `  cors-webhook describe -n pipy pipy-ok-v1-5d8f7c9b4-x2x7q --origin http://www.bbb.com
  cors-webhook describe -f manifests/ -n pipy pipy-ok-v1 --origin http://www.aaa.com --method OPTIONS -o yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "yaml" && output != "json" {
				return &exitError{code: exitUsage, err: fmt.Errorf("--output must be text, yaml or json, not %q", output)}
			}
			injector, err := flags.injector(corsPlugins)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			var (
				pod  *corev1.Pod
				r    clusterstate.Reader
				live = len(files) == 0
			)
			if live {
				pod, r, err = readLive(cmd.Context(), namespace, args[0])
			} else {
				pod, r, err = readOffline(files, cmd.InOrStdin(), namespace, args[0])
			}
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			ns, err := r.Namespace(pod.Namespace)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			if ns == nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("namespace %s not found", pod.Namespace)}
			}
			d, err := describePod(pod, ns, r, injector, query, live)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			return writeDescription(cmd.OutOrStdout(), d, output)
		},
	}
	f := cmd.Flags()
	f.StringSliceVarP(&files, "filename", "f", nil, "describe offline from these files, directories or - (stdin) instead of the cluster")
	f.StringVarP(&namespace, "namespace", "n", "default", "namespace of the pod")
	f.StringVarP(&output, "output", "o", "text", "output format: text, yaml or json")
	f.StringVar(&query.Origin, "origin", "", "the Origin header of a request to answer (the CORS answer is left out without it)")
	f.StringVar(&query.Method, "method", "GET", "the method of that request (OPTIONS for a preflight)")
	f.StringVar(&query.RequestMethod, "request-method", "", "the preflight's Access-Control-Request-Method (a credentialed \"*\" answers with it; unmatchedPreflights needs it)")
	f.StringVar(&query.RequestHeaders, "request-headers", "", "the preflight's Access-Control-Request-Headers")
	f.Int32Var(&query.Port, "port", 0, "answer for this pod port only (default: every port with a policy)")
	addInjectorFlags(f, &flags)
	addCORSPluginsFlag(f, &corsPlugins)
	gofs := goflag.NewFlagSet("describe", goflag.ContinueOnError)
	config.RegisterFlags(gofs)
	f.AddGoFlagSet(gofs)
	return cmd
}

// corsQuery is the request describe answers.
type corsQuery struct {
	Origin                        string
	Method                        string
	RequestMethod, RequestHeaders string
	Port                          int32
}

// description is what describe reports; its JSON and YAML forms are the -o json|yaml output.
type description struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	// Source is "cluster" or "files".
	Source string `json:"source"`
	// Selected: a PluginChain selects the pod with a declared CORS plugin.
	Selected bool               `json:"selected"`
	Chains   []chainDescription `json:"chains"`
	// Ports are the per-port policy: which PluginConfig applies, which were overridden.
	Ports   []inject.PortPolicy `json:"ports"`
	Configs []configDescription `json:"configs"`
	// RedirectPorts are the ports the pod's cors-init should redirect now.
	RedirectPorts []int32       `json:"redirectPorts"`
	Sidecar       sidecarState  `json:"sidecar"`
	CORS          []corsAnswer  `json:"cors,omitempty"`
	Problems      []string      `json:"problems,omitempty"`
	Notes         []string      `json:"notes,omitempty"`
	query         corsQuery     // for the text output
	outcome       inject.Result // what the webhook would do with the pod now
}

type chainDescription struct {
	Name    string   `json:"name"`
	Plugins []string `json:"plugins"`
	Selects bool     `json:"selects"`
	// Why says why the chain has no effect on the pod, when it has none.
	Why string `json:"why,omitempty"`
}

type configDescription struct {
	Name       string  `json:"name"`
	Plugin     string  `json:"plugin"`
	Applied    []int32 `json:"applied,omitempty"`
	Overridden []int32 `json:"overridden,omitempty"`
	// Why says why the config applies on no port, when it applies on none.
	Why string `json:"why,omitempty"`
}

type sidecarState struct {
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
	Redirect *redirectState `json:"redirect,omitempty"`
}

type corsAnswer struct {
	Port   int32  `json:"port"`
	Origin string `json:"origin"`
	Method string `json:"method"`
	// Action is PassThrough, Preflight (answered by the sidecar) or Actual (forwarded, headers
	// added to the response).
	Action  string        `json:"action"`
	Headers []cors.Header `json:"headers,omitempty"`
	Why     string        `json:"why,omitempty"`
}

// describePod explains pod in ns. live says the pod was read from a cluster (it exists), so its
// annotations are the running state.
func describePod(pod *corev1.Pod, ns *corev1.Namespace, r clusterstate.Reader, injector *inject.Injector, q corsQuery, live bool) (*description, error) {
	d := &description{Pod: pod.Name, Namespace: ns.Name, Source: "files", query: q, Chains: []chainDescription{}, Configs: []configDescription{}, Ports: []inject.PortPolicy{}}
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
	sel := injector.Selection()

	own, err := r.PluginChainsInNamespace(ns.Name)
	if err != nil {
		return nil, err
	}
	wide, err := r.PluginChainsWithNamespaceSelector()
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range slices.Concat(own, wide) {
		key := c.Namespace + "/" + c.Name
		if seen[key] || !sel.Plugins.Mounts(c) {
			continue
		}
		seen[key] = true
		cd := chainDescription{Name: key, Plugins: sel.Plugins.InboundHTTP(c), Selects: sel.Selects(c, pod.Labels, ns)}
		chainNS, err := r.Namespace(c.Namespace)
		if err != nil {
			return nil, err
		}
		switch {
		case sel.Ignores(c):
			cd.Why = "namespace " + c.Namespace + " is excluded from the webhooks (--excluded-namespaces), so its PluginChains are ignored"
		case c.Namespace != ns.Name && sel.IgnoresIn(c, chainNS):
			cd.Selects = false
			cd.Why = "namespace " + c.Namespace + " opts out of the webhooks with the label " + contract.LabelNamespaceInject + "=" + contract.NamespaceInjectDisabled + ", so its PluginChains are ignored"
		case c.Namespace != ns.Name && c.Spec.Selectors.NamespaceSelector != nil && sel.Confined(c):
			cd.Why = "namespace " + c.Namespace + " is not a cluster-chain namespace (--cluster-chain-namespaces), so it selects pods of its own namespace only, whatever its namespaceSelector says"
		case !sel.SelectsNamespace(c, ns) && sel.OwnNamespaceOnly(c) && c.Spec.Selectors.NamespaceSelector == nil:
			cd.Why = "it has no namespaceSelector, so it selects pods of its own namespace only"
		case !sel.SelectsNamespace(c, ns):
			cd.Why = "its namespaceSelector does not select namespace " + ns.Name
		case !cd.Selects:
			cd.Why = "its podSelector does not select the pod's labels"
		default:
			var undeclared []string
			for _, p := range cd.Plugins {
				if pl, err := r.Plugin(p); err != nil {
					return nil, err
				} else if pl == nil {
					undeclared = append(undeclared, p)
				}
			}
			if len(undeclared) == len(cd.Plugins) {
				cd.Why = "no Plugin " + strings.Join(undeclared, ", ") + " is declared, so it has no effect"
			}
		}
		d.Chains = append(d.Chains, cd)
	}
	slices.SortFunc(d.Chains, func(a, b chainDescription) int { return strings.Compare(a.Name, b.Name) })

	for _, plugin := range sel.Plugins.Names() {
		configs, err := r.PluginConfigsForPlugin(ns.Name, plugin)
		if err != nil {
			return nil, err
		}
		for _, pc := range configs {
			cd := configDescription{Name: pc.Namespace + "/" + pc.Name, Plugin: plugin,
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
			d.Configs = append(d.Configs, cd)
		}
	}
	slices.SortFunc(d.Configs, func(a, b configDescription) int { return strings.Compare(a.Name, b.Name) })

	d.Sidecar.Injected = slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == contract.ContainerSidecar })
	if d.outcome, err = injector.Inject(pod, ns, r); err != nil {
		return nil, err
	}
	d.Sidecar.Outcome, d.Sidecar.Reasons = d.outcome.Outcome, d.outcome.Reasons
	if d.Sidecar.Injected {
		d.Sidecar.Redirect = redirectOf(pod, live)
	}
	if d.Sidecar.Injected && res.Selected {
		current := pod.Annotations[contract.AnnotationPolicy] == res.PolicyJSON
		d.Sidecar.PolicyCurrent = &current
		redirected, _ := contract.ParsePorts(pod.Annotations[contract.AnnotationRedirectPorts])
		for _, p := range res.RedirectPorts {
			if _, configured := res.Policy.Ports[strconv.Itoa(int(p))]; configured && !slices.Contains(redirected, p) {
				d.Sidecar.MissingPorts = append(d.Sidecar.MissingPorts, p)
			}
		}
	}
	if q.Origin != "" {
		if d.CORS, err = answer(res, q); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// answer is the sidecar's answer to the request q on each port of the policy (or q.Port).
func answer(res *inject.Resolution, q corsQuery) ([]corsAnswer, error) {
	ports := []int32{q.Port}
	if q.Port == 0 {
		ports = nil
		for _, p := range res.Ports {
			ports = append(ports, p.Port)
		}
	}
	out := []corsAnswer{}
	for _, port := range ports {
		a := corsAnswer{Port: port, Origin: q.Origin, Method: q.Method}
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

func writeDescription(w io.Writer, d *description, output string) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	case "yaml":
		y, err := sigsyaml.Marshal(d)
		if err != nil {
			return err
		}
		_, err = w.Write(y)
		return err
	}
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("Pod:       %s/%s (from the %s)", d.Namespace, d.Pod, d.Source)
	switch {
	case d.Sidecar.Injected && d.Sidecar.PolicyCurrent != nil && *d.Sidecar.PolicyCurrent && len(d.Sidecar.MissingPorts) == 0:
		p("Sidecar:   injected; its policy is current")
	case d.Sidecar.Injected && d.Sidecar.PolicyCurrent != nil && !*d.Sidecar.PolicyCurrent:
		p("Sidecar:   injected; its policy is stale (the reconciler patches it)")
	case d.Sidecar.Injected && len(d.Sidecar.MissingPorts) > 0:
		p("Sidecar:   injected; port %s is not redirected (the workload is rolled)", contract.FormatPorts(d.Sidecar.MissingPorts))
	case d.Sidecar.Injected:
		p("Sidecar:   injected, but no PluginChain selects the pod any more")
	case d.Sidecar.Outcome == inject.Injected:
		p("Sidecar:   not injected; the webhook injects it when such a pod is created: %s", d.Sidecar.Reasons[0])
	default:
		p("Sidecar:   not injected: %s", describeOutcome(d.Sidecar))
	}
	if d.Sidecar.Redirect != nil {
		p("Redirect:  %s", d.Sidecar.Redirect.line())
	}
	p("PluginChains:")
	if len(d.Chains) == 0 {
		p("  none mounts a CORS plugin in %s where they can reach this pod", v1alpha1.ChainInboundHTTP)
	}
	for _, c := range d.Chains {
		if c.Why == "" {
			p("  %s: selects the pod (%s)", c.Name, strings.Join(c.Plugins, ", "))
		} else {
			p("  %s: no effect: %s", c.Name, c.Why)
		}
	}
	p("Ports:")
	if len(d.Ports) == 0 {
		p("  no port has a policy (pass-through)")
	}
	for _, pp := range d.Ports {
		p("  %d: PluginConfig %s (through Service %s)", pp.Port, pp.Applied.Key(), pp.Applied.Service)
		for _, o := range pp.Overridden {
			p("        overridden: %s (through Service %s)", o.Key(), o.Service)
		}
	}
	if len(d.RedirectPorts) > 0 {
		p("Redirected: %s", contract.FormatPorts(d.RedirectPorts))
	}
	if len(d.Configs) > 0 {
		p("PluginConfigs:")
	}
	for _, c := range d.Configs {
		if c.Why == "" {
			p("  %s: applies on port %s", c.Name, contract.FormatPorts(c.Applied))
		} else {
			p("  %s: not applied: %s", c.Name, c.Why)
		}
	}
	if d.query.Origin != "" {
		p("CORS for %s from origin %s:", d.query.Method, d.query.Origin)
		if len(d.CORS) == 0 {
			p("  no port has a policy: every request passes through unchanged")
		}
		for _, a := range d.CORS {
			line := fmt.Sprintf("  port %d: %s", a.Port, a.Action)
			if a.Why != "" {
				line += " (" + a.Why + ")"
			}
			p("%s", line)
			for _, h := range a.Headers {
				p("    %s: %s", h.Name, h.Value)
			}
		}
	}
	for _, x := range d.Problems {
		p("Problem: %s", x)
	}
	for _, x := range d.Notes {
		p("Note: %s", x)
	}
	return nil
}

func describeOutcome(s sidecarState) string {
	if len(s.Reasons) == 0 {
		return string(s.Outcome)
	}
	return string(s.Outcome) + " (" + s.Reasons[0] + ")"
}

// readOffline finds the pod among the documents: a Pod of that name, or the pod template of a
// workload of that name, in namespace.
func readOffline(files []string, stdin io.Reader, namespace, name string) (*corev1.Pod, clusterstate.Reader, error) {
	docs, err := readDocuments(files, stdin)
	if err != nil {
		return nil, nil, err
	}
	snap, objs, err := snapshotOf(docs, namespace)
	if err != nil {
		return nil, nil, err
	}
	for _, obj := range objs {
		if w, ok := workloadOf(obj); ok && w.name == name && w.namespace == namespace {
			pod := w.pod()
			pod.Name = name
			return pod, snap, nil
		}
	}
	return nil, nil, fmt.Errorf("no Pod or workload %s/%s in the input", namespace, name)
}

// readLive reads the pod and what its description depends on from the cluster, into a
// snapshot: the same Reader the offline mode uses.
func readLive(ctx context.Context, namespace, name string) (*corev1.Pod, clusterstate.Reader, error) {
	cfg, err := config.GetConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, nil, err
	}
	pod := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod); err != nil {
		return nil, nil, err
	}
	snap := clusterstate.NewSnapshot()
	var (
		namespaces corev1.NamespaceList
		services   corev1.ServiceList
		plugins    v1alpha1.PluginList
		chainList  v1alpha1.PluginChainList
		configs    v1alpha1.PluginConfigList
	)
	for _, l := range []struct {
		list client.ObjectList
		opts []client.ListOption
	}{
		{&namespaces, nil}, {&services, []client.ListOption{client.InNamespace(namespace)}}, {&plugins, nil},
		{&chainList, nil}, {&configs, []client.ListOption{client.InNamespace(namespace)}},
	} {
		if err := c.List(ctx, l.list, l.opts...); err != nil {
			return nil, nil, err
		}
	}
	for i := range namespaces.Items {
		snap.Add(&namespaces.Items[i])
	}
	for i := range services.Items {
		snap.Add(&services.Items[i])
	}
	for i := range plugins.Items {
		snap.Add(&plugins.Items[i])
	}
	for i := range chainList.Items {
		snap.Add(&chainList.Items[i])
	}
	for i := range configs.Items {
		snap.Add(&configs.Items[i])
	}
	return pod, snap, nil
}
