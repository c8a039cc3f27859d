package install

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newNode(t *testing.T, files map[string]string) *Installer {
	t.Helper()
	dir := t.TempDir()
	in := &Installer{Source: filepath.Join(dir, "cors-cni-src"), BinDir: filepath.Join(dir, "bin"), ConfDir: filepath.Join(dir, "net.d"), Resync: time.Hour}
	for _, d := range []string{in.BinDir, in.ConfDir} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(in.Source, []byte("#!/bin/true plugin v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(in.ConfDir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return in
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPrimary(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
		err   string
	}{
		{"none yet", nil, "", "no network configuration"},
		{"one", map[string]string{"10-cors-node.conflist": bridge}, "10-cors-node.conflist", ""},
		{"the first by name", map[string]string{"10-calico.conflist": bridge, "05-cilium.conflist": bridge, "99-loopback.conf": "{}"}, "05-cilium.conflist", ""},
		{"other files ignored", map[string]string{"10-flannel.conflist": bridge, "00-readme.txt": "x", ".hidden.tmp-1": "x"}, "10-flannel.conflist", ""},
		{"a single-plugin primary", map[string]string{"10-bridge.conf": `{"type":"bridge"}`, "20-x.conflist": bridge}, "", "single-plugin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := newNode(t, tc.files)
			got, err := Primary(in.ConfDir)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Primary error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != filepath.Join(in.ConfDir, tc.want) {
				t.Fatalf("Primary = %q, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestInstallReadyUninstall(t *testing.T) {
	in := newNode(t, map[string]string{"10-cors-node.conflist": bridge, "20-other.conflist": bridge})
	if err := in.Ready(); err == nil {
		t.Fatal("Ready before Install")
	}
	for range 2 {
		if err := in.Install(); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.Ready(); err != nil {
		t.Fatalf("Ready after Install: %v", err)
	}
	primary := filepath.Join(in.ConfDir, "10-cors-node.conflist")
	if got := read(t, primary); strings.Count(got, `"cors-cni"`) != 1 {
		t.Errorf("primary after two installs:\n%s", got)
	}
	if st, _ := os.Stat(primary); st.Mode().Perm() != 0o644 {
		t.Errorf("primary mode %v, want the original 0644", st.Mode().Perm())
	}
	if got := read(t, filepath.Join(in.ConfDir, "20-other.conflist")); got != bridge {
		t.Error("a conflist other than the primary changed")
	}
	if got := read(t, filepath.Join(in.BinDir, "cors-cni")); got != read(t, in.Source) {
		t.Error("binary not copied")
	}
	// Another writer replaces the primary: not Ready until the next pass.
	if err := os.WriteFile(primary, []byte(bridge), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := in.Ready(); err == nil {
		t.Error("Ready while the primary lacks the entry")
	}
	if err := in.Install(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := in.Uninstall(); err != nil {
			t.Fatal(err)
		}
	}
	if got := read(t, primary); got != bridge {
		t.Errorf("after uninstall the primary is\n%s\nwant it as it was\n%s", got, bridge)
	}
	if _, err := os.Stat(filepath.Join(in.BinDir, "cors-cni")); !os.IsNotExist(err) {
		t.Errorf("binary left after uninstall: %v", err)
	}
	if entries, _ := os.ReadDir(in.ConfDir); len(entries) != 2 {
		t.Errorf("conf dir holds %d files, want the 2 it had", len(entries))
	}
}

// TestRunReassertsAfterARewrite: Run notices a rewrite of the primary by its file event (the
// resync is an hour here), re-inserts the entry, and uninstalls when its context ends.
func TestRunReassertsAfterARewrite(t *testing.T) {
	in := newNode(t, map[string]string{"10-cors-node.conflist": bridge})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx) }()
	waitReady := func(what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for in.Ready() != nil {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not Ready within 10s: %v", what, in.Ready())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitReady("first install")
	primary := filepath.Join(in.ConfDir, "10-cors-node.conflist")
	// The way network plugins write: a new file renamed over the old one.
	tmp := filepath.Join(in.ConfDir, ".rewrite")
	if err := os.WriteFile(tmp, []byte(bridge), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := os.Rename(tmp, primary); err != nil {
		t.Fatal(err)
	}
	waitReady("after the rewrite")
	t.Logf("re-asserted %v after the rewrite", time.Since(start))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := read(t, primary); got != bridge {
		t.Errorf("after Run ended the primary is\n%s", got)
	}
}
