package imagebuild

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
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

// ProductImages are the product's images: the name of each (the last element of its
// repository) and the main package its entrypoint is built from.
var ProductImages = []struct{ Name, Package string }{
	{"cors-webhook", "github.com/cors-webhook/cors-webhook/cmd/cors-webhook"},
	{"cors-sidecar", "github.com/cors-webhook/cors-webhook/cmd/cors-sidecar"},
}

// Release identifies what a product build is made of.
type Release struct {
	Version  string // the chart's appVersion on a release; `git describe` otherwise
	Revision string // the commit
	// Platforms to build for (default: Platforms). A test node needs only HostPlatform.
	Platforms []v1.Platform
}

// Product builds the product's image indexes, keyed by image name: for each of
// [ProductImages] a static binary per platform at /usr/local/bin/NAME, the entrypoint,
// running as NonRoot, annotated with source, revision and version.
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
		for j, p := range platforms {
			g.Go(func() error {
				bin, err := BuildGo(gctx, pi.Package, p, "-X main.version="+r.Version)
				if err != nil {
					return err
				}
				exe := "/usr/local/bin/" + pi.Name
				specs[i][j] = Spec{
					Platform:    p,
					Files:       []File{{Path: exe, Mode: 0o755, Contents: bin}},
					Entrypoint:  []string{exe},
					Annotations: annotations,
				}
				return nil
			})
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
