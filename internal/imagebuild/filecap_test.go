package imagebuild

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/sidecar/redirect"
)

// TestInitRunsAsNonRootWithItsFileCapability unpacks cors-init from the host platform's
// cors-sidecar image as containerd does (the file, owned by root, then its xattrs from the PAX
// records, then its mode) and runs it as the injected container does: as user and group 65532,
// without ambient capabilities, in a network namespace of its own. With the layer's file
// capability it installs the nftables table; with the xattr removed, or under no_new_privs, the
// kernel grants it nothing and it fails, so the test fails if the image loses the capability.
// It needs root.
func TestInitRunsAsNonRootWithItsFileCapability(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (network namespaces, setuid, security.* xattrs); run as root, as CI does")
	}
	if status, err := os.ReadFile("/proc/self/status"); err != nil || bytes.Contains(status, []byte("NoNewPrivs:\t1")) {
		t.Fatalf("the test process must not run with no_new_privs, which voids file capabilities (%v)", err)
	}
	indexes, err := Product(context.Background(), Release{Version: "v0.0.0-test", Platforms: []v1.Platform{HostPlatform()}})
	if err != nil {
		t.Fatal(err)
	}
	img, err := PlatformImage(indexes["cors-sidecar"], HostPlatform())
	if err != nil {
		t.Fatal(err)
	}
	headers, contents, _ := layerFiles(t, img)
	h := headers[contract.InitCommand[1:]]
	if h == nil {
		t.Fatalf("no %s in the cors-sidecar image", contract.InitCommand)
	}

	// A directory user 65532 can traverse, as the image's /usr/local/bin is.
	dir, err := os.MkdirTemp("", "cors-init-filecap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unpack := func(name string, xattrs bool) string {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, contents[h.Name], 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(file, h.Uid, h.Gid); err != nil {
			t.Fatal(err)
		}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, paxXattr); ok && xattrs {
				if err := unix.Lsetxattr(file, x, []byte(v), 0); err != nil {
					t.Fatalf("setxattr %s: %v", x, err)
				}
			}
		}
		if err := os.Chmod(file, os.FileMode(h.Mode)); err != nil {
			t.Fatal(err)
		}
		return file
	}

	t.Run("with the file capability", func(t *testing.T) {
		out, err, tables := runInitAsNonRoot(t, unpack("cors-init", true), false)
		if err != nil || !strings.Contains(out, "installed table inet "+redirect.DefaultTable) {
			t.Fatalf("cors-init as 65532: %v\n%s", err, out)
		}
		if !strings.Contains(tables, redirect.DefaultTable) {
			t.Errorf("the network namespace holds the tables %q, want %s", tables, redirect.DefaultTable)
		}
		t.Logf("as 65532 with the file capability: %s", strings.TrimSpace(out))
	})
	t.Run("without it", func(t *testing.T) {
		out, err, tables := runInitAsNonRoot(t, unpack("cors-init-nocap", false), false)
		if err == nil || !strings.Contains(out, "operation not permitted") || tables != "" {
			t.Fatalf("cors-init as 65532 without the file capability: %v, tables %q\n%s", err, tables, out)
		}
		t.Logf("as 65532 without it: %v: %s", err, strings.TrimSpace(out))
	})
	// allowPrivilegeEscalation: false sets no_new_privs, which voids the file capability: the
	// reason the injected cors-init leaves privilege escalation allowed.
	t.Run("with it under no_new_privs", func(t *testing.T) {
		out, err, tables := runInitAsNonRoot(t, unpack("cors-init-nnp", true), true)
		if err == nil || !strings.Contains(out, "operation not permitted") || tables != "" {
			t.Fatalf("cors-init as 65532 under no_new_privs: %v, tables %q\n%s", err, tables, out)
		}
		t.Logf("as 65532 under no_new_privs: %v: %s", err, strings.TrimSpace(out))
	})
}

// runInitAsNonRoot runs bin --ports 8080 as user and group 65532 in a new network namespace,
// with no_new_privs when noNewPrivs, and returns its output, its error and the names of the
// nftables tables it left there.
func runInitAsNonRoot(t *testing.T, bin string, noNewPrivs bool) (out string, runErr error, tables string) {
	t.Helper()
	done := make(chan struct{})
	var fatal error
	go func() {
		defer close(done)
		// The namespace belongs to this thread alone; the thread ends with the goroutine,
		// since it is never unlocked.
		runtime.LockOSThread()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			fatal = err
			return
		}
		if noNewPrivs { // per thread, inherited by the child; the thread is discarded
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				fatal = err
				return
			}
		}
		cmd := exec.Command(bin, "--ports", "8080")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65532, Gid: 65532, Groups: []uint32{}}}
		b, err := cmd.CombinedOutput() // forked from this thread: the child starts in its namespace
		out, runErr = string(b), err
		conn, err := nftables.New()
		if err != nil {
			fatal = err
			return
		}
		list, err := conn.ListTables()
		if err != nil {
			fatal = err
			return
		}
		var names []string
		for _, tb := range list {
			names = append(names, tb.Name)
		}
		tables = strings.Join(names, ",")
	}()
	<-done
	if fatal != nil {
		t.Fatal(fatal)
	}
	return out, runErr, tables
}
