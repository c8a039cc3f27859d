package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"

	"sigs.k8s.io/yaml"
)

func TestIsKubectlPlugin(t *testing.T) {
	for argv0, want := range map[string]bool{
		"kubectl-cors":                   true,
		"/home/u/.krew/bin/kubectl-cors": true,
		"kubectl-cors.exe":               true,
		"cors-webhook":                   false,
		"/usr/local/bin/cors-webhook":    false,
		"kubectl-cors-extra":             false,
	} {
		if got := isKubectlPlugin(argv0); got != want {
			t.Errorf("isKubectlPlugin(%q) = %v, want %v", argv0, got, want)
		}
	}
}

// TestKubectlPluginCommands: `kubectl cors` has the user-facing commands of cors-webhook, the
// same ones, and none of the servers.
func TestKubectlPluginCommands(t *testing.T) {
	names := func(c interface{ Name() string }) string { return c.Name() }
	var plugin, full []string
	for _, c := range newKubectlPluginCommand().Commands() {
		plugin = append(plugin, names(c))
	}
	for _, c := range newRootCommand().Commands() {
		full = append(full, names(c))
	}
	if want := []string{"convert", "describe", "inject", "validate", "version"}; !slices.Equal(plugin, want) {
		t.Errorf("kubectl cors has %v, want %v", plugin, want)
	}
	for _, n := range plugin {
		if !slices.Contains(full, n) {
			t.Errorf("kubectl cors %s is not a cors-webhook command", n)
		}
	}

	root := newKubectlPluginCommand()
	var out, errOut bytes.Buffer
	root.SetIn(strings.NewReader(seedAll))
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs([]string{"validate", "-f", "-"})
	if err := root.Execute(); err != nil || !strings.Contains(errOut.String(), "3 objects: 3 valid, 0 invalid, 5 warnings") {
		t.Errorf("kubectl cors validate -f - on the guide: %v\n%s", err, errOut.String())
	}
}

// TestKrewManifest renders .krew.yaml as krew-release-bot does (addURIAndSha writes the
// archive's uri and sha256) and checks it: plugin cors, one archive per platform that
// `make kubectl-cors-dist` builds, each holding this binary under the plugin's name.
func TestKrewManifest(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", ".krew.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const tag = "v1.2.3"
	tmpl, err := template.New("krew").Funcs(template.FuncMap{
		"addURIAndSha": func(url, tag string) string {
			return "uri: " + strings.ReplaceAll(url, "{{ .TagName }}", tag) + "\n      sha256: " + strings.Repeat("0", 64)
		},
	}).Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, map[string]string{"TagName": tag}); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Kind     string
		Metadata struct{ Name string }
		Spec     struct {
			Version   string
			Platforms []struct {
				Selector struct{ MatchLabels map[string]string } `json:"selector"`
				URI      string                                  `json:"uri"`
				Bin      string                                  `json:"bin"`
			}
		}
	}
	if err := yaml.Unmarshal(out.Bytes(), &m); err != nil {
		t.Fatalf("rendered .krew.yaml: %v\n%s", err, out.String())
	}
	if m.Kind != "Plugin" || m.Metadata.Name != "cors" || m.Spec.Version != tag {
		t.Errorf("kind %q name %q version %q", m.Kind, m.Metadata.Name, m.Spec.Version)
	}
	var platforms []string
	for _, p := range m.Spec.Platforms {
		goos, goarch := p.Selector.MatchLabels["os"], p.Selector.MatchLabels["arch"]
		platforms = append(platforms, goos+"/"+goarch)
		wantBin := kubectlPluginName
		if goos == "windows" {
			wantBin += ".exe"
		}
		if !isKubectlPlugin(wantBin) || p.Bin != wantBin {
			t.Errorf("%s/%s: bin %q, want %q", goos, goarch, p.Bin, wantBin)
		}
		if want := "/releases/download/" + tag + "/kubectl-cors_" + tag + "_" + goos + "_" + goarch + ".tar.gz"; !strings.HasSuffix(p.URI, want) {
			t.Errorf("%s/%s: uri %s, want one ending in %s", goos, goarch, p.URI, want)
		}
	}
	makefile, err := os.ReadFile(filepath.Join("..", "..", "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range platforms {
		if !bytes.Contains(makefile, []byte(" "+p)) {
			t.Errorf("the Makefile's KUBECTL_CORS_PLATFORMS do not build %s", p)
		}
	}
}
