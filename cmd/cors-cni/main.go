// Command cors-cni is the chained CNI plugin of the `cni` redirect mode (package cni) and its
// node installer (package cni/install): the runtime runs it with CNI_COMMAND set, after the
// node's network plugins, for every pod sandbox; the chart's DaemonSet runs `install`, and
// `ready` as its readiness probe.
//
//	cors-cni                                    (a CNI plugin: CNI_COMMAND, stdin as the spec says)
//	cors-cni install --bin-dir DIR --conf-dir DIR [--resync 5s]
//	cors-cni ready   --bin-dir DIR --conf-dir DIR
//	cors-cni version
//
// `install` copies itself into the bin dir, chains itself into the primary conflist, keeps it
// there while it runs, and takes both away on SIGTERM or SIGINT. It depends on neither
// client-go nor controller-runtime and builds static (CGO_ENABLED=0).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/spf13/pflag"

	"github.com/cors-webhook/cors-webhook/cni"
	"github.com/cors-webhook/cors-webhook/cni/install"
)

// version is set with -ldflags "-X main.version=..." (the image build sets it).
var version = "dev"

// Exit codes: 0 done, 1 failed, 2 bad usage.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if os.Getenv("CNI_COMMAND") != "" {
		if err := skel.PluginMainFuncsWithError(cni.Funcs(stdout), cni.SupportedVersions, "cors-cni "+version); err != nil {
			_ = err.Print()
			return exitFail
		}
		return exitOK
	}
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: cors-cni install|ready|version (as a CNI plugin, the runtime sets CNI_COMMAND)")
		return exitUsage
	}
	switch args[0] {
	case "version", "--version":
		fmt.Fprintln(stdout, version)
		return exitOK
	case "install", "ready":
	default:
		fmt.Fprintf(stderr, "cors-cni: unknown command %q\n", args[0])
		return exitUsage
	}
	fs := pflag.NewFlagSet("cors-cni "+args[0], pflag.ContinueOnError)
	fs.SetOutput(stderr)
	in := install.Installer{Log: stdout}
	fs.StringVar(&in.BinDir, "bin-dir", "/host/opt/cni/bin", "the runtime's CNI bin dir, as mounted in this container")
	fs.StringVar(&in.ConfDir, "conf-dir", "/host/etc/cni/net.d", "the runtime's CNI conf dir, as mounted in this container")
	fs.DurationVar(&in.Resync, "resync", install.DefaultResync, "check the conflist at least this often besides its file events")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if args[0] == "ready" {
		if err := in.Ready(); err != nil {
			fmt.Fprintln(stderr, "not ready:", err)
			return exitFail
		}
		return exitOK
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(stderr, "cors-cni:", err)
		return exitFail
	}
	in.Source = self
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := in.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "cors-cni install:", err)
		return exitFail
	}
	return exitOK
}
