package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/atomicdir"
)

// The sidecar e2e test: two network namespaces joined by a veth pair play the seed guide's two
// pods. "pipy-ok" runs a stand-in application on :8080 (in this test process, on a socket opened
// inside the namespace), `cors-sidecar redirect` and `cors-sidecar proxy` with the policy the
// injector derives from the seed's PluginConfig; "curl" is the client, where the seed's curl
// commands run with the real curl binary. Then the policy file is rewritten and the proxy sent
// SIGTERM while load runs.

const (
	sidecarPodIP     = "10.200.0.1"
	sidecarPodIPv6   = "fd00:200::1"
	sidecarProxyPort = "15003"
	sidecarAdminPort = "15023"
	pipyBody         = "Hi, I am PIPY-OK v1!"
)

func TestSidecar(t *testing.T) {
	requireNetNS(t, "curl")
	env := startSidecarEnv(t)

	t.Run("seed test section", env.testSeedRequests)
	t.Run("non-matching origin", env.testNonMatching)
	t.Run("origin matchers", env.testOrigins)
	t.Run("HTTP/2 cleartext", env.testH2C)
	t.Run("IPv6", env.testIPv6)
	t.Run("forwarding contract", env.testForwarding)
	t.Run("policy reload under load", env.testReloadUnderLoad)
	t.Run("SIGTERM under load", env.testSIGTERMUnderLoad)
	t.Run("redirect cleanup", env.testRedirectCleanup)
}

type sidecarEnv struct {
	bin       string
	pod       *netns
	client    *netns
	policyDir string
	seedDir   string
	app       *standInApp

	proxy     *exec.Cmd
	proxyDone chan error
	proxyLog  *syncBuffer
}

func startSidecarEnv(t *testing.T) *sidecarEnv {
	env := &sidecarEnv{seedDir: mustExamplesDir(t), bin: framework.BuildBinary(t, "./cmd/cors-sidecar")}
	env.pod = newNetNS(t, "pipy")
	env.client = newNetNS(t, "curl")
	linkNetNS(t, env.pod, sidecarPodIP+"/30", env.client, "10.200.0.2/30")
	// IPv6 too (nodad: usable at once): the redirect table is of family inet.
	runCmd(t, "ip", "-n", env.pod.name, "addr", "add", sidecarPodIPv6+"/64", "dev", "veth0", "nodad")
	runCmd(t, "ip", "-n", env.client.name, "addr", "add", "fd00:200::2/64", "dev", "veth0", "nodad")

	env.app = startStandInApp(t, env.pod.listen(t, "0.0.0.0:8080"))

	// The init container's job.
	out := env.pod.run(t, env.bin, "redirect", "--proxy-port", sidecarProxyPort, "--ports", "8080")
	t.Logf("redirect: %s", strings.TrimSpace(out))
	if _, err := exec.LookPath("nft"); err == nil {
		t.Logf("rules in %s:\n%s", env.pod.name, env.pod.run(t, "nft", "list", "ruleset"))
	}

	// The sidecar's job, with the policy the injector derives from the seed's PluginConfig,
	// projected the way a downwardAPI volume is.
	env.policyDir = t.TempDir()
	writeDownwardAPI(t, env.policyDir, "policy.json", seedPodPolicy(t, env.seedDir, nil))
	env.startProxy(t)
	return env
}

