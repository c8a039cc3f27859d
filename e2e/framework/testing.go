// Package framework holds the e2e tests' helpers that need *testing.T: starting a local cluster
// for one test, kubectl that fails the test, building binaries once, polling. The cluster itself
// lives in internal/localcluster, which the demo uses too and which does not link testing.
package framework

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// Cluster is a local control plane with kubectl helpers bound to a test.
type Cluster struct {
	*localcluster.Cluster
}

// Start starts a cluster for a test and stops it when the test ends. It fails the test (never
// skips it) when the control plane cannot run, so CI cannot pass without really running it.
// Set E2E_VERBOSE=1 to see the control plane's logs.
func Start(t testing.TB, opts localcluster.Options) *Cluster {
	t.Helper()
	if opts.Output == nil && os.Getenv("E2E_VERBOSE") != "" {
		opts.Output = os.Stderr
	}
	started := time.Now()
	lc, err := localcluster.StartCluster(opts)
	if err != nil {
		t.Fatalf("local control plane: %v", err)
	}
	c := &Cluster{lc}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Logf("stopping the control plane: %v", err)
		}
	})
	t.Logf("control plane up in %s (controller-manager: %v)", time.Since(started).Round(time.Millisecond), opts.ControllerManager)
	return c
}

// Kubectl runs bin/kubectl for a test; see RunKubectl.
func (c *Cluster) Kubectl(t testing.TB, args ...string) localcluster.Result {
	t.Helper()
	return c.KubectlStdin(t, "", args...)
}

// KubectlStdin runs bin/kubectl with stdin for a test, failing it only when kubectl cannot run.
func (c *Cluster) KubectlStdin(t testing.TB, stdin string, args ...string) localcluster.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.RunKubectl(ctx, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, res.Output())
	}
	return res
}

// MustKubectl runs bin/kubectl and fails the test unless it exits 0.
func (c *Cluster) MustKubectl(t testing.TB, args ...string) localcluster.Result {
	t.Helper()
	res := c.Kubectl(t, args...)
	if res.ExitCode != 0 {
		t.Fatalf("kubectl %s: exit %d\n%s", strings.Join(args, " "), res.ExitCode, res.Output())
	}
	return res
}

var (
	buildMu    sync.Mutex
	built      = map[string]string{}
	buildDir   string
	buildDirMu sync.Once
)

// BuildBinary builds a main package of this module (e.g. "./cmd/cors-webhook") once per test
// process and returns the binary's path.
func BuildBinary(t testing.TB, pkg string) string {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if path, ok := built[pkg]; ok {
		return path
	}
	root, err := localcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	buildDirMu.Do(func() {
		// Kept for the whole test process: other tests reuse the binaries.
		buildDir, err = os.MkdirTemp("", "cors-e2e-bin-")
	})
	if err != nil || buildDir == "" {
		t.Fatalf("temp dir for binaries: %v", err)
	}
	out := filepath.Join(buildDir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	built[pkg] = out
	return out
}

// RemoveBuiltBinaries deletes what BuildBinary built; call it once all tests of the process
// ran (TestMain).
func RemoveBuiltBinaries() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	built = map[string]string{}
}

// Eventually polls cond every interval until it returns true or the timeout passes, then fails
// the test with the last message cond gave.
func Eventually(t testing.TB, timeout, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not true after %s: %s", timeout, msg)
		}
		time.Sleep(interval)
	}
}
