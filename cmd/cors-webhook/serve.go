package main

import (
	goflag "flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/webhook"
)

func newServeCommand() *cobra.Command {
	var (
		opts        webhook.Options
		corsPlugins []string
		zapOpts     = zap.Options{}
		inj         injectorFlags
		rollout     bool
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook server",
		Long: `Run the admission webhook server: the validating webhooks of Plugin, PluginChain and
PluginConfig (CREATE and UPDATE) and the mutating webhook of Pod CREATE, which injects the CORS
sidecar into the pods a PluginChain selects (see --sidecar-image and the other injector
flags), on the webhook port; /healthz and /readyz on the probe address; and Prometheus metrics
on the metrics address. Existing objects are read from an informer cache;
the server reports ready once it has synced.

The server also keeps running pods in step with PluginChains and PluginConfigs (Day 2; with
--leader-elect, in the elected leader only): it patches the policy annotation of injected pods, rolls the Deployments,
StatefulSets and DaemonSets whose pods a chain newly selects (--rollout), and writes the status
of PluginChains and PluginConfigs.

The cluster is reached with --kubeconfig, else $KUBECONFIG, else the in-cluster configuration,
else ~/.kube/config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkCORSPlugins(corsPlugins); err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			opts.Validation.Plugins = chains.NewPlugins(corsPlugins...)
			injection, err := inj.settings(corsPlugins)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			opts.Injection = injection
			opts.Reconcile.DisableRollout = !rollout
			ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
			cfg, err := config.GetConfig()
			if err != nil {
				return &exitError{code: exitUsage, err: fmt.Errorf("load kubeconfig: %w", err)}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := webhook.Run(ctx, cfg, opts); err != nil {
				return &exitError{code: exitInvalid, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Host, "host", "", "address the webhook server listens on (default: all)")
	f.IntVar(&opts.Port, "port", 9443, "port of the webhook server")
	f.StringVar(&opts.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding the serving certificate as tls.crt and tls.key (reloaded on change)")
	f.BoolVar(&opts.EnableHTTP2, "enable-http2", false, "also serve HTTP/2 on the webhook port")
	f.StringVar(&opts.MetricsAddr, "metrics-bind-address", ":8080", `address of the Prometheus /metrics endpoint ("0" disables it)`)
	f.StringVar(&opts.ProbeAddr, "health-probe-bind-address", ":8081", `address of /healthz and /readyz ("0" disables them)`)
	f.BoolVar(&opts.LeaderElection, "leader-elect", false, "elect a leader among replicas for single-writer work (admission is served by every replica)")
	f.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the pod's namespace)")
	f.BoolVar(&opts.Validation.Strict, "strict", false, "reject what would otherwise be security warnings (risky origin matchers, the null origin, credentials for any origin)")
	f.BoolVar(&rollout, "rollout", true, "roll Deployments, StatefulSets and DaemonSets whose running pods a PluginChain newly selects, or whose policy needs a port their redirect lacks (false: only report it in Events; a workload annotation cors-webhook.io/rollout=false does the same for one workload)")
	addCORSPluginsFlag(f, &corsPlugins)
	addInjectorFlags(f, &inj)
	opts.Certs.AddFlags(f)

	// --kubeconfig is controller-runtime's own flag, so its config loading rules apply as is.
	gofs := goflag.NewFlagSet("serve", goflag.ContinueOnError)
	config.RegisterFlags(gofs)
	zapOpts.BindFlags(gofs)
	f.AddGoFlagSet(gofs)
	return cmd
}
