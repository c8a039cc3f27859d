package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// processState is the state letter of /proc/PID/stat ("Z" for a zombie), "" once it is gone.
func processState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return rest[:1]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestReapsChildrenAndEndsOnSIGTERM(t *testing.T) {
	child := exec.Command("true")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	pid := child.Process.Pid
	waitFor(t, "the child to exit", func() bool { return processState(pid) == "Z" })

	sigs := make(chan os.Signal, 2)
	done := make(chan struct{})
	go func() { run(sigs); close(done) }()
	sigs <- syscall.SIGCHLD
	waitFor(t, "the zombie to be reaped", func() bool { return processState(pid) == "" })
	select {
	case <-done:
		t.Fatal("run returned on SIGCHLD")
	default:
	}
	sigs <- syscall.SIGTERM
	waitFor(t, "run to return on SIGTERM", func() bool {
		select {
		case <-done:
			return true
		default:
			return false
		}
	})
}
