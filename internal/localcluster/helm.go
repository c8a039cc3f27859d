package localcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Helm runs bin/helm with its cache, configuration and data in a private folder, so that the
// tests and the demo neither read nor change the user's Helm repositories and plugins.
type Helm struct {
	// Path of the helm binary.
	Path string
	// Home holds HELM_CACHE_HOME, HELM_CONFIG_HOME and HELM_DATA_HOME.
	Home string
	// Dir is the working directory of helm, for relative chart paths (default: the caller's).
	Dir string
}

// NewHelm finds bin/helm (built by `make tools`) and creates a private Helm home. Remove it
// with Close.
func NewHelm() (*Helm, error) {
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(binDir, "helm")
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("helm missing from %s: run `make tools` first (%w)", binDir, err)
	}
	home, err := os.MkdirTemp("", "cors-helm-")
	if err != nil {
		return nil, err
	}
	return &Helm{Path: path, Home: home}, nil
}

// Run runs helm with args, against the cluster of kubeconfig when it is not empty. A non-zero
// exit is not an error: it is in Result.ExitCode; the error is for failing to run at all.
func (h *Helm) Run(ctx context.Context, kubeconfig string, args ...string) (Result, error) {
	if kubeconfig != "" {
		args = append([]string{"--kubeconfig", kubeconfig}, args...)
	}
	cmd := exec.CommandContext(ctx, h.Path, args...)
	cmd.Dir = h.Dir
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(h.Home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(h.Home, "config"),
		"HELM_DATA_HOME="+filepath.Join(h.Home, "data"))
	res, err := runResult(cmd)
	if err != nil {
		return res, fmt.Errorf("helm %s: %w", strings.Join(args, " "), err)
	}
	return res, nil
}

// Close removes the private Helm home.
func (h *Helm) Close() error { return os.RemoveAll(h.Home) }

// ChartDir is the project's Helm chart, charts/cors-webhook.
func ChartDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "charts", "cors-webhook"), nil
}
