package e2e

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// Test-side wrappers over localcluster.NetNS: they fail the test instead of returning errors and
// delete what they create when the test ends. Everything happens inside namespaces the test
// creates: interfaces, addresses and nftables rules never touch the host's.

// netns is a network namespace owned by one test.
type netns struct {
	*localcluster.NetNS
	name string
}

// requireNetNS fails the test (it never skips) when it cannot create network namespaces.
func requireNetNS(t *testing.T, tools ...string) {
	t.Helper()
	if err := localcluster.CheckNetNS(tools...); err != nil {
		t.Fatalf("this test needs network namespaces (CI runs it as root after .ci/run installs the tools): %v", err)
	}
}

var sweepOnce sync.Once

// newNetNS creates a namespace unique to this test run, with its loopback up, and deletes it
// when the test ends. The first call also deletes namespaces left by killed test processes.
func newNetNS(t *testing.T, role string) *netns {
	t.Helper()
	sweepOnce.Do(func() { _, _ = localcluster.CleanStaleNetNS(localcluster.NetNSPrefix + "e2e-") })
	ns, err := localcluster.NewNetNS("e2e-" + role)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ns.Delete() })
	return &netns{NetNS: ns, name: ns.Name}
}

// linkNetNS joins two namespaces with a veth pair with the given addresses (CIDR) on each end.
func linkNetNS(t *testing.T, a *netns, addrA string, b *netns, addrB string) {
	t.Helper()
	if err := localcluster.LinkNetNS(a.NetNS, addrA, b.NetNS, addrB); err != nil {
		t.Fatal(err)
	}
}

// command returns a command that runs inside the namespace.
func (ns *netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return ns.Command(ctx, name, args...)
}

// run runs a command inside the namespace and returns its stdout, failing the test on error.
func (ns *netns) run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := ns.Run(ctx, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return res.Stdout
}

// listen opens a TCP listener inside the namespace, closed when the test ends.
func (ns *netns) listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := ns.Listen("tcp4", addr)
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns.name, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// dialContext dials from inside the namespace, for http.Transport.DialContext.
func (ns *netns) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return ns.DialContext(ctx, network, addr)
}

// httpClient is an HTTP/1.1 keep-alive client with conns connections that start inside the
// namespace.
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
