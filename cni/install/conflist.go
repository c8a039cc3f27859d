// Package install puts cors-cni on a node and keeps it there: it copies the plugin into the
// runtime's CNI bin dir and chains it into the node's primary network configuration (the
// conflist the runtime uses), re-asserts that entry when another writer replaces the file, and
// takes both away again on uninstall.
//
// Strategy: the entry is inserted into the primary conflist, not written as an owned,
// higher-priority file. An owned copy of the primary's plugins would shadow the node's own
// network plugin and go stale the next time that plugin updates its file (Cilium, Calico and
// Flannel all rewrite theirs); inserting keeps their updates and re-inserts after them, as
// istio-cni and linkerd-cni do in chained mode. The insertion is textual, right after the last
// plugin, so removing it gives the file back byte for byte.
package install

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cors-webhook/cors-webhook/cni"
)

// Entry is the plugin's entry as it is inserted: its type, and the capability through which
// the runtime passes each pod's annotations.
var Entry = []byte(`{"type":"` + cni.PluginType + `","capabilities":{"` + cni.CapabilityPodAnnotations + `":true}}`)

// conflist is the part of a network configuration list the installer reads.
type conflist struct {
	Plugins []struct {
		Type string `json:"type"`
	} `json:"plugins"`
}

// Holds reports whether the conflist chains cors-cni after at least one other plugin.
func Holds(data []byte) (bool, error) {
	var l conflist
	if err := json.Unmarshal(data, &l); err != nil {
		return false, fmt.Errorf("not a network configuration list: %w", err)
	}
	for i, p := range l.Plugins {
		if p.Type == cni.PluginType {
			return i > 0, nil
		}
	}
	return false, nil
}

// Insert returns the conflist with Entry appended to its plugins, every other byte unchanged;
// changed is false when it holds the entry already.
func Insert(data []byte) (out []byte, changed bool, err error) {
	l, err := parse(data)
	if err != nil {
		return nil, false, err
	}
	for _, p := range l.Plugins {
		if p.Type == cni.PluginType {
			return data, false, nil
		}
	}
	if len(l.Plugins) == 0 {
		return nil, false, errors.New("the network configuration list has no plugin to chain after")
	}
	at, err := lastPluginEnd(data)
	if err != nil {
		return nil, false, err
	}
	out = make([]byte, 0, len(data)+len(Entry)+1)
	out = append(out, data[:at]...)
	out = append(out, ',')
	out = append(out, Entry...)
	out = append(out, data[at:]...)
	return out, true, nil
}

// Remove returns the conflist without the plugin's entry: byte for byte what it was before
// Insert when the inserted text is still there, else the list re-encoded without every
// cors-cni entry; changed is false when it holds none.
func Remove(data []byte) (out []byte, changed bool, err error) {
	inserted := append([]byte{','}, Entry...)
	if i := bytes.Index(data, inserted); i >= 0 {
		return append(append([]byte(nil), data[:i]...), data[i+len(inserted):]...), true, nil
	}
	var l map[string]any
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, false, fmt.Errorf("not a network configuration list: %w", err)
	}
	plugins, _ := l["plugins"].([]any)
	kept := make([]any, 0, len(plugins))
	for _, p := range plugins {
		if m, ok := p.(map[string]any); ok && m["type"] == cni.PluginType {
			continue
		}
		kept = append(kept, p)
	}
	if len(kept) == len(plugins) {
		return data, false, nil
	}
	l["plugins"] = kept
	out, err = json.MarshalIndent(l, "", "  ")
	return out, err == nil, err
}

func parse(data []byte) (*conflist, error) {
	var l conflist
	if err := json.Unmarshal(data, &l); err != nil {
		return nil, fmt.Errorf("not a network configuration list: %w", err)
	}
	return &l, nil
}

// lastPluginEnd is the offset just after the last element of the top-level "plugins" array.
func lastPluginEnd(data []byte) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return 0, errors.New("not a JSON object")
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return 0, err
		}
		if key != "plugins" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return 0, err
			}
			continue
		}
		if tok, err := dec.Token(); err != nil || tok != json.Delim('[') {
			return 0, errors.New(`"plugins" is not an array`)
		}
		end := -1
		for dec.More() {
			var plugin json.RawMessage
			if err := dec.Decode(&plugin); err != nil {
				return 0, err
			}
			end = int(dec.InputOffset())
		}
		if end < 0 {
			return 0, errors.New(`"plugins" is empty`)
		}
		return end, nil
	}
	return 0, errors.New(`no "plugins" array`)
}
