package cni

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/google/nftables"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/sidecar/redirect"
)

func TestRedirect(t *testing.T) {
	cniPod := func(kv ...string) map[string]string {
		m := map[string]string{contract.AnnotationRedirectMode: contract.RedirectModeCNI}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		want        redirect.Rules
		ours        bool
		err         string
	}{
		{name: "no annotations"},
		{name: "init mode (cors-init does it)", annotations: map[string]string{contract.AnnotationRedirectPorts: "8080"}},
		{name: "other mode value", annotations: map[string]string{contract.AnnotationRedirectMode: "init", contract.AnnotationRedirectPorts: "8080"}},
		{name: "cni mode without ports", annotations: cniPod()},
		{name: "cni mode with empty ports", annotations: cniPod(contract.AnnotationRedirectPorts, "")},
		{name: "cni mode", annotations: cniPod(contract.AnnotationRedirectPorts, "8080,9090"),
			want: redirect.Rules{ProxyPort: contract.DefaultInboundPort, Ports: []uint16{8080, 9090}}, ours: true},
		{name: "cni mode, own proxy port", annotations: cniPod(contract.AnnotationRedirectPorts, "8080", contract.AnnotationProxyPort, "16000"),
			want: redirect.Rules{ProxyPort: 16000, Ports: []uint16{8080}}, ours: true},
		{name: "bad ports", annotations: cniPod(contract.AnnotationRedirectPorts, "http"), err: contract.AnnotationRedirectPorts},
		{name: "bad proxy port", annotations: cniPod(contract.AnnotationRedirectPorts, "8080", contract.AnnotationProxyPort, "0"), err: contract.AnnotationProxyPort},
		{name: "proxy port among the ports", annotations: cniPod(contract.AnnotationRedirectPorts, "8080", contract.AnnotationProxyPort, "8080"), err: "loop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ours, err := Redirect(tc.annotations)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Redirect() error %v, want one naming %q", err, tc.err)
				}
				return
			}
			if err != nil || ours != tc.ours || ours && !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Redirect() = %+v, %v, %v; want %+v, %v", got, ours, err, tc.want, tc.ours)
			}
		})
	}
}

// prevResult is what a bridge plugin returns, as the runtime hands it to the next plugin.
const prevResult = `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","mac":"0a:58:0a:d5:00:05","sandbox":"/var/run/netns/x"}],"ips":[{"interface":0,"address":"10.213.0.5/16","gateway":"10.213.0.1"}],"routes":[{"dst":"10.214.0.0/16"}],"dns":{}}`

func stdin(t *testing.T, cniVersion string, annotations map[string]string, prev string) []byte {
	t.Helper()
	conf := map[string]any{"cniVersion": cniVersion, "name": "cors-node", "type": PluginType,
		"capabilities": map[string]bool{CapabilityPodAnnotations: true}}
	if annotations != nil {
		conf["runtimeConfig"] = map[string]any{CapabilityPodAnnotations: annotations}
	}
	if prev != "" {
		conf["prevResult"] = json.RawMessage(prev)
	}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var netnsSeq atomic.Int32

// netNS creates a named network namespace (a bind mount under /run/netns, as runtimes make
// them) and removes it when the test ends; remove removes it earlier, to play a gone sandbox.
func netNS(t *testing.T) (path string, remove func(), opt nftables.ConnOption) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root (network namespaces, CAP_NET_ADMIN); run as root, as CI does")
	}
	name := fmt.Sprintf("cors-cni-ut-%d-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6, netnsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	path = "/run/netns/" + name
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var once bool
	remove = func() {
		if once {
			return
		}
		once = true
		f.Close()
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del: %v\n%s", err, out)
		}
	}
	t.Cleanup(remove)
	return path, remove, nftables.WithNetNSFd(int(f.Fd()))
}

var ours = map[string]string{
	contract.AnnotationRedirectMode:  contract.RedirectModeCNI,
	contract.AnnotationRedirectPorts: "8080",
	"other.example/annotation":       "kept",
}

var wantRules = redirect.Rules{ProxyPort: contract.DefaultInboundPort, Ports: []uint16{8080}}

