package podjson

import (
	"errors"
	"fmt"
	"io"

	jsoniter "github.com/json-iterator/go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DecodeMetadata decodes what injection's triage reads of a pod's JSON: its labels and annotations. Every
// other member is skipped without being decoded, and reading stops after metadata, which the
// API server writes before spec: the answer for the pods no chain selects must not cost a
// decoding of the pod, nor of its managedFields (in admission requests they describe every
// field of the pod). encoding/json cannot skip without scanning twice, so this uses the
// json-iterator that apimachinery already links in.
func DecodeMetadata(raw []byte) (*metav1.ObjectMeta, error) {
	iter := jsoniter.ConfigCompatibleWithStandardLibrary.BorrowIterator(raw)
	defer jsoniter.ConfigCompatibleWithStandardLibrary.ReturnIterator(iter)
	if iter.WhatIsNext() != jsoniter.ObjectValue {
		return nil, errors.New("the object is not a JSON object")
	}
	meta := &metav1.ObjectMeta{}
	iter.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
		if field != "metadata" {
			it.Skip()
			return it.Error == nil
		}
		var labels, annotations bool
		it.ReadObjectCB(func(it *jsoniter.Iterator, field string) bool {
			switch field {
			case "labels":
				it.ReadVal(&meta.Labels)
				labels = true
			case "annotations":
				it.ReadVal(&meta.Annotations)
				annotations = true
			case "ownerReferences", "finalizers", "managedFields":
				// The API server writes these after labels and annotations (ObjectMeta's
				// field order). Stopping here once the labels are read skips managedFields.
				// Annotations only carry the opt-out, which Inject checks again on the
				// decoded pod, so missing them in an unusual order cannot change a patch.
				if labels {
					return false
				}
				it.Skip()
			default:
				it.Skip()
			}
			return it.Error == nil && !(labels && annotations)
		})
		return false // the rest of the pod is not needed
	})
	if iter.Error != nil && !errors.Is(iter.Error, io.EOF) {
		return nil, fmt.Errorf("decoding the pod's metadata: %w", iter.Error)
	}
	return meta, nil
}

// DecodePod decodes a pod in one pass, without its managedFields. The request's resource
// already says it is a v1 Pod, so there is no first pass over the document to find its kind;
// managedFields are cut out first (WithoutManagedFields), because injection never reads them
// and the patch is written from the change set, never from the decoded pod (Patch).
// The decoder is json-iterator with case-sensitive member names, as apimachinery's serializer
// configured it before it moved to sigs.k8s.io/json; that one validates the whole document
// before decoding it, which made the decoding half of the injected review's cost.
func DecodePod(raw []byte) (*corev1.Pod, error) {
	if len(raw) == 0 {
		return nil, errors.New("there is no content to decode")
	}
	pod := &corev1.Pod{}
	if err := podJSON.Unmarshal(WithoutManagedFields(raw), pod); err != nil {
		return nil, fmt.Errorf("decoding the pod: %w", err)
	}
	pod.ManagedFields = nil // when the scan did not find them where the API server writes them
	return pod, nil
}

// podJSON is DecodePod's decoder.
var podJSON = jsoniter.Config{EscapeHTML: true, SortMapKeys: true, ValidateJsonRawMessage: true, CaseSensitive: true}.Froze()
