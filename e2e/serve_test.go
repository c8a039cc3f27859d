package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
)

// serveProcess is a running `cors-webhook serve` or `cors-webhook controller`.
type serveProcess struct {
	metricsAddr, probeAddr string
	log                    *syncBuffer
	// stop sends SIGTERM and waits (killing it after 20s); it runs again, harmlessly, when
	// the test ends.
	stop func()
}

// startServe starts `cors-webhook serve` for the cluster's webhook configurations and waits
// until it is ready (its cache synced, its webhook server listening). It is stopped with
// SIGTERM when the test ends.
func startServe(t *testing.T, c *framework.Cluster, bin string, args ...string) *serveProcess {
	t.Helper()
	return startProcess(t, bin, "serve", append([]string{
		"--kubeconfig", c.Kubeconfig,
		"--host", c.WebhookHost,
		"--port", fmt.Sprint(c.WebhookPort),
		"--cert-dir", c.WebhookCertDir,
		"--shutdown-delay", "0s",
	}, args...)...)
}

// startController starts `cors-webhook controller` (the Day-2 reconcilers; one process, so no
// leader election) with the cluster's admin kubeconfig, and waits until its caches synced.
// args must carry the injector flags serve has, so that both compute the same policies.
func startController(t *testing.T, c *framework.Cluster, bin string, args ...string) *serveProcess {
	t.Helper()
	return startProcess(t, bin, "controller", append([]string{"--kubeconfig", c.Kubeconfig}, args...)...)
}

func startProcess(t *testing.T, bin, command string, args ...string) *serveProcess {
	t.Helper()
	srv := &serveProcess{metricsAddr: localAddr(t), probeAddr: localAddr(t), log: &syncBuffer{}}
	cmd := exec.Command(bin, append([]string{command,
		"--metrics-bind-address", srv.metricsAddr,
		"--health-probe-bind-address", srv.probeAddr,
	}, args...)...)
	cmd.Stdout, cmd.Stderr = srv.log, srv.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting cors-webhook %s: %v", command, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var stopOnce sync.Once
	srv.stop = func() {
		stopOnce.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				done <- err
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				done <- <-done
			}
		})
	}
	t.Cleanup(func() {
		srv.stop()
		if t.Failed() {
			t.Logf("cors-webhook %s log:\n%s", command, srv.log.String())
		}
	})
	framework.Eventually(t, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("cors-webhook %s exited: %v\n%s", command, err, srv.log.String())
		default:
		}
		resp, err := http.Get("http://" + srv.probeAddr + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, "readyz: " + resp.Status
	})
	return srv
}

func (s *serveProcess) get(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + s.metricsAddr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// localAddr is a free loopback address for a server the test starts.
func localAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
