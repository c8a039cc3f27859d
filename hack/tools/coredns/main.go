// Command coredns is CoreDNS with only the plugins the test node's cluster DNS needs: it
// answers for Services and pods from the API server and nothing else (no forwarding, no cloud
// plugins), so it builds quickly and needs no network beyond the cluster.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/ready"
)

func main() {
	// Upstream's order of these plugins (core/dnsserver/zdirectives.go): a plugin sees the
	// effects of those after it.
	dnsserver.Directives = []string{"ready", "health", "errors", "cache", "kubernetes", "loop"}
	coremain.Run()
}
