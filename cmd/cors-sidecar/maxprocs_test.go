package main

import (
	"testing"
	"testing/fstest"
)

func TestCPULimitProcs(t *testing.T) {
	const (
		v2Mount     = "30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
		v1CPUMount  = "31 25 0:27 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
		v1MemMount  = "32 25 0:28 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		hybridV2    = "33 25 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
		podCgroupV2 = "0::/kubepods/burstable/pod1/c1\n"
	)
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		name  string
		files fstest.MapFS
		procs int
		ok    bool
	}{
		{"v2 in a cgroup namespace, the injected 500m", fstest.MapFS{
			"proc/self/cgroup":      file("0::/\n"),
			"proc/self/mountinfo":   file(v2Mount),
			"sys/fs/cgroup/cpu.max": file("50000 100000\n"),
		}, 1, true},
		{"v2 fractional limits round up", fstest.MapFS{
			"proc/self/cgroup":      file("0::/\n"),
			"proc/self/mountinfo":   file(v2Mount),
			"sys/fs/cgroup/cpu.max": file("250000 100000\n"),
		}, 3, true},
		{"v2 without a limit", fstest.MapFS{
			"proc/self/cgroup":      file("0::/\n"),
			"proc/self/mountinfo":   file(v2Mount),
			"sys/fs/cgroup/cpu.max": file("max 100000\n"),
		}, 0, false},
		{"v2 without a cgroup namespace: the group's own directory", fstest.MapFS{
			"proc/self/cgroup":                                 file(podCgroupV2),
			"proc/self/mountinfo":                              file(v2Mount),
			"sys/fs/cgroup/cpu.max":                            file("max 100000\n"),
			"sys/fs/cgroup/kubepods/burstable/pod1/c1/cpu.max": file("100000 100000\n"),
		}, 1, true},
		{"v1 cpu controller, mount rooted at the container's group", fstest.MapFS{
			"proc/self/cgroup":                            file("4:memory:/docker/abc\n2:cpu,cpuacct:/docker/abc\n0::/\n"),
			"proc/self/mountinfo":                         file(v1MemMount + v1CPUMount + hybridV2),
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  file("150000\n"),
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": file("100000\n"),
			"sys/fs/cgroup/unified/cpu.max":               file("50000 100000\n"),
		}, 2, true},
		{"v1 without a quota", fstest.MapFS{
			"proc/self/cgroup":                            file("2:cpu,cpuacct:/docker/abc\n"),
			"proc/self/mountinfo":                         file(v1CPUMount),
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us":  file("-1\n"),
			"sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": file("100000\n"),
		}, 0, false},
		{"a group outside the mount's root", fstest.MapFS{
			"proc/self/cgroup":    file("2:cpu,cpuacct:/elsewhere\n"),
			"proc/self/mountinfo": file(v1CPUMount),
		}, 0, false},
		{"no /proc", fstest.MapFS{}, 0, false},
		{"garbage in cpu.max", fstest.MapFS{
			"proc/self/cgroup":      file("0::/\n"),
			"proc/self/mountinfo":   file(v2Mount),
			"sys/fs/cgroup/cpu.max": file("lots\n"),
		}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			procs, ok := cpuLimitProcs(tc.files)
			if procs != tc.procs || ok != tc.ok {
				t.Errorf("cpuLimitProcs = %d, %v; want %d, %v", procs, ok, tc.procs, tc.ok)
			}
		})
	}
}
