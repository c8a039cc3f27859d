package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestDemo runs the `make demo` program (hack/demo) on the local real node, as a new user
// would, and checks what it promises: the seven steps, the guide's two kubectl exec curl
// commands as the guide writes them with the seed's header values, a non-matching origin
// without CORS headers, the pipy-ok pods 2/2 Running, the injected pod, both rejections, and
// the host as it was before. It needs root and `make tools`, like the demo, and fails (never
// skips) without them.
func TestDemo(t *testing.T) {
	if err := localcluster.CheckNode(); err != nil {
		t.Fatalf("the demo brings up a node (.ci/run installs what it needs; run as root): %v", err)
	}
	if err := localcluster.RecoverStaleNode(); err != nil {
		t.Fatalf("cleaning up after an earlier, killed node: %v", err)
	}
	before, err := localcluster.HostSnapshot()
	if err != nil {
		t.Fatal(err)
	}
	mustExamplesDir(t)
	bin := framework.BuildBinary(t, "./hack/demo")

	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	// On timeout, Ctrl-C it so that it cleans up, as a user would.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	// KUBECONFIG would point the demo at the developer's cluster.
	cmd.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "DEMO_")
	})
	var out localcluster.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err = cmd.Run()
	took := time.Since(start)
	output := out.String()
	if err != nil {
		t.Fatalf("demo: %v after %s\n%s", err, took.Round(time.Second), output)
	}
	t.Logf("demo ran in %s", took.Round(100*time.Millisecond))
	defer func() {
		if t.Failed() {
			t.Logf("demo output:\n%s", output)
		}
	}()

	t.Run("seven steps", func(t *testing.T) {
		for i := 1; i <= 7; i++ {
			if !strings.Contains(output, fmt.Sprintf("\n==> %d. ", i)) {
				t.Errorf("no heading for step %d", i)
			}
		}
	})

	t.Run("the guide's responses", func(t *testing.T) {
		get := demoSection(t, output, guideExec, `-H "Origin: http://www.bbb.com"`+"\n")
		for _, want := range []string{
			"HTTP/1.1 200 OK",
			"access-control-allow-origin: http://www.bbb.com",
			"access-control-allow-credentials: true",
			"access-control-expose-headers: Content-Encoding,Kuma-Revision",
			"\n\nHi, I am PIPY-OK v", // v1 or v2: the Service balances over both
		} {
			if !strings.Contains(get, want) {
				t.Errorf("the GET response lacks %q:\n%s", want, get)
			}
		}
		options := demoSection(t, output, guideExec, `-H "Origin: http://www.bbb.com" -X OPTIONS`+"\n")
		for _, want := range []string{
			"HTTP/1.1 200 OK",
			"access-control-allow-origin: http://www.bbb.com",
			"access-control-allow-credentials: true",
			"access-control-expose-headers: Content-Encoding,Kuma-Revision",
			"access-control-allow-methods: POST,GET,PATCH,DELETE",
			"access-control-allow-headers: X-Foo-Bar-1",
			"access-control-max-age: 86400",
			"content-length: 0",
		} {
			if !strings.Contains(options, want) {
				t.Errorf("the OPTIONS response lacks %q:\n%s", want, options)
			}
		}
		other := demoSection(t, output, guideExec, `-H "Origin: http://www.ccc.com"`+"\n")
		if strings.Contains(other, "access-control-") || !strings.Contains(other, "Hi, I am PIPY-OK v") {
			t.Errorf("a non-matching origin must get the application's answer without CORS headers:\n%s", other)
		}
	})

	t.Run("the injected pod", func(t *testing.T) {
		pod := demoSection(t, output, "$ kubectl get pod pipy-ok-v1-", "-o yaml")
		for _, want := range []string{
			`cors-webhook.io/policy: '{"version":1,"ports":{"8080":{"allowOrigins":[{"regex":"http.*://www.test.cn"},{"exact":"http://www.aaa.com"},{"prefix":"http://www.bbb.com"}]`,
			`cors-webhook.io/injected: "true"`,
			"name: cors-init", "- /usr/local/bin/cors-init", "runAsUser: 65532", "- NET_ADMIN",
			"name: cors-sidecar", "- proxy", "restartPolicy: Always", "/etc/cors-webhook/policy.json",
			"fieldPath: metadata.annotations['cors-webhook.io/policy']",
			"podIP: 10.213.",
		} {
			if !strings.Contains(pod, want) {
				t.Errorf("the pod excerpt lacks %q", want)
			}
		}
	})

	t.Run("both rejections", func(t *testing.T) {
		for _, want := range []string{
			`The PluginConfig "cors-policy-config-v2" is invalid`,
			`spec.config.maxAge: Invalid value: "-5s"`,
			`spec.destinationRefs[0].kind: Unsupported value: "Pod"`,
			`admission webhook "pluginchains.validate.cors-webhook.io" denied the request`,
			"a pod can have only one CORS plugin",
		} {
			if !strings.Contains(output, want) {
				t.Errorf("the output lacks %q", want)
			}
		}
	})

	t.Run("pipy-ok pods 2/2 Running", func(t *testing.T) {
		pods := demoSection(t, output, "$ kubectl get pods -n pipy -o wide", "")
		if n := regexp.MustCompile(`(?m)^pipy-ok-v[12]-\S+\s+2/2\s+Running\s`).FindAllString(pods, -1); len(n) != 2 {
			t.Errorf("want both pipy-ok pods 2/2 Running:\n%s", pods)
		}
	})

	t.Run("summary, under three minutes, the host as it was", func(t *testing.T) {
		m := regexp.MustCompile(`Demo finished in ([0-9.]+m?[0-9.]*s)`).FindStringSubmatch(output)
		if m == nil {
			t.Fatal("no summary line")
		}
		d, err := time.ParseDuration(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if d > 3*time.Minute {
			t.Errorf("the demo took %s, want under three minutes", d)
		}
		after, err := localcluster.HostSnapshot()
		if err != nil {
			t.Fatal(err)
		}
		for _, diff := range before.Diff(after) {
			t.Errorf("the demo left the host changed: %s", diff)
		}
	})
}

// guideExec starts the guide's test commands as the demo prints them.
const guideExec = "$ kubectl exec ${curl_client} -n curl -c curl -- curl -ksi http://pipy-ok.pipy:8080"

// demoSection is the part of the demo's output that starts at the line holding both first and
// rest, up to the next comment or heading after a blank line.
func demoSection(t *testing.T, output, first, rest string) string {
	t.Helper()
	for _, part := range strings.Split(output, "\n"+first)[1:] {
		line, _, _ := strings.Cut(part, "\n")
		if !strings.Contains(line+"\n", rest) {
			continue
		}
		end := len(part)
		for _, stop := range []string{"\n\n#", "\n\n==>", "\n#"} {
			if i := strings.Index(part, stop); i >= 0 && i < end {
				end = i
			}
		}
		return first + part[:end]
	}
	t.Fatalf("no output section starting with %q ... %q", first, rest)
	return ""
}
