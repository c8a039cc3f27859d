package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/cors-webhook/cors-webhook/contract"
)

// layerFiles reads the single layer of img: its headers and contents by name, in tar order.
func layerFiles(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte, []string) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %v, %d", err, len(layers))
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	headers, contents, order := map[string]*tar.Header{}, map[string][]byte{}, []string(nil)
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		headers[h.Name], contents[h.Name] = h, b
		order = append(order, h.Name)
	}
	return headers, contents, order
}

func TestLayerIsReproducible(t *testing.T) {
	files := []File{
		{Path: "/usr/local/bin/app", Mode: 0o755, Contents: []byte("app")},
		{Path: "etc/app/link", Link: "../passwd"},
		{Path: "/usr/local/bin/capable", Mode: 0o755, Contents: []byte("capable"), Xattrs: map[string]string{"user.b": "2", XattrCapability: "caps"}},
	}
	a, err := Layer(files)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Layer(slices.Concat(files[1:], files[:1])) // the order files are given in does not matter
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Fatalf("digests differ: %s %s", da, db)
	}
	img, err := Image(Spec{Platform: HostPlatform(), Files: files})
	if err != nil {
		t.Fatal(err)
	}
	headers, contents, order := layerFiles(t, img)
	if !slices.IsSorted(order) {
		t.Errorf("tar entries not sorted: %v", order)
	}
	for _, tc := range []struct {
		name string
		typ  byte
		mode int64
	}{
		{"tmp/", tar.TypeDir, 0o1777},
		{"usr/", tar.TypeDir, 0o755},
		{"usr/local/bin/", tar.TypeDir, 0o755},
		{"usr/local/bin/app", tar.TypeReg, 0o755},
		{"etc/app/link", tar.TypeSymlink, 0},
		{"etc/passwd", tar.TypeReg, 0o644},
	} {
		h := headers[tc.name]
		if h == nil {
			t.Errorf("%s missing from %v", tc.name, order)
			continue
		}
		if h.Typeflag != tc.typ || h.Mode != tc.mode || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(Epoch) {
			t.Errorf("%s: type %c mode %o owner %d:%d time %v", tc.name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.ModTime)
		}
	}
	if string(contents["usr/local/bin/app"]) != "app" || headers["etc/app/link"].Linkname != "../passwd" {
		t.Errorf("contents: %q, link %q", contents["usr/local/bin/app"], headers["etc/app/link"].Linkname)
	}
	wantPAX := map[string]string{"SCHILY.xattr.security.capability": "caps", "SCHILY.xattr.user.b": "2"}
	if got := headers["usr/local/bin/capable"].PAXRecords; !maps.Equal(got, wantPAX) {
		t.Errorf("PAX records of the file with xattrs: %q, want %q", got, wantPAX)
	}
	if got := headers["usr/local/bin/app"].PAXRecords; len(got) != 0 {
		t.Errorf("PAX records of a file without xattrs: %q", got)
	}
}

// TestFileCapabilities pins the security.capability bytes of cap_net_admin+ep, as
// `setcap cap_net_admin+ep FILE` writes them (`getfattr -n security.capability -e hex`:
// 0x0100000200100000000000000000000000000000).
func TestFileCapabilities(t *testing.T) {
	want := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x10, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	if got := FileCapabilities(CapNetAdmin); !bytes.Equal(got, want) {
		t.Errorf("FileCapabilities(CAP_NET_ADMIN) = % x, want % x", got, want)
	}
	// CAP_MAC_ADMIN (33) lands in the second 32-bit permitted word.
	if got := FileCapabilities(33); got[12] != 0x02 {
		t.Errorf("FileCapabilities(33) = % x", got)
	}
}

// elfMachines are the ELF machines of the product platforms.
var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// checkStaticELF fails unless bin is a static ELF executable for arch: no interpreter, no
// shared libraries.
func checkStaticELF(t *testing.T, what string, bin []byte, arch string) {
	t.Helper()
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s: not ELF: %v", what, err)
	}
	defer f.Close()
	if f.Machine != elfMachines[arch] {
		t.Errorf("%s: machine %v, want %v", what, f.Machine, elfMachines[arch])
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s: has an interpreter: dynamically linked", what)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("%s: links %v", what, libs)
	}
}

