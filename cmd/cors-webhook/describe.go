package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/explain"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/manifests"
)

func newDescribeCommand() *cobra.Command {
	var (
		files       []string
		namespace   string
		output      string
		query       explain.Query
		flags       inject.Flags
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
			injector, err := injectorOf(&flags, corsPlugins)
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
			d, err := explain.Pod(pod, ns, r, injector, query, live)
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
	flags.Register(f)
	addCORSPluginsFlag(f, &corsPlugins)
	addKubeFlags(f, "describe", nil)
	return cmd
}

// writeDescription renders d as text, YAML or JSON.
func writeDescription(w io.Writer, d *explain.Description, output string) error {
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
	writeText(w, d)
	return nil
}

// writeText is the text form of d.
func writeText(w io.Writer, d *explain.Description) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	p("Pod:       %s/%s (from the %s)", d.Namespace, d.Pod, d.Source)
	p("Sidecar:   %s", sidecarLine(d.Sidecar))
	if d.Sidecar.Redirect != nil {
		p("Redirect:  %s", redirectLine(d.Sidecar.Redirect))
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
	if d.Query.Origin != "" {
		writeAnswers(p, d)
	}
	for _, x := range d.Problems {
		p("Problem: %s", x)
	}
	for _, x := range d.Notes {
		p("Note: %s", x)
	}
}

// writeAnswers is the text form of d's CORS answers.
func writeAnswers(p func(string, ...any), d *explain.Description) {
	p("CORS for %s from origin %s:", d.Query.Method, d.Query.Origin)
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

// sidecarLine says what the sidecar of the pod is doing.
func sidecarLine(s explain.Sidecar) string {
	switch {
	case s.Injected && s.PolicyCurrent != nil && *s.PolicyCurrent && len(s.MissingPorts) == 0:
		return "injected; its policy is current"
	case s.Injected && s.PolicyCurrent != nil && !*s.PolicyCurrent:
		return "injected; its policy is stale (the reconciler patches it)"
	case s.Injected && len(s.MissingPorts) > 0:
		return fmt.Sprintf("injected; port %s is not redirected (the workload is rolled)", contract.FormatPorts(s.MissingPorts))
	case s.Injected:
		return "injected, but no PluginChain selects the pod any more"
	case s.Outcome == inject.Injected:
		return "not injected; the webhook injects it when such a pod is created: " + s.Reasons[0]
	}
	return "not injected: " + describeOutcome(s)
}

func describeOutcome(s explain.Sidecar) string {
	if len(s.Reasons) == 0 {
		return string(s.Outcome)
	}
	return string(s.Outcome) + " (" + s.Reasons[0] + ")"
}

// readOffline finds the pod among the documents: a Pod of that name, or the pod template of a
// workload of that name, in namespace.
func readOffline(files []string, stdin io.Reader, namespace, name string) (*corev1.Pod, clusterstate.Reader, error) {
	docs, err := manifests.Read(files, stdin)
	if err != nil {
		return nil, nil, err
	}
	return manifests.PodAndCluster(docs, namespace, name)
}

// readLive reads the pod and what its description depends on from the cluster.
func readLive(ctx context.Context, namespace, name string) (*corev1.Pod, clusterstate.Reader, error) {
	cfg, err := config.GetConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("load kubeconfig: %w", err)
	}
	c, err := client.New(cfg, client.Options{Scheme: clusterstate.Scheme})
	if err != nil {
		return nil, nil, err
	}
	return clusterstate.ReadPod(ctx, c, namespace, name)
}
