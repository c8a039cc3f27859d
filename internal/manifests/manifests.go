// Package manifests reads Kubernetes manifests the way the offline commands (`cors-webhook
// validate`, `inject`, `describe -f`, `convert`) do: files, directories or stdin, several YAML
// documents and Lists, each with where it came from; typed decoding with the one scheme
// (clusterstate.Scheme); the in-memory cluster they describe; and the pod templates of
// workloads.
package manifests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/util/yaml"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// Document is one object read from the input, with where it came from so that errors can point
// at it. Raw is the object as JSON; Object is nil for empty documents (comments only).
type Document struct {
	Source string // file name, or "-" for standard input
	Line   int    // 1-based line where the document starts
	Raw    []byte
	Object *unstructured.Unstructured
}

// Where names the document's position for messages: "file.yaml:12".
func (d Document) Where() string { return fmt.Sprintf("%s:%d", d.Source, d.Line) }

// ReadError is an input that could not be read or parsed (the commands' usage errors).
type ReadError struct{ Err error }

func (e ReadError) Error() string { return e.Err.Error() }
func (e ReadError) Unwrap() error { return e.Err }

// Read reads every document of every path: a file, a directory (its *.yaml, *.yml and
// *.json files, sorted, not recursive), or "-" for stdin. YAML may hold several documents; a
// `kind: List` is flattened into its items. Errors are ReadError values naming file and line.
func Read(paths []string, stdin io.Reader) ([]Document, error) {
	if len(paths) == 0 {
		return nil, ReadError{errors.New("no input: give -f FILE, -f DIR or -f -")}
	}
	var docs []Document
	for _, p := range paths {
		files, err := expand(p)
		if err != nil {
			return nil, ReadError{err}
		}
		for _, f := range files {
			var data []byte
			if f == "-" {
				data, err = io.ReadAll(stdin)
			} else {
				data, err = os.ReadFile(f)
			}
			if err != nil {
				return nil, ReadError{err}
			}
			got, err := Parse(f, data)
			if err != nil {
				return nil, ReadError{err}
			}
			docs = append(docs, got...)
		}
	}
	return docs, nil
}

func expand(p string) ([]string, error) {
	if p == "-" {
		return []string{p}, nil
	}
	st, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return []string{p}, nil
	}
	entries, err := os.ReadDir(p)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, e := range entries {
		switch strings.ToLower(filepath.Ext(e.Name())) {
		case ".yaml", ".yml", ".json":
			if !e.IsDir() {
				files = append(files, filepath.Join(p, e.Name()))
			}
		}
	}
	sort.Strings(files)
	return files, nil
}

// Parse splits one file into documents and decodes each to JSON.
func Parse(source string, data []byte) ([]Document, error) {
	reader := yaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	line := 1
	var docs []Document
	for {
		chunk, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, line, err)
		}
		start := line + leadingSeparatorLines(chunk)
		line += bytes.Count(chunk, []byte("\n"))
		raw, err := sigsyaml.YAMLToJSON(chunk)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, start, err)
		}
		raw = bytes.TrimSpace(raw)
		if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
			continue
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(raw); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", source, start, err)
		}
		if obj.IsList() {
			list, err := obj.ToList()
			if err != nil {
				return nil, fmt.Errorf("%s:%d: %w", source, start, err)
			}
			for i := range list.Items {
				item := &list.Items[i]
				itemRaw, err := item.MarshalJSON()
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %w", source, start, err)
				}
				docs = append(docs, Document{Source: source, Line: start, Raw: itemRaw, Object: item})
			}
			continue
		}
		docs = append(docs, Document{Source: source, Line: start, Raw: raw, Object: obj})
	}
}

// leadingSeparatorLines counts the lines before the document's content (the "---" line and
// blank lines), so positions point at the first line of the object.
func leadingSeparatorLines(chunk []byte) int {
	n := 0
	for _, l := range strings.SplitAfter(string(chunk), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || t == "---" || strings.HasPrefix(t, "#") {
			n++
			continue
		}
		break
	}
	return n
}

// Codecs decode documents strictly with clusterstate.Scheme: the built-in kinds and the
// plugin.flomesh.io kinds.
var Codecs = serializer.NewCodecFactory(clusterstate.Scheme, serializer.EnableStrict)

// DecodeTyped decodes a document into its typed Go object (e.g. *v1alpha1.PluginChain); kinds
// the scheme does not know come back as the *unstructured.Unstructured itself.
func DecodeTyped(d Document) (runtime.Object, error) {
	obj, _, err := Codecs.UniversalDeserializer().Decode(d.Raw, nil, nil)
	if runtime.IsNotRegisteredError(err) {
		return d.Object, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Where(), err)
	}
	return obj, nil
}

