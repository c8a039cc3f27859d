//go:build linux

package localcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// A node that was killed (SIGKILL, a test binary's timeout panic) cannot put the host back. It
// leaves a record of what the host was like before it started, and the next node puts that back
// first. The record also keeps two nodes from running at once: kubelets on one machine clash.

const nodeRecordPath = "/run/cors-webhook-node.json"

type nodeRecord struct {
	PID    int       `json:"pid"`
	Work   string    `json:"work"`
	Before HostState `json:"before"`
	// Children are the node's processes (etcd and kube-apiserver outlive a killed parent).
	Children []childProc `json:"children,omitempty"`
}

type childProc struct {
	PID int    `json:"pid"`
	Exe string `json:"exe"`
}

// children lists this process's child processes.
func children() []childProc {
	entries, _ := os.ReadDir("/proc")
	var out []childProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren.
		i := strings.LastIndexByte(string(stat), ')')
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(os.Getpid()) {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil {
			out = append(out, childProc{PID: pid, Exe: exe})
		}
	}
	return out
}

// kill ends the process if it still runs the same executable (the PID was not reused).
func (c childProc) kill() {
	if exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(c.PID), "exe")); err == nil && exe == c.Exe {
		_ = syscall.Kill(c.PID, syscall.SIGKILL)
	}
}

func saveNodeRecord(r nodeRecord) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return os.WriteFile(nodeRecordPath, b, 0o600)
}

func removeNodeRecord() error {
	if err := os.Remove(nodeRecordPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// RecoverStaleNode restores the host after a node whose process died without stopping it (it
// does nothing when no such node left a record). StartNode calls it; call it before taking a
// HostSnapshot to compare with.
func RecoverStaleNode() error {
	b, err := os.ReadFile(nodeRecordPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var r nodeRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return fmt.Errorf("%s: %w", nodeRecordPath, err)
	}
	if r.PID != os.Getpid() && processAlive(r.PID) {
		return fmt.Errorf("a node of process %d is running (only one kubelet can run on a machine)", r.PID)
	}
	for _, c := range r.Children {
		c.kill()
	}
	if err := restoreHost(r.Work, r.Before); err != nil {
		return err
	}
	if r.Work != "" {
		if err := os.RemoveAll(r.Work); err != nil {
			return err
		}
	}
	return removeNodeRecord()
}
