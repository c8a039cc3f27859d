package convert

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/cors"
	"github.com/cors-webhook/cors-webhook/internal/corstest"
	"github.com/cors-webhook/cors-webhook/sidecar"
	"github.com/cors-webhook/cors-webhook/validate"
)

func load(t *testing.T, file string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewYAMLOrJSONDecoder(f, 4096)
	var out []*unstructured.Unstructured
	for {
		var obj map[string]any
		if err := dec.Decode(&obj); err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		if obj != nil {
			out = append(out, &unstructured.Unstructured{Object: obj})
		}
	}
}

// TestConvert pins what each real-world input becomes and what is reported lost.
func TestConvert(t *testing.T) {
	for _, tt := range []struct {
		file    string
		configs map[string]string // namespace/name -> spec.config JSON
		refs    map[string][]string
		lost    map[string][]string // source -> substrings of its Lost entries, in order
		notes   map[string][]string
	}{
		{
			file: "ingress-nginx.yaml",
			configs: map[string]string{
				"shop/api-cors": `{"allowOrigins":[{"exact":"https://shop.example.com"},{"regex":"^https://[a-z0-9-]+\\.partner\\.example$"}],` +
					`"allowMethods":["GET","PUT","POST","DELETE","PATCH","OPTIONS"],"allowHeaders":["DNT","Keep-Alive","User-Agent","X-Requested-With","If-Modified-Since","Cache-Control","Content-Type","Range","Authorization"],` +
					`"exposeHeaders":["X-Request-Id"],"allowCredentials":true,"maxAge":1728000,"unmatchedPreflights":"Forward"}`,
				"default/test-ingress-cors": `{"allowOrigins":[{"wildcard":"*"}],"allowMethods":["GET","PUT","POST","DELETE","PATCH","OPTIONS"],` +
					`"allowHeaders":["DNT","User-Agent","X-Requested-With","If-Modified-Since","Cache-Control","Content-Type","Range"],"exposeHeaders":["Content-Length","Content-Range"],"maxAge":3600,"unmatchedPreflights":"Forward"}`,
			},
			refs: map[string][]string{"shop/api-cors": {"api"}, "default/test-ingress-cors": {"backend"}},
			lost: map[string][]string{
				"Ingress shop/api":             {"hostnames api.shop.example.com"},
				"Ingress default/test-ingress": {"hostnames api.example.com", `per-path rules /v1`},
			},
			notes: map[string][]string{"Ingress default/test-ingress": {`origin "*" with credentials`}},
		},
		{
			file: "istio.yaml",
			configs: map[string]string{
				"prod/ratings-route-cors": `{"allowOrigins":[{"exact":"https://example.com"}],"allowMethods":["POST","GET"],"allowHeaders":["X-Foo-Bar"],"maxAge":"24h","unmatchedPreflights":"Forward"}`,
				"frontend/web-cors": `{"allowOrigins":[{"regex":"^(?:https://.*\\.example\\.org)$"},{"prefix":"http://localhost:"}],"allowMethods":["GET","POST","PUT"],` +
					`"allowHeaders":["*"],"allowCredentials":true,"maxAge":"300s","unmatchedPreflights":"Ignore"}`,
			},
			refs: map[string][]string{"prod/ratings-route-cors": {"ratings"}, "frontend/web-cors": {"web-api"}},
			lost: map[string][]string{
				"VirtualService prod/ratings-route": nil, // its host is the Service itself
				"VirtualService frontend/web":       {"hostnames web.example.org", `per-path rules http[0] uri prefix "/api"`},
			},
		},
		{
			file: "httproute.yaml",
			configs: map[string]string{
				"default/http-route-cors-cors": `{"allowOrigins":[{"exact":"https://www.foo.com"},{"wildcard":"https://*.bar.com:443"}],"allowMethods":["GET","OPTIONS"],` +
					`"allowHeaders":["*"],"exposeHeaders":["Content-Security-Policy"],"allowCredentials":true,"maxAge":5,"unmatchedPreflights":"Ignore"}`,
			},
			refs: map[string][]string{"default/http-route-cors-cors": {"http-route-cors"}},
			lost: map[string][]string{
				"HTTPRoute default/http-route-cors": {"hostnames cors.example", `per-path rules rules[0] PathPrefix "/resource/foo"`},
			},
		},
	} {
		t.Run(tt.file, func(t *testing.T) {
			res := Convert(load(t, tt.file), Options{WithPlugin: true})
			got := map[string]string{}
			for _, pc := range res.Configs {
				key := pc.Namespace + "/" + pc.Name
				got[key] = string(pc.Spec.Config.Raw)
				var names []string
				for _, r := range pc.Spec.DestinationRefs {
					names = append(names, r.Name)
				}
				if !slices.Equal(names, tt.refs[key]) {
					t.Errorf("%s destinationRefs %v, want %v", key, names, tt.refs[key])
				}
			}
			for k, want := range tt.configs {
				if got[k] != want {
					t.Errorf("%s config\n got %s\nwant %s", k, got[k], want)
				}
			}
			if len(got) != len(tt.configs) {
				t.Errorf("configs %v, want %d", got, len(tt.configs))
			}
			for _, rep := range res.Reports {
				checkSubstrings(t, rep.Source+" lost", rep.Lost, tt.lost[rep.Source])
				checkSubstrings(t, rep.Source+" notes", rep.Notes, tt.notes[rep.Source])
			}
			if res.Complete() {
				t.Error("Complete() with hostnames reported lost")
			}
			checkValid(t, res)
		})
	}
}

func checkSubstrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %q, want %d entries containing %q", what, got, len(want), want)
		return
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("%s[%d] = %q, want it to contain %q", what, i, got[i], want[i])
		}
	}
}

// checkValid runs the output through the validating webhook's rules: no errors.
func checkValid(t *testing.T, res *Result) {
	t.Helper()
	objs := []any{res.Plugin}
	for _, c := range res.Chains {
		objs = append(objs, c)
	}
	for _, c := range res.Configs {
		objs = append(objs, c)
	}
	r := clusterstate.NewSnapshot(objs...)
	if errs, _ := validate.PluginCreate(res.Plugin, validate.Options{}); len(errs) > 0 {
		t.Errorf("Plugin: %v", errs)
	}
	for _, c := range res.Chains {
		if errs, _ := validate.PluginChainCreate(r, c, validate.Options{}); len(errs) > 0 {
			t.Errorf("PluginChain %s/%s: %v", c.Namespace, c.Name, errs)
		}
	}
	for _, c := range res.Configs {
		if errs, _ := validate.PluginConfigCreate(r, c, validate.Options{}); len(errs) > 0 {
			t.Errorf("PluginConfig %s/%s: %v", c.Namespace, c.Name, errs)
		}
	}
}

// roundTrip is one request to the converted config, and the answer the source system documents
// for it.
type roundTrip struct {
	name           string
	method, origin string
	acrm, acrh     string
	// acao is the source's access-control-allow-origin ("" for none); the other headers are
	// compared as lists, so "GET, PUT" and "GET,PUT" are the same answer.
	acao    string
	acac    bool
	methods string
	headers string
	expose  string
	maxAge  string
	toApp   bool
	// fetch, when set, is the script request whose verdict must be browserOK.
	fetch     *corstest.Fetch
	browserOK bool
}

