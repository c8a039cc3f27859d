package podjson_test

import (
	"crypto/sha256"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/cors-webhook/cors-webhook/inject"
	"github.com/cors-webhook/cors-webhook/internal/podjson"
)

// FuzzReplicaKey: for any JSON object the key is made without a panic, and a document with
// nothing to mask is its own key.
func FuzzReplicaKey(f *testing.F) {
	f.Add(`{"metadata":{"name":"p","uid":"u","managedFields":[{"a":"]"}]},"spec":{"volumes":[{"name":"v"}],"containers":[{"name":"c","volumeMounts":[{"name":"v"}]}]}}`)
	f.Add(`{"spec":{"volumes":null,"containers":[1,"x",{"volumeMounts":{}}]}}`)
	f.Add(`{"kind":"Pod","spec":{"initContainers":[{"volumeMounts":[{"name":"cors-policy"}]}]}}`)
	f.Add(`null`)
	f.Fuzz(func(t *testing.T, raw string) {
		var doc map[string]any
		if json.Unmarshal([]byte(raw), &doc) != nil || doc == nil {
			return // not a JSON object: "null" decodes into a nil map without an error
		}
		key, ok := podjson.ReplicaKey(nil, "ns", []byte(raw), inject.ReplicaMask)
		if !ok {
			t.Fatalf("no key for the JSON object %q", raw)
		}
		if hash, ok := podjson.ReplicaHash("ns", []byte(raw), inject.ReplicaMask); !ok || hash != sha256.Sum256(key) {
			t.Fatalf("%q: the memo's hash %x is not the key's %x", raw, hash, sha256.Sum256(key))
		}
		masks := strings.Count(string(key), "\x00") - 1
		if masks == 0 && string(key) != "ns\x00"+raw {
			t.Fatalf("%q: key %q without a mask", raw, key)
		}
		if masks > 0 && !slices.ContainsFunc([]string{"metadata", "spec"}, func(k string) bool { return doc[k] != nil }) {
			t.Fatalf("%q: masked without metadata or spec: %q", raw, key)
		}
	})
}
