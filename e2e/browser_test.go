package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/sidecar"
)

// The browser test: headless Chromium loads pages from exact origins (http://www.bbb.com and
// http://www.aaa.com, which the seed's policy allows, and http://www.ccc.com, which it does not)
// and fetches from the application through cors-sidecar with the seed's policy. Each name
// resolves (--host-resolver-rules) to its own loopback address, served on port 80, so the
// origins are exactly those of the guide. The browser, not a test client, decides what a page
// may read.

const (
	browserAPI     = "http://pipy-ok.test" // the sidecar in front of the application
	browserAppAddr = "127.0.13.5:8080"     // the application: port 8080, as the seed's policy says
)

var browserHosts = map[string]string{
	"www.bbb.com":  "127.0.13.1",
	"www.aaa.com":  "127.0.13.2",
	"www.ccc.com":  "127.0.13.3",
	"pipy-ok.test": "127.0.13.4",
	"app.ddd.test": "127.0.13.6", // a subdomain for the GEP-1767 wildcard
	"a.b.ddd.test": "127.0.13.7", // two labels under it: "*." is greedy
}

// gepPodPolicy opts into what GEP-1767 added: a wildcard origin, "*" for methods and headers
// together with credentials (answered with what the preflight asks for), and preflights of
// other origins answered by the sidecar.
const gepPodPolicy = `{"version":1,"ports":{"8080":{"allowOrigins":[{"wildcard":"http://*.ddd.test"}],` +
	`"allowCredentials":true,"allowMethods":["*"],"allowHeaders":["*"],"exposeHeaders":["Kuma-Revision"],"unmatchedPreflights":"Ignore"}}}`

// browserApp is the application: it records what reaches it.
type browserApp struct {
	mu       sync.Mutex
	requests []string // "METHOD path origin x-foo-bar-1"
}

func (a *browserApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	io.Copy(io.Discard, r.Body)
	a.mu.Lock()
	a.requests = append(a.requests, strings.Join([]string{r.Method, r.URL.Path, r.Header.Get("Origin"), r.Header.Get("X-Foo-Bar-1"), r.Header.Get("X-Other")}, " "))
	a.mu.Unlock()
	w.Header().Set("Kuma-Revision", "7")
	w.Header().Set("X-Secret", "not exposed")
	if r.URL.Path == "/cached" {
		w.Header().Set("Cache-Control", "max-age=600")
	}
	io.WriteString(w, pipyBody)
}

// count returns how many recorded requests start with prefix.
func (a *browserApp) count(prefix string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, r := range a.requests {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func (a *browserApp) log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.requests, "\n")
}

