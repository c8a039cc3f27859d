//go:build linux

package localcluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
)

// A node that was killed (SIGKILL, a test binary's timeout panic) cannot put the host back. It
// leaves a record of what the host was like before it started, and the next node puts that back
// first. The record also keeps two nodes from running at once: kubelets on one machine clash.

const nodeRecordPath = "/run/cors-webhook-node.json"

type nodeRecord struct {
	PID    int       `json:"pid"`
	Work   string    `json:"work"`
	Before HostState `json:"before"`
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

// recoverStaleNode restores the host after a node whose process died without stopping it.
func recoverStaleNode() error {
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
