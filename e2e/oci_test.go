package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/imagebuild"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestInstallFromOCIRegistry ships the way a release does and installs the way a user does:
// `make push` sends the images `make images` built and the chart, as an OCI artifact, to the
// in-process registry that the real node's containerd pulls ghcr.io's images from; the chart is
// installed from oci:// with its defaults (so its images are ghcr.io/cors-webhook/*:appVersion,
// pulled from that registry) and the CORS Plugin declared, once `make sign` (a key pair made
// here) signed them and attached SBOMs and `make verify` checked it all; `helm test` then
// proves that the webhooks answer through the API server and that a selected pod is injected.
func TestInstallFromOCIRegistry(t *testing.T) {
	root, err := localcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, pi := range imagebuild.ProductImages {
		if _, err := os.Stat(filepath.Join(imagebuild.LayoutDir(filepath.Join(root, "bin", "images"), pi.Name), "index.json")); err != nil {
			t.Fatalf("run `make images` first (make test does): %v", err)
		}
	}
	chartVersion := chartField(t, root, "version")

	n := framework.StartNode(t, localcluster.NodeOptions{Images: guideImages(t)})
	mirror, ok := n.Registry("ghcr.io")
	if !ok {
		t.Fatal("the node has no registry for ghcr.io")
	}
	registry := mirror + "/cors-webhook" // stands for ghcr.io/cors-webhook on this node

	t.Run("make push", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		started := time.Now()
		cmd := exec.CommandContext(ctx, "make", "--no-print-directory", "push", "REGISTRY="+registry, "HELM_PUSH_FLAGS=--plain-http")
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make push: %v\n%s", err, out)
		}
		for _, want := range []string{"pushed " + registry + "/cors-webhook:", "pushed " + registry + "/cors-sidecar:", "Pushed: " + registry + "/charts/cors-webhook:" + chartVersion} {
			if !strings.Contains(string(out), want) {
				t.Errorf("make push did not say %q:\n%s", want, out)
			}
		}
		t.Logf("make push in %s:\n%s", time.Since(started).Round(time.Millisecond), out)
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("make sign and make verify", func(t *testing.T) {
		keys := t.TempDir()
		started := time.Now()
		run := func(dir string, args ...string) string {
			t.Helper()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, args[0], args[1:]...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=e2e")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
			}
			return string(out)
		}
		run(filepath.Join(root, "hack", "sign"), "go", "run", ".", "keygen", "-dir", keys)
		signed := run(root, "make", "--no-print-directory", "sign", "REGISTRY="+registry, "COSIGN_KEY="+filepath.Join(keys, "cosign.key"))
		verified := run(root, "make", "--no-print-directory", "verify", "REGISTRY="+registry, "COSIGN_PUB="+filepath.Join(keys, "cosign.pub"))
		// Every image index and the chart signed; every platform of every image with an SBOM.
		images := len(imagebuild.ProductImages)
		if n := strings.Count(verified, " is signed"); n != images+1 {
			t.Errorf("%d artifacts verified as signed, want %d", n, images+1)
		}
		if n := strings.Count(verified, "carries a signed CycloneDX SBOM"); n != images*len(imagebuild.Platforms) {
			t.Errorf("%d platform images verified with a signed SBOM, want %d", n, images*len(imagebuild.Platforms))
		}
		t.Logf("signed and verified in %s:\n%s\n%s", time.Since(started).Round(time.Millisecond), signed, verified)
	})
	if t.Failed() {
		t.FailNow()
	}

	chart := "oci://" + registry + "/charts/cors-webhook"
	t.Run("helm install "+chart, func(t *testing.T) {
		started := time.Now()
		installReleaseOnNode(t, n, chart, "--version", chartVersion, "--plain-http", "--set", "plugin.declare=true")
		t.Logf("installed from %s --version %s, webhook Deployments Available in %s", chart, chartVersion, time.Since(started).Round(time.Millisecond))
		images := n.Cluster.MustKubectl(t, "get", "deployments", "-n", realNodeNamespace, "-o", "jsonpath={.items[*].spec.template.spec.containers[*].image}").Stdout
		appVersion := chartField(t, root, "appVersion")
		for _, img := range strings.Fields(images) {
			if img != imagebuild.DefaultRepository+"/cors-webhook:"+appVersion {
				t.Errorf("the release runs %s, want the chart's default image", img)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("helm test", func(t *testing.T) {
		out := runHelmTest(t, n.Cluster, realNodeRelease, realNodeNamespace)
		if !strings.Contains(out, "ok: the mutating webhook injected the cors-sidecar") {
			t.Errorf("the self-test did not show an injection")
		}
	})
}

// chartField reads a top-level field of the chart's Chart.yaml.
func chartField(t *testing.T, root, field string) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, "charts", "cors-webhook", "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart map[string]any
	if err := yaml.Unmarshal(raw, &chart); err != nil {
		t.Fatal(err)
	}
	v, _ := chart[field].(string)
	if v == "" {
		t.Fatalf("Chart.yaml has no %s", field)
	}
	return v
}