func (env *sidecarEnv) startProxy(t *testing.T) {
	env.proxyLog = &syncBuffer{}
	cmd := env.pod.command(context.Background(), env.bin, "proxy",
		"--inbound-port", sidecarProxyPort, "--admin-port", sidecarAdminPort,
		"--policy-file", filepath.Join(env.policyDir, "policy.json"),
		"--drain-timeout", "15s", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = env.proxyLog, env.proxyLog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	env.proxy = cmd
	env.proxyDone = make(chan error, 1)
	go func() { env.proxyDone <- cmd.Wait() }()
	t.Cleanup(func() {
		select {
		case <-env.proxyDone:
		default:
			cmd.Process.Kill()
			<-env.proxyDone
		}
		if t.Failed() {
			t.Logf("cors-sidecar proxy log:\n%s", env.proxyLog.String())
		}
	})
	admin := env.client.httpClient(1)
	framework.Eventually(t, 15*time.Second, 50*time.Millisecond, func() (bool, string) {
		res, err := admin.Get("http://" + sidecarPodIP + ":" + sidecarAdminPort + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		res.Body.Close()
		return res.StatusCode == 200, "readyz: " + res.Status
	})
}

// curl runs the real curl in the client namespace, as the seed's "Test" section does.
func (env *sidecarEnv) curl(t *testing.T, args ...string) httpDump {
	t.Helper()
	out := env.client.run(t, "curl", append([]string{"-ksi", "--max-time", "10"}, args...)...)
	d, err := parseHTTPDump(out)
	if err != nil {
		t.Fatalf("curl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return d
}

func (env *sidecarEnv) testSeedRequests(t *testing.T) {
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"get-origin-bbb.txt", []string{"http://" + sidecarPodIP + ":8080", "-H", "Origin: http://www.bbb.com"}},
		{"options-origin-bbb.txt", []string{"http://" + sidecarPodIP + ":8080", "-H", "Origin: http://www.bbb.com", "-X", "OPTIONS"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(env.seedDir, "expected", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			want, err := parseHTTPDump(string(raw))
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			got := env.curl(t, tc.args...)
			if problems := compareToSeed(got, want); len(problems) > 0 {
				t.Errorf("curl -ksi %s differs from %s:\n  %s\ngot:\n%s", strings.Join(tc.args, " "), tc.file,
					strings.Join(problems, "\n  "), got.raw)
			}
		})
	}
}

func (env *sidecarEnv) testNonMatching(t *testing.T) {
	for _, args := range [][]string{
		{"-H", "Origin: http://www.ccc.com"},
		{"-H", "Origin: http://www.ccc.com", "-X", "OPTIONS"},
		{}, // no Origin at all
	} {
		got := env.curl(t, append([]string{"http://" + sidecarPodIP + ":8080"}, args...)...)
		if got.status != "HTTP/1.1 200 OK" || got.body != pipyBody {
			t.Errorf("%v: %s %q, want the application's answer", args, got.status, got.body)
		}
		for _, h := range got.headers {
			if strings.HasPrefix(h.name, "access-control-") {
				t.Errorf("%v: CORS header %s: %s on a non-matching request", args, h.name, h.value)
			}
		}
		if v := got.get("vary"); v != "Origin" {
			t.Errorf("%v: vary %q, want Origin (the port has a policy)", args, v)
		}
	}
}

// testOrigins checks the seed's regex, exact and prefix entries as docs/design.md section 5 says.
func (env *sidecarEnv) testOrigins(t *testing.T) {
	for _, tc := range []struct {
		origin string
		match  bool
		why    string
	}{
		{"http://www.test.cn", true, "regex"},
		{"https://www.test.cn", true, "regex http.* covers https"},
		{"http://www-test.cn", true, "regex: an unescaped dot matches any character"},
		{"http://www.test.cn.evil.example", true, "regex: unanchored search, as FSM"},
		{"http://www.test.com", false, "regex does not match"},
		{"http://www.aaa.com", true, "exact"},
		{"http://www.aaa.com.cn", false, "exact means equal"},
		{"https://www.aaa.com", false, "exact means equal"},
		{"http://www.bbb.com", true, "prefix, equal"},
		{"http://www.bbb.com:8443", true, "prefix"},
		{"http://www.bbb.co", false, "shorter than the prefix"},
		{"https://www.bbb.com", false, "prefix is on the whole origin"},
	} {
		for _, method := range []string{"GET", "OPTIONS"} {
			got := env.curl(t, "http://"+sidecarPodIP+":8080", "-H", "Origin: "+tc.origin, "-X", method)
			acao := got.get("access-control-allow-origin")
			switch {
			case tc.match && acao != tc.origin:
				t.Errorf("%s %s (%s): access-control-allow-origin %q, want the origin echoed", method, tc.origin, tc.why, acao)
			case !tc.match && acao != "":
				t.Errorf("%s %s (%s): access-control-allow-origin %q, want none", method, tc.origin, tc.why, acao)
			}
			preflight := tc.match && method == "OPTIONS"
			if maxAge := got.get("access-control-max-age"); preflight != (maxAge == "86400") {
				t.Errorf("%s %s: access-control-max-age %q (preflight %v)", method, tc.origin, maxAge, preflight)
			}
			wantBody := pipyBody
			if preflight {
				wantBody = ""
			}
			if got.status != "HTTP/1.1 200 OK" || got.body != wantBody {
				t.Errorf("%s %s: %s %q, want 200 %q", method, tc.origin, got.status, got.body, wantBody)
			}
		}
	}
}

// testH2C: a client with HTTP/2 prior knowledge gets HTTP/2 end to end with the same CORS
// answers; an "Upgrade: h2c" (deprecated by RFC 9113) is answered in HTTP/1.1.
func (env *sidecarEnv) testH2C(t *testing.T) {
	url := "http://" + sidecarPodIP + ":8080"
	got := env.curl(t, "--http2-prior-knowledge", url, "-H", "Origin: http://www.bbb.com")
	if got.status != "HTTP/2 200" || got.body != pipyBody || got.get("access-control-allow-origin") != "http://www.bbb.com" ||
		got.get("access-control-expose-headers") != "Content-Encoding,Kuma-Revision" || got.get("vary") != "Origin" {
		t.Errorf("h2c prior knowledge, actual request:\n%s", got.raw)
	}
	if p := env.app.lastProto.Load(); p == nil || *p != "HTTP/2.0" {
		t.Errorf("the application saw %v, want HTTP/2.0 (h2c upstream for an h2c client)", p)
	}
	got = env.curl(t, "--http2-prior-knowledge", url, "-H", "Origin: http://www.bbb.com", "-X", "OPTIONS")
	if got.status != "HTTP/2 200" || got.body != "" || got.get("access-control-max-age") != "86400" ||
		got.get("access-control-allow-methods") != "POST,GET,PATCH,DELETE" {
		t.Errorf("h2c prior knowledge, preflight:\n%s", got.raw)
	}
	got = env.curl(t, "--http2", url, "-H", "Origin: http://www.aaa.com")
	if got.status != "HTTP/1.1 200 OK" || got.body != pipyBody || got.get("access-control-allow-origin") != "http://www.aaa.com" {
		t.Errorf("Upgrade: h2c:\n%s", got.raw)
	}
}

// testIPv6: the seed's request over IPv6 is redirected (SO_ORIGINAL_DST in the IPv6 family)
// and answered the same way.
func (env *sidecarEnv) testIPv6(t *testing.T) {
	got := env.curl(t, "-g", "http://["+sidecarPodIPv6+"]:8080", "-H", "Origin: http://www.bbb.com")
	if got.status != "HTTP/1.1 200 OK" || got.body != pipyBody || got.get("access-control-allow-origin") != "http://www.bbb.com" {
		t.Errorf("over IPv6:\n%s", got.raw)
	}
}

// testReloadUnderLoad rewrites the policy file (a downwardAPI-style symlink swap) while clients
// hammer the pod: every request must succeed, and the new policy must take effect.
func (env *sidecarEnv) testReloadUnderLoad(t *testing.T) {
	startReloads := env.metric(t, "cors_sidecar_policy_reloads_total")
	startErrors := env.metric(t, "cors_sidecar_policy_reload_errors_total")

	const workers = 8
	load := env.startLoad(t, workers, "http://www.bbb.com")
	load.waitFor(t, 200)

	// v2: the seed's policy with the prefix entry moved to another origin.
	beforeWrite := load.count()
	writeDownwardAPI(t, env.policyDir, "policy.json", seedPodPolicy(t, env.seedDir, func(c *v1alpha1.CORSConfig) {
		c.AllowOrigins[2].Prefix = "http://www.ccc.com"
	}))
	framework.Eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		n := env.metric(t, "cors_sidecar_policy_reloads_total")
		return n == startReloads+1, fmt.Sprintf("reloads %v, want %v", n, startReloads+1)
	})
	switched := load.count()
	load.waitFor(t, switched+500)

	// An invalid file keeps the policy in force and is counted.
	writeDownwardAPI(t, env.policyDir, "policy.json", `{"version":1,"ports":{"8080":{"allowOrigins":[{"regex":"(?<=x)"}]}}}`)
	framework.Eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		n := env.metric(t, "cors_sidecar_policy_reload_errors_total")
		return n == startErrors+1, fmt.Sprintf("reload errors %v, want %v", n, startErrors+1)
	})
	invalid := load.count()
	load.waitFor(t, invalid+300)
	results := load.stop(t)

	if results.failed > 0 {
		t.Errorf("%d of %d requests failed during the reloads; first: %v", results.failed, results.total, results.firstErr)
	}
	// The answers, in completion order, switch once from the seed policy (bbb allowed) to v2
	// (bbb not allowed) and stay there through the invalid file. Each worker may have had one
	// request decided before the swap and answered after another worker's first new answer.
	firstNew := -1
	var oldBeforeWrite, oldAfterSwitch, oldAfterNew int
	for i, r := range results.log {
		if !r.allowed && firstNew < 0 {
			firstNew = i
		}
		switch {
		case i < beforeWrite && !r.allowed:
			oldBeforeWrite++ // counted as "new before the write" below
		case i >= switched && r.allowed:
			oldAfterSwitch++
		}
		if firstNew >= 0 && i >= firstNew && r.allowed {
			oldAfterNew++
		}
	}
	switch {
	case oldBeforeWrite > 0:
		t.Errorf("%d answers before the policy file changed lack the seed policy's headers", oldBeforeWrite)
	case firstNew < 0:
		t.Errorf("the new policy never took effect")
	case oldAfterNew > workers:
		t.Errorf("%d answers with the old policy after the first answer with the new one (more than the %d in flight)", oldAfterNew, workers)
	case oldAfterSwitch > workers:
		t.Errorf("%d answers with the old policy after the reload was reported", oldAfterSwitch)
	}
	t.Logf("%d requests, %d failed; %d answered before the file changed, new policy from answer %d, reload seen at %d, invalid file at %d",
		results.total, results.failed, beforeWrite, firstNew, switched, invalid)

	// Back to the seed policy for the tests that follow.
	writeDownwardAPI(t, env.policyDir, "policy.json", seedPodPolicy(t, env.seedDir, nil))
	framework.Eventually(t, 10*time.Second, 20*time.Millisecond, func() (bool, string) {
		got := env.curl(t, "http://"+sidecarPodIP+":8080", "-H", "Origin: http://www.bbb.com")
		return got.get("access-control-allow-origin") == "http://www.bbb.com", "seed policy not back"
	})
}

