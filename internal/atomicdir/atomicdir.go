// Package atomicdir writes a folder the way the kubelet's AtomicWriter updates a Secret,
// ConfigMap or downwardAPI volume: the files go to a new timestamped folder, one rename swaps
// the "..data" symlink to it, each visible file is a symlink through "..data", and the previous
// folder is removed. Tests use it to show that the sidecar and the webhook server follow such
// updates (a file rewritten in place would not exercise the same code paths).
package atomicdir

import (
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces the contents of dir with files (name -> content), written with mode.
func Write(dir string, files map[string][]byte, mode os.FileMode) error {
	ts, err := os.MkdirTemp(dir, "..ts-")
	if err != nil {
		return err
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(ts, name), content, mode); err != nil {
			return err
		}
	}
	data := filepath.Join(dir, "..data")
	old, _ := os.Readlink(data)
	tmp := filepath.Join(dir, "..data_tmp")
	_ = os.Remove(tmp)
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, data); err != nil {
		return fmt.Errorf("swapping ..data: %w", err)
	}
	for name := range files {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); os.IsNotExist(err) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				return err
			}
		}
	}
	if old != "" {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}
