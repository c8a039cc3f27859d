package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Network namespace helpers for the sidecar e2e test. Everything happens inside namespaces the
// test creates and deletes: interfaces, addresses and nftables rules never touch the host's.

var netnsSeq atomic.Int64

// netns is a named network namespace (ip netns add), deleted when the test ends.
type netns struct {
	name string
	fd   *os.File
}

// requireNetNS fails the test (it never skips) when it cannot create network namespaces.
func requireNetNS(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root: it creates network namespaces, a veth pair and nftables rules (CI runs it as root)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("this test needs %s (.ci/run installs it: apt-get install -y iproute2 curl nftables): %v", tool, err)
		}
	}
}

var sweepOnce sync.Once

// sweepStaleNetNS deletes namespaces left by an earlier test process that was killed before its
// cleanup ran (their names carry the pid of a process that no longer exists).
func sweepStaleNetNS() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		f := strings.Split(name, "-")
		if len(f) != 5 || f[0] != "cors" || f[1] != "e2e" {
			continue
		}
		if pid, err := strconv.Atoi(f[3]); err == nil && pid != os.Getpid() {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
				exec.Command("ip", "netns", "del", name).Run()
			}
		}
	}
}

// newNetNS creates a namespace with a name unique to this test run, its loopback up.
func newNetNS(t *testing.T, role string) *netns {
	t.Helper()
	sweepOnce.Do(sweepStaleNetNS)
	name := fmt.Sprintf("cors-e2e-%s-%d-%d", role, os.Getpid(), netnsSeq.Add(1))
	runCmd(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	fd, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fd.Close() })
	ns := &netns{name: name, fd: fd}
	runCmd(t, "ip", "-n", name, "link", "set", "lo", "up")
	return ns
}

// linkNetNS joins two namespaces with a veth pair, created directly inside them, with the given
// addresses (CIDR) on each end.
func linkNetNS(t *testing.T, a *netns, addrA string, b *netns, addrB string) {
	t.Helper()
	runCmd(t, "ip", "-n", a.name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", b.name)
	for _, end := range []struct {
		ns   *netns
		addr string
	}{{a, addrA}, {b, addrB}} {
		runCmd(t, "ip", "-n", end.ns.name, "addr", "add", end.addr, "dev", "veth0")
		runCmd(t, "ip", "-n", end.ns.name, "link", "set", "veth0", "up")
	}
}

// command returns a command that runs inside the namespace (ip netns exec execs it: the process
// is the command itself, so signals reach it directly).
func (ns *netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name, name}, args...)...)
}

// run runs a command inside the namespace and returns its stdout, failing the test on error.
func (ns *netns) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := ns.command(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("in %s: %s %s: %v\nstdout:\n%s\nstderr:\n%s", ns.name, name, strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// do runs fn on an OS thread switched into the namespace: sockets created by fn belong to the
// namespace for their whole life, so the test process can listen and dial inside it without a
// helper process. The thread is switched back afterwards; if that fails it is discarded.
func (ns *netns) do(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(ns.fd.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", ns.name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the runtime terminates the thread when this goroutine exits.
			errc <- fmt.Errorf("restoring the thread's network namespace: %w", err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// listen opens a TCP listener inside the namespace.
func (ns *netns) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	if err := ns.do(func() (err error) { ln, err = net.Listen("tcp4", addr); return err }); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns.name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialContext dials from inside the namespace, for http.Transport.DialContext.
func (ns *netns) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// httpClient is an HTTP/1.1 keep-alive client whose connections start inside the namespace.
func (ns *netns) httpClient(conns int) *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext:         ns.dialContext,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			DisableCompression:  true,
		},
		Timeout: 20 * time.Second,
	}
}

func runCmd(t *testing.T, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// syncBuffer collects a process's output for the test log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