// testSIGTERMUnderLoad sends SIGTERM while requests are in flight (held by the application) and
// load runs: the in-flight requests complete, the proxy stops accepting and exits 0.
func (env *sidecarEnv) testSIGTERMUnderLoad(t *testing.T) {
	load := env.startLoad(t, 4, "http://www.aaa.com")
	load.waitFor(t, 200)

	const held = 6
	client := env.client.httpClient(held)
	type result struct {
		status int
		body   string
		acao   string
		close  bool
		err    error
	}
	results := make(chan result, held)
	for i := 0; i < held; i++ {
		go func() {
			req, _ := http.NewRequest("GET", "http://"+sidecarPodIP+":8080/hold", nil)
			req.Header.Set("Origin", "http://www.bbb.com")
			res, err := client.Do(req)
			if err != nil {
				results <- result{err: err}
				return
			}
			b, err := io.ReadAll(res.Body)
			res.Body.Close()
			results <- result{status: res.StatusCode, body: string(b), acao: res.Header.Get("Access-Control-Allow-Origin"), close: res.Close, err: err}
		}()
	}
	framework.Eventually(t, 10*time.Second, 10*time.Millisecond, func() (bool, string) {
		n := env.app.held.Load()
		return n == held, fmt.Sprintf("%d requests held by the application, want %d", n, held)
	})

	if err := env.proxy.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The proxy stops accepting: new connections to the pod's port are refused (the redirect
	// sends them to a closed port) while the held requests are still in flight.
	framework.Eventually(t, 10*time.Second, 10*time.Millisecond, func() (bool, string) {
		c, err := env.client.dialContext(context.Background(), "tcp", sidecarPodIP+":8080")
		if err != nil {
			return errors.Is(err, syscall.ECONNREFUSED), err.Error()
		}
		c.Close()
		return false, "still accepting"
	})
	select {
	case err := <-env.proxyDone:
		t.Fatalf("the proxy exited (%v) with %d requests in flight", err, held)
	default:
	}
	loadResults := load.stop(t)
	env.app.releaseHeld()

	for i := 0; i < held; i++ {
		r := <-results
		if r.err != nil || r.status != 200 || r.body != pipyBody || r.acao != "http://www.bbb.com" {
			t.Errorf("in-flight request lost or wrong: status %d body %q allow-origin %q err %v", r.status, r.body, r.acao, r.err)
		} else if !r.close {
			t.Errorf("in-flight request answered without connection: close during shutdown")
		}
	}
	select {
	case err := <-env.proxyDone:
		if err != nil {
			t.Errorf("proxy exit after SIGTERM: %v, want status 0", err)
		}
		env.proxyDone <- err // for the cleanup
	case <-time.After(20 * time.Second):
		t.Error("the proxy did not exit after draining")
	}
	// Load requests that got an answer all got the right one; those sent after SIGTERM could
	// only be refused (there is nothing to accept them), never answered wrongly.
	if loadResults.wrong > 0 {
		t.Errorf("%d load requests got a wrong answer; first: %v", loadResults.wrong, loadResults.firstWrong)
	}
	t.Logf("held requests: %d completed; load: %d requests, %d answered correctly, %d refused or reset after SIGTERM",
		held, loadResults.total, loadResults.total-loadResults.failed, loadResults.failed)
	if !strings.Contains(env.proxyLog.String(), `"msg":"stopped"`) {
		t.Errorf("no clean stop in the proxy log")
	}
}

