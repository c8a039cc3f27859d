package main

import (
	"bytes"
	"strings"
	"testing"
)

// runCommand runs `cors-webhook ARGS` with stdin and returns its output and exit code, as run
// does: the message of a failing command goes to stderr once.
func runCommand(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCommand()
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	code = exitOK
	if err := root.Execute(); err != nil {
		code = exitUsage
		ee, ok := err.(*exitError)
		if ok {
			code = ee.code
		}
		if !ok || ee.err != nil {
			errOut.WriteString("Error: " + err.Error() + "\n")
		}
	}
	return out.String(), errOut.String(), code
}
