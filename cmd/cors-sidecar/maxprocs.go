package main

import (
	"bufio"
	"io/fs"
	"math"
	"path"
	"strconv"
	"strings"
)

// The proxy's GOMAXPROCS follows the container's CPU limit down to 1. Go's own default rounds a
// limit below 2 CPUs up to 2, which for the injected sidecar (500m by default) means two
// threads spending one CFS quota: the second P buys no throughput at half a CPU, costs
// scheduler hand-offs between threads (futex wake-ups, spinning) on every request, and lets a
// burst use the quota up twice as fast, after which the kernel throttles the whole container
// for the rest of the period. With one P the proxy runs as an nginx worker does: one thread
// that sleeps in epoll when there is nothing to do. Setting GOMAXPROCS turns the runtime's own
// updates off, so an in-place resize of such a limit takes effect when the container restarts;
// limits above one CPU are left to the runtime, which follows them.

// cpuLimitProcs returns ceil(the CPU bandwidth limit of the process's cgroup), at least 1, and
// false when the cgroup sets no limit or cannot be read. fsys is the root file system (paths
// without the leading slash), so that tests can stand in for /proc and /sys/fs/cgroup.
func cpuLimitProcs(fsys fs.FS) (int, bool) {
	limit, ok := cgroupCPULimit(fsys)
	if !ok || limit <= 0 {
		return 0, false
	}
	return max(1, int(math.Ceil(limit))), true
}

// cgroupCPULimit reads the limit (quota/period, in CPUs) of the cgroup v1 cpu controller when
// the process has one (hybrid hierarchies keep cpu on v1), else of its cgroup v2 group.
func cgroupCPULimit(fsys fs.FS) (float64, bool) {
	groups, err := fs.ReadFile(fsys, "proc/self/cgroup")
	if err != nil {
		return 0, false
	}
	var v1Path, v2Path string
	haveV1, haveV2 := false, false
	for line := range strings.Lines(string(groups)) {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2Path, haveV2 = parts[2], true
		case hasItem(parts[1], "cpu"):
			v1Path, haveV1 = parts[2], true
		}
	}
	if haveV1 {
		if dir, ok := cgroupDir(fsys, v1Path, func(fstype, super string) bool {
			return fstype == "cgroup" && hasItem(super, "cpu")
		}); ok {
			return v1Limit(fsys, dir)
		}
	}
	if haveV2 {
		if dir, ok := cgroupDir(fsys, v2Path, func(fstype, _ string) bool { return fstype == "cgroup2" }); ok {
			return v2Limit(fsys, dir)
		}
	}
	return 0, false
}

// cgroupDir finds the directory of cgroup path cg under the mount that match accepts
// (/proc/self/mountinfo: the mount's root within the hierarchy, its mount point, and after
// " - " the file system type and super options).
func cgroupDir(fsys fs.FS, cg string, match func(fstype, super string) bool) (string, bool) {
	f, err := fsys.Open("proc/self/mountinfo")
	if err != nil {
		return "", false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if !ok || len(fields) < 5 || len(tail) < 3 || !match(tail[0], tail[2]) {
			continue
		}
		root, mountPoint := fields[3], fields[4]
		rel, ok := strings.CutPrefix(cg, root)
		if root == "/" {
			rel, ok = cg, true
		}
		if !ok || rel != "" && !strings.HasPrefix(rel, "/") {
			continue
		}
		return strings.TrimPrefix(path.Join(mountPoint, rel), "/"), true
	}
	return "", false
}

// v2Limit reads cpu.max: "max period" (no limit) or "quota period".
func v2Limit(fsys fs.FS, dir string) (float64, bool) {
	b, err := fs.ReadFile(fsys, path.Join(dir, "cpu.max"))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 2 || f[0] == "max" {
		return 0, false
	}
	return ratio(f[0], f[1])
}

// v1Limit reads cpu.cfs_quota_us (-1: no limit) and cpu.cfs_period_us.
func v1Limit(fsys fs.FS, dir string) (float64, bool) {
	q, err1 := fs.ReadFile(fsys, path.Join(dir, "cpu.cfs_quota_us"))
	p, err2 := fs.ReadFile(fsys, path.Join(dir, "cpu.cfs_period_us"))
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return ratio(strings.TrimSpace(string(q)), strings.TrimSpace(string(p)))
}

func ratio(quota, period string) (float64, bool) {
	q, err1 := strconv.ParseInt(quota, 10, 64)
	p, err2 := strconv.ParseInt(period, 10, 64)
	if err1 != nil || err2 != nil || q <= 0 || p <= 0 {
		return 0, false
	}
	return float64(q) / float64(p), true
}

// hasItem reports whether the comma-separated list holds item.
func hasItem(list, item string) bool {
	for s := range strings.SplitSeq(list, ",") {
		if s == item {
			return true
		}
	}
	return false
}