func TestAdd(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cniVersion  string
		annotations map[string]string
		prev        string
		installed   bool
	}{
		{name: "ours, after the bridge", cniVersion: "1.0.0", annotations: ours, prev: prevResult, installed: true},
		{name: "ours, spec 1.1", cniVersion: "1.1.0", annotations: ours, prev: strings.Replace(prevResult, `"1.0.0"`, `"1.1.0"`, 1), installed: true},
		{name: "ours, first in the list (no prevResult)", cniVersion: "1.0.0", annotations: ours, installed: true},
		{name: "not ours (init mode)", cniVersion: "1.0.0", annotations: map[string]string{contract.AnnotationRedirectPorts: "8080"}, prev: prevResult},
		{name: "no annotations from the runtime", cniVersion: "1.0.0", prev: prevResult},
		{name: "not ours, no prevResult", cniVersion: "1.0.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _, opt := netNS(t)
			var out bytes.Buffer
			args := &skel.CmdArgs{ContainerID: "c1", Netns: path, IfName: "eth0", StdinData: stdin(t, tc.cniVersion, tc.annotations, tc.prev)}
			if err := Add(args, &out); err != nil {
				t.Fatalf("ADD: %v", err)
			}
			want := tc.prev
			if want == "" {
				want = fmt.Sprintf(`{"cniVersion":%q}`, tc.cniVersion)
			}
			if !jsonEqual(t, out.Bytes(), []byte(want)) {
				t.Errorf("ADD result\n%s\nwant (prevResult unchanged)\n%s", out.String(), want)
			}
			err := redirect.Check(wantRules, opt)
			if tc.installed && err != nil {
				t.Errorf("after ADD: %v", err)
			}
			if !tc.installed && !errors.Is(err, redirect.ErrNotInstalled) {
				t.Errorf("after ADD of a pod not ours, the redirect check says %v, want nothing installed", err)
			}
			// CHECK agrees, DEL twice removes it, CHECK of a pod without its table then fails.
			if err := Check(args); err != nil {
				t.Errorf("CHECK: %v", err)
			}
			for i := range 2 {
				if err := Del(args); err != nil {
					t.Fatalf("DEL %d: %v", i+1, err)
				}
			}
			if err := redirect.Check(wantRules, opt); !errors.Is(err, redirect.ErrNotInstalled) {
				t.Errorf("after DEL: %v, want nothing installed", err)
			}
			if err := Check(args); tc.installed && err == nil {
				t.Error("CHECK after DEL: nil, want the missing redirect reported")
			}
		})
	}
}

func TestAddRefusesWhatItCannotInstall(t *testing.T) {
	path, _, _ := netNS(t)
	for _, tc := range []struct {
		name, netns string
		annotations map[string]string
	}{
		{"bad ports annotation", path, map[string]string{contract.AnnotationRedirectMode: contract.RedirectModeCNI, contract.AnnotationRedirectPorts: "80a"}},
		{"netns gone", "/run/netns/cors-cni-ut-never-made", ours},
	} {
		var out bytes.Buffer
		err := Add(&skel.CmdArgs{ContainerID: "c1", Netns: tc.netns, IfName: "eth0", StdinData: stdin(t, "1.0.0", tc.annotations, prevResult)}, &out)
		if err == nil {
			t.Errorf("%s: ADD succeeded, want an error (the pod would run without its redirect)", tc.name)
		}
	}
	if err := Add(&skel.CmdArgs{StdinData: []byte("{")}, &bytes.Buffer{}); err == nil {
		t.Error("ADD of a config that is not JSON succeeded")
	}
}

func TestDelCheckWhenTheNetNSIsGone(t *testing.T) {
	path, remove, _ := netNS(t)
	args := &skel.CmdArgs{ContainerID: "c1", Netns: path, IfName: "eth0", StdinData: stdin(t, "1.0.0", ours, prevResult)}
	if err := Add(args, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	remove()
	for _, netns := range []string{path, ""} {
		args.Netns = netns
		for i := range 2 {
			if err := Del(args); err != nil {
				t.Errorf("DEL %d with netns %q gone: %v", i+1, netns, err)
			}
		}
		if err := Check(args); err != nil {
			t.Errorf("CHECK with netns %q gone: %v", netns, err)
		}
	}
	for name, f := range map[string]func(*skel.CmdArgs) error{"GC": GC, "STATUS": Status} {
		if err := f(args); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%s: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}
