// Command cors-webhook is the CORS admission webhook for plugin.flomesh.io resources: `serve` runs
// the admission webhook server, `controller` the leader-elected Day-2 reconcilers and built-in
// CA, `validate` and `inject` run the same checks and mutation offline on files, `describe`
// explains what it does with one pod (live or from files), `convert` imports CORS settings of
// ingress-nginx, Istio and Gateway API, `version` prints the build.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// Exit codes shared by the offline commands, so CI scripts can tell "invalid input" from
// "could not run at all".
const (
	exitOK      = 0
	exitInvalid = 1
	exitUsage   = 2
)

// exitError carries an exit code out of a command without printing a second message.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func main() {
	root := newRootCommand()
	if isKubectlPlugin(os.Args[0]) {
		root = newKubectlPluginCommand()
	}
	os.Exit(run(root, os.Args[1:]))
}

func run(root *cobra.Command, args []string) int {
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(root.ErrOrStderr(), "Error:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(root.ErrOrStderr(), "Error:", err)
	return exitUsage
}

func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "cors-webhook",
		Short:         "Admission webhook that validates FSM CORS plugin resources and injects the CORS sidecar",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(), newControllerCommand(), newValidateCommand(), newInjectCommand(), newDescribeCommand(), newConvertCommand(), newSelftestCommand(), newVersionCommand())
	return root
}
