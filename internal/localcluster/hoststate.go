//go:build linux

package localcluster

import (
	"bufio"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// A node changes the host it runs on: the kubelet sets kernel tunables at start (and cannot be
// told not to), the CNI bridge plugin turns on forwarding, kube-proxy adds its nftables tables,
// the kubelet makes /kubepods cgroups and a few fixed folders, containers mount overlays. The
// node records what it will touch before it starts and puts it back on Stop; HostSnapshot lets
// a test check that it did.

// nodeSysctls are the tunables the node's components may set: the kubelet's six
// (setupKernelTunables), the bridge plugin's forwarding, and kube-proxy's conntrack and
// localnet ones (left alone by its configuration, saved anyway).
var nodeSysctls = []string{
	"kernel/panic",
	"kernel/panic_on_oops",
	"kernel/keys/root_maxkeys",
	"kernel/keys/root_maxbytes",
	"vm/overcommit_memory",
	"vm/panic_on_oom",
	"net/ipv4/ip_forward",
	"net/ipv4/conf/all/forwarding",
	"net/ipv4/conf/all/route_localnet",
	"net/ipv6/conf/all/forwarding",
	"net/bridge/bridge-nf-call-iptables",
	"net/bridge/bridge-nf-call-ip6tables",
	"net/netfilter/nf_conntrack_max",
	"net/netfilter/nf_conntrack_tcp_timeout_established",
	"net/netfilter/nf_conntrack_tcp_timeout_close_wait",
}

// nodeHostPaths are fixed host paths the kubelet and containerd create whatever their root
// folders are; the node removes those that did not exist before it started.
var nodeHostPaths = []string{
	"/var/lib/kubelet",
	"/var/log/containers",
	"/var/log/pods",
	"/run/containerd",
	"/var/run/nri",
	"/opt/containerd",
	"/etc/cni/net.d",
	"/var/lib/cni",
	"/usr/libexec/kubernetes",
}

// HostState is what a node may change on the host, read at one moment.
type HostState struct {
	Sysctls  map[string]string // path under /proc/sys -> value ("" when absent)
	NFTables []string          // "family name" of every nftables table
	Links    []string          // network interface names
	NetNS    []string          // names under /run/netns
	Cgroups  []string          // kubepods cgroups, as hierarchy/kubepods
	Mounts   []string          // mount points
	Paths    []string          // the nodeHostPaths that exist
}

// HostSnapshot reads the host state a node may change.
func HostSnapshot() (HostState, error) {
	var s HostState
	var err error
	if s.Sysctls, err = readSysctls(nodeSysctls); err != nil {
		return s, err
	}
	if s.NFTables, err = nftTables(); err != nil {
		return s, err
	}
	if s.Links, err = linkNames(); err != nil {
		return s, err
	}
	if s.NetNS, err = dirNames("/run/netns"); err != nil {
		return s, err
	}
	s.Cgroups = kubepodsCgroups()
	if s.Mounts, err = mountPoints(); err != nil {
		return s, err
	}
	// The namespaces of the network-namespace tests (NewNetNS) come and go on their own, also
	// while a node runs beside them.
	own := func(p string) bool {
		return strings.HasPrefix(p, NetNSPrefix) || strings.HasPrefix(p, "/run/netns/"+NetNSPrefix)
	}
	s.NetNS = slices.DeleteFunc(s.NetNS, own)
	s.Mounts = slices.DeleteFunc(s.Mounts, own)
	for _, p := range nodeHostPaths {
		if _, err := os.Lstat(p); err == nil {
			s.Paths = append(s.Paths, p)
		}
	}
	return s, nil
}

// Diff lists how other differs from s, one line per difference; none means equal.
func (s HostState) Diff(other HostState) []string {
	var diffs []string
	for _, k := range slices.Sorted(maps.Keys(s.Sysctls)) {
		if s.Sysctls[k] != other.Sysctls[k] {
			diffs = append(diffs, fmt.Sprintf("sysctl %s: %q, now %q", k, s.Sysctls[k], other.Sysctls[k]))
		}
	}
	list := func(what string, a, b []string) {
		for _, x := range b {
			if !slices.Contains(a, x) {
				diffs = append(diffs, fmt.Sprintf("%s %s: added", what, x))
			}
		}
		for _, x := range a {
			if !slices.Contains(b, x) {
				diffs = append(diffs, fmt.Sprintf("%s %s: removed", what, x))
			}
		}
	}
	list("nftables table", s.NFTables, other.NFTables)
	list("link", s.Links, other.Links)
	list("netns", s.NetNS, other.NetNS)
	list("cgroup", s.Cgroups, other.Cgroups)
	list("mount", s.Mounts, other.Mounts)
	list("path", s.Paths, other.Paths)
	return diffs
}

func readSysctls(keys []string) (map[string]string, error) {
	out := make(map[string]string, len(keys))
	for _, k := range keys {
		b, err := os.ReadFile(filepath.Join("/proc/sys", k))
		if errors.Is(err, os.ErrNotExist) {
			out[k] = ""
			continue
		}
		if err != nil {
			return nil, err
		}
		out[k] = strings.TrimSpace(string(b))
	}
	return out, nil
}

// restoreSysctls writes back every saved value that changed.
func restoreSysctls(saved map[string]string) error {
	now, err := readSysctls(slices.Collect(maps.Keys(saved)))
	if err != nil {
		return err
	}
	var errs []error
	for k, v := range saved {
		if v == "" || now[k] == v {
			continue
		}
		if err := os.WriteFile(filepath.Join("/proc/sys", k), []byte(v), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("restoring %s=%s: %w", k, v, err))
		}
	}
	return errors.Join(errs...)
}

