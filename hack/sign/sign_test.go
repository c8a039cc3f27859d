package main

import (
	"bytes"
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// goImageIndex is an index of one linux/amd64 image holding a Go binary (this test's own, whose
// build info names this module) at /usr/local/bin/NAME.
func goImageIndex(t *testing.T, binName string) v1.ImageIndex {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	var tarBuf bytes.Buffer
	if err := writeTar(&tarBuf, "usr/local/bin/"+binName, data); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tarBuf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	return mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}})
}

func TestSignAndVerify(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://") + "/team"
	a := artifacts{registry: reg, tag: "1.0.0", chartVersion: "0.1.0", images: []string{"cors-webhook", "cors-sidecar"}}
	ctx := context.Background()
	ref := func(s string) name.Reference {
		t.Helper()
		r, err := name.ParseReference(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	push := func(to string, img v1.Image) {
		t.Helper()
		if err := remote.Write(ref(to), img); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range a.images {
		if err := remote.WriteIndex(ref(reg+"/"+n+":1.0.0"), goImageIndex(t, n)); err != nil {
			t.Fatal(err)
		}
	}
	chart, _ := random.Image(512, 1)
	push(a.chartRef(), chart)

	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "test")
	if err := keygen(dir); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := keygen(other); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := verify(ctx, &out, a, dir+"/cosign.pub"); err == nil {
		t.Fatal("unsigned artifacts verified")
	}
	out.Reset()
	if err := sign(ctx, &out, a, dir+"/cosign.key"); err != nil {
		t.Fatalf("sign: %v\n%s", err, out.String())
	}
	out.Reset()
	if err := verify(ctx, &out, a, dir+"/cosign.pub"); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if got := strings.Count(out.String(), "is signed"); got != 3 {
		t.Errorf("%d signatures verified, want 3:\n%s", got, out.String())
	}
	if got := strings.Count(out.String(), "signed CycloneDX SBOM"); got != 2 {
		t.Errorf("%d SBOMs verified, want 2:\n%s", got, out.String())
	}
	t.Logf("verify:\n%s", out.String())

	sboms := t.TempDir()
	if err := writeSBOMs(ctx, io.Discard, a, sboms); err != nil {
		t.Fatal(err)
	}
	if files, _ := os.ReadDir(sboms); len(files) != 2 || files[0].Name() != "cors-sidecar-linux-amd64.cdx.json" {
		t.Errorf("sbom wrote %v, want one file per platform image", files)
	}

	if err := verify(ctx, io.Discard, a, other+"/cosign.pub"); err == nil {
		t.Error("verified with another key")
	}
	// A chart pushed again under the same tag after signing is not the signed one.
	other2, _ := random.Image(512, 1)
	push(a.chartRef(), other2)
	if err := verify(ctx, io.Discard, a, dir+"/cosign.pub"); err == nil || !strings.Contains(err.Error(), "charts/cors-webhook") {
		t.Errorf("a replaced chart verified: %v", err)
	}
}
