package localcluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/cors-webhook/cors-webhook/internal/imagebuild"
)

// ProductRepository is the chart's default image repository prefix (image.repository and
// injector.sidecar.image.repository without the image name).
const ProductRepository = "ghcr.io/cors-webhook"

// GuideImages builds every image the seed guide needs on a node, keyed by the reference that
// pods name: the node's own (pause, CoreDNS from bin/coredns), the guide's stand-ins
// (flomesh/pipy:latest, curlimages/curl:latest) and the product's cors-webhook and
// cors-sidecar from this source tree, tagged tag, for this machine's platform only.
func GuideImages(ctx context.Context, tag string) (map[string]remote.Taggable, error) {
	images := map[string]remote.Taggable{}
	dir, err := os.MkdirTemp("", "cors-node-images-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	standins, err := imagebuild.Standins(ctx, dir)
	if err != nil {
		return nil, err
	}
	for _, s := range standins {
		images[s.Ref] = s.Image
	}
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	coredns, err := os.ReadFile(filepath.Join(binDir, "coredns"))
	if err != nil {
		return nil, fmt.Errorf("CoreDNS (make tools builds bin/coredns): %w", err)
	}
	images[CoreDNSImage], err = imagebuild.Image(imagebuild.Spec{
		Platform:   imagebuild.HostPlatform(),
		Files:      []imagebuild.File{{Path: "/coredns", Mode: 0o755, Contents: coredns}},
		Entrypoint: []string{"/coredns"},
	})
	if err != nil {
		return nil, err
	}
	product, err := imagebuild.Product(ctx, imagebuild.Release{Version: tag, Platforms: []v1.Platform{imagebuild.HostPlatform()}})
	if err != nil {
		return nil, err
	}
	for name, idx := range product {
		images[ProductRepository+"/"+name+":"+tag] = idx
	}
	return images, nil
}
