package imagebuild

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Names the stand-in images are imported as: what the guide's manifests and the container
// runtime ask for. Configure containerd's sandbox image as PauseRef.
const (
	PauseRef = "registry.k8s.io/pause:3.10"
	PipyRef  = "docker.io/flomesh/pipy:latest"
	CurlRef  = "docker.io/curlimages/curl:latest"
)

// Standin is a test stand-in image written by [Standins].
type Standin struct {
	Ref     string // the name the tarball imports as
	Tarball string // path of the tarball for `ctr -n k8s.io images import`
	Image   v1.Image
}

// HostPlatform is the platform of the running machine: the only one stand-ins are built for
// (the curl image copies the host's binaries).
func HostPlatform() v1.Platform { return v1.Platform{OS: "linux", Architecture: runtime.GOARCH} }

// Standins builds the images the tests need that no registry here gives, for HostPlatform,
// and writes each as DIR/NAME.tar (NAME: pause, pipy, curl):
//
//   - PauseRef: hack/standins/pause, a static Go program that reaps children and ends on SIGTERM.
//   - PipyRef: hack/standins/pipy at /usr/local/bin/pipy, which runs only the guide's
//     `pipy -e "pipy().listen(PORT).serveHTTP(new Message('TEXT'))"`.
//   - CurlRef: the host's real /usr/bin/curl (Debian's curl package) with the shared libraries
//     ldd lists and the loader, plus /usr/bin/sleep (the guide's curl pod runs `sleep 365d`).
//
// They are test stand-ins, not the images their names belong to.
func Standins(ctx context.Context, dir string) ([]Standin, error) {
	p := HostPlatform()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	pause, err := BuildGo(ctx, "github.com/cors-webhook/cors-webhook/hack/standins/pause", p, "")
	if err != nil {
		return nil, err
	}
	pipy, err := BuildGo(ctx, "github.com/cors-webhook/cors-webhook/hack/standins/pipy", p, "")
	if err != nil {
		return nil, err
	}
	curl, err := HostExecutables(ctx, "/usr/bin/curl", "/usr/bin/sleep")
	if err != nil {
		return nil, fmt.Errorf("curl image: %w", err)
	}
	specs := []struct {
		name, ref string
		spec      Spec
	}{
		{"pause", PauseRef, Spec{Platform: p, User: "65535",
			Files: []File{{Path: "/pause", Mode: 0o755, Contents: pause}}, Entrypoint: []string{"/pause"}}},
		{"pipy", PipyRef, Spec{Platform: p,
			Files: []File{{Path: "/usr/local/bin/pipy", Mode: 0o755, Contents: pipy}}, Entrypoint: []string{"/usr/local/bin/pipy"}}},
		{"curl", CurlRef, Spec{Platform: p, Files: curl, Entrypoint: []string{"/usr/bin/curl"}}},
	}
	var out []Standin
	for _, s := range specs {
		s.spec.Annotations = map[string]string{
			"org.opencontainers.image.description": "test stand-in for " + s.ref + ", built by cors-webhook's internal/imagebuild",
		}
		img, err := Image(s.spec)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		file := filepath.Join(dir, s.name+".tar")
		if err := WriteTarball(file, s.ref, img); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		out = append(out, Standin{Ref: s.ref, Tarball: file, Image: img})
	}
	return out, nil
}

// HostExecutables returns the host's dynamically linked executables with every shared library
// ldd resolves for them and the ELF loader, each at the path ldd names and with the mode of
// the file it resolves to, ready for an image's layer.
func HostExecutables(ctx context.Context, executables ...string) ([]File, error) {
	paths := slices.Clone(executables)
	for _, exe := range executables {
		libs, err := sharedLibraries(ctx, exe)
		if err != nil {
			return nil, err
		}
		paths = append(paths, libs...)
	}
	slices.Sort(paths)
	paths = slices.Compact(paths)
	files := make([]File, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Path: p, Mode: st.Mode().Perm(), Contents: b})
	}
	return files, nil
}

// sharedLibraries lists the absolute paths `ldd exe` prints: the libraries and the loader.
func sharedLibraries(ctx context.Context, exe string) ([]string, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ldd", exe)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w: %s", exe, err, stderr.Bytes())
	}
	var libs []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if lib, target, ok := strings.Cut(line, "=>"); ok {
			target = strings.TrimSpace(target)
			if strings.HasPrefix(target, "not found") {
				return nil, fmt.Errorf("ldd %s: %s not found", exe, strings.TrimSpace(lib))
			}
			line = target
		}
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "/") {
			libs = append(libs, f[0])
		}
	}
	return libs, sc.Err()
}
