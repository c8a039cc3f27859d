package cors

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// Literal copies of the seed (../shared/seed beside the repository), so that the tests do not
// depend on files outside the repository. TestSeedCopiesMatchSeed checks they have not drifted
// when the seed is present.
const (
	seedPluginConfigYAML = `kind: PluginConfig
apiVersion: plugin.flomesh.io/v1alpha1
metadata:
  name: cors-policy-config
  namespace: pipy
spec:
  config:
    allowCredentials: true
    allowHeaders:
    - X-Foo-Bar-1
    allowMethods:
    - POST
    - GET
    - PATCH
    - DELETE
    allowOrigins:
    - regex: http.*://www.test.cn
    - exact: http://www.aaa.com
    - prefix: http://www.bbb.com
    exposeHeaders:
    - Content-Encoding
    - Kuma-Revision
    maxAge: 24h
  plugin: cors-policy
  destinationRefs:
    - kind: Service
      name: pipy-ok
      namespace: pipy
`
	seedGetOriginBBB = `HTTP/1.1 200 OK
access-control-allow-credentials: true
access-control-expose-headers: Content-Encoding,Kuma-Revision
access-control-allow-origin: http://www.bbb.com
content-length: 20
connection: keep-alive

Hi, I am PIPY-OK v1!
`
	seedOptionsOriginBBB = `HTTP/1.1 200 OK
access-control-allow-origin: http://www.bbb.com
access-control-allow-credentials: true
access-control-expose-headers: Content-Encoding,Kuma-Revision
access-control-allow-methods: POST,GET,PATCH,DELETE
access-control-allow-headers: X-Foo-Bar-1
access-control-max-age: 86400
content-length: 0
connection: keep-alive
`
)

func TestSeedCopiesMatchSeed(t *testing.T) {
	seed := filepath.Join("..", "..", "shared", "seed")
	if _, err := os.Stat(seed); err != nil {
		t.Skipf("seed not present beside the repository: %v", err)
	}
	for file, copy := range map[string]string{
		"manifests/cors-policy-config.yaml": seedPluginConfigYAML,
		"expected/get-origin-bbb.txt":       seedGetOriginBBB,
		"expected/options-origin-bbb.txt":   seedOptionsOriginBBB,
	} {
		b, err := os.ReadFile(filepath.Join(seed, file))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(b)) != strings.TrimSpace(copy) {
			t.Errorf("the test's copy of %s has drifted from the seed:\n%s", file, b)
		}
	}
}

// seedConfigJSON returns spec.config of the seed PluginConfig as the apiserver would hand it to
// the webhook: YAML converted to JSON.
func seedConfigJSON(t testing.TB) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(seedPluginConfigYAML))
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Spec struct {
			Config json.RawMessage `json:"config"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(j, &obj); err != nil {
		t.Fatal(err)
	}
	return obj.Spec.Config
}

func seedPolicy(t testing.TB) *Policy {
	t.Helper()
	path := field.NewPath("spec", "config")
	cfg, errs := Decode(seedConfigJSON(t), path)
	if len(errs) > 0 {
		t.Fatalf("Decode(seed): %v", errs)
	}
	p, errs := Compile(cfg, path)
	if len(errs) > 0 {
		t.Fatalf("Compile(seed): %v", errs)
	}
	return p
}

// corsHeaders returns the access-control-* header lines of an expected response, in order.
func corsHeaders(t *testing.T, response string) []Header {
	t.Helper()
	var hs []Header
	sc := bufio.NewScanner(strings.NewReader(response))
	sc.Scan() // status line
	for sc.Scan() && sc.Text() != "" {
		name, value, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			t.Fatalf("bad header line %q", sc.Text())
		}
		if strings.HasPrefix(name, "access-control-") {
			hs = append(hs, Header{Name: name, Value: value})
		}
	}
	return hs
}

func TestSeedDecode(t *testing.T) {
	cfg, errs := Decode(seedConfigJSON(t), field.NewPath("spec", "config"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	maxAge := intstr.FromString("24h")
	want := &v1alpha1.CORSConfig{
		AllowOrigins: []v1alpha1.OriginMatcher{
			{Regex: "http.*://www.test.cn"},
			{Exact: "http://www.aaa.com"},
			{Prefix: "http://www.bbb.com"},
		},
		AllowMethods:     []string{"POST", "GET", "PATCH", "DELETE"},
		AllowHeaders:     []string{"X-Foo-Bar-1"},
		ExposeHeaders:    []string{"Content-Encoding", "Kuma-Revision"},
		AllowCredentials: true,
		MaxAge:           &maxAge,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Decode(seed) =\n%+v\nwant\n%+v", cfg, want)
	}
}

// TestSeedResponses checks the two responses of the seed's "Test" section. The header values
// are the contract; for the preflight the order is kept too.
func TestSeedResponses(t *testing.T) {
	p := seedPolicy(t)

	t.Run("GET", func(t *testing.T) {
		d := p.Decide("GET", "http://www.bbb.com")
		if want := (Decision{Action: Actual, Origin: "http://www.bbb.com"}); d != want {
			t.Fatalf("Decide = %+v, want %+v", d, want)
		}
		got := p.AppendHeaders(nil, d)
		want := corsHeaders(t, seedGetOriginBBB)
		if len(want) != 3 {
			t.Fatalf("expected GET response has %d access-control headers, want 3", len(want))
		}
		if !sameHeaderSet(got, want) {
			t.Errorf("GET headers = %v, want (any order) %v", got, want)
		}
	})

	t.Run("OPTIONS", func(t *testing.T) {
		d := p.Decide("OPTIONS", "http://www.bbb.com")
		if want := (Decision{Action: Preflight, Origin: "http://www.bbb.com"}); d != want {
			t.Fatalf("Decide = %+v, want %+v", d, want)
		}
		got := p.AppendHeaders(nil, d)
		want := corsHeaders(t, seedOptionsOriginBBB)
		if len(want) != 6 {
			t.Fatalf("expected OPTIONS response has %d access-control headers, want 6", len(want))
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("OPTIONS headers =\n%v\nwant (in this order)\n%v", got, want)
		}
	})
}

func sameHeaderSet(a, b []Header) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[Header]int{}
	for _, h := range a {
		m[h]++
	}
	for _, h := range b {
		if m[h] == 0 {
			return false
		}
		m[h]--
	}
	return true
}
