package chains

import "github.com/spf13/pflag"

// Register adds the tenancy flags to fs. serve, controller, inject, validate and describe share
// them, so that the offline commands apply the rule the webhook applies with the same flags.
func (t *Tenancy) Register(f *pflag.FlagSet) {
	f.StringSliceVar(&t.ClusterNamespaces, "cluster-chain-namespaces", nil,
		"namespaces whose PluginChains may select pods of other namespaces (the chart passes the release namespace); a PluginChain anywhere else acts in its own namespace only, whatever its namespaceSelector says")
	f.StringSliceVar(&t.SkippedNamespaces, "excluded-namespaces", []string{"kube-system"},
		"namespaces the webhooks are not called for (the chart passes webhook.excludeNamespaces and the release namespace): their PluginChains are never validated, so they are ignored unless also in --cluster-chain-namespaces")
}