// Snapshot builds the cluster context of the offline commands from the documents: Plugins,
// PluginChains, PluginConfigs, Namespaces and Services, with namespaced objects defaulted to
// defaultNamespace. Namespaces referenced by objects but not in the input exist with no labels,
// as `kubectl create namespace` would make them.
func Snapshot(docs []Document, defaultNamespace string) (*clusterstate.Snapshot, []runtime.Object, error) {
	snap := clusterstate.NewSnapshot()
	objs := make([]runtime.Object, len(docs))
	namespaces := map[string]bool{}
	for i, d := range docs {
		obj, err := DecodeTyped(d)
		if err != nil {
			return nil, nil, ReadError{err}
		}
		if m, ok := obj.(interface {
			GetNamespace() string
			SetNamespace(string)
		}); ok && m.GetNamespace() == "" && namespaced(obj) {
			m.SetNamespace(defaultNamespace)
		}
		if m, ok := obj.(interface{ GetNamespace() string }); ok && m.GetNamespace() != "" {
			namespaces[m.GetNamespace()] = true
		}
		objs[i] = obj
		snap.Add(obj)
	}
	for ns := range namespaces {
		if got, _ := snap.Namespace(ns); got == nil {
			snap.Add(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
		}
	}
	return snap, objs, nil
}

// clusterScopedKinds are the common kinds that have no namespace, so that defaulting does not
// give them one.
var clusterScopedKinds = map[string]bool{
	"Namespace": true, "Node": true, "PersistentVolume": true, "StorageClass": true,
	"ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true,
	"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true,
	"PriorityClass": true, "IngressClass": true, "RuntimeClass": true, "Plugin": true,
}

func namespaced(obj runtime.Object) bool {
	return !clusterScopedKinds[obj.GetObjectKind().GroupVersionKind().Kind]
}

// DecodeStrict decodes d with Codecs as the API server's strict field validation (kubectl's
// default) would. For a document of ours (a plugin.flomesh.io kind), what cannot be decoded is
// reported as field errors rather than failing: unknown and duplicate fields (then out holds
// the rest, re-encoded, and decoded is true), a kind or version that does not exist (kinds are
// those that do), or any other decoding error (decoded is false). For other documents, an
// unknown kind is fine and any other decoding error is a ReadError.
func DecodeStrict(d Document, ours bool, kinds []string) (out Document, errs field.ErrorList, decoded bool, err error) {
	gvk := d.Object.GroupVersionKind()
	obj, _, derr := Codecs.UniversalDeserializer().Decode(d.Raw, nil, nil)
	switch {
	case ours && runtime.IsNotRegisteredError(derr):
		return d, field.ErrorList{unsupportedKind(gvk, kinds)}, false, nil
	case derr == nil || runtime.IsNotRegisteredError(derr):
		return d, nil, true, nil
	case runtime.IsStrictDecodingError(derr) && obj != nil:
		// Unknown or duplicate fields: report them, and validate the rest as decoded.
		raw, merr := json.Marshal(obj)
		if merr != nil {
			return d, nil, false, ReadError{fmt.Errorf("%s: %w", d.Where(), merr)}
		}
		d.Raw = raw
		return d, strictErrors(derr), true, nil
	case ours:
		return d, field.ErrorList{&field.Error{Type: field.ErrorTypeInvalid, Detail: "cannot be decoded: " + derr.Error()}}, false, nil
	}
	return d, nil, false, ReadError{fmt.Errorf("%s: %w", d.Where(), derr)}
}

func unsupportedKind(gvk schema.GroupVersionKind, kinds []string) *field.Error {
	if gvk.Version != v1alpha1.GroupVersion.Version {
		return field.NotSupported(field.NewPath("apiVersion"), gvk.GroupVersion().String(), []string{v1alpha1.GroupVersion.String()})
	}
	return field.NotSupported(field.NewPath("kind"), gvk.Kind, kinds)
}

var unknownFieldRE = regexp.MustCompile(`^unknown field "(.+)"$`)
var duplicateFieldRE = regexp.MustCompile(`^duplicate field "(.+)"$`)

// strictErrors turns the strict decoder's complaints (unknown and duplicate fields) into field
// errors, as the apiserver's strict field validation (kubectl's default) rejects them.
func strictErrors(err error) field.ErrorList {
	sde, ok := runtime.AsStrictDecodingError(err)
	if !ok {
		return field.ErrorList{&field.Error{Type: field.ErrorTypeInvalid, Detail: err.Error()}}
	}
	var out field.ErrorList
	for _, e := range sde.Errors() {
		msg := e.Error()
		switch {
		case unknownFieldRE.MatchString(msg):
			p := unknownFieldRE.FindStringSubmatch(msg)[1]
			out = append(out, field.Forbidden(field.NewPath(p), "unknown field: the "+v1alpha1.GroupVersion.String()+" schema has no such field"))
		case duplicateFieldRE.MatchString(msg):
			p := duplicateFieldRE.FindStringSubmatch(msg)[1]
			dup := field.Duplicate(field.NewPath(p), p)
			dup.Detail = "the field appears more than once"
			out = append(out, dup)
		default:
			out = append(out, &field.Error{Type: field.ErrorTypeInvalid, Detail: msg})
		}
	}
	return out
}
