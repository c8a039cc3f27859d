package redirect

import (
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
)

func TestParsePorts(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []uint16
		err  bool
	}{
		{"8080", []uint16{8080}, false},
		{"8081, 8080,8081", []uint16{8080, 8081}, false},
		{"", nil, false},
		{"0", nil, true},
		{"65536", nil, true},
		{"http", nil, true},
		{"-1", nil, true},
	} {
		got, err := ParsePorts(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("ParsePorts(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rules Rules
		err   string
	}{
		{"ok", Rules{ProxyPort: 15003, Ports: []uint16{8080}}, ""},
		{"no ports", Rules{ProxyPort: 15003}, "at least one port"},
		{"loop", Rules{ProxyPort: 15003, Ports: []uint16{8080, 15003}}, "would loop"},
		{"no proxy port", Rules{Ports: []uint16{8080}}, "proxy port"},
		{"bad table", Rules{Table: "a b", ProxyPort: 1, Ports: []uint16{2}}, "table name"},
	} {
		err := tc.rules.Validate()
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.err)
		}
	}
}

func TestString(t *testing.T) {
	got := Rules{ProxyPort: 15003, Ports: []uint16{8081, 8080, 8081}}.String()
	want := `table inet cors_sidecar {
	set redirect_ports {
		type inet_service
		elements = { 8080, 8081 }
	}

	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname != "lo" tcp dport @redirect_ports redirect to :15003
	}
}
`
	if got != want {
		t.Errorf("String() =\n%s\nwant\n%s", got, want)
	}
}

// TestInstallInNetNS installs, re-installs, lists and removes the rules in a throw-away network
// namespace, and checks that what the kernel holds is what --dry-run prints. It needs root and
// the ip and nft tools (the e2e test covers the traffic itself).
func TestInstallInNetNS(t *testing.T) {
	// Like the e2e tests, this fails rather than skips when it cannot run: make test runs as root
	// with the tools .ci/run installs.
	if os.Geteuid() != 0 {
		t.Fatal("needs root (network namespaces, CAP_NET_ADMIN); run as root, as CI does")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("needs %s (apt-get install -y iproute2 nftables): %v", tool, err)
		}
	}
	name, ns := testNetNS(t, "redir-ut")
	list := func() string {
		out, err := exec.Command("ip", "netns", "exec", name, "nft", "list", "ruleset").CombinedOutput()
		if err != nil {
			t.Fatalf("nft list ruleset: %v\n%s", err, out)
		}
		return string(out)
	}

	first := Rules{ProxyPort: 15003, Ports: []uint16{8080, 9090}}
	if err := Install(first, ns); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != first.String() {
		t.Errorf("installed:\n%s\nwant (the dry-run output):\n%s", got, first.String())
	}
	// Again, with other ports: the table is replaced, not duplicated.
	second := Rules{ProxyPort: 15003, Ports: []uint16{8080}}
	if err := Install(second, ns); err != nil {
		t.Fatal(err)
	}
	if got := list(); got != second.String() {
		t.Errorf("re-installed:\n%s\nwant:\n%s", got, second.String())
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := Cleanup("", ns); err != nil {
			t.Fatalf("cleanup %d: %v", i, err)
		}
	}
	if got := list(); strings.TrimSpace(got) != "" {
		t.Errorf("after cleanup:\n%s", got)
	}
}

// testNetNS creates a named network namespace for a test (removed when it ends) and returns
// its name and the option that points nftables at it.
func testNetNS(t *testing.T, prefix string) (string, nftables.ConnOption) {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	f, err := os.Open("/run/netns/" + name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return name, nftables.WithNetNSFd(int(f.Fd()))
}
