package imagebuild

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestStandins builds the stand-in images and runs what is in them: the curl image's curl and
// sleep in a chroot of its layer (as its user), the pipy stand-in refusing a script it cannot
// read; the pause and pipy binaries are static.
func TestStandins(t *testing.T) {
	dir := t.TempDir()
	built, err := Standins(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, s := range built {
		refs = append(refs, s.Ref)
		tag, err := name.NewTag(s.Ref)
		if err != nil {
			t.Fatal(err)
		}
		img, err := tarball.ImageFromPath(s.Tarball, &tag)
		if err != nil {
			t.Fatalf("%s: %v", s.Tarball, err)
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if len(cfg.Config.Entrypoint) != 1 || cfg.Architecture != HostPlatform().Architecture {
			t.Errorf("%s: entrypoint %q arch %s", s.Ref, cfg.Config.Entrypoint, cfg.Architecture)
		}
		headers, contents, _ := layerFiles(t, img)
		exe := strings.TrimPrefix(cfg.Config.Entrypoint[0], "/")
		if headers[exe] == nil || headers[exe].Mode&0o111 == 0 {
			t.Errorf("%s: entrypoint %s not an executable in the layer", s.Ref, exe)
		}
		if s.Ref != CurlRef {
			checkStaticELF(t, s.Ref, contents[exe], HostPlatform().Architecture)
		}
		root := filepath.Join(dir, "rootfs-"+filepath.Base(s.Tarball))
		for p, h := range headers {
			target := filepath.Join(root, p)
			switch {
			case h.Typeflag == '5':
				err = os.MkdirAll(target, 0o755)
			case h.Typeflag == '2':
				err = os.Symlink(h.Linkname, target)
			default:
				if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
					err = os.WriteFile(target, contents[p], os.FileMode(h.Mode).Perm())
				}
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		switch s.Ref {
		case CurlRef:
			for _, argv := range [][]string{{"/usr/bin/curl", "--version"}, {"/usr/bin/sleep", "0"}} {
				out, err := exec.Command("chroot", append([]string{"--userspec=" + cfg.Config.User, root}, argv...)...).CombinedOutput()
				if err != nil {
					t.Errorf("%s: %q in the image: %v\n%s", s.Ref, argv, err, out)
				}
			}
		case PipyRef:
			out, err := exec.Command(filepath.Join(root, exe), "main.js").CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "only `pipy -e SCRIPT`") {
				t.Errorf("pipy stand-in with a script file: %v\n%s", err, out)
			}
		}
	}
	if !slices.Equal(refs, []string{PauseRef, PipyRef, CurlRef}) {
		t.Errorf("stand-ins %v", refs)
	}
}
