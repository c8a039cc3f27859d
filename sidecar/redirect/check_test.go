package redirect

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/google/nftables"
)

// TestCheck installs rules in a throw-away network namespace and checks what Check says of
// them, of other rules, and of an empty namespace.
func TestCheck(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root (network namespaces, CAP_NET_ADMIN); run as root, as CI does")
	}
	name := fmt.Sprintf("redir-check-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ns := nftables.WithNetNSFd(int(f.Fd()))

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
