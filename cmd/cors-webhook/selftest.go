package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/cors-webhook/cors-webhook/selftest"
)

// newSelftestCommand is what the chart's `helm test` hook runs: it proves, through the API
// server, that the installed release answers admission requests.
func newSelftestCommand() *cobra.Command {
	o := selftest.Options{}
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Prove through the API server that the installed webhooks answer (helm test)",
		Long: `selftest sends admission requests through the API server, as server-side dry runs that
store nothing, in --namespace (which the webhooks must cover):

 1. an invalid PluginConfig: the validating webhook must deny it;
 2. when the CORS Plugin --plugin is declared, a temporary PluginChain selecting only this run's
    pods is created, and a pod it selects is dry-run created until the mutating webhook returns it
    with the cors-sidecar (or refuses to inject it with a warning, e.g. under Pod Security);
    the chain is deleted afterwards. Without the Plugin, injection cannot be shown and the step
    says so.

It uses the in-cluster configuration (or $KUBECONFIG) and needs: create on pluginconfigs and
pods (dry run) and on pluginchains, delete on pluginchains in --namespace, get on plugins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			return runSelftest(ctx, cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().StringVar(&o.Namespace, "namespace", "default", "namespace to send the dry runs to (one the webhooks cover: not the release's)")
	cmd.Flags().StringVar(&o.Plugin, "plugin", "cors-policy", "the CORS plugin name (one of the server's --cors-plugins)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	cmd.Flags().DurationVar(&o.Poll, "poll", time.Second, "interval between dry runs while the webhook's cache catches up with the chain")
	return cmd
}

func runSelftest(ctx context.Context, out io.Writer, o selftest.Options) error {
	cfg, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	return selftest.RunConfig(ctx, cfg, out, o)
}
