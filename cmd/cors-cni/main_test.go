package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestAsACNIPlugin runs the built binary as a runtime does: VERSION names spec 1.0 and 1.1,
// and ADD of a pod that is not ours hands prevResult back unchanged without touching a netns.
func TestAsACNIPlugin(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "cors-cni")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	plugin := func(command, stdin string) (string, error) {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), "CNI_COMMAND="+command, "CNI_CONTAINERID=c1", "CNI_NETNS=/run/netns/none", "CNI_IFNAME=eth0", "CNI_PATH=/nonexistent")
		cmd.Stdin = strings.NewReader(stdin)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		if err != nil {
			t.Logf("%s: %s%s", command, out.String(), errOut.String())
		}
		return out.String(), err
	}
	out, err := plugin("VERSION", `{"cniVersion":"1.0.0"}`)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Supported []string `json:"supportedVersions"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || !slices.Equal(v.Supported, []string{"1.0.0", "1.1.0"}) {
		t.Errorf("VERSION = %s (%v)", out, err)
	}
	prev := `{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"interface":0,"address":"10.213.0.5/16"}]}`
	out, err = plugin("ADD", `{"cniVersion":"1.0.0","name":"n","type":"cors-cni","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{"a":"b"}},"prevResult":`+prev+`}`)
	if err != nil || strings.TrimSpace(out) != prev {
		t.Errorf("ADD of a pod not ours = %s, %v; want prevResult unchanged", out, err)
	}
	for _, cmd := range []string{"DEL", "GC", "STATUS"} {
		if _, err := plugin(cmd, `{"cniVersion":"1.1.0","name":"n","type":"cors-cni"}`); err != nil {
			t.Errorf("%s: %v", cmd, err)
		}
	}
}