// testRedirectCleanup removes the rules: traffic then reaches the application directly.
func (env *sidecarEnv) testRedirectCleanup(t *testing.T) {
	env.pod.run(t, env.bin, "redirect", "--cleanup")
	env.pod.run(t, env.bin, "redirect", "--cleanup") // idempotent
	got := env.curl(t, "http://"+sidecarPodIP+":8080", "-H", "Origin: http://www.bbb.com")
	if got.body != pipyBody || got.get("access-control-allow-origin") != "" || got.get("vary") != "" {
		t.Errorf("without the redirect: %s\n%s", got.status, got.raw)
	}
}

// metric reads one sample of the proxy's /metrics from the client namespace.
func (env *sidecarEnv) metric(t *testing.T, name string) float64 {
	t.Helper()
	res, err := env.client.httpClient(1).Get("http://" + sidecarPodIP + ":" + sidecarAdminPort + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		var v float64
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			if _, err := fmt.Sscan(f[1], &v); err == nil {
				return v
			}
		}
	}
	t.Fatalf("metric %s not found", name)
	return 0
}

// testForwarding: through the real redirect, the application sees the sidecar's connections come
// from 127.0.0.6 (the pod's loopback accepts it, and the redirect does not send it back to the
// proxy), and the client's address appended to X-Forwarded-For, on HTTP/1.1, h2c and IPv6.
func (env *sidecarEnv) testForwarding(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"HTTP/1.1", []string{"http://" + sidecarPodIP + ":8080/whoami", "-H", "X-Forwarded-For: 203.0.113.7", "-H", "X-Forwarded-Proto: https"},
			"peer=127.0.0.6 xff=203.0.113.7, 10.200.0.2 xfp=http"},
		{"h2c", []string{"--http2-prior-knowledge", "http://" + sidecarPodIP + ":8080/whoami", "-H", "X-Forwarded-For: 203.0.113.7"},
			"peer=127.0.0.6 xff=203.0.113.7, 10.200.0.2 xfp=http"},
		{"IPv6 client", []string{"http://[" + sidecarPodIPv6 + "]:8080/whoami"},
			"peer=127.0.0.6 xff=fd00:200::2 xfp=http"},
	} {
		if got := env.curl(t, tc.args...); got.status == "" || got.body != tc.want {
			t.Errorf("%s: the application saw %q (status %q), want %q", tc.name, got.body, got.status, tc.want)
		}
	}
}

