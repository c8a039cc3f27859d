package main

import (
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// kubectlPluginName is the file name under which this binary is `kubectl cors`: kubectl runs
// kubectl-cors from $PATH for `kubectl cors ...` (krew installs it there, see krew/cors.yaml).
const kubectlPluginName = "kubectl-cors"

// isKubectlPlugin reports whether the binary was started as the kubectl plugin (kubectl execs it
// by its file name; a .exe suffix on Windows).
func isKubectlPlugin(argv0 string) bool {
	return strings.TrimSuffix(filepath.Base(argv0), ".exe") == kubectlPluginName
}

// newKubectlPluginCommand is `kubectl cors`: the same commands as cors-webhook's, for users
// rather than for the cluster: describe, validate, inject, convert and version. The servers
// (serve, controller) and the chart's selftest are left out.
func newKubectlPluginCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "cors",
		Annotations:   map[string]string{cobra.CommandDisplayNameAnnotation: "kubectl cors"},
		Short:         "Explain, validate, preview and import CORS for FSM's plugin.flomesh.io resources",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newDescribeCommand(), newValidateCommand(), newInjectCommand(), newConvertCommand(), newVersionCommand())
	return root
}