// TestProductImages builds the product images twice, as `make images` does, and checks what
// the issue asks of them: the same digests and index.json twice, both platforms, user 65532,
// the binary as entrypoint, /tmp 1777, source/revision/version annotations and static ELF of
// each platform's machine.
func TestProductImages(t *testing.T) {
	ctx := context.Background()
	release := Release{Version: "v0.0.0-test", Revision: "0123456789abcdef0123456789abcdef01234567"}
	dirs := []string{t.TempDir(), t.TempDir()}
	for _, dir := range dirs {
		if err := WriteProduct(ctx, dir, "example.com/cors", "0.0.0-test", release); err != nil {
			t.Fatal(err)
		}
	}
	for _, pi := range ProductImages {
		t.Run(pi.Name, func(t *testing.T) {
			var indexJSON [][]byte
			for _, dir := range dirs {
				b, err := os.ReadFile(filepath.Join(LayoutDir(dir, pi.Name), "index.json"))
				if err != nil {
					t.Fatal(err)
				}
				indexJSON = append(indexJSON, b)
				if _, err := os.Stat(filepath.Join(LayoutDir(dir, pi.Name), "oci-layout")); err != nil {
					t.Error(err)
				}
			}
			if !bytes.Equal(indexJSON[0], indexJSON[1]) {
				t.Fatalf("two builds gave different index.json:\n%s\n%s", indexJSON[0], indexJSON[1])
			}
			idx, err := ReadLayout(LayoutDir(dirs[0], pi.Name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			if m.Annotations[AnnotationVersion] != release.Version || m.Annotations[AnnotationRevision] != release.Revision || m.Annotations[AnnotationSource] != Source {
				t.Errorf("index annotations: %v", m.Annotations)
			}
			var platforms []string
			for _, d := range m.Manifests {
				platforms = append(platforms, d.Platform.String())
			}
			if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
				t.Errorf("platforms %v", platforms)
			}
			for _, p := range Platforms {
				img, err := PlatformImage(idx, p)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				exe := "/usr/local/bin/" + pi.Name
				if cfg.Config.User != "65532" || !slices.Equal(cfg.Config.Entrypoint, []string{exe}) ||
					cfg.OS != p.OS || cfg.Architecture != p.Architecture || !cfg.Created.Equal(Epoch) {
					t.Errorf("%s config: user %q entrypoint %q platform %s/%s created %v", p, cfg.Config.User, cfg.Config.Entrypoint, cfg.OS, cfg.Architecture, cfg.Created)
				}
				if cfg.Config.Labels[AnnotationVersion] != release.Version {
					t.Errorf("%s labels: %v", p, cfg.Config.Labels)
				}
				headers, contents, _ := layerFiles(t, img)
				if h := headers["tmp/"]; h == nil || h.Mode != 0o1777 {
					t.Errorf("%s: /tmp is %+v, want a directory of mode 1777", p, h)
				}
				checkStaticELF(t, p.String()+" "+exe, contents[exe[1:]], p.Architecture)
				// Extra binaries sit beside the entrypoint with their xattrs; no other file of
				// the image carries any (in particular no other file capability).
				withXattrs := map[string]map[string]string{}
				for _, b := range pi.Extra {
					file := "usr/local/bin/" + b.Name
					checkStaticELF(t, p.String()+" "+file, contents[file], p.Architecture)
					if h := headers[file]; h == nil || h.Mode != 0o755 || h.Uid != 0 {
						t.Errorf("%s: %s is %+v, want root's, mode 755", p, file, h)
					}
					withXattrs[file] = b.Xattrs
				}
				for name, h := range headers {
					got := map[string]string{}
					for k, v := range h.PAXRecords {
						if x, ok := strings.CutPrefix(k, paxXattr); ok {
							got[x] = v
						}
					}
					if want := withXattrs[name]; !maps.Equal(got, want) && (len(got) > 0 || len(want) > 0) {
						t.Errorf("%s: %s has xattrs %q, want %q", p, name, got, want)
					}
				}
				if pi.Name == "cors-sidecar" {
					init := headers[contract.InitCommand[1:]]
					if init == nil || init.PAXRecords["SCHILY.xattr.security.capability"] != "\x01\x00\x00\x02\x00\x10\x00\x00"+strings.Repeat("\x00", 12) {
						t.Errorf("%s: %s lacks the file capability cap_net_admin+ep: %+v", p, contract.InitCommand, init)
					}
				}

				// The tarball for `ctr images import` holds the same image under the repository's name.
				tb, err := tarball.ImageFromPath(TarballPath(dirs[0], pi.Name, p), nil)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := img.ConfigName()
				if got, _ := tb.ConfigName(); got != want {
					t.Errorf("%s tarball config %s, want %s", p, got, want)
				}
			}
		})
	}
}