// standInApp plays pipy-ok: the seed's 20-byte answer, without Content-Type or Date, so that
// the response carries only what the seed's expected output shows. /hold blocks until released;
// /whoami answers with what the application sees of the request's origin.
type standInApp struct {
	srv       *http.Server
	lastProto atomic.Pointer[string]
	held      atomic.Int64
	release   chan struct{}
	once      sync.Once
}

func startStandInApp(t *testing.T, ln net.Listener) *standInApp {
	app := &standInApp{release: make(chan struct{})}
	app.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := r.Proto
		app.lastProto.Store(&proto)
		if r.URL.Path == "/whoami" {
			peer, _, _ := net.SplitHostPort(r.RemoteAddr)
			fmt.Fprintf(w, "peer=%s xff=%s xfp=%s", peer, strings.Join(r.Header.Values("X-Forwarded-For"), " | "),
				strings.Join(r.Header.Values("X-Forwarded-Proto"), " | "))
			return
		}
		if r.URL.Path == "/hold" {
			app.held.Add(1)
			select {
			case <-app.release:
			case <-time.After(30 * time.Second):
			}
		}
		w.Header()["Date"] = nil
		w.Header()["Content-Type"] = nil
		io.WriteString(w, pipyBody)
	})}
	app.srv.Protocols = new(http.Protocols)
	app.srv.Protocols.SetHTTP1(true)
	app.srv.Protocols.SetUnencryptedHTTP2(true) // like a gRPC or h2c-capable application
	go app.srv.Serve(ln)
	t.Cleanup(func() { app.releaseHeld(); app.srv.Close() })
	return app
}

