// Package doctor tests hack/doctor/doctor.sh through make, as a user meets it: `make demo` and
// `make test` on a machine that lacks what they need must install it or stop at once, before any
// compilation, naming the command to run.
package doctor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopWithin is the bound for a machine that cannot run the target: a check that
// compiles first would take minutes.
const stopWithin = 10 * time.Second

// The paths a fresh Debian machine lacks for the node: runc, the CNI plugins and nft.
const nodeLacks = "/usr/sbin/runc /usr/lib/cni/bridge /usr/lib/cni/host-local /usr/lib/cni/loopback nft"

func TestMakeStopsOrInstallsBeforeCompiling(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run as root: the demo and the tests install packages and run a node as root")
	}
	for _, tc := range []struct {
		name, target, hide string
		wantOK             bool
		// aptAvailable: a stand-in apt-get is on PATH (it records its arguments and installs
		// nothing, so the check after it still fails); otherwise apt-get is hidden.
		aptAvailable bool
		// wantInstall: the packages apt-get must be asked for.
		wantInstall []string
		wantOutput  []string
	}{
		{
			name: "demo without apt-get names the command", target: "demo", hide: nodeLacks + " apt-get",
			wantOutput: []string{"missing: /usr/sbin/runc", "missing: nft",
				"run as root: apt-get update && apt-get install -y nftables runc containernetworking-plugins"},
		},
		{
			name: "demo with apt-get installs the node's packages", target: "demo", hide: nodeLacks, aptAvailable: true,
			wantInstall: []string{"install", "-y", "-qq", "nftables", "runc", "containernetworking-plugins"},
			wantOutput:  []string{"installing nftables runc containernetworking-plugins", "still missing after apt-get install"},
		},
		{
			name: "test also needs chromium", target: "test", hide: nodeLacks + " chromium", aptAvailable: true,
			wantInstall: []string{"install", "-y", "-qq", "nftables", "runc", "containernetworking-plugins", "chromium"},
			wantOutput:  []string{"missing: chromium (the browser test drives headless Chromium)"},
		},
		{
			name: "demo does not need chromium", target: "doctor DOCTOR_FOR=demo", hide: "chromium apt-get", wantOK: true,
			wantOutput: []string{"ready for 'make demo'"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err, took, aptArgs := runMake(t, tc.target, tc.hide, tc.aptAvailable)
			t.Logf("make %s took %s:\n%s", tc.target, took.Round(time.Millisecond), out)
			if took > stopWithin {
				t.Errorf("make %s took %s, want the check to end within %s", tc.target, took, stopWithin)
			}
			var exit *exec.ExitError
			switch {
			case !tc.wantOK && !errors.As(err, &exit):
				t.Errorf("make %s: err = %v, want a non-zero exit", tc.target, err)
			case tc.wantOK && err != nil:
				t.Errorf("make %s: %v, want success", tc.target, err)
			}
			for _, w := range tc.wantOutput {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q", w)
				}
			}
			if got := strings.Join(aptArgs, " "); !strings.Contains(got, strings.Join(tc.wantInstall, " ")) {
				t.Errorf("apt-get was called with %q, want it to contain %q", got, strings.Join(tc.wantInstall, " "))
			}
			if strings.Contains(out, "go build") || strings.Contains(out, ">> building") {
				t.Errorf("make %s started compiling before the check stopped it", tc.target)
			}
		})
	}
}

// runMake runs make with target's words in the repository with the doctor told to hide hide; with
// aptAvailable, a stand-in apt-get first on PATH records its arguments (one line per call).
// It kills make's process group if it outlives the bound, so a check that lets the build start
// fails fast instead of compiling for minutes.
func runMake(t *testing.T, target, hide string, aptAvailable bool) (out string, err error, took time.Duration, aptArgs []string) {
	t.Helper()
	repo, rerr := filepath.Abs("../..")
	if rerr != nil {
		t.Fatal(rerr)
	}
	fake := t.TempDir()
	record := filepath.Join(fake, "apt-get.calls")
	if aptAvailable {
		script := "#!/bin/sh\necho \"$*\" >> " + record + "\n"
		if err := os.WriteFile(filepath.Join(fake, "apt-get"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*stopWithin)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory"}, strings.Fields(target)...)...)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "PATH="+fake+":"+os.Getenv("PATH"), "DOCTOR_HIDE="+hide)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err = cmd.Run()
	took = time.Since(start)
	if calls, rerr := os.ReadFile(record); rerr == nil {
		for _, line := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
			if strings.HasPrefix(line, "install") {
				aptArgs = strings.Fields(line)
			}
		}
	}
	return buf.String(), err, took, aptArgs
}
