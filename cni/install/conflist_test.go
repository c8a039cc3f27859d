package install

import (
	"encoding/json"
	"strings"
	"testing"
)

// bridge is a conflist as a node's network plugin writes it (localcluster's node writes this).
const bridge = `{
  "cniVersion": "1.0.0",
  "name": "cors-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cors-node0",
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.213.0.0/16"}]]}
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`

func TestInsertRemove(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		err      string
	}{
		{name: "bridge and portmap", in: bridge},
		{name: "one plugin, compact", in: `{"cniVersion":"1.0.0","name":"n","plugins":[{"type":"bridge"}]}`},
		{name: "plugins before other keys", in: `{"plugins":[{"type":"calico","x":[1,{"y":"]"}]}],"name":"k8s-pod-network","cniVersion":"0.3.1"}`},
		{name: "no plugin to chain after", in: `{"name":"n","plugins":[]}`, err: "no plugin"},
		{name: "a single-plugin conf", in: `{"name":"n","type":"bridge"}`, err: "no plugin"},
		{name: "not JSON", in: `{"plugins": [`, err: "not a network configuration list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, changed, err := Insert([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Insert error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !changed {
				t.Fatalf("Insert: changed %v, %v", changed, err)
			}
			if holds, err := Holds(out); !holds || err != nil {
				t.Fatalf("after Insert, Holds = %v, %v:\n%s", holds, err, out)
			}
			var l struct{ Plugins []map[string]any }
			if err := json.Unmarshal(out, &l); err != nil || l.Plugins[len(l.Plugins)-1]["type"] != "cors-cni" {
				t.Fatalf("cors-cni is not the last plugin (%v):\n%s", err, out)
			}
			if again, changed, err := Insert(out); changed || err != nil || string(again) != string(out) {
				t.Errorf("Insert twice changed the file (%v, %v)", changed, err)
			}
			back, changed, err := Remove(out)
			if err != nil || !changed || string(back) != tc.in {
				t.Errorf("Remove(Insert(x)) = %q (%v, %v), want x byte for byte", back, changed, err)
			}
			if _, changed, _ := Remove([]byte(tc.in)); changed {
				t.Error("Remove of a file without the entry changed it")
			}
		})
	}
}

// TestRemoveAfterAnotherWriterReformatted: a writer that re-encodes the file keeps the entry
// but not its text; Remove still takes it out (the rest is then re-encoded too).
func TestRemoveAfterAnotherWriterReformatted(t *testing.T) {
	in, _, err := Insert([]byte(bridge))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(in, &v); err != nil {
		t.Fatal(err)
	}
	reformatted, _ := json.MarshalIndent(v, "", "    ")
	out, changed, err := Remove(reformatted)
	if err != nil || !changed {
		t.Fatalf("Remove: %v, %v", changed, err)
	}
	if holds, _ := Holds(out); holds || strings.Contains(string(out), "cors-cni") {
		t.Errorf("still holds cors-cni:\n%s", out)
	}
	if !strings.Contains(string(out), `"portmap"`) {
		t.Errorf("lost the other plugins:\n%s", out)
	}
}

func TestHolds(t *testing.T) {
	for in, want := range map[string]bool{
		bridge: false,
		`{"plugins":[{"type":"bridge"},{"type":"cors-cni"}]}`:                    true,
		`{"plugins":[{"type":"bridge"},{"type":"cors-cni"},{"type":"portmap"}]}`: true,
		`{"plugins":[{"type":"cors-cni"}]}`:                                      false, // nothing before it: no pod network
	} {
		if got, err := Holds([]byte(in)); got != want || err != nil {
			t.Errorf("Holds(%s) = %v, %v; want %v", in, got, err, want)
		}
	}
}
