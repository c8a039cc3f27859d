package install

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cors-webhook/cors-webhook/cni"
)

// DefaultResync bounds how long a rewrite of the conflist can go unnoticed should a file
// event be lost: the installer checks the file at least this often.
const DefaultResync = 5 * time.Second

// Installer keeps cors-cni installed on one node.
type Installer struct {
	// Source is the plugin binary to copy (the running executable in the installer image).
	Source string
	// BinDir is the runtime's CNI bin dir (containerd's bin_dirs) as mounted here.
	BinDir string
	// ConfDir is the runtime's CNI conf dir (containerd's conf_dir) as mounted here.
	ConfDir string
	// Resync is the poll bound behind the file events (DefaultResync when 0).
	Resync time.Duration
	// Log receives one line per change (nil: discarded).
	Log io.Writer
}

// Primary is the configuration file the runtime uses: the first *.conflist, *.conf or *.json
// of dir in lexical order, as libcni and containerd pick it. Only a conflist can chain a
// plugin; a single-plugin .conf as the primary is reported, not converted.
func Primary(dir string) (string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	var names []string
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".conflist", ".conf", ".json":
			if e.Type().IsRegular() || e.Type()&fs.ModeSymlink != 0 {
				names = append(names, e.Name())
			}
		}
	}
	if len(names) == 0 {
		return "", fmt.Errorf("no network configuration in %s yet (the node's network plugin installs one)", dir)
	}
	slices.Sort(names)
	if filepath.Ext(names[0]) != ".conflist" {
		return "", fmt.Errorf("the primary network configuration %s is a single-plugin file: only a .conflist can chain %s", names[0], cni.PluginType)
	}
	return filepath.Join(dir, names[0]), nil
}

// Ready reports whether the node is set: the binary in the bin dir and the entry in the
// primary conflist. The DaemonSet's readiness probe runs it.
func (in *Installer) Ready() error {
	if _, err := os.Stat(filepath.Join(in.BinDir, cni.PluginType)); err != nil {
		return err
	}
	primary, err := Primary(in.ConfDir)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(primary)
	if err != nil {
		return err
	}
	holds, err := Holds(data)
	if err != nil {
		return fmt.Errorf("%s: %w", primary, err)
	}
	if !holds {
		return fmt.Errorf("%s does not chain %s", primary, cni.PluginType)
	}
	return nil
}

// Install copies the binary (when it differs) and inserts the entry into the primary conflist
// (when it lacks it). Both writes are atomic: a runtime reading either never sees half of it.
func (in *Installer) Install() error {
	if err := in.copyBinary(); err != nil {
		return err
	}
	primary, err := Primary(in.ConfDir)
	if err != nil {
		return err
	}
	return editFile(primary, Insert, in.logf, "chained "+cni.PluginType+" into")
}

// Uninstall removes the entry from every conflist of the conf dir that holds it, then the
// binary: the runtime stops calling the plugin before it goes.
func (in *Installer) Uninstall() error {
	entries, err := os.ReadDir(in.ConfDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	var errs []error
	for _, e := range entries {
		if filepath.Ext(e.Name()) == ".conflist" && e.Type().IsRegular() {
			errs = append(errs, editFile(filepath.Join(in.ConfDir, e.Name()), Remove, in.logf, "removed "+cni.PluginType+" from"))
		}
	}
	if err := os.Remove(filepath.Join(in.BinDir, cni.PluginType)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	} else if err == nil {
		in.logf("removed %s", filepath.Join(in.BinDir, cni.PluginType))
	}
	return errors.Join(errs...)
}

// Run installs, then re-installs whenever the conf dir changes (and at least every Resync),
// until ctx ends; then it uninstalls. Errors of a pass are logged and retried: the readiness
// probe tells whether the node is set meanwhile.
func (in *Installer) Run(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(in.ConfDir); err != nil {
		return fmt.Errorf("watching %s: %w", in.ConfDir, err)
	}
	resync := in.Resync
	if resync <= 0 {
		resync = DefaultResync
	}
	tick := time.NewTicker(resync)
	defer tick.Stop()
	for {
		if err := in.Install(); err != nil {
			in.logf("not installed yet: %v", err)
		}
		select {
		case <-ctx.Done():
			return in.Uninstall()
		case <-w.Events:
			drain(w.Events)
		case err := <-w.Errors:
			in.logf("watching %s: %v", in.ConfDir, err)
		case <-tick.C:
		}
	}
}

// drain takes what events are already queued: one pass handles them all.
func drain(events <-chan fsnotify.Event) {
	for {
		select {
		case <-events:
		default:
			return
		}
	}
}

func (in *Installer) copyBinary() error {
	src, err := os.ReadFile(in.Source)
	if err != nil {
		return fmt.Errorf("reading the plugin binary: %w", err)
	}
	dst := filepath.Join(in.BinDir, cni.PluginType)
	if cur, err := os.ReadFile(dst); err == nil && string(cur) == string(src) {
		return nil
	}
	if err := writeAtomic(dst, src, 0o755); err != nil {
		return err
	}
	in.logf("installed %s", dst)
	return nil
}

// editFile rewrites path with edit's output when it changes it, keeping the file's mode.
func editFile(path string, edit func([]byte) ([]byte, bool, error), logf func(string, ...any), what string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, changed, err := edit(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !changed {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if err := writeAtomic(path, out, st.Mode().Perm()); err != nil {
		return err
	}
	logf("%s %s", what, path)
	return nil
}

// writeAtomic writes a temporary file beside path and renames it over path. Its name starts
// with a dot and has no configuration extension, so a runtime listing the folder meanwhile
// never takes it for a configuration.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+strings.TrimSuffix(filepath.Base(path), filepath.Ext(path))+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

func (in *Installer) logf(format string, args ...any) {
	if in.Log != nil {
		fmt.Fprintf(in.Log, format+"\n", args...)
	}
}