func (a *standInApp) releaseHeld() { a.once.Do(func() { close(a.release) }) }

// load is a set of workers sending GET / with an Origin over keep-alive connections from the
// client namespace, recording every answer in order.
type load struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	res     loadResults
	origin  string
}

type loadResult struct{ allowed bool }

type loadResults struct {
	log        []loadResult // successful answers, in completion order
	total      int
	failed     int // transport errors or non-200
	firstErr   error
	wrong      int // answered, but not the application's answer
	firstWrong string
}

func (env *sidecarEnv) startLoad(t *testing.T, workers int, origin string) *load {
	l := &load{origin: origin}
	client := env.client.httpClient(workers)
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for !l.stopped.Load() {
				req, _ := http.NewRequest("GET", "http://"+sidecarPodIP+":8080/", nil)
				req.Header.Set("Origin", origin)
				res, err := client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(res.Body)
					res.Body.Close()
				}
				l.mu.Lock()
				l.res.total++
				if err != nil && l.res.failed%10 == 9 {
					time.Sleep(10 * time.Millisecond) // back off when the proxy is gone (after SIGTERM)
				}
				switch {
				case err != nil:
					l.res.failed++
					if l.res.firstErr == nil {
						l.res.firstErr = err
					}
				case res.StatusCode != 200 || string(body) != pipyBody:
					l.res.failed++
					l.res.wrong++
					if l.res.firstWrong == "" {
						l.res.firstWrong = fmt.Sprintf("%s %q", res.Status, body)
					}
				default:
					l.res.log = append(l.res.log, loadResult{allowed: res.Header.Get("Access-Control-Allow-Origin") == origin})
				}
				l.mu.Unlock()
			}
		}()
	}
	t.Cleanup(func() { l.stopped.Store(true); l.wg.Wait() })
	return l
}

// count is the number of successful answers so far.
func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.res.log)
}

