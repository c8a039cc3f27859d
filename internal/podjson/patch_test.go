package podjson_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	evanphx "github.com/evanphx/json-patch/v5"
	"gomodules.xyz/jsonpatch/v2"

	"github.com/cors-webhook/cors-webhook/internal/podjson"
)

// The mission names gomodules.xyz/jsonpatch/v2 for the pod patch. podjson.Patch writes the
// patch by hand, from the change set, because diffing two encoded pods costs more than the
// rest of the admission; it is kept only while these tests prove that applying its patch gives
// the object that applying jsonpatch.CreatePatch's patch gives, for the same pod and change.

// injected is the pod raw (canonical JSON) with ch applied as the injection defines it,
// computed on the generic document, independently of podjson.Patch: annotations and labels
// set, init containers before the pod's own, volumes after.
func injected(t testing.TB, raw []byte, ch podjson.Changes) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	meta, _ := doc["metadata"].(map[string]any)
	for member, want := range map[string]map[string]string{"annotations": ch.Annotations, "labels": ch.Labels} {
		if len(want) == 0 {
			continue
		}
		m, _ := meta[member].(map[string]any)
		if m == nil {
			m = map[string]any{}
		}
		for k, v := range want {
			m[k] = v
		}
		meta[member] = m
	}
	spec, _ := doc["spec"].(map[string]any)
	decode := func(items [][]byte) []any {
		var out []any
		for _, item := range items {
			var v any
			if err := json.Unmarshal(item, &v); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	if len(ch.InitContainers) > 0 {
		own, _ := spec["initContainers"].([]any)
		spec["initContainers"] = append(decode(ch.InitContainers), own...)
	}
	if len(ch.Volumes) > 0 {
		own, _ := spec["volumes"].([]any)
		spec["volumes"] = append(own, decode(ch.Volumes)...)
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkPatchAgrees applies podjson.Patch's patch and jsonpatch.CreatePatch's patch (from raw
// to the injected document) to raw, and fails unless both give the same object. raw must be a
// pod's canonical JSON that podjson.DecodePod accepts.
func checkPatchAgrees(t testing.TB, raw []byte, ch podjson.Changes) {
	t.Helper()
	pod, err := podjson.DecodePod(raw)
	if err != nil {
		t.Fatalf("decoding %s: %v", raw, err)
	}
	fast, err := podjson.Patch(pod, ch)
	if err != nil {
		t.Fatal(err)
	}
	fromFast := apply(t, raw, fast)

	want := injected(t, raw, ch)
	ops, err := jsonpatch.CreatePatch(raw, want)
	if err != nil {
		t.Fatal(err)
	}
	reference, err := json.Marshal(ops)
	if err != nil {
		t.Fatal(err)
	}
	fromReference := apply(t, raw, reference)

	if !sameJSON(t, fromFast, fromReference) {
		t.Fatalf("the patches give different pods\npod:       %s\nchanges:   %s\npatch:     %s\njsonpatch: %s\ngives      %s\njsonpatch  %s",
			raw, describe(ch), fast, reference, fromFast, fromReference)
	}
	if !sameJSON(t, fromReference, want) {
		t.Fatalf("jsonpatch's patch does not give the injected pod (the reference is wrong)\npod: %s\nwant %s\ngot  %s", raw, want, fromReference)
	}
}

func apply(t testing.TB, raw, patch []byte) []byte {
	t.Helper()
	p, err := evanphx.DecodePatch(patch)
	if err != nil {
		t.Fatalf("decoding the patch %s: %v", patch, err)
	}
	out, err := p.Apply(raw)
	if err != nil {
		t.Fatalf("applying the patch %s to %s: %v", patch, raw, err)
	}
	return out
}

func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(x, y)
}

func describe(ch podjson.Changes) string {
	return fmt.Sprintf("annotations %v labels %v initContainers %q volumes %q", ch.Annotations, ch.Labels, ch.InitContainers, ch.Volumes)
}

// canonical re-encodes a JSON document as encoding/json writes it (sorted keys, no spaces,
// the last of duplicate members), so that all three ways of building the injected pod start
// from the same bytes. ok is false unless it is a JSON object with metadata and spec objects,
// as the API server sends every pod.
func canonical(raw []byte) ([]byte, bool) {
	var doc map[string]any
	if json.Unmarshal(raw, &doc) != nil || doc == nil {
		return nil, false
	}
	for _, member := range []string{"metadata", "spec"} {
		if _, ok := doc[member].(map[string]any); !ok {
			return nil, false
		}
	}
	out, err := json.Marshal(doc)
	return out, err == nil
}

// TestPatchAgreesWithJSONPatch: for random pods (annotations and labels absent, null, empty or
// set, overlapping the change with the same or another value, keys that need JSON-pointer
// escaping; init containers and volumes absent, null, empty or set) and random changes,
// applying podjson.Patch's patch gives what applying jsonpatch.CreatePatch's gives.
func TestPatchAgreesWithJSONPatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 6))
	keys := []string{"a", "cors-webhook.io/policy", "x~y", "a/b~1", "~0", "", "ü"}
	values := []string{"", "1", "v", `{"ports":{"8080":{}}}`, "</script>&"}
	member := func() (any, map[string]string) {
		switch rng.IntN(5) {
		case 0:
			return nil, nil // absent
		case 1:
			return "null", nil
		case 2:
			return map[string]any{}, map[string]string{}
		}
		m := map[string]string{}
		for range 1 + rng.IntN(3) {
			m[keys[rng.IntN(len(keys))]] = values[rng.IntN(len(values))]
		}
		return m, m
	}
	list := func(prefix string) any {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return "null"
		case 2:
			return []any{}
		}
		var out []any
		for i := range 1 + rng.IntN(3) {
			out = append(out, map[string]any{"name": fmt.Sprintf("%s-%d", prefix, i)})
		}
		return out
	}
	changes := func() map[string]string {
		if rng.IntN(4) == 0 {
			return nil
		}
		m := map[string]string{}
		for range 1 + rng.IntN(3) {
			m[keys[rng.IntN(len(keys))]] = values[rng.IntN(len(values))]
		}
		return m
	}
	encoded := func(prefix string) [][]byte {
		var out [][]byte
		for i := range rng.IntN(3) {
			out = append(out, fmt.Appendf(nil, `{"name":"%s-%d","image":"img"}`, prefix, i))
		}
		return out
	}
	for range 2000 {
		meta := map[string]any{"name": "p", "namespace": "ns"}
		spec := map[string]any{"containers": []any{map[string]any{"name": "app", "image": "app"}}}
		set := func(m map[string]any, k string, v any) {
			switch v {
			case nil:
			case "null":
				m[k] = nil
			default:
				m[k] = v
			}
		}
		a, _ := member()
		set(meta, "annotations", a)
		l, _ := member()
		set(meta, "labels", l)
		set(spec, "initContainers", list("own-init"))
		set(spec, "volumes", list("own-volume"))
		raw, err := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ = canonical(raw)
		ch := podjson.Changes{Annotations: changes(), Labels: changes(), InitContainers: encoded("cors"), Volumes: encoded("cors-vol")}
		checkPatchAgrees(t, raw, ch)
	}
}

