package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
)

// serveProcess is a running `cors-webhook serve`.
type serveProcess struct {
	metricsAddr, probeAddr string
	log                    *syncBuffer
}

// startServe starts `cors-webhook serve` for the cluster's webhook configurations and waits
// until it is ready (its cache synced, its webhook server listening). It is stopped with
// SIGTERM when the test ends.
func startServe(t *testing.T, c *framework.Cluster, bin string, args ...string) *serveProcess {
	t.Helper()
	srv := &serveProcess{metricsAddr: localAddr(t), probeAddr: localAddr(t), log: &syncBuffer{}}
	cmd := exec.Command(bin, append([]string{"serve",
		"--kubeconfig", c.Kubeconfig,
		"--host", c.WebhookHost,
		"--port", fmt.Sprint(c.WebhookPort),
		"--cert-dir", c.WebhookCertDir,
		"--metrics-bind-address", srv.metricsAddr,
		"--health-probe-bind-address", srv.probeAddr,
	}, args...)...)
	cmd.Stdout, cmd.Stderr = srv.log, srv.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting cors-webhook serve: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("cors-webhook serve log:\n%s", srv.log.String())
		}
	})
	framework.Eventually(t, 60*time.Second, 100*time.Millisecond, func() (bool, string) {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("cors-webhook serve exited: %v\n%s", err, srv.log.String())
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