func (l *load) waitFor(t *testing.T, n int) {
	t.Helper()
	framework.Eventually(t, 30*time.Second, 5*time.Millisecond, func() (bool, string) {
		c := l.count()
		return c >= n, fmt.Sprintf("%d answers, want %d", c, n)
	})
}

func (l *load) stop(t *testing.T) loadResults {
	l.stopped.Store(true)
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.res
}

// seedPodPolicy is the pod policy the injector writes for the seed: the seed PluginConfig's
// config, decoded and normalized by package cors, on the Service's target port 8080. edit, when
// set, changes the config first.
func seedPodPolicy(t *testing.T, seedDir string, edit func(*v1alpha1.CORSConfig)) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(seedDir, "manifests", "cors-policy-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Spec struct {
			Config json.RawMessage `json:"config"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	cfg, errs := cors.Decode(obj.Spec.Config, field.NewPath("spec", "config"))
	if len(errs) > 0 {
		t.Fatal(errs.ToAggregate())
	}
	if edit != nil {
		edit(cfg)
	}
	out, err := cors.PodPolicy{Version: cors.PodPolicyVersion, Ports: map[string]v1alpha1.CORSConfig{"8080": *cfg}}.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// writeDownwardAPI updates dir as the kubelet updates a downwardAPI volume (atomicdir).
func writeDownwardAPI(t *testing.T, dir, name, content string) {
	t.Helper()
	if err := atomicdir.Write(dir, map[string][]byte{name: []byte(content)}, 0o644); err != nil {
		t.Fatal(err)
	}
}

// httpDump is a response as curl -i prints it (and as the seed's expected files show it).
type httpDump struct {
	raw     string
	status  string
	headers []header // names lower-cased, in order
	body    string
}

type header struct{ name, value string }

func (d httpDump) get(name string) string {
	var vals []string
	for _, h := range d.headers {
		if h.name == name {
			vals = append(vals, h.value)
		}
	}
	return strings.Join(vals, ", ")
}

func parseHTTPDump(s string) (httpDump, error) {
	d := httpDump{raw: s}
	s = strings.ReplaceAll(s, "\r\n", "\n")
	head, body, ok := strings.Cut(s, "\n\n")
	if !ok {
		head = strings.TrimRight(s, "\n")
	}
	lines := strings.Split(head, "\n")
	d.status = strings.TrimSpace(lines[0])
	if !strings.HasPrefix(d.status, "HTTP/") {
		return d, fmt.Errorf("no status line: %q", lines[0])
	}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return d, fmt.Errorf("bad header line %q", l)
		}
		d.headers = append(d.headers, header{strings.ToLower(strings.TrimSpace(name)), strings.TrimSpace(value)})
	}
	d.body = strings.TrimRight(body, "\n")
	return d, nil
}

// compareToSeed applies docs/design.md section 5's contract: the status and every header value of
// the expected response, content-length included; order may differ, and date, vary and server
// may differ or be added (vary must name Origin); no other header may be added; same body.
func compareToSeed(got, want httpDump) []string {
	var problems []string
	if got.status != want.status {
		problems = append(problems, fmt.Sprintf("status %q, want %q", got.status, want.status))
	}
	free := map[string]bool{"date": true, "vary": true, "server": true}
	wantNames := map[string]bool{}
	for _, h := range want.headers {
		wantNames[h.name] = true
		if free[h.name] {
			continue
		}
		if g := got.get(h.name); g != want.get(h.name) {
			problems = append(problems, fmt.Sprintf("%s: %q, want %q", h.name, g, want.get(h.name)))
		}
	}
	for _, h := range got.headers {
		if !wantNames[h.name] && !free[h.name] {
			problems = append(problems, fmt.Sprintf("unexpected header %s: %s", h.name, h.value))
		}
	}
	if v := got.get("vary"); !strings.Contains(strings.ToLower(v), "origin") {
		problems = append(problems, fmt.Sprintf("vary %q does not name Origin", v))
	}
	if got.body != want.body {
		problems = append(problems, fmt.Sprintf("body %q, want %q", got.body, want.body))
	}
	return problems
}
