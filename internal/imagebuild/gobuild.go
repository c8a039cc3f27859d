package imagebuild

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// BuildGo compiles the Go main package pkg (an import path or a path relative to the working
// directory) into a static binary for p: CGO off, -trimpath, no VCS stamp, stripped, with
// extra -ldflags such as "-X main.version=v1". The output depends only on the source and the
// toolchain, so images built from it are reproducible.
func BuildGo(ctx context.Context, pkg string, p v1.Platform, ldflags string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "bin")
	cmd := exec.CommandContext(ctx, goTool(), "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-s -w -buildid= "+ldflags, "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Architecture)
	if p.Variant != "" && p.Architecture == "arm" {
		cmd.Env = append(cmd.Env, "GOARM="+p.Variant[1:])
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build %s for %s: %w\n%s", pkg, p, err, stderr.Bytes())
	}
	return os.ReadFile(out)
}

// goTool is the go command: $GO when set (as the Makefile does), otherwise go on PATH.
func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}
