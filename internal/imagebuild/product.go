package imagebuild

import (
	"context"
	"encoding/binary"
	"fmt"
	"path"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"

	"github.com/cors-webhook/cors-webhook/contract"
)

// Platforms are the platforms of the product images.
var Platforms = []v1.Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64"},
}

// DefaultRepository is where releases push the product images (REPOSITORY/NAME:appVersion):
// the chart's default image references.
const DefaultRepository = "ghcr.io/cors-webhook"

// Source is the repository the product images name in their source annotation.
const Source = "https://github.com/cors-webhook/cors-webhook"

// Binary is one program of a product image: a static build of Package at /usr/local/bin/NAME
// with the extended attributes Xattrs (e.g. a file capability).
type Binary struct {
	Name, Package string
	Xattrs        map[string]string
}

// ProductImages are the product's images: the name of each (the last element of its
// repository), the main package its entrypoint is built from, and further binaries it holds.
var ProductImages = []struct {
	Name, Package string
	Extra         []Binary
}{
	{Name: "cors-webhook", Package: "github.com/cors-webhook/cors-webhook/cmd/cors-webhook"},
	{Name: "cors-sidecar", Package: "github.com/cors-webhook/cors-webhook/cmd/cors-sidecar", Extra: []Binary{{
		// The injected init container runs it as a non-root user: its file capability is how
		// it gets CAP_NET_ADMIN. It must be a file of its own: the proxy container drops every
		// capability, and the kernel refuses to execute a binary whose file capabilities the
		// bounding set cannot grant (capabilities(7), "capability-dumb binaries").
		Name: path.Base(contract.InitCommand), Package: "github.com/cors-webhook/cors-webhook/cmd/cors-init",
		Xattrs: map[string]string{XattrCapability: string(FileCapabilities(CapNetAdmin))},
	}}},
	// The node agent of the cni redirect mode: the chart's DaemonSet runs `cors-cni install`,
	// which copies this binary into the node's CNI bin dir.
	{Name: "cors-cni", Package: "github.com/cors-webhook/cors-webhook/cmd/cors-cni"},
}

// XattrCapability is the extended attribute holding a file's capabilities.
const XattrCapability = "security.capability"

// CapNetAdmin is the number of CAP_NET_ADMIN (linux/capability.h).
const CapNetAdmin = 12

// FileCapabilities is the XattrCapability value that grants caps as permitted and effective
// ("+ep") to whoever executes the file: struct vfs_cap_data of revision 2 (magic
// VFS_CAP_REVISION_2 | VFS_CAP_FLAGS_EFFECTIVE, then permitted and inheritable masks of 2×32
// bits, little-endian). Revision 2 has no root user ID: it applies in the initial user
// namespace, where containers without user namespaces run.
func FileCapabilities(caps ...uint) []byte {
	const revision2, effective = 0x02000000, 0x000001
	var permitted [2]uint32
	for _, c := range caps {
		permitted[c/32] |= 1 << (c % 32)
	}
	b := binary.LittleEndian.AppendUint32(nil, revision2|effective)
	for _, p := range permitted {
		b = binary.LittleEndian.AppendUint32(b, p) // permitted
		b = binary.LittleEndian.AppendUint32(b, 0) // inheritable
	}
	return b
}

// Release identifies what a product build is made of.
type Release struct {
	Version  string // the chart's appVersion on a release; `git describe` otherwise
	Revision string // the commit
	// Platforms to build for (default: Platforms). A test node needs only HostPlatform.
	Platforms []v1.Platform
}

// Product builds the product's image indexes, keyed by image name: for each of
// [ProductImages] a static binary per platform at /usr/local/bin/NAME, the entrypoint, and its
// Extra binaries beside it, running as NonRoot, annotated with source, revision and version.
func Product(ctx context.Context, r Release) (map[string]v1.ImageIndex, error) {
	if r.Version == "" {
		return nil, fmt.Errorf("a release needs a version")
	}
	annotations := map[string]string{AnnotationSource: Source, AnnotationVersion: r.Version}
	if r.Revision != "" {
		annotations[AnnotationRevision] = r.Revision
	}
	platforms := r.Platforms
	if len(platforms) == 0 {
		platforms = Platforms
	}
	specs := make([][]Spec, len(ProductImages))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2)
	for i, pi := range ProductImages {
		specs[i] = make([]Spec, len(platforms))
		binaries := append([]Binary{{Name: pi.Name, Package: pi.Package}}, pi.Extra...)
		for j, p := range platforms {
			exe := "/usr/local/bin/" + pi.Name
			specs[i][j] = Spec{
				Platform:    p,
				Files:       make([]File, len(binaries)),
				Entrypoint:  []string{exe},
				Annotations: annotations,
			}
			for k, b := range binaries {
				g.Go(func() error {
					bin, err := BuildGo(gctx, b.Package, p, "-X main.version="+r.Version)
					if err != nil {
						return err
					}
					specs[i][j].Files[k] = File{Path: "/usr/local/bin/" + b.Name, Mode: 0o755, Contents: bin, Xattrs: b.Xattrs}
					return nil
				})
			}
		}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]v1.ImageIndex{}
	for i, pi := range ProductImages {
		idx, err := Index(annotations, specs[i]...)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", pi.Name, err)
		}
		out[pi.Name] = idx
	}
	return out, nil
}

// LayoutDir is where WriteProduct puts the OCI image layout of image name under dir.
func LayoutDir(dir, image string) string { return filepath.Join(dir, image) }

// TarballPath is where WriteProduct puts the tarball of image name for platform p under dir.
func TarballPath(dir, image string, p v1.Platform) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%s-%s.tar", image, p.OS, p.Architecture))
}

// WriteProduct builds the product images and writes, for each, its OCI image layout
// (LayoutDir) and one tarball per platform (TarballPath) named repository/NAME:tag, which
// `ctr -n k8s.io images import` loads on a node of that platform.
func WriteProduct(ctx context.Context, dir, repository, tag string, r Release) error {
	indexes, err := Product(ctx, r)
	if err != nil {
		return err
	}
	for _, pi := range ProductImages {
		idx := indexes[pi.Name]
		if err := WriteLayout(LayoutDir(dir, pi.Name), idx); err != nil {
			return err
		}
		for _, p := range Platforms {
			img, err := PlatformImage(idx, p)
			if err != nil {
				return err
			}
			if err := WriteTarball(TarballPath(dir, pi.Name, p), repository+"/"+pi.Name+":"+tag, img); err != nil {
				return err
			}
		}
	}
	return nil
}

// PushProduct pushes the indexes WriteProduct wrote under dir to registry/NAME:tag (registry
// is host[:port]/path) and returns what it pushed, by digest, keyed by image name.
func PushProduct(ctx context.Context, dir, registry, tag string, opts ...name.Option) (map[string]name.Digest, error) {
	pushed := map[string]name.Digest{}
	for _, pi := range ProductImages {
		idx, err := ReadLayout(LayoutDir(dir, pi.Name))
		if err != nil {
			return nil, fmt.Errorf("%s (run make images first): %w", pi.Name, err)
		}
		d, err := Push(ctx, strings.TrimSuffix(registry, "/")+"/"+pi.Name+":"+tag, idx, opts...)
		if err != nil {
			return nil, err
		}
		pushed[pi.Name] = d
	}
	return pushed, nil
}
