//go:build linux

package framework

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// Node is a control plane with a real node, bound to a test.
type Node struct {
	*localcluster.Node
	// Cluster gives the kubectl helpers.
	Cluster *Cluster
}

// StartNode brings up a control plane with a real node for a test (see localcluster.StartNode)
// and, when the test ends, stops it and fails the test unless the host is as it was before.
// When the test failed, the end of every component's log is printed first. It fails, never
// skips, when the node cannot run.
func StartNode(t testing.TB, opts localcluster.NodeOptions) *Node {
	t.Helper()
	if err := localcluster.RecoverStaleNode(); err != nil {
		t.Fatalf("cleaning up after an earlier, killed node: %v", err)
	}
	before, err := localcluster.HostSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	if opts.LogDir == "" {
		opts.LogDir = t.TempDir()
	}
	// go test has no clean-up on Ctrl-C: the node puts the host back itself.
	opts.StopOnSignal = true
	if opts.Output == nil && os.Getenv("E2E_VERBOSE") != "" {
		opts.Output = os.Stderr
	}
	ln, err := localcluster.StartNode(context.Background(), opts)
	if err != nil {
		t.Fatalf("real node: %v", err)
	}
	n := &Node{Node: ln, Cluster: &Cluster{ln.Cluster}}
	t.Cleanup(func() {
		if t.Failed() {
			logTails(t, opts.LogDir)
		}
		if err := n.Stop(); err != nil {
			t.Errorf("stopping the node: %v", err)
		}
		after, err := localcluster.HostSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		if diffs := before.Diff(after); len(diffs) > 0 {
			t.Errorf("the host is not as the node found it:\n  %s", strings.Join(diffs, "\n  "))
		}
	})
	t.Logf("node up in %s (control plane %s, runtime %s, node Ready %s, DNS %s)", ln.Timings.Total,
		ln.Timings.ControlPlane, ln.Timings.Runtime, ln.Timings.NodeReady, ln.Timings.DNSReady)
	return n
}

func logTails(t testing.TB, dir string) {
	files, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
		if len(lines) > 40 {
			lines = lines[len(lines)-40:]
		}
		t.Logf("--- end of %s:\n%s", filepath.Base(f), strings.Join(lines, "\n"))
	}
}
