package e2e

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/cors-webhook/cors-webhook/internal/imagebuild"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestPushImagesToRegistry pushes the indexes `make images` wrote to bin/images, with the code
// `make push` runs, to go-containerregistry's registry served in this process, and pulls them
// back by digest: same index digest, both platforms, each image's config and layers readable.
func TestPushImagesToRegistry(t *testing.T) {
	root, err := localcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "bin", "images")
	for _, pi := range imagebuild.ProductImages {
		if _, err := os.Stat(filepath.Join(imagebuild.LayoutDir(dir, pi.Name), "index.json")); err != nil {
			t.Fatalf("run `make images` first (make test does): %v", err)
		}
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://") + "/team/cors"

	ctx := context.Background()
	pushed, err := imagebuild.PushProduct(ctx, dir, reg, "0.0.0-e2e")
	if err != nil {
		t.Fatal(err)
	}
	for _, pi := range imagebuild.ProductImages {
		local, err := imagebuild.ReadLayout(imagebuild.LayoutDir(dir, pi.Name))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := local.Digest()
		ref := pushed[pi.Name]
		if ref.DigestStr() != want.String() || ref.Context().RepositoryStr() != "team/cors/"+pi.Name {
			t.Errorf("%s pushed as %s, want digest %s in team/cors/%s", pi.Name, ref, want, pi.Name)
		}
		for _, byRef := range []string{ref.String(), ref.Context().Tag("0.0.0-e2e").String()} {
			got, err := imagebuild.Pull(ctx, byRef)
			if err != nil {
				t.Fatalf("pull %s: %v", byRef, err)
			}
			if d, _ := got.Digest(); d != want {
				t.Errorf("pull %s: digest %s, want %s", byRef, d, want)
			}
		}
		remote, err := imagebuild.Pull(ctx, ref.String())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range imagebuild.Platforms {
			img, err := imagebuild.PlatformImage(remote, p)
			if err != nil {
				t.Fatalf("%s: %v", pi.Name, err)
			}
			cfg, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Architecture != p.Architecture || cfg.Config.User != imagebuild.NonRoot || len(cfg.Config.Entrypoint) != 1 {
				t.Errorf("%s %s pulled config: arch %s user %q entrypoint %q", pi.Name, p, cfg.Architecture, cfg.Config.User, cfg.Config.Entrypoint)
			}
			checkLayersMatch(t, pi.Name+" "+p.String(), img, local, p)
		}
	}
}

// checkLayersMatch compares the pulled image's layers, blob by blob, with the local layout's.
func checkLayersMatch(t *testing.T, what string, pulled v1.Image, local v1.ImageIndex, p v1.Platform) {
	t.Helper()
	localImg, err := imagebuild.PlatformImage(local, p)
	if err != nil {
		t.Fatal(err)
	}
	want, err := localImg.Layers()
	if err != nil {
		t.Fatal(err)
	}
	got, err := pulled.Layers()
	if err != nil || len(got) != len(want) {
		t.Fatalf("%s: %d layers (%v), want %d", what, len(got), err, len(want))
	}
	for i := range got {
		gd, _ := got[i].Digest()
		wd, _ := want[i].Digest()
		rc, err := got[i].Compressed()
		if err != nil {
			t.Fatalf("%s: layer %s: %v", what, gd, err)
		}
		_, err = io.Copy(io.Discard, rc) // reading to the end verifies the blob's digest
		rc.Close()
		if err != nil {
			t.Errorf("%s: layer %s: %v", what, gd, err)
		}
		if gd != wd {
			t.Errorf("%s: layer %d is %s, want %s", what, i, gd, wd)
		}
	}
}
