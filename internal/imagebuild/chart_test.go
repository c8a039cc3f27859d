package imagebuild

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/inject"
)

// TestChartDefaultsAreWhatAReleasePushes: the chart runs and injects, and the injector
// defaults to, DefaultRepository/NAME with the tag defaulting to its appVersion, the tag
// `make push` uses.
func TestChartDefaultsAreWhatAReleasePushes(t *testing.T) {
	chart := filepath.Join("..", "..", "charts", "cors-webhook")
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	var values struct {
		Image struct {
			Repository, Tag string
		}
		Injector struct {
			Sidecar struct {
				Image struct{ Repository, Tag string }
			}
		}
		CNI struct {
			Image struct{ Repository, Tag string }
		} `json:"cni"`
	}
	for file, into := range map[string]any{"Chart.yaml": &meta, "values.yaml": &values} {
		b, err := os.ReadFile(filepath.Join(chart, file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if meta.AppVersion == "" {
		t.Fatal("Chart.yaml has no appVersion")
	}
	// The injector's default (cors-webhook serve and inject without --sidecar-image) is the
	// same image, never `latest`.
	if want := DefaultRepository + "/cors-sidecar:" + meta.AppVersion; inject.DefaultSidecarImage != want || inject.AppVersion != meta.AppVersion {
		t.Errorf("inject.DefaultSidecarImage %s (AppVersion %s), want %s: set inject.AppVersion to the chart's appVersion", inject.DefaultSidecarImage, inject.AppVersion, want)
	}
	for name, img := range map[string]struct{ Repository, Tag string }{
		"cors-webhook": values.Image,
		"cors-sidecar": values.Injector.Sidecar.Image,
		"cors-cni":     values.CNI.Image,
	} {
		if img.Repository != DefaultRepository+"/"+name || img.Tag != "" {
			t.Errorf("chart default %s:%s, want %s/%s with the tag left to appVersion", img.Repository, img.Tag, DefaultRepository, name)
		}
	}
}
