package main

import (
	"archive/tar"
	"bytes"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// binDir is where the product images keep their binaries (internal/imagebuild).
const binDir = "usr/local/bin/"

// CycloneDX is the part of a CycloneDX 1.5 BOM this tool writes: the image, and the Go
// binaries in it with the modules each was built from, as their build info records them.
type CycloneDX struct {
	BOMFormat   string      `json:"bomFormat"`
	SpecVersion string      `json:"specVersion"`
	Version     int         `json:"version"`
	Metadata    BOMMetadata `json:"metadata"`
	Components  []Component `json:"components"`
}

type BOMMetadata struct {
	Component Component `json:"component"`
	Tools     struct {
		Components []Component `json:"components"`
	} `json:"tools"`
}

type Component struct {
	Type       string     `json:"type"`
	Name       string     `json:"name"`
	Version    string     `json:"version,omitempty"`
	PURL       string     `json:"purl,omitempty"`
	Hashes     []Hash     `json:"hashes,omitempty"`
	Properties []Property `json:"properties,omitempty"`
}

type Hash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type Property struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// PredicateCycloneDX is the in-toto predicate type of a CycloneDX BOM (cosign's --type cyclonedx).
const PredicateCycloneDX = "https://cyclonedx.org/bom"

// imageSBOM reads every Go binary under /usr/local/bin of img and returns the BOM of the
// image: one application per binary (its main package, Go version and build settings) and one
// library per module any of them links, with the module's go.sum hash.
func imageSBOM(img v1.Image, name, version string) (*CycloneDX, error) {
	bins, err := goBinaries(img)
	if err != nil {
		return nil, err
	}
	if len(bins) == 0 {
		return nil, fmt.Errorf("%s: no Go binary under /%s", name, binDir)
	}
	bom := &CycloneDX{BOMFormat: "CycloneDX", SpecVersion: "1.5", Version: 1}
	bom.Metadata.Component = Component{Type: "container", Name: name, Version: version}
	bom.Metadata.Tools.Components = []Component{{Type: "application", Name: "cors-webhook hack/sign"}}
	libs := map[string]Component{}
	for _, file := range slices.Sorted(mapsKeys(bins)) {
		bi := bins[file]
		app := Component{Type: "application", Name: bi.Path, Version: bi.Main.Version,
			PURL:       purl(bi.Main.Path, bi.Main.Version),
			Properties: []Property{{"cors-webhook:file", "/" + file}, {"cors-webhook:go", bi.GoVersion}}}
		for _, s := range bi.Settings {
			app.Properties = append(app.Properties, Property{"cors-webhook:build:" + s.Key, s.Value})
		}
		bom.Components = append(bom.Components, app)
		for _, d := range bi.Deps {
			if d.Replace != nil {
				d = d.Replace
			}
			c := Component{Type: "library", Name: d.Path, Version: d.Version, PURL: purl(d.Path, d.Version)}
			if h, ok := strings.CutPrefix(d.Sum, "h1:"); ok {
				c.Properties = []Property{{"cors-webhook:go.sum", "h1:" + h}}
			}
			libs[d.Path+"@"+d.Version] = c
		}
	}
	for _, k := range slices.Sorted(mapsKeys(libs)) {
		bom.Components = append(bom.Components, libs[k])
	}
	return bom, nil
}

// goBinaries returns the build info of every Go binary under binDir in img's layers (the last
// layer that has a file wins, as in the image's file system).
func goBinaries(img v1.Image) (map[string]*buildinfo.BuildInfo, error) {
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := map[string]*buildinfo.BuildInfo{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				rc.Close()
				return nil, err
			}
			file := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
			if h.Typeflag != tar.TypeReg || !strings.HasPrefix(file, binDir) || h.Size > 256<<20 {
				continue
			}
			data, err := io.ReadAll(tr)
			if err != nil {
				rc.Close()
				return nil, err
			}
			if bi, err := buildinfo.Read(bytes.NewReader(data)); err == nil {
				out[file] = bi
			}
		}
		rc.Close()
	}
	return out, nil
}

// purl is the package URL of a Go module.
func purl(modPath, version string) string {
	if modPath == "" {
		return ""
	}
	p := "pkg:golang/" + modPath
	if version != "" && version != "(devel)" {
		p += "@" + version
	}
	return p
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