// FuzzPatch: for any pod the decoder accepts and any change of one annotation, one label, init
// containers and volumes, applying podjson.Patch's patch gives what applying
// jsonpatch.CreatePatch's gives.
func FuzzPatch(f *testing.F) {
	f.Add(`{"metadata":{"name":"p"},"spec":{"containers":[{"name":"a"}]}}`, "cors-webhook.io/policy", `{"version":1}`, "cors-webhook.io/injected", "true", uint8(1), uint8(1))
	f.Add(`{"metadata":{"annotations":{"a/b":"1","x~y":"2"},"labels":null},"spec":{"initContainers":[],"volumes":null}}`, "a/b", "2", "~", "", uint8(2), uint8(0))
	f.Add(`{"metadata":{"labels":{"k":"v"}},"spec":{"initContainers":[{"name":"i"}],"volumes":[{"name":"v"}]}}`, "", "", "k", "v", uint8(0), uint8(3))
	f.Fuzz(func(t *testing.T, raw, annotation, annotationValue, label, labelValue string, inits, volumes uint8) {
		if len(raw) > 2<<10 || len(annotation)+len(annotationValue)+len(label)+len(labelValue) > 128 {
			// The reference (jsonpatch's diff, and the patch applied) is slow on large values under
			// the fuzzer's instrumentation: a worker stalled past -fuzztime on such inputs. Short
			// ones reach every branch of the writer (escaping, absent, null and empty maps).
			return
		}
		doc, ok := canonical([]byte(raw))
		if !ok {
			return
		}
		if _, err := podjson.DecodePod(doc); err != nil {
			return // not a pod: the API server would not send it
		}
		ch := podjson.Changes{
			Annotations: map[string]string{annotation: annotationValue},
			Labels:      map[string]string{label: labelValue},
		}
		for i := range int(inits % 4) {
			ch.InitContainers = append(ch.InitContainers, fmt.Appendf(nil, `{"name":"cors-%d"}`, i))
		}
		for i := range int(volumes % 4) {
			ch.Volumes = append(ch.Volumes, fmt.Appendf(nil, `{"name":"cors-vol-%d"}`, i))
		}
		checkPatchAgrees(t, doc, ch)
	})
}
