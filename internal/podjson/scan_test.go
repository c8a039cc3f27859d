package podjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

func TestWithoutManagedFields(t *testing.T) {
	const mf = `"managedFields":[{"manager":"m","fieldsV1":{"f:metadata":{"f:labels":{}}},"x":"a\"]}{,"}]`
	for _, tt := range []struct {
		name, raw string
		cut       bool // whether managedFields should be gone
	}{
		{"only member", `{"metadata":{` + mf + `},"spec":{}}`, true},
		{"first member", `{"metadata":{` + mf + `,"name":"p"},"spec":{}}`, true},
		{"middle member", `{"kind":"Pod","metadata":{"name":"p",` + mf + `,"uid":"u"},"spec":{"containers":[]}}`, true},
		{"last member", `{"metadata":{"name":"p","labels":{"a":"}"},` + mf + `}}`, true},
		{"with spaces", "{ \"metadata\" : { \"name\" : \"p\" ,\n " + mf + " \n, \"uid\":1 } }", true},
		{"metadata after spec", `{"spec":{"x":["{",{"managedFields":1}]},"metadata":{` + mf + `}}`, true},
		{"absent", `{"metadata":{"name":"p"},"spec":{"managedFields":[]}}`, false},
		{"only elsewhere", `{"spec":{"metadata":{` + mf + `}}}`, false},
		{"escaped name", `{"metadata":{"managed\u0046ields":[],"name":"p"}}`, false},
		{"null", `{"metadata":{"managedFields":null,"name":"p"}}`, true},
		{"metadata not an object", `{"metadata":null}`, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := WithoutManagedFields([]byte(tt.raw))
			var in, out map[string]any
			if err := json.Unmarshal([]byte(tt.raw), &in); err != nil {
				t.Fatalf("bad test input: %v", err)
			}
			if err := json.Unmarshal(got, &out); err != nil {
				t.Fatalf("result is not JSON: %v\n%s", err, got)
			}
			if tt.cut {
				delete(in["metadata"].(map[string]any), "managedFields")
			} else if string(got) != tt.raw {
				t.Errorf("changed input without managedFields where expected:\n%s", got)
			}
			if !reflect.DeepEqual(in, out) {
				t.Errorf("got %s", got)
			}
		})
	}
}

// FuzzWithoutManagedFields: for any JSON object, the cut leaves valid JSON that decodes as the
// input does but for metadata.managedFields (a decoder drops those anyway).
func FuzzWithoutManagedFields(f *testing.F) {
	f.Add(`{"metadata":{"name":"p","managedFields":[{"a":"]"}]},"spec":{}}`)
	f.Add(`{"metadata":{"managedFields":{}}}`)
	f.Add(`{"metadata":{"managedFields":1,"managedFields":2}}`)
	f.Fuzz(func(t *testing.T, raw string) {
		var in map[string]any
		if json.Unmarshal([]byte(raw), &in) != nil {
			return
		}
		got := WithoutManagedFields([]byte(raw))
		var out map[string]any
		if err := json.Unmarshal(got, &out); err != nil {
			t.Fatalf("%q -> %q: %v", raw, got, err)
		}
		for _, doc := range []map[string]any{in, out} {
			if m, ok := doc["metadata"].(map[string]any); ok {
				delete(m, "managedFields")
			}
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("%q -> %q", raw, got)
		}
	})
}

// TestStringEnd: the eight-bytes-at-a-time scan finds what a byte-by-byte one finds, for every
// string of quotes, backslashes and letters up to nine bytes, at every offset within a word.
func TestStringEnd(t *testing.T) {
	naive := func(b []byte, i int) (int, bool, bool) {
		plain := true
		for i < len(b) {
			switch b[i] {
			case '\\':
				plain = false
				i += 2
				continue
			case '"':
				return i, true, plain
			}
			i++
		}
		return 0, false, plain
	}
	alphabet := []byte{'a', '"', '\\', 0x80 | '"'}
	var visit func(prefix []byte)
	visit = func(s []byte) {
		for pad := range 9 {
			b := append(bytes.Repeat([]byte{'x'}, pad), s...)
			wantEnd, wantOK, wantPlain := naive(b, pad)
			plain := true
			end, ok := stringEnd(b, pad, &plain)
			if ok != wantOK || (ok && (end != wantEnd || plain != wantPlain)) {
				t.Fatalf("%q from %d: got %d %v plain=%v, want %d %v plain=%v", b, pad, end, ok, plain, wantEnd, wantOK, wantPlain)
			}
		}
		if len(s) < 9 {
			for _, c := range alphabet {
				visit(append(s[:len(s):len(s)], c))
			}
		}
	}
	visit(nil)
}
