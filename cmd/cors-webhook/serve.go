package main

import (
	"context"
	goflag "flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/reconcile"
	"github.com/cors-webhook/cors-webhook/server"
	"github.com/cors-webhook/cors-webhook/webhook"
)

// defaultShutdownDelay is longer than the time endpoints and API servers take to stop routing
// to a terminating pod in a healthy cluster (a few seconds).
const defaultShutdownDelay = 10 * time.Second

func newServeCommand() *cobra.Command {
	var (
		opts          server.ServeOptions
		corsPlugins   []string
		memoBytesFlag string
		zapOpts       = zap.Options{}
		inj           inject.Flags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the admission webhook server",
		Long: `Run the admission webhook server: the validating webhooks of Plugin, PluginChain and
PluginConfig (CREATE and UPDATE) and the mutating webhook of Pod CREATE, which injects the CORS
sidecar into the pods a PluginChain selects (see --sidecar-image and the other injector
flags), on the webhook port; /healthz and /readyz on the probe address; and Prometheus metrics
on the metrics address. Existing objects are read from an informer cache of Plugins,
PluginChains, PluginConfigs, Services and Namespaces.

Every replica serves on its own: there is no leader election, and nothing here writes to the
cluster but Events. /readyz passes once the cache has synced and the caBundle of
--validating-webhook-configuration and --mutating-webhook-configuration (when named) trusts the
serving certificate. On SIGTERM the server keeps serving for --shutdown-delay with /readyz
failing, then stops.

Running pods are kept in step with PluginChains by ` + "`cors-webhook controller`" + `.

The cluster is reached with --kubeconfig, else $KUBECONFIG, else the in-cluster configuration,
else ~/.kube/config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			injection, err := injectionSettings(&inj, corsPlugins)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			opts.Injection = injection
			opts.Validation.Plugins = chains.NewPlugins(corsPlugins...)
			if opts.ShutdownDelay < 0 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--shutdown-delay must not be negative")}
			}
			memoBytes, err := resource.ParseQuantity(memoBytesFlag)
			if err != nil || memoBytes.Sign() <= 0 || memoBytes.Value() > math.MaxInt32 {
				return &exitError{code: exitUsage, err: fmt.Errorf("--memo-bytes=%s: want a positive size below 2Gi, such as 4Mi", memoBytesFlag)}
			}
			opts.MemoBytes = int(memoBytes.Value())
			switch {
			case opts.MemoAnswers < 0:
				return &exitError{code: exitUsage, err: fmt.Errorf("--memo-answers must not be negative")}
			case opts.MemoAnswers == 0:
				opts.MemoAnswers = -1 // none
			}
			return runProcess(cmd, &zapOpts, func(ctx context.Context, cfg *rest.Config) error { return server.RunServe(ctx, cfg, opts) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Host, "host", "", "address the webhook server listens on (default: all)")
	f.IntVar(&opts.Port, "port", 9443, "port of the webhook server")
	f.StringVar(&opts.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory holding the serving certificate as tls.crt and tls.key (reloaded on change)")
	f.BoolVar(&opts.EnableHTTP2, "enable-http2", false, "also serve HTTP/2 on the webhook port")
	f.DurationVar(&opts.ShutdownDelay, "shutdown-delay", defaultShutdownDelay, "after SIGTERM, keep serving this long with /readyz failing, so that endpoints stop routing here before the listener closes")
	f.BoolVar(&opts.Validation.Strict, "strict", false, "reject what would otherwise be security warnings (risky origin matchers, the null origin, credentials for any origin)")
	f.IntVar(&opts.MemoAnswers, "memo-answers", webhook.DefaultMemoAnswers, "how many injected pods' answers to keep, so that the other replicas of a workload are answered from memory while nothing their injection read has changed (0: none)")
	f.StringVar(&memoBytesFlag, "memo-bytes", resource.NewQuantity(webhook.DefaultMemoBytes, resource.BinarySI).String(), "the most memory those answers may keep (their patches and the objects they read); pods over 256Ki and dry runs are never kept")
	addProcessFlags(f, &opts.MetricsAddr, &opts.ProbeAddr)
	addCORSPluginsFlag(f, &corsPlugins)
	inj.Register(f)
	opts.Certs.AddFlags(f)
	addKubeFlags(f, "serve", &zapOpts)
	return cmd
}

func newControllerCommand() *cobra.Command {
	var (
		opts    server.ControllerOptions
		zapOpts = zap.Options{}
		inj     inject.Flags
		rollout bool
	)
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller: Day-2 reconcilers and the built-in CA",
		Long: `Run the controller, which keeps running pods in step with PluginChains and PluginConfigs
(Day 2): it patches the policy annotation of injected pods, rolls the Deployments, StatefulSets
and DaemonSets whose pods a chain newly selects (--rollout), and writes the status of
PluginChains and PluginConfigs. In self-signed certificate mode it also creates and renews the
webhook's CA and serving certificate and writes the caBundle of the webhook configurations.

With --leader-elect, only the elected replica does this work; admission (` + "`cors-webhook serve`" + `)
never depends on it. The injector flags must equal serve's, so both compute the same policies.

The cluster is reached with --kubeconfig, else $KUBECONFIG, else the in-cluster configuration,
else ~/.kube/config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			injection, err := injectionSettings(&inj, opts.CORSPlugins)
			if err != nil {
				return &exitError{code: exitUsage, err: err}
			}
			opts.Injection = injection
			opts.Reconcile.DisableRollout = !rollout
			return runProcess(cmd, &zapOpts, func(ctx context.Context, cfg *rest.Config) error { return server.RunController(ctx, cfg, opts) })
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.LeaderElection, "leader-elect", false, "elect a leader among replicas; only the leader reconciles and rotates certificates")
	f.StringVar(&opts.LeaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election lease (default: the pod's namespace)")
	f.BoolVar(&opts.Reconcile.RollOutdatedSidecars, "roll-outdated-sidecars", false, "roll Deployments, StatefulSets and DaemonSets whose injected pods carry an older cors-webhook.io/sidecar-version than --sidecar-image's, so that a sidecar upgrade reaches running pods")
	f.DurationVar(&opts.Reconcile.RolloutDeadline, "rollout-deadline", reconcile.DefaultRolloutDeadline, "how long a rollout may take to have all replicas updated and available before it counts as failed (a Deployment's ProgressDeadlineExceeded fails it sooner)")
	f.IntVar(&opts.Reconcile.RolloutFailureLimit, "rollout-failure-limit", reconcile.DefaultRolloutFailureLimit, "failed rollouts after which no more rollouts start until the controller restarts")
	f.BoolVar(&opts.Reconcile.PodSecurityDryRun, "pod-security-dry-run", false, "in init redirect mode, ask the API server with a server-side dry-run create of an injected pod whether Pod Security admission admits it before rolling a workload, so that a cluster-wide default level (no namespace label) is respected; needs create on pods (chart: controller.podSecurityDryRun)")
	f.BoolVar(&rollout, "rollout", true, "roll Deployments, StatefulSets and DaemonSets whose running pods a PluginChain newly selects, or whose policy needs a port their redirect lacks (false: only report it in Events; a workload annotation cors-webhook.io/rollout=false does the same for one workload)")
	addProcessFlags(f, &opts.MetricsAddr, &opts.ProbeAddr)
	addCORSPluginsFlag(f, &opts.CORSPlugins)
	inj.Register(f)
	opts.Certs.AddFlags(f)
	addKubeFlags(f, "controller", &zapOpts)
	return cmd
}

func addProcessFlags(f *pflag.FlagSet, metrics, probe *string) {
	f.StringVar(metrics, "metrics-bind-address", ":8080", `address of the Prometheus /metrics endpoint ("0" disables it)`)
	f.StringVar(probe, "health-probe-bind-address", ":8081", `address of /healthz and /readyz ("0" disables them)`)
}

// addKubeFlags adds --kubeconfig (controller-runtime's own flag, so its config loading rules
// apply as is) and, unless zapOpts is nil, the zap logging flags.
func addKubeFlags(f *pflag.FlagSet, name string, zapOpts *zap.Options) {
	gofs := goflag.NewFlagSet(name, goflag.ContinueOnError)
	config.RegisterFlags(gofs)
	if zapOpts != nil {
		zapOpts.BindFlags(gofs)
	}
	f.AddGoFlagSet(gofs)
}

// runProcess sets the logger, loads the kubeconfig and runs until SIGTERM or Ctrl-C; a second
// signal kills the process at once.
func runProcess(cmd *cobra.Command, zapOpts *zap.Options, run func(context.Context, *rest.Config) error) error {
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(zapOpts)))
	cfg, err := config.GetConfig()
	if err != nil {
		return &exitError{code: exitUsage, err: fmt.Errorf("load kubeconfig: %w", err)}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	go func() { <-ctx.Done(); stop() }()
	defer stop()
	if err := run(ctx, cfg); err != nil {
		return &exitError{code: exitInvalid, err: err}
	}
	return nil
}
