package imagebuild

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestArtifactHubImages: the images the chart's Artifact Hub metadata lists (which Artifact Hub
// scans for vulnerabilities) are the product images at the chart's appVersion, what it runs.
func TestArtifactHubImages(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "charts", "cors-webhook", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion  string            `json:"appVersion"`
		Annotations map[string]string `json:"annotations"`
	}
	if err := yaml.Unmarshal(b, &chart); err != nil {
		t.Fatal(err)
	}
	var images []struct{ Name, Image string }
	if err := yaml.Unmarshal([]byte(chart.Annotations["artifacthub.io/images"]), &images); err != nil {
		t.Fatalf("artifacthub.io/images: %v", err)
	}
	var got, want []string
	for _, im := range images {
		got = append(got, im.Name+"="+im.Image)
	}
	for _, pi := range ProductImages {
		want = append(want, pi.Name+"="+DefaultRepository+"/"+pi.Name+":"+chart.AppVersion)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("artifacthub.io/images lists %v, want %v", got, want)
	}
	var crds []struct{ Kind, Name string }
	if err := yaml.Unmarshal([]byte(chart.Annotations["artifacthub.io/crds"]), &crds); err != nil || len(crds) != 3 {
		t.Errorf("artifacthub.io/crds: %d entries, %v", len(crds), err)
	}
	for _, c := range crds {
		if _, err := os.Stat(filepath.Join("..", "..", "charts", "cors-webhook", "crds", "plugin.flomesh.io_"+c.Name[:len(c.Name)-len(".plugin.flomesh.io")]+".yaml")); err != nil {
			t.Errorf("artifacthub.io/crds names %s, which the chart does not install: %v", c.Name, err)
		}
	}
}
