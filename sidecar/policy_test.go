package sidecar

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/internal/atomicdir"
)

// writeProjected updates dir as the kubelet updates a downwardAPI volume (atomicdir).
func writeProjected(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := atomicdir.Write(dir, map[string][]byte{name: []byte(content)}, 0o644); err != nil {
		t.Fatal(err)
	}
}

func policyJSON(port int, origin string) string {
	return fmt.Sprintf(`{"version":1,"ports":{"%d":{"allowOrigins":[{"exact":%q}]}}}`, port, origin)
}

func allows(s *PolicyStore, port uint16, origin string) bool {
	return s.Lookup(port).Decide(cors.Request{Method: "GET", Origin: origin}).Action == cors.Actual
}

func startWatcher(t *testing.T, w *Watcher) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestWatcherFollowsSymlinkSwaps(t *testing.T) {
	dir := t.TempDir()
	writeProjected(t, dir, "policy.json", policyJSON(8080, "http://one.example"))
	w := &Watcher{
		Path: filepath.Join(dir, "policy.json"), Store: &PolicyStore{}, Metrics: &Metrics{},
		Log:      slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Interval: time.Hour, // events only: polling must not hide a missed event
	}
	startWatcher(t, w)
	waitFor(t, "first load", func() bool { return allows(w.Store, 8080, "http://one.example") })

	writeProjected(t, dir, "policy.json", policyJSON(8080, "http://two.example"))
	waitFor(t, "reload after the swap", func() bool { return allows(w.Store, 8080, "http://two.example") })
	if allows(w.Store, 8080, "http://one.example") {
		t.Error("old policy still in force")
	}

	writeProjected(t, dir, "policy.json", `{"version":1,"ports":{"8080":{"allowOrigins":[{"regex":"(?=x)"}]}}}`)
	waitFor(t, "the reload error to be counted", func() bool { return w.Metrics.ReloadErrors() == 1 })
	if !allows(w.Store, 8080, "http://two.example") {
		t.Error("an invalid file replaced the policy")
	}

	writeProjected(t, dir, "policy.json", policyJSON(8080, "http://three.example"))
	waitFor(t, "recovery", func() bool { return allows(w.Store, 8080, "http://three.example") })
	if got := w.Metrics.Reloads(); got != 3 {
		t.Errorf("reloads = %d, want 3", got)
	}
	if got := w.Metrics.ReloadErrors(); got != 1 {
		t.Errorf("reload errors = %d, want 1", got)
	}
}

func TestWatcherInPlaceWritesAndPolling(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "policy.json") // the folder does not exist yet: polling only
	w := &Watcher{
		Path: path, Store: &PolicyStore{}, Metrics: &Metrics{},
		Log:      slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Interval: 20 * time.Millisecond,
	}
	startWatcher(t, w)
	waitFor(t, "the missing file to be reported", func() bool { return w.Metrics.ReloadErrors() == 1 })
	if w.Store.Loaded() {
		t.Fatal("loaded without a file")
	}
	os.MkdirAll(filepath.Dir(path), 0o755)
	os.WriteFile(path, []byte(policyJSON(9090, "http://a.example")), 0o644)
	waitFor(t, "load by polling", func() bool { return allows(w.Store, 9090, "http://a.example") })
	if !w.Metrics.policyLoaded.Load() {
		t.Error("policy_loaded gauge not set")
	}
}

func TestWatcherIgnoresUnchangedContent(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.json")
	os.WriteFile(path, []byte(policyJSON(80, "http://a.example")), 0o644)
	w := &Watcher{Path: path, Store: &PolicyStore{}, Metrics: &Metrics{}, Log: slog.New(slog.DiscardHandler)}
	if !w.Reload() {
		t.Fatal("first load failed")
	}
	for i := 0; i < 3; i++ {
		if w.Reload() {
			t.Error("same content reloaded")
		}
	}
	os.WriteFile(path, []byte("{"), 0o644)
	w.Reload()
	w.Reload()
	if got := w.Metrics.ReloadErrors(); got != 1 {
		t.Errorf("one bad content counted %d times", got)
	}
}

func TestMetricsText(t *testing.T) {
	m := &Metrics{}
	m.port(8080).count(cors.Preflight)
	m.port(8080).count(cors.Actual)
	m.port(8080).count(cors.Actual)
	m.port(80).count(cors.PassThrough)
	m.reloads.Add(2)
	m.reloadErrors.Add(1)
	m.policyLoaded.Store(true)
	var b strings.Builder
	if err := m.WritePrometheus(&b); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`cors_sidecar_requests_total{port="8080",decision="preflight"} 1`,
		`cors_sidecar_requests_total{port="8080",decision="actual"} 2`,
		`cors_sidecar_requests_total{port="8080",decision="pass-through"} 0`,
		`cors_sidecar_requests_total{port="80",decision="pass-through"} 1`,
		"cors_sidecar_policy_reloads_total 2",
		"cors_sidecar_policy_reload_errors_total 1",
		"cors_sidecar_policy_loaded 1",
		"# TYPE cors_sidecar_requests_total counter",
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("missing %q in\n%s", want, b.String())
		}
	}
	if strings.Index(b.String(), `port="80",`) > strings.Index(b.String(), `port="8080",`) {
		t.Error("ports not sorted")
	}
}

// TestWatcherPolicyVersions: a sidecar loads a version-1 policy that carries a field it does
// not know (a newer webhook wrote it), saying so once in its log, and refuses version 2,
// keeping the policy it has.
func TestWatcherPolicyVersions(t *testing.T) {
	dir := t.TempDir()
	var log strings.Builder
	w := &Watcher{
		Path: filepath.Join(dir, "policy.json"), Store: &PolicyStore{}, Metrics: &Metrics{},
		Log: slog.New(slog.NewTextHandler(&log, nil)),
	}
	newer := `{"version":1,"ports":{"8080":{"allowOrigins":[{"exact":"http://one.example"}],"allowPrivateNetwork":true}}}`
	writeProjected(t, dir, "policy.json", newer)
	if !w.Reload() || !allows(w.Store, 8080, "http://one.example") {
		t.Fatalf("a version-1 policy with an unknown field was not loaded; log:\n%s", log.String())
	}
	if n := strings.Count(log.String(), "ignoring them"); n != 1 || !strings.Contains(log.String(), "ports[8080].allowPrivateNetwork") {
		t.Fatalf("want one log line naming the ignored field, got %d:\n%s", n, log.String())
	}
	writeProjected(t, dir, "policy.json", newer+" ") // same policy, new bytes: parsed again
	w.Reload()
	writeProjected(t, dir, "policy.json", `{"version":2,"ports":{"8080":{"allowOrigins":[{"exact":"http://two.example"}]}}}`)
	if w.Reload() {
		t.Fatal("a version-2 policy was loaded")
	}
	if !allows(w.Store, 8080, "http://one.example") || allows(w.Store, 8080, "http://two.example") {
		t.Fatal("a refused policy replaced the one in force")
	}
	if !strings.Contains(log.String(), "version 2 is not supported") {
		t.Fatalf("the refusal is not logged:\n%s", log.String())
	}
}
