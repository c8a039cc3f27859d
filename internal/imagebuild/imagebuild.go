// Package imagebuild builds OCI images without a container engine, with go-containerregistry:
// one layer made from a list of files, a config, an image index across platforms, written as an
// OCI image layout directory, as a per-platform tarball that `ctr -n k8s.io images import`
// reads, or pushed to a registry.
//
// Builds are reproducible: tar entries are sorted, every timestamp is [Epoch], owners are 0:0
// and modes fixed, so one commit built twice gives the same digests.
//
// Entry points:
//
//   - [Image] and [Index]: an image from a [Spec], an index of several.
//   - [BuildGo]: a static Go binary for a platform (CGO off, -trimpath).
//   - [Product]: the cors-webhook, cors-sidecar and cors-cni indexes (linux/amd64 + linux/arm64);
//     `make images` writes them with [WriteLayout] and [WriteTarball], `make push` sends them
//     with [Push].
//   - [Standins]: the images the tests need that no registry here gives (a pause image, a
//     `pipy` stand-in for flomesh/pipy:latest and curlimages/curl:latest made of the host's
//     curl), as tarballs for `ctr images import`. `go run ./hack/images standins -out DIR` does
//     the same from the command line.
package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Epoch is the time of every file and of every image config: fixed so builds are reproducible.
var Epoch = time.Unix(0, 0).UTC()

// NonRoot is the user images run as (distroless' "nonroot").
const NonRoot = "65532"

// OCI annotation and label keys an image carries.
const (
	AnnotationSource   = "org.opencontainers.image.source"
	AnnotationRevision = "org.opencontainers.image.revision"
	AnnotationVersion  = "org.opencontainers.image.version"
)

// paxXattr prefixes the PAX records of extended attributes (GNU tar, containerd, Docker).
const paxXattr = "SCHILY.xattr."

// File is one entry of an image's layer. Parents of a path are added as directories (0755).
type File struct {
	Path     string      // absolute, e.g. /usr/local/bin/pipy
	Mode     os.FileMode // permission bits, plus os.ModeSticky or os.ModeDir where wanted
	Contents []byte      // regular files
	Link     string      // when set, the entry is a symlink to Link
	// Xattrs are extended attributes, e.g. XattrCapability, written as the PAX records
	// SCHILY.xattr.NAME that container runtimes apply when they unpack the layer.
	Xattrs map[string]string
}

// Spec describes one single-platform image.
type Spec struct {
	Platform    v1.Platform
	Files       []File
	Entrypoint  []string
	Cmd         []string
	Env         []string // PATH defaults to /usr/local/bin:/usr/bin:/bin
	User        string   // default NonRoot
	WorkingDir  string
	Annotations map[string]string // also set as config labels
}

