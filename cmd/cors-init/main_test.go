package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		{"help", []string{"--help"}, 0, "", "--ports"},
		{"version", []string{"--version"}, 0, "", ""},
		{"dry run", []string{"--ports", "8081,8080", "--dry-run"}, 0, "elements = { 8080, 8081 }", ""},
		{"dry run proxy port", []string{"--ports", "8080", "--proxy-port", "16000", "--dry-run"}, 0, "redirect to :16000", ""},
		{"loop", []string{"--ports", "8080,15003", "--dry-run"}, 2, "", "would loop"},
		{"no ports", []string{"--dry-run"}, 2, "", "at least one port"},
		{"bad port", []string{"--ports", "80a", "--dry-run"}, 2, "", "--ports"},
		{"cleanup dry run", []string{"--cleanup", "--dry-run"}, 0, "delete table inet cors_sidecar", ""},
		{"stray argument", []string{"redirect", "--ports", "8080"}, 2, "", "unexpected arguments: redirect"},
		{"unknown flag", []string{"--port", "8080"}, 2, "", "unknown flag: --port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code || !strings.Contains(stdout.String(), tc.stdout) || !strings.Contains(stderr.String(), tc.stderr) {
				t.Errorf("run(%q) = %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.args, code, tc.code, stdout.String(), stderr.String())
			}
		})
	}
}
