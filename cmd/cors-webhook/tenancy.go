package main

import (
	"github.com/spf13/pflag"

	"github.com/cors-webhook/cors-webhook/chains"
)

// tenancyFlags choose which namespaces' PluginChains may reach other namespaces. serve,
// inject, validate and describe share them, so that the offline commands apply the rule the
// webhook applies with the same flags.
type tenancyFlags struct {
	clusterChainNamespaces []string
	excludedNamespaces     []string
}

// addTenancyFlags registers the tenancy flags on f.
func addTenancyFlags(f *pflag.FlagSet, fl *tenancyFlags) {
	f.StringSliceVar(&fl.clusterChainNamespaces, "cluster-chain-namespaces", nil,
		"namespaces whose PluginChains may select pods of other namespaces (the chart passes the release namespace); a PluginChain anywhere else acts in its own namespace only, whatever its namespaceSelector says")
	f.StringSliceVar(&fl.excludedNamespaces, "excluded-namespaces", []string{"kube-system"},
		"namespaces the webhooks are not called for (the chart passes webhook.excludeNamespaces and the release namespace): their PluginChains are never validated, so they are ignored unless also in --cluster-chain-namespaces")
}

func (fl *tenancyFlags) tenancy() chains.Tenancy {
	return chains.Tenancy{ClusterNamespaces: fl.clusterChainNamespaces, SkippedNamespaces: fl.excludedNamespaces}
}