// baseFiles are in every image: a writable /tmp (1777, for non-root containers) and the
// passwd/group entries of root and NonRoot.
func baseFiles() []File {
	return []File{
		{Path: "/tmp", Mode: os.ModeDir | os.ModeSticky | 0o777},
		{Path: "/etc/passwd", Mode: 0o644, Contents: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{Path: "/etc/group", Mode: 0o644, Contents: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{Path: "/home/nonroot", Mode: os.ModeDir | 0o700},
	}
}

// Layer returns one reproducible, gzip-compressed OCI layer holding files, their parent
// directories and the base files.
func Layer(files []File) (v1.Layer, error) {
	entries := map[string]File{}
	for _, f := range slices.Concat(baseFiles(), files) {
		p := path.Clean("/" + f.Path)
		if p == "/" {
			return nil, fmt.Errorf("file with empty path")
		}
		f.Path = p
		entries[p] = f
		for dir := path.Dir(p); dir != "/"; dir = path.Dir(dir) {
			if _, ok := entries[dir]; !ok {
				entries[dir] = File{Path: dir, Mode: os.ModeDir | 0o755}
			}
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range slices.Sorted(maps.Keys(entries)) {
		f := entries[p]
		h := &tar.Header{
			Name:    strings.TrimPrefix(p, "/"),
			Mode:    tarMode(f.Mode),
			ModTime: Epoch,
			Format:  tar.FormatPAX,
		}
		for k, v := range f.Xattrs { // archive/tar writes PAX records sorted by key
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[paxXattr+k] = v
		}
		switch {
		case f.Link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.Link
		case f.Mode.IsDir():
			h.Typeflag = tar.TypeDir
			h.Name += "/"
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.Contents))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Contents); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressedCaching)
}

// tarMode is m in tar's encoding (permission bits plus setuid/setgid/sticky).
func tarMode(m os.FileMode) int64 {
	mode := int64(m.Perm())
	if m&os.ModeSticky != 0 {
		mode |= 0o1000
	}
	if m&os.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&os.ModeSetuid != 0 {
		mode |= 0o4000
	}
	return mode
}

// Image builds the single-platform OCI image s describes.
func Image(s Spec) (v1.Image, error) {
	layer, err := Layer(s.Files)
	if err != nil {
		return nil, err
	}
	base := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: Epoch}
	cfg.Architecture, cfg.OS, cfg.Variant = s.Platform.Architecture, s.Platform.OS, s.Platform.Variant
	cfg.Config.Entrypoint = s.Entrypoint
	cfg.Config.Cmd = s.Cmd
	cfg.Config.WorkingDir = s.WorkingDir
	cfg.Config.User = s.User
	if cfg.Config.User == "" {
		cfg.Config.User = NonRoot
	}
	cfg.Config.Env = s.Env
	if !slices.ContainsFunc(s.Env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		cfg.Config.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin"}, s.Env...)
	}
	cfg.Config.Labels = maps.Clone(s.Annotations)
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, err
	}
	if len(s.Annotations) > 0 {
		img = mutate.Annotations(img, s.Annotations).(v1.Image)
	}
	return img, nil
}

// Index builds an OCI image index of one image per spec, each listed with its platform.
func Index(annotations map[string]string, specs ...Spec) (v1.ImageIndex, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, s := range specs {
		img, err := Image(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Platform, err)
		}
		p := s.Platform
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	if len(annotations) > 0 {
		idx = mutate.Annotations(idx, annotations).(v1.ImageIndex)
	}
	return idx, nil
}

// WriteLayout writes idx as the OCI image layout dir (oci-layout, index.json, blobs/):
// index.json is the index itself, so its sha256 is the digest a push of idx gives. An
// existing layout at dir is replaced.
func WriteLayout(dir string, idx v1.ImageIndex) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	_, err := layout.Write(dir, idx)
	return err
}

// ReadLayout reads the index that WriteLayout wrote at dir.
func ReadLayout(dir string) (v1.ImageIndex, error) {
	return layout.ImageIndexFromPath(dir)
}

// PlatformImage is the image of idx for platform p.
func PlatformImage(idx v1.ImageIndex, p v1.Platform) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range m.Manifests {
		if d.Platform != nil && d.Platform.Equals(p) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("no image for %s in the index", p)
}

// WriteTarball writes img as a tarball named ref (e.g. docker.io/flomesh/pipy:latest) that
// `ctr -n k8s.io images import` and `docker load` read.
func WriteTarball(file, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	return tarball.WriteToFile(file, tag, img)
}

// Push pushes idx to ref (host[:port]/path:tag) with the credentials of the default keychain
// (docker's config.json) and returns the pushed reference by digest.
func Push(ctx context.Context, ref string, idx v1.ImageIndex, opts ...name.Option) (name.Digest, error) {
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return name.Digest{}, err
	}
	if err := remote.WriteIndex(r, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return name.Digest{}, fmt.Errorf("push %s: %w", r, err)
	}
	d, err := idx.Digest()
	if err != nil {
		return name.Digest{}, err
	}
	return r.Context().Digest(d.String()), nil
}

// Pull fetches the index ref names (by tag or digest) from its registry.
func Pull(ctx context.Context, ref string, opts ...name.Option) (v1.ImageIndex, error) {
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, err
	}
	return remote.Index(r, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
}

// Sizes are the bytes of img's layers as a registry stores them (compressed) and as a node
// unpacks them (uncompressed).
func Sizes(img v1.Image) (compressed, uncompressed int64, err error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, 0, err
	}
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, 0, err
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, 0, err
		}
		u, err := io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return 0, 0, err
		}
		compressed, uncompressed = compressed+n, uncompressed+u
	}
	return compressed, uncompressed, nil
}
