//go:build linux

package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Network namespaces stand in for pods: a pod's containers share one network namespace, so
// the sidecar's redirect rules, its proxy and the application run together in one, and a
// client pod in another, joined by a veth pair. Interfaces, addresses and nftables rules exist
// only inside the namespaces created here and vanish with them; the host's network is never
// touched.

// NetNSPrefix starts the name of every namespace NewNetNS creates.
const NetNSPrefix = "cors-"

var netnsSeq atomic.Int64

// NetNS is a named network namespace (as `ip netns add` creates it).
type NetNS struct {
	Name string
	fd   *os.File
}

// CheckNetNS says what is missing to create network namespaces: root, the ip command and the
// given tools (e.g. nft, curl).
func CheckNetNS(tools ...string) error {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "root (network namespaces, veth pairs and nftables rules need it)")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			problems = append(problems, tool)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("missing: %s (Debian: apt-get install -y iproute2 nftables curl)", strings.Join(problems, ", "))
	}
	return nil
}

// NewNetNS creates a namespace named cors-<role>-<pid>-<n>, unique to this process, with its
// loopback up. Delete it with Delete.
func NewNetNS(role string) (*NetNS, error) {
	name := fmt.Sprintf("%s%s-%d-%d", NetNSPrefix, role, os.Getpid(), netnsSeq.Add(1))
	if err := run("ip", "netns", "add", name); err != nil {
		return nil, err
	}
	ns := &NetNS{Name: name}
	fd, err := os.Open("/run/netns/" + name)
	if err != nil {
		_ = ns.Delete()
		return nil, err
	}
	ns.fd = fd
	if err := run("ip", "-n", name, "link", "set", "lo", "up"); err != nil {
		_ = ns.Delete()
		return nil, err
	}
	return ns, nil
}

// Delete removes the namespace, and with it its interfaces and nftables rules. Processes still
// running in it keep it alive until they exit.
func (ns *NetNS) Delete() error {
	if ns.fd != nil {
		ns.fd.Close()
		ns.fd = nil
	}
	return run("ip", "netns", "del", ns.Name)
}

// LinkNetNS joins two namespaces with a veth pair (veth0 in each), created directly inside
// them, with the given addresses in CIDR form on each end.
func LinkNetNS(a *NetNS, addrA string, b *NetNS, addrB string) error {
	if err := run("ip", "-n", a.Name, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", b.Name); err != nil {
		return err
	}
	for _, end := range []struct {
		ns   *NetNS
		addr string
	}{{a, addrA}, {b, addrB}} {
		if err := run("ip", "-n", end.ns.Name, "addr", "add", end.addr, "dev", "veth0"); err != nil {
			return err
		}
		if err := run("ip", "-n", end.ns.Name, "link", "set", "veth0", "up"); err != nil {
			return err
		}
	}
	return nil
}

// Command returns a command that runs inside the namespace. `ip netns exec` execs it, so the
// process is the command itself and signals reach it directly.
func (ns *NetNS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.Name, name}, args...)...)
}

// Run runs a command inside the namespace. A non-zero exit is returned as an error that
// includes the command's output.
func (ns *NetNS) Run(ctx context.Context, name string, args ...string) (Result, error) {
	res, err := runResult(ns.Command(ctx, name, args...))
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("exit status %d", res.ExitCode)
	}
	if err != nil {
		return res, fmt.Errorf("in %s: %s %s: %w\n%s", ns.Name, name, strings.Join(args, " "), err, res.Output())
	}
	return res, nil
}

// Do runs fn on an OS thread switched into the namespace: sockets created by fn belong to the
// namespace for their whole life, so this process can listen and dial inside it without a
// helper process. The thread is switched back afterwards; if that fails it is discarded.
func (ns *NetNS) Do(fn func() error) error {
	if ns.fd == nil {
		return fmt.Errorf("network namespace %s is deleted", ns.Name)
	}
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
			errc <- fmt.Errorf("setns %s: %w", ns.Name, err)
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

// Listen opens a listener inside the namespace.
func (ns *NetNS) Listen(network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := ns.Do(func() (err error) { ln, err = net.Listen(network, addr); return err })
	return ln, err
}

// DialContext dials from inside the namespace (for http.Transport.DialContext).
func (ns *NetNS) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// HTTPClient is an HTTP client whose connections start inside the namespace.
func (ns *NetNS) HTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{DialContext: ns.DialContext, DisableKeepAlives: true},
		Timeout:   5 * time.Second,
	}
}

// CleanStaleNetNS deletes the namespaces whose name starts with prefix (e.g. "cors-demo-")
// that NewNetNS created (cors-<role>-<pid>-<n>) in processes that no longer run, e.g. after a
// kill -9, and returns their names.
func CleanStaleNetNS(prefix string) ([]string, error) {
	entries, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || !strings.HasPrefix(name, NetNSPrefix) {
			continue
		}
		parts := strings.Split(name, "-")
		if len(parts) < 4 {
			continue
		}
		pid, err := strconv.Atoi(parts[len(parts)-2])
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if err := run("ip", "netns", "del", name); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, name)
	}
	return removed, errors.Join(errs...)
}

func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

func run(name string, args ...string) error {
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}
