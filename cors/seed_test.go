package cors

import (
	"bufio"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
	"github.com/cors-webhook/cors-webhook/examples"
)

// The guide's PluginConfig and expected responses (examples/).
var (
	seedPluginConfigYAML = examples.Manifest(examples.PluginConfig)
	seedGetOriginBBB     = examples.Expected(examples.GetOriginBBB)
	seedOptionsOriginBBB = examples.Expected(examples.OptionsOriginBBB)
)

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
	want := &corsconfig.CORSConfig{
		AllowOrigins: []corsconfig.OriginMatcher{
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
		d := p.Decide(Request{Method: "GET", Origin: "http://www.bbb.com"})
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
		d := p.Decide(Request{Method: "OPTIONS", Origin: "http://www.bbb.com"})
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
