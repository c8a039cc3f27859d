package cors

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cors-webhook/cors-webhook/api/corsconfig"
)

func TestPodPolicyRoundTrip(t *testing.T) {
	seedCfg := seedPolicy(t).Config()
	seedCfg.MaxAge = ptr(intstr.FromString("24h")) // Marshal normalizes it
	pp := PodPolicy{
		Version: PodPolicyVersion,
		Ports: map[string]corsconfig.CORSConfig{
			"8080":  *seedCfg,
			"10000": {AllowOrigins: origins(exact("https://a.example")), AllowMethods: []string{}},
		},
	}
	b, err := pp.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"ports":{"10000":{"allowOrigins":[{"exact":"https://a.example"}]},` +
		`"8080":{"allowOrigins":[{"regex":"http.*://www.test.cn"},{"exact":"http://www.aaa.com"},{"prefix":"http://www.bbb.com"}],` +
		`"allowMethods":["POST","GET","PATCH","DELETE"],"allowHeaders":["X-Foo-Bar-1"],"exposeHeaders":["Content-Encoding","Kuma-Revision"],` +
		`"allowCredentials":true,"maxAge":86400}}}`
	if string(b) != want {
		t.Fatalf("Marshal =\n%s\nwant\n%s", b, want)
	}
	b2, err := pp.Marshal()
	if err != nil || string(b2) != string(b) {
		t.Fatalf("Marshal is not deterministic: %s", b2)
	}

	pols, err := ParsePodPolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 2 || pols[8080] == nil || pols[10000] == nil {
		t.Fatalf("ParsePodPolicy = %v", pols)
	}
	got := pols[8080].AppendHeaders(nil, pols[8080].Decide(Request{Method: "OPTIONS", Origin: "http://www.bbb.com"}))
	if want := corsHeaders(t, seedOptionsOriginBBB); !reflect.DeepEqual(got, want) {
		t.Errorf("policy loaded from the annotation answers %v, want %v", got, want)
	}
	if d := pols[10000].Decide(Request{Method: "GET", Origin: "https://a.example"}); d.Action != Actual {
		t.Errorf("port 10000 Decide = %v", d)
	}

	// Marshal(Parse(x)) is a fixed point.
	back := PodPolicy{Version: PodPolicyVersion, Ports: map[string]corsconfig.CORSConfig{}}
	for port, p := range map[string]*Policy{"8080": pols[8080], "10000": pols[10000]} {
		back.Ports[port] = *p.Config()
	}
	if b3, err := back.Marshal(); err != nil || string(b3) != string(b) {
		t.Errorf("re-marshalled policy differs:\n%s\n%v", b3, err)
	}
}

func TestPodPolicyMarshalDefaults(t *testing.T) {
	b, err := PodPolicy{}.Marshal()
	if err != nil || string(b) != `{"version":1,"ports":{}}` {
		t.Fatalf("empty PodPolicy marshals to %s, %v", b, err)
	}
	pols, err := ParsePodPolicy(b)
	if err != nil || pols == nil || len(pols) != 0 {
		t.Fatalf("ParsePodPolicy(empty) = %v, %v", pols, err)
	}
	b, err = PodPolicy{Ports: map[string]corsconfig.CORSConfig{"80": {AllowOrigins: origins(regex("a&b<c>"))}}}.Marshal()
	if err != nil || string(b) != `{"version":1,"ports":{"80":{"allowOrigins":[{"regex":"a&b<c>"}]}}}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
}

func TestPodPolicyMarshalErrors(t *testing.T) {
	ok := corsconfig.CORSConfig{AllowOrigins: origins(exact("x"))}
	tests := []struct {
		name string
		pp   PodPolicy
		err  string
	}{
		{"unknown version", PodPolicy{Version: 2, Ports: map[string]corsconfig.CORSConfig{"80": ok}}, "version 2 is not supported"},
		{"port 0", PodPolicy{Ports: map[string]corsconfig.CORSConfig{"0": ok}}, `port key "0"`},
		{"port too large", PodPolicy{Ports: map[string]corsconfig.CORSConfig{"65536": ok}}, `port key "65536"`},
		{"leading zero", PodPolicy{Ports: map[string]corsconfig.CORSConfig{"080": ok}}, `port key "080"`},
		{"named port", PodPolicy{Ports: map[string]corsconfig.CORSConfig{"http": ok}}, `port key "http"`},
		{"bad maxAge", PodPolicy{Ports: map[string]corsconfig.CORSConfig{"80": {AllowOrigins: ok.AllowOrigins, MaxAge: ptr(intstr.FromString("x"))}}}, "ports[80]"},
		{"does not compile", PodPolicy{Ports: map[string]corsconfig.CORSConfig{"80": {AllowOrigins: origins(regex("(?=x)"))}}}, "ports[80].allowOrigins[0].regex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.pp.Marshal()
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("Marshal = %s, %v; want error containing %q", b, err, tt.err)
			}
		})
	}
}

