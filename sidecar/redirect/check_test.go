package redirect

import (
	"errors"
	"os"
	"testing"
)

// TestCheck installs rules in a throw-away network namespace and checks what Check says of
// them, of other rules, and of an empty namespace.
func TestCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (network namespaces, CAP_NET_ADMIN); run as root, as CI does")
	}
	_, ns := testNetNS(t, "redir-check")

	installed := Rules{ProxyPort: 15003, Ports: []uint16{8080, 9090}}
	if err := Check(installed, ns); !errors.Is(err, ErrNotInstalled) {
		t.Errorf("Check before Install = %v, want ErrNotInstalled", err)
	}
	if err := Install(installed, ns); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		rules Rules
		ok    bool
	}{
		{"the installed rules", installed, true},
		{"same ports, other order, a duplicate", Rules{ProxyPort: 15003, Ports: []uint16{9090, 8080, 9090}}, true},
		{"a port fewer", Rules{ProxyPort: 15003, Ports: []uint16{8080}}, false},
		{"another proxy port", Rules{ProxyPort: 15004, Ports: []uint16{8080, 9090}}, false},
		{"another table", Rules{Table: "other", ProxyPort: 15003, Ports: []uint16{8080, 9090}}, false},
	} {
		if err := Check(tc.rules, ns); (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
