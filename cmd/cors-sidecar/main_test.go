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
		{"no command", nil, exitUsage, "", "Usage:"},
		{"unknown command", []string{"serve"}, exitUsage, "", `unknown command "serve"`},
		{"help", []string{"--help"}, exitOK, "cors-sidecar redirect", ""},
		{"version", []string{"version"}, exitOK, "", ""},
		{"proxy needs a policy file", []string{"proxy"}, exitUsage, "", "--policy-file is required"},
		{"proxy bad port", []string{"proxy", "--policy-file", "x", "--inbound-port", "70000"}, exitUsage, "", "--inbound-port"},
		{"proxy same ports", []string{"proxy", "--policy-file", "x", "--inbound-port", "1", "--admin-port", "1"}, exitUsage, "", "must differ"},
		{"proxy bad upstream", []string{"proxy", "--policy-file", "x", "--upstream", "nohost"}, exitUsage, "", "upstream"},
		{"proxy stray argument", []string{"proxy", "--policy-file", "x", "extra"}, exitUsage, "", "unexpected arguments"},
		{"proxy unknown flag", []string{"proxy", "--policy", "x"}, exitUsage, "", "unknown flag: --policy"},
		{"redirect dry run", []string{"redirect", "--ports", "8081,8080", "--dry-run"}, exitOK,
			"elements = { 8080, 8081 }", ""},
		{"redirect dry run proxy port", []string{"redirect", "--ports", "8080", "--proxy-port", "16000", "--dry-run"}, exitOK,
			"redirect to :16000", ""},
		{"redirect loop", []string{"redirect", "--ports", "8080,15003", "--dry-run"}, exitUsage, "", "would loop"},
		{"redirect no ports", []string{"redirect", "--dry-run"}, exitUsage, "", "at least one port"},
		{"redirect bad port", []string{"redirect", "--ports", "80a", "--dry-run"}, exitUsage, "", "--ports"},
		{"cleanup dry run", []string{"redirect", "--cleanup", "--dry-run"}, exitOK, "delete table inet cors_sidecar", ""},
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
