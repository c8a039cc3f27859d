// Command cors-init is the injected init container: it installs the nftables rules that send
// inbound TCP for the application's HTTP ports to the cors-sidecar proxy, then exits.
//
//	cors-init --ports 8080[,...] [--proxy-port 15003] [--dry-run] [--cleanup] [--version]
//
// It runs as a non-root user. The only privilege it needs, CAP_NET_ADMIN in the pod's network
// namespace, comes from the file capability cap_net_admin+ep that the cors-sidecar image sets on
// this binary alone (the pod spec adds NET_ADMIN to the container's bounding set, and a non-root
// process gains a capability across execve only from its file). It is a binary of its own, without
// the proxy, so that the one file carrying a capability does only this.
//
// It depends on neither client-go nor controller-runtime and builds static (CGO_ENABLED=0).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cors-webhook/cors-webhook/sidecar/redirect"
)

// version is set with -ldflags "-X main.version=..." (the image build sets it).
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("cors-init", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: cors-init --ports PORT[,PORT...] [--proxy-port 15003] [--dry-run] [--cleanup] [--version]")
		fs.PrintDefaults()
	}
	var fl redirect.Flags
	fl.Register(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return redirect.ExitOK
		}
		fmt.Fprintln(stderr, "cors-init:", err)
		return redirect.ExitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintln(stderr, "cors-init: unexpected arguments:", strings.Join(fs.Args(), " "))
		return redirect.ExitUsage
	}
	if *showVersion {
		fmt.Fprintln(stdout, version)
		return redirect.ExitOK
	}
	return fl.Run("cors-init", stdout, stderr)
}
