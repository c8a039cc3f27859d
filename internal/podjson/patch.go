package podjson

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	jsoniter "github.com/json-iterator/go"
	corev1 "k8s.io/api/core/v1"
)

// Changes are what an injection adds to a pod: annotations and labels (added, or replaced
// when their value differs), init containers (inserted before the pod's own) and volumes
// (appended), the last two as encoded JSON.
type Changes struct {
	Annotations, Labels     map[string]string
	InitContainers, Volumes [][]byte
}

// Patch is the JSON patch (RFC 6902) of an injection, built straight from its change set and
// the decoded pod: an injection changes metadata.annotations, metadata.labels,
// spec.initContainers and spec.volumes and nothing else (inject.Changes), so there is no pod
// to re-encode and no diff to compute. Members the pod lacks are added whole; otherwise each
// key is added (or replaced when its value differs), the init containers are inserted before
// the pod's own, and the volumes appended. The pod's own entries are never written back, so
// fields unknown to this build's API types (a newer API server), and those DecodePod skips,
// stay as they were sent. The patch is written as JSON here, the containers and volumes from
// the JSON the injector keeps for them: encoding operations for controller-runtime to marshal
// cost as much as the rest of the admission. Applying it gives the object that applying
// gomodules.xyz/jsonpatch/v2's CreatePatch of the same change gives (TestPatchAgreesWithJSONPatch,
// FuzzPatch).
func Patch(pod *corev1.Pod, changes Changes) ([]byte, error) {
	inits, volumes := changes.InitContainers, changes.Volumes
	w := patchWriter{s: patchJSON.BorrowStream(nil)}
	defer patchJSON.ReturnStream(w.s)
	w.s.WriteArrayStart()
	for _, m := range []struct {
		path      string
		own, want map[string]string
	}{
		{"/metadata/annotations", pod.Annotations, changes.Annotations},
		{"/metadata/labels", pod.Labels, changes.Labels},
	} {
		if len(m.want) == 0 {
			continue
		}
		keys := slices.Sorted(maps.Keys(m.want))
		if m.own == nil {
			w.op("add", m.path)
			w.s.WriteObjectStart()
			for i, k := range keys {
				if i > 0 {
					w.s.WriteMore()
				}
				w.s.WriteObjectField(k)
				w.s.WriteStringWithHTMLEscaped(m.want[k])
			}
			w.s.WriteObjectEnd()
			w.end()
			continue
		}
		for _, k := range keys {
			v := m.want[k]
			old, exists := m.own[k]
			switch {
			case !exists:
				w.op("add", m.path+"/"+pointerEscape(k))
			case old != v:
				w.op("replace", m.path+"/"+pointerEscape(k))
			default:
				continue
			}
			w.s.WriteStringWithHTMLEscaped(v)
			w.end()
		}
	}
	if len(inits) > 0 {
		if pod.Spec.InitContainers == nil {
			w.op("add", "/spec/initContainers")
			w.array(inits)
			w.end()
		} else {
			for i, c := range inits {
				w.op("add", "/spec/initContainers/"+strconv.Itoa(i))
				w.s.Write(c)
				w.end()
			}
		}
	}
	if len(volumes) > 0 {
		if pod.Spec.Volumes == nil {
			w.op("add", "/spec/volumes")
			w.array(volumes)
			w.end()
		} else {
			for _, v := range volumes {
				w.op("add", "/spec/volumes/-")
				w.s.Write(v)
				w.end()
			}
		}
	}
	w.s.WriteArrayEnd()
	if w.s.Error != nil {
		return nil, fmt.Errorf("writing the patch: %w", w.s.Error)
	}
	return slices.Clone(w.s.Buffer()), nil
}

// patchJSON writes patches; only its streams are used.
var patchJSON = jsoniter.ConfigCompatibleWithStandardLibrary

// patchWriter writes the operations of a JSON patch (RFC 6902) to a stream.
type patchWriter struct {
	s   *jsoniter.Stream
	ops int
}

// op starts an operation, up to its value.
func (w *patchWriter) op(op, path string) {
	if w.ops > 0 {
		w.s.WriteMore()
	}
	w.ops++
	w.s.WriteObjectStart()
	w.s.WriteObjectField("op")
	w.s.WriteString(op)
	w.s.WriteMore()
	w.s.WriteObjectField("path")
	w.s.WriteStringWithHTMLEscaped(path)
	w.s.WriteMore()
	w.s.WriteObjectField("value")
}

func (w *patchWriter) end() { w.s.WriteObjectEnd() }

// array writes already encoded values as a JSON array.
func (w *patchWriter) array(items [][]byte) {
	w.s.WriteArrayStart()
	for i, item := range items {
		if i > 0 {
			w.s.WriteMore()
		}
		w.s.Write(item)
	}
	w.s.WriteArrayEnd()
}

// pointerEscape escapes a map key as a JSON pointer segment (RFC 6901).
func pointerEscape(key string) string { return pointerEscaper.Replace(key) }

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")