func TestParsePodPolicyErrors(t *testing.T) {
	tests := []struct{ name, in, err string }{
		{"empty", ``, "empty"},
		{"null", `null`, "empty"},
		{"not JSON", `{"version":1,`, "not valid JSON"},
		{"not an object", `[1]`, "must be a JSON object"},
		{"missing version", `{"ports":{}}`, "version is missing"},
		{"unknown version", `{"version":2,"ports":{}}`, "version 2 is not supported"},
		{"version not a number", `{"version":"1","ports":{}}`, "version must be an integer"},
		{"fractional version", `{"version":1.0,"ports":{}}`, "not an integer"},
		{"ports not an object", `{"version":1,"ports":[]}`, "ports must be an object"},
		{"port 0", `{"version":1,"ports":{"0":{"allowOrigins":[{"exact":"x"}]}}}`, `port key "0"`},
		{"port out of range", `{"version":1,"ports":{"70000":{"allowOrigins":[{"exact":"x"}]}}}`, `port key "70000"`},
		{"port with sign", `{"version":1,"ports":{"+80":{"allowOrigins":[{"exact":"x"}]}}}`, `port key "+80"`},
		{"duplicate port", `{"version":1,"ports":{"80":{"allowOrigins":[{"exact":"x"}]},"80":{"allowOrigins":[{"exact":"y"}]}}}`, "ports[80]: Duplicate value"},
		{"config that does not compile names the port", `{"version":1,"ports":{"8080":{"allowOrigins":[]}}}`, "ports[8080].allowOrigins: Required value"},
		{"null config", `{"version":1,"ports":{"8080":null}}`, "ports[8080]: Required value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePodPolicy([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("ParsePodPolicy = %v, %v; want error containing %q", got, err, tt.err)
			}
			if got != nil {
				t.Errorf("ParsePodPolicy returned policies with an error")
			}
		})
	}
}

func TestParsePodPolicyAcceptsUnnormalizedConfigs(t *testing.T) {
	pols, err := ParsePodPolicy([]byte(`{"ports":{"8080":{"allowOrigins":[{"exact":"x"}],"maxAge":"2d"}},"version":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := pols[8080].AppendHeaders(nil, pols[8080].Decide(Request{Method: "OPTIONS", Origin: "x"})); got[len(got)-1] != (Header{HeaderMaxAge, "172800"}) {
		t.Errorf("headers = %v", got)
	}
}

// TestDecodePodPolicyForwardCompatible: version 1 may grow fields; a sidecar that predates them
// loads the policy without them and names what it skipped, while version 2 is refused.
func TestDecodePodPolicyForwardCompatible(t *testing.T) {
	plain := `{"version":1,"ports":{"8080":{"allowOrigins":[{"exact":"https://a.example"}],"maxAge":60}}}`
	for _, tt := range []struct {
		name, in string
		ignored  []string
	}{
		{"nothing unknown", plain, nil},
		{"top-level field", `{"version":1,"generation":7,"ports":{"8080":{"allowOrigins":[{"exact":"https://a.example"}],"maxAge":60}}}`, []string{"generation"}},
		{"config field", `{"version":1,"ports":{"8080":{"allowPrivateNetwork":true,"allowOrigins":[{"exact":"https://a.example"}],"maxAge":60}}}`, []string{"ports[8080].allowPrivateNetwork"}},
		{"matcher field", `{"version":1,"ports":{"8080":{"allowOrigins":[{"exact":"https://a.example","caseInsensitive":true}],"maxAge":60}}}`, []string{"ports[8080].allowOrigins[0].caseInsensitive"}},
		{"entry of an unknown matcher only", `{"version":1,"ports":{"8080":{"allowOrigins":[{"glob":"https://b*"},{"exact":"https://a.example"}],"maxAge":60}}}`, []string{"ports[8080].allowOrigins[0].glob"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, ignored, err := DecodePodPolicy([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodePodPolicy: %v", err)
			}
			if !slices.Equal(ignored, tt.ignored) {
				t.Fatalf("ignored %q, want %q", ignored, tt.ignored)
			}
			pol := got[8080]
			if pol == nil {
				t.Fatal("no policy for port 8080")
			}
			if d := pol.Decide(Request{Method: "GET", Origin: "https://a.example"}); d.Action != Actual {
				t.Fatalf("the known part of the policy is not in force: %+v", d)
			}
			if d := pol.Decide(Request{Method: "GET", Origin: "https://b.example"}); d.Action == Actual {
				t.Fatalf("an origin the policy does not allow is allowed: %+v", d)
			}
		})
	}
	if _, _, err := DecodePodPolicy([]byte(`{"version":2,"generation":7,"ports":{}}`)); err == nil || !strings.Contains(err.Error(), "version 2 is not supported") {
		t.Fatalf("version 2: err %v, want it refused", err)
	}
}
