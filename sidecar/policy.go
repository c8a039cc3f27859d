package sidecar

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/cors-webhook/cors-webhook/cors"
)

// PolicyStore holds the pod's compiled per-port policies. Readers (every request) load it with
// one atomic pointer read; a reload replaces the whole map at once, so a request sees either the
// old or the new policy, never a mix. The zero value holds no policy (everything passes through).
type PolicyStore struct {
	cur atomic.Pointer[map[uint16]*cors.Policy]
}

// Lookup returns the policy of a port, or nil when the port has none (pass-through).
func (s *PolicyStore) Lookup(port uint16) *cors.Policy {
	m := s.cur.Load()
	if m == nil {
		return nil
	}
	return (*m)[port]
}

// Loaded reports whether a policy has been stored.
func (s *PolicyStore) Loaded() bool { return s.cur.Load() != nil }

// Store replaces the policies. The map must not be modified afterwards.
func (s *PolicyStore) Store(ports map[uint16]*cors.Policy) {
	if ports == nil {
		ports = map[uint16]*cors.Policy{}
	}
	s.cur.Store(&ports)
}

// Watcher keeps a PolicyStore in step with a policy file.
//
// The file is usually a downwardAPI volume item, which the kubelet updates by writing a new
// timestamped folder and atomically swapping the "..data" symlink; the file itself is a symlink
// through it and is never written in place. So the watcher watches the file's folder (inotify on
// the file would follow the old inode), re-reads the file by path on any event there, and also
// polls at Interval in case an event is missed (a full inotify queue, a file system without
// inotify). A read whose bytes equal the last ones tried is ignored, so neither the many events
// of one swap nor polling reload anything twice.
//
// A file that cannot be read or parsed leaves the previous policy in force; the failure is
// logged and counted once per distinct content.
type Watcher struct {
	Path     string
	Store    *PolicyStore
	Metrics  *Metrics
	Log      *slog.Logger
	Interval time.Duration // polling interval; 0 means 5s
	Debounce time.Duration // wait for a burst of events to settle; 0 means 50ms

	last    []byte // the content last tried, loaded or not
	lastErr string // the last read error, to log it once
}

// Run loads the file once, then watches it until ctx is done. It returns only ctx's error.
func (w *Watcher) Run(ctx context.Context) error {
	if w.Interval <= 0 {
		w.Interval = 5 * time.Second
	}
	if w.Debounce <= 0 {
		w.Debounce = 50 * time.Millisecond
	}
	w.Reload()

	var events <-chan fsnotify.Event
	var errs <-chan error
	if fw, err := fsnotify.NewWatcher(); err != nil {
		w.Log.Warn("cannot watch the policy file, polling only", "path", w.Path, "interval", w.Interval, "err", err)
	} else {
		defer fw.Close()
		if err := fw.Add(filepath.Dir(w.Path)); err != nil {
			w.Log.Warn("cannot watch the policy file's folder, polling only", "dir", filepath.Dir(w.Path), "interval", w.Interval, "err", err)
		} else {
			events, errs = fw.Events, fw.Errors
		}
	}

	poll := time.NewTicker(w.Interval)
	defer poll.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-events:
			settle.Reset(w.Debounce)
		case err := <-errs:
			w.Log.Warn("policy file watch error; polling continues", "err", err)
		case <-settle.C:
			w.Reload()
		case <-poll.C:
			w.Reload()
		}
	}
}

// Reload reads the file and, when its content changed, parses it and swaps the policy. It
// reports whether a new policy was stored. It is not safe for concurrent use (Run calls it from
// one goroutine).
func (w *Watcher) Reload() bool {
	data, err := os.ReadFile(w.Path)
	if err != nil {
		if msg := err.Error(); msg != w.lastErr {
			w.lastErr = msg
			w.Metrics.reloadErrors.Add(1)
			if w.Store.Loaded() {
				w.Log.Error("cannot read the policy file; keeping the current policy", "path", w.Path, "err", err)
			} else {
				w.Log.Error("cannot read the policy file; not ready until it can be loaded", "path", w.Path, "err", err)
			}
		}
		return false
	}
	w.lastErr = ""
	if w.last != nil && bytes.Equal(data, w.last) {
		return false
	}
	w.last = data
	ports, ignored, err := cors.DecodePodPolicy(data)
	if err != nil {
		w.Metrics.reloadErrors.Add(1)
		w.Log.Error("invalid policy file; keeping the current policy", "path", w.Path, "err", err,
			"loaded", w.Store.Loaded())
		return false
	}
	if len(ignored) > 0 {
		// A newer webhook wrote fields this sidecar predates (policy version 1 is forward
		// compatible); said once per policy content.
		w.Log.Info("policy has fields this sidecar does not know; ignoring them", "path", w.Path, "fields", ignored)
	}
	w.Store.Store(ports)
	w.Metrics.reloads.Add(1)
	w.Metrics.policyLoaded.Store(true)
	w.Log.Info("policy loaded", "path", w.Path, "ports", len(ports))
	return true
}