func listenServe(t *testing.T, addr string, h http.Handler) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s (the browser test needs root for port 80): %v", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func TestBrowser(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium is needed (apt-get install chromium; .ci/run installs it): %v", err)
	}

	app := &browserApp{}
	listenServe(t, browserAppAddr, app)
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, "<!doctype html><title>page</title>")
	})
	for _, name := range []string{"www.bbb.com", "www.aaa.com", "www.ccc.com", "app.ddd.test", "a.b.ddd.test"} {
		listenServe(t, browserHosts[name]+":80", page)
	}

	store, metrics := &sidecar.PolicyStore{}, &sidecar.Metrics{}
	pols, err := cors.ParsePodPolicy([]byte(seedPodPolicy(t, mustExamplesDir(t), nil)))
	if err != nil {
		t.Fatal(err)
	}
	store.Store(pols)
	proxy, err := sidecar.New(sidecar.Config{Upstream: browserAppAddr}, store, metrics)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", browserHosts["pipy-ok.test"]+":80")
	if err != nil {
		t.Fatalf("listen (the browser test needs root for port 80): %v", err)
	}
	go proxy.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		proxy.Shutdown(ctx)
	})
	preflights := func() uint64 { return metrics.Requests(8080, cors.Preflight) }

	var rules []string
	for name, ip := range browserHosts {
		rules = append(rules, "MAP "+name+" "+ip)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", "new"),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("host-resolver-rules", strings.Join(rules, ", ")),
		// One HTTP cache for all sites, as a shared cache would be: Vary must keep it honest.
		chromedp.Flag("disable-features", "SplitCacheByNetworkIsolationKey"),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}

	open := func(origin string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Navigate(origin+"/")); err != nil {
			t.Fatalf("loading %s: %v", origin, err)
		}
	}
	fetch := func(path, init string) fetchResult {
		t.Helper()
		return browserFetch(t, ctx, browserAPI+path, init)
	}

	open("http://www.bbb.com")
	t.Run("credentialed GET, exposed header readable, other not", func(t *testing.T) {
		r := fetch("/get", `{credentials: "include"}`)
		if !r.OK || r.Status != 200 || r.Body != pipyBody {
			t.Fatalf("fetch: %+v", r)
		}
		if r.Kuma != "7" {
			t.Errorf("Kuma-Revision (exposed) reads %q from JS, want 7", r.Kuma)
		}
		if r.Secret != nil {
			t.Errorf("X-Secret (not exposed) reads %q from JS, want null", *r.Secret)
		}
		if app.count("GET /get http://www.bbb.com") != 1 {
			t.Errorf("the application saw:\n%s", app.log())
		}
	})
	t.Run("preflighted PATCH with X-Foo-Bar-1, the preflight answered by the sidecar", func(t *testing.T) {
		before := preflights()
		r := fetch("/patch", `{method: "PATCH", credentials: "include", headers: {"X-Foo-Bar-1": "v1"}}`)
		if !r.OK || r.Status != 200 {
			t.Fatalf("fetch: %+v", r)
		}
		if preflights() != before+1 {
			t.Errorf("the sidecar answered %d preflights, want 1", preflights()-before)
		}
		if app.count("OPTIONS") != 0 || app.count("PATCH /patch http://www.bbb.com v1") != 1 {
			t.Errorf("the application saw:\n%s", app.log())
		}
		// The second request uses the cached preflight (max-age 86400).
		if r := fetch("/patch", `{method: "PATCH", credentials: "include", headers: {"X-Foo-Bar-1": "v1"}}`); !r.OK {
			t.Fatalf("second fetch: %+v", r)
		}
		if preflights() != before+1 || app.count("PATCH /patch") != 2 {
			t.Errorf("second PATCH: %d preflights (want the cached one), application:\n%s", preflights()-before, app.log())
		}
	})
	t.Run("PUT and an unlisted header are blocked", func(t *testing.T) {
		if r := fetch("/put", `{method: "PUT", credentials: "include"}`); r.OK {
			t.Errorf("PUT allowed: %+v", r)
		}
		if r := fetch("/other", `{method: "PATCH", credentials: "include", headers: {"X-Other": "x"}}`); r.OK {
			t.Errorf("X-Other allowed: %+v", r)
		}
		if app.count("PUT") != 0 || app.count("PATCH /other") != 0 {
			t.Errorf("a blocked request reached the application:\n%s", app.log())
		}
	})
	t.Run("Vary: Origin keeps a shared cache honest across origins", func(t *testing.T) {
		if r := fetch("/cached", `{}`); !r.OK || r.Body != pipyBody {
			t.Fatalf("from bbb: %+v", r)
		}
		open("http://www.aaa.com")
		// Without Vary: Origin the cache would answer with bbb's allow-origin, and the read fail.
		if r := fetch("/cached", `{}`); !r.OK || r.Body != pipyBody {
			t.Fatalf("from aaa: %+v", r)
		}
		if n := app.count("GET /cached"); n != 2 {
			t.Errorf("the application answered /cached %d times, want 2 (once per origin):\n%s", n, app.log())
		}
		// The cache is in use: the same origin again is served from it.
		if r := fetch("/cached", `{}`); !r.OK {
			t.Fatalf("from aaa again: %+v", r)
		}
		if n := app.count("GET /cached"); n != 2 {
			t.Errorf("the application answered /cached %d times, want 2 (the third from the cache)", n)
		}
	})
	t.Run("a foreign origin is blocked", func(t *testing.T) {
		open("http://www.ccc.com")
		if r := fetch("/foreign", `{credentials: "include"}`); r.OK {
			t.Errorf("www.ccc.com read the response: %+v", r)
		}
		if r := fetch("/foreign", `{method: "PATCH", headers: {"X-Foo-Bar-1": "v"}}`); r.OK {
			t.Errorf("www.ccc.com sent a preflighted PATCH: %+v", r)
		}
		if app.count("PATCH /foreign") != 0 {
			t.Errorf("a PATCH from a foreign origin reached the application:\n%s", app.log())
		}
	})

	// GEP-1767's additions, opted into by the config.
	gep, err := cors.ParsePodPolicy([]byte(gepPodPolicy))
	if err != nil {
		t.Fatal(err)
	}
	store.Store(gep)
	t.Run("wildcard origin: a subdomain two labels deep reads a credentialed response", func(t *testing.T) {
		open("http://a.b.ddd.test")
		r := fetch("/wild", `{credentials: "include"}`)
		if !r.OK || r.Status != 200 || r.Body != pipyBody || r.Kuma != "7" {
			t.Fatalf("fetch: %+v", r)
		}
		if app.count("GET /wild http://a.b.ddd.test") != 1 {
			t.Errorf("the application saw:\n%s", app.log())
		}
	})
	t.Run(`credentialed "*": a preflighted PUT with any header is allowed`, func(t *testing.T) {
		open("http://app.ddd.test")
		before := preflights()
		r := fetch("/star", `{method: "PUT", credentials: "include", headers: {"X-Foo-Bar-1": "s", "X-Other": "o"}}`)
		if !r.OK || r.Status != 200 || r.Body != pipyBody {
			t.Fatalf("fetch: %+v", r)
		}
		if preflights() != before+1 {
			t.Errorf("the sidecar answered %d preflights, want 1", preflights()-before)
		}
		if app.count("PUT /star http://app.ddd.test s o") != 1 || app.count("OPTIONS /star") != 0 {
			t.Errorf("the application saw:\n%s", app.log())
		}
	})
	t.Run("unmatchedPreflights Ignore: a foreign preflight never reaches the application", func(t *testing.T) {
		open("http://www.ccc.com")
		if r := fetch("/ignored", `{method: "PUT", headers: {"X-Foo-Bar-1": "v"}}`); r.OK {
			t.Errorf("www.ccc.com sent a preflighted PUT: %+v", r)
		}
		if app.count("OPTIONS /ignored") != 0 || app.count("PUT /ignored") != 0 {
			t.Errorf("a request from a foreign origin reached the application:\n%s", app.log())
		}
	})
}

type fetchResult struct {
	OK     bool    `json:"ok"`
	Status int     `json:"status"`
	Kuma   string  `json:"kuma"`
	Secret *string `json:"secret"`
	Body   string  `json:"body"`
	Error  string  `json:"error"`
}

// browserFetch runs fetch(url, init) in the current page and reports what the page could read.
func browserFetch(t *testing.T, ctx context.Context, url, init string) fetchResult {
	t.Helper()
	js := fmt.Sprintf(`(async () => {
  try {
    const r = await fetch(%q, %s);
    return {ok: true, status: r.status, kuma: r.headers.get("kuma-revision") || "", secret: r.headers.get("x-secret"), body: await r.text()};
  } catch (e) {
    return {ok: false, error: String(e)};
  }
})()`, url, init)
	r, err := chromedp.Run(ctx, chromedp.Evaluate[fetchResult](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("fetch %s: %v", url, err)
	}
	return r
}