// TestRoundTrip loads each converted config into a real sidecar and checks that it answers as
// the source system documents: ingress-nginx's template, Envoy's CORS filter behind Istio,
// GEP-1767 for HTTPRoute.
func TestRoundTrip(t *testing.T) {
	const nginxHeaders = "DNT,Keep-Alive,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"
	for _, tt := range []struct {
		file, config string
		rows         []roundTrip
	}{
		{"ingress-nginx.yaml", "shop/api-cors", []roundTrip{
			{name: "listed origin, actual", method: "GET", origin: "https://shop.example.com", acao: "https://shop.example.com", acac: true, expose: "X-Request-Id", toApp: true},
			{name: "listed origin, preflight answered by the proxy", method: "OPTIONS", origin: "https://shop.example.com", acrm: "PUT",
				acao: "https://shop.example.com", acac: true, methods: "GET, PUT, POST, DELETE, PATCH, OPTIONS", headers: nginxHeaders, expose: "X-Request-Id", maxAge: "1728000",
				fetch: &corstest.Fetch{Origin: "https://shop.example.com", Method: "PUT", Credentials: true}, browserOK: true},
			{name: `nginx "*." is one label`, method: "GET", origin: "https://eu.partner.example", acao: "https://eu.partner.example", acac: true, expose: "X-Request-Id", toApp: true},
			{name: `nginx "*." is not two labels`, method: "GET", origin: "https://a.eu.partner.example", toApp: true},
			{name: "unlisted origin's preflight goes to the backend", method: "OPTIONS", origin: "https://evil.example", acrm: "PUT", toApp: true},
		}},
		{"ingress-nginx.yaml", "default/test-ingress-cors", []roundTrip{
			{name: "any origin may read without credentials", method: "GET", origin: "https://site.test", acao: "https://site.test", expose: "Content-Length,Content-Range", toApp: true,
				fetch: &corstest.Fetch{Origin: "https://site.test", Method: "GET"}, browserOK: true},
			// nginx answered "*" with credentials true, which Fetch refuses for credentialed
			// requests; the converted config must not start allowing them.
			{name: "credentialed reads stay refused", method: "GET", origin: "https://site.test", acao: "https://site.test", expose: "Content-Length,Content-Range", toApp: true,
				fetch: &corstest.Fetch{Origin: "https://site.test", Method: "GET", Credentials: true}, browserOK: false},
		}},
		{"istio.yaml", "prod/ratings-route-cors", []roundTrip{
			{name: "preflight", method: "OPTIONS", origin: "https://example.com", acrm: "POST", acrh: "x-foo-bar",
				acao: "https://example.com", methods: "POST,GET", headers: "X-Foo-Bar", maxAge: "86400",
				fetch: &corstest.Fetch{Origin: "https://example.com", Method: "POST", Headers: []string{"X-Foo-Bar"}}, browserOK: true},
			{name: "other origin, FORWARD", method: "OPTIONS", origin: "https://other.example", acrm: "POST", toApp: true},
		}},
		{"istio.yaml", "frontend/web-cors", []roundTrip{
			{name: "regex is a full match: subdomain", method: "GET", origin: "https://app.example.org", acao: "https://app.example.org", acac: true, toApp: true},
			{name: "regex is a full match: not inside a longer origin", method: "GET", origin: "https://app.example.org.evil.test", toApp: true},
			{name: "prefix", method: "GET", origin: "http://localhost:3000", acao: "http://localhost:3000", acac: true, toApp: true},
			// Envoy would send "*" here, which browsers read literally with credentials; the
			// sidecar answers with the requested headers, which is what "*" meant.
			{name: `credentialed "*" headers`, method: "OPTIONS", origin: "https://app.example.org", acrm: "PUT", acrh: "x-token",
				acao: "https://app.example.org", acac: true, methods: "GET,POST,PUT", headers: "x-token", maxAge: "300",
				fetch: &corstest.Fetch{Origin: "https://app.example.org", Method: "PUT", Headers: []string{"X-Token"}, Credentials: true}, browserOK: true},
			{name: "IGNORE: unmatched preflight answered locally", method: "OPTIONS", origin: "https://evil.test", acrm: "PUT"},
		}},
		{"httproute.yaml", "default/http-route-cors-cors", []roundTrip{
			{name: "exact origin, credentialed * headers echoed, default max-age 5", method: "OPTIONS", origin: "https://www.foo.com", acrm: "GET", acrh: "x-custom",
				acao: "https://www.foo.com", acac: true, methods: "GET,OPTIONS", headers: "x-custom", expose: "Content-Security-Policy", maxAge: "5",
				fetch: &corstest.Fetch{Origin: "https://www.foo.com", Method: "GET", Headers: []string{"X-Custom"}, Credentials: true}, browserOK: true},
			{name: "wildcard with the default port written out", method: "GET", origin: "https://a.bar.com", acao: "https://a.bar.com", acac: true, expose: "Content-Security-Policy", toApp: true},
			{name: "wildcard is greedy", method: "GET", origin: "https://a.b.bar.com", acao: "https://a.b.bar.com", acac: true, expose: "Content-Security-Policy", toApp: true},
			{name: "wildcard needs a label", method: "GET", origin: "https://bar.com", toApp: true},
			{name: "unmatched preflight never reaches the backend", method: "OPTIONS", origin: "https://evil.test", acrm: "GET"},
		}},
	} {
		t.Run(tt.file+"/"+tt.config, func(t *testing.T) {
			var cfg *v1alpha1.PluginConfig
			for _, c := range Convert(load(t, tt.file), Options{}).Configs {
				if c.Namespace+"/"+c.Name == tt.config {
					cfg = c
				}
			}
			if cfg == nil {
				t.Fatalf("no PluginConfig %s", tt.config)
			}
			addr, hits := serveSidecar(t, string(cfg.Spec.Config.Raw))
			for _, row := range tt.rows {
				before := hits.Load()
				req, _ := http.NewRequest(row.method, "http://"+addr+"/", nil)
				req.Header.Set("Origin", row.origin)
				if row.acrm != "" {
					req.Header.Set("Access-Control-Request-Method", row.acrm)
				}
				if row.acrh != "" {
					req.Header.Set("Access-Control-Request-Headers", row.acrh)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				h := res.Header
				if res.StatusCode/100 != 2 {
					t.Errorf("%s: status %d", row.name, res.StatusCode)
				}
				if got := h.Get(cors.HeaderAllowOrigin); got != row.acao {
					t.Errorf("%s: allow-origin %q, want %q", row.name, got, row.acao)
				}
				if got := h.Get(cors.HeaderAllowCredentials) == "true"; got != row.acac {
					t.Errorf("%s: allow-credentials %v, want %v", row.name, got, row.acac)
				}
				for _, c := range []struct{ name, want string }{
					{cors.HeaderAllowMethods, row.methods}, {cors.HeaderAllowHeaders, row.headers},
					{cors.HeaderExposeHeaders, row.expose}, {cors.HeaderMaxAge, row.maxAge},
				} {
					if got := splitList(h.Get(c.name)); !slices.Equal(got, splitList(c.want)) {
						t.Errorf("%s: %s %q, want %q", row.name, c.name, h.Get(c.name), c.want)
					}
				}
				if reached := hits.Load() != before; reached != row.toApp {
					t.Errorf("%s: reached the backend %v, want %v", row.name, reached, row.toApp)
				}
				if row.fetch != nil {
					ok := row.fetch.CORSCheck(h)
					if row.fetch.NeedsPreflight() {
						ok = row.fetch.PreflightAllows(res.StatusCode, h)
					}
					if ok != row.browserOK {
						t.Errorf("%s: browser verdict %v, want %v", row.name, ok, row.browserOK)
					}
				}
			}
		})
	}
}

// serveSidecar runs the real sidecar with config on the port of a counting backend.
func serveSidecar(t *testing.T, config string) (string, *atomic.Int64) {
	t.Helper()
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.WriteString(w, "backend")
	}))
	t.Cleanup(up.Close)
	port := up.Listener.Addr().(*net.TCPAddr).Port
	pols, err := cors.ParsePodPolicy([]byte(`{"version":1,"ports":{"` + strconv.Itoa(port) + `":` + config + `}}`))
	if err != nil {
		t.Fatal(err)
	}
	store := &sidecar.PolicyStore{}
	store.Store(pols)
	proxy, err := sidecar.New(sidecar.Config{Upstream: up.Listener.Addr().String()}, store, &sidecar.Metrics{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { proxy.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		proxy.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), &hits
}

// TestConvertConflicts: a second policy for a Service that already has one is reported, not
// merged, and the output stays valid.
func TestConvertConflicts(t *testing.T) {
	objs := load(t, "ingress-nginx.yaml")
	second := objs[0].DeepCopy()
	second.SetName("api-admin")
	ann := second.GetAnnotations()
	ann[nginxPrefix+"cors-allow-origin"] = "https://admin.example.com"
	ann[nginxPrefix+"enable-cors"] = "True" // nginx reads booleans with strconv.ParseBool
	second.SetAnnotations(ann)
	res := Convert(append(objs, second), Options{})
	rep := res.Reports[2]
	if len(rep.Configs) != 0 || !slices.ContainsFunc(rep.Lost, func(l string) bool {
		return strings.Contains(l, "Service shop/api already has the CORS config of shop/api-cors")
	}) {
		t.Errorf("second Ingress for Service api: %+v", rep)
	}
	checkValid(t, &Result{Plugin: Convert(nil, Options{WithPlugin: true}).Plugin, Chains: res.Chains, Configs: res.Configs})
	raw, _ := json.Marshal(res.Chains[0].Spec)
	if string(raw) != `{"chains":[{"name":"inbound-http","plugins":["cors-policy"]}],"selectors":{}}` {
		t.Errorf("chain spec %s", raw)
	}
}
