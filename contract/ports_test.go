package contract

import (
	"slices"
	"testing"
)

func TestPortList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int32
		bad  []BadPort
		text string // FormatPorts of want
	}{
		{in: "", text: ""},
		{in: "8080", want: []int32{8080}, text: "8080"},
		{in: "8443,8080,8080", want: []int32{8080, 8443}, text: "8080,8443"},
		{in: " 80 , ,443,", want: []int32{80, 443}, text: "80,443"},
		{in: "0,65536,http,-1,22", want: []int32{22}, bad: []BadPort{"0", "65536", "http", "-1"}, text: "22"},
		{in: "65535,1", want: []int32{1, 65535}, text: "1,65535"},
	} {
		got, bad := ParsePorts(tc.in)
		if !slices.Equal(got, tc.want) || !slices.Equal(bad, tc.bad) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v, %v", tc.in, got, bad, tc.want, tc.bad)
		}
		if s := FormatPorts(got); s != tc.text {
			t.Errorf("FormatPorts(%v) = %q, want %q", got, s, tc.text)
		}
		again, _ := ParsePorts(FormatPorts(got))
		if !slices.Equal(again, got) {
			t.Errorf("round trip of %v gave %v", got, again)
		}
	}
	if s := FormatPorts([]uint16{8443, 80, 80}); s != "80,8443" {
		t.Errorf("FormatPorts(uint16) = %q", s)
	}
	if msg := BadPort("x").Error(); msg != `"x" is not a port number in 1..65535` {
		t.Errorf("BadPort.Error() = %q", msg)
	}
}

// TestDefaultPortsAvoidIstio: a pod may carry Istio's sidecar too; its reserved ports
// (istio.io "Ports used by Istio") must stay free of ours.
func TestDefaultPortsAvoidIstio(t *testing.T) {
	istio := []int32{15000, 15001, 15004, 15006, 15008, 15010, 15012, 15014, 15017, 15020, 15021, 15053, 15090}
	for name, p := range map[string]int32{"inbound": DefaultInboundPort, "admin": DefaultAdminPort} {
		if slices.Contains(istio, p) {
			t.Errorf("the default %s port %d is reserved by Istio", name, p)
		}
	}
}
