package imagebuild

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestChartDefaultsAreWhatAReleasePushes: the chart runs and injects
// DefaultRepository/NAME with the tag defaulting to its appVersion, the tag `make push` uses.
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
	for name, img := range map[string]struct{ Repository, Tag string }{
		"cors-webhook": values.Image,
		"cors-sidecar": values.Injector.Sidecar.Image,
	} {
		if img.Repository != DefaultRepository+"/"+name || img.Tag != "" {
			t.Errorf("chart default %s:%s, want %s/%s with the tag left to appVersion", img.Repository, img.Tag, DefaultRepository, name)
		}
	}
}
