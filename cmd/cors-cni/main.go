// Command cors-cni is the chained CNI plugin of the `cni` redirect mode (package cni): the
// runtime runs it with CNI_COMMAND set, after the node's network plugins, for every pod sandbox.
//
//	cors-cni              (as a CNI plugin: CNI_COMMAND, stdin as the CNI spec says)
//	cors-cni --version
//
// It depends on neither client-go nor controller-runtime and builds static (CGO_ENABLED=0).
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/containernetworking/cni/pkg/skel"

	"github.com/cors-webhook/cors-webhook/cni"
)

// version is set with -ldflags "-X main.version=..." (the image build sets it).
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if os.Getenv("CNI_COMMAND") != "" || len(args) == 0 {
		if err := skel.PluginMainFuncsWithError(cni.Funcs(stdout), cni.SupportedVersions, "cors-cni "+version); err != nil {
			_ = err.Print()
			return 1
		}
		return 0
	}
	switch args[0] {
	case "--version", "version":
		fmt.Fprintln(stdout, version)
		return 0
	}
	fmt.Fprintf(stderr, "cors-cni: unknown command %q (as a CNI plugin, the runtime sets CNI_COMMAND)\n", args[0])
	return 2
}