func nftTables() ([]string, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, err
	}
	tables, err := conn.ListTables()
	if err != nil {
		return nil, fmt.Errorf("listing nftables tables: %w", err)
	}
	var out []string
	for _, t := range tables {
		out = append(out, fmt.Sprintf("%s %s", familyName(t.Family), t.Name))
	}
	slices.Sort(out)
	return out, nil
}

func familyName(f nftables.TableFamily) string {
	switch f {
	case nftables.TableFamilyIPv4:
		return "ip"
	case nftables.TableFamilyIPv6:
		return "ip6"
	case nftables.TableFamilyINet:
		return "inet"
	case nftables.TableFamilyBridge:
		return "bridge"
	case nftables.TableFamilyARP:
		return "arp"
	case nftables.TableFamilyNetdev:
		return "netdev"
	}
	return fmt.Sprint(f)
}

// deleteNFTables deletes the named tables (in the IPv4 and IPv6 families) that exist.
func deleteNFTables(name string) error {
	conn, err := nftables.New()
	if err != nil {
		return err
	}
	tables, err := conn.ListTables()
	if err != nil {
		return err
	}
	found := false
	for _, t := range tables {
		if t.Name == name && (t.Family == nftables.TableFamilyIPv4 || t.Family == nftables.TableFamilyIPv6) {
			conn.DelTable(t)
			found = true
		}
	}
	if !found {
		return nil
	}
	return conn.Flush()
}

func linkNames() ([]string, error) {
	return dirNames("/sys/class/net")
}

func dirNames(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, nil
}

// kubepodsCgroups lists the kubelet's top-level pod cgroup in each cgroup v1 hierarchy.
func kubepodsCgroups() []string {
	var out []string
	hierarchies, _ := dirNames("/sys/fs/cgroup")
	for _, h := range hierarchies {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", h, "kubepods")); err == nil {
			out = append(out, h+"/kubepods")
		}
	}
	return out
}

// removeCgroupTree removes a cgroup folder and the cgroups under it, deepest first. Processes
// still in them (containers whose shim was killed) are killed first: rmdir fails while a cgroup
// has processes.
func removeCgroupTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, removeCgroupTree(filepath.Join(dir, e.Name())))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		killCgroupProcs(dir)
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			break
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			errs = append(errs, err)
			break
		}
		time.Sleep(50 * time.Millisecond) // polling for the killed processes to be gone
	}
	return errors.Join(errs...)
}

func killCgroupProcs(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

// mountPoints lists the mount points of this mount namespace (/proc/self/mountinfo, field 5,
// octal escapes kept).
func mountPoints() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			out = append(out, fields[4])
		}
	}
	return out, sc.Err()
}

// unmountUnder lazily unmounts every mount point at or below dir, deepest first.
func unmountUnder(dir string) error {
	points, err := mountPoints()
	if err != nil {
		return err
	}
	var under []string
	for _, p := range points {
		if p == dir || strings.HasPrefix(p, dir+"/") {
			under = append(under, p)
		}
	}
	slices.SortFunc(under, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, p := range under {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}
