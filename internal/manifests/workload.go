package manifests

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// Workload is an object with a pod template: where the template is, and whose it is.
type Workload struct {
	Kind, Namespace, Name string
	Template              *corev1.PodTemplateSpec
	// Path is the template's (metadata and spec) in the object; nil: the object itself (a Pod).
	Path []string
}

// Pod is the template as the pod the workload's controller would create.
func (w Workload) Pod() *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: *w.Template.ObjectMeta.DeepCopy(), Spec: *w.Template.Spec.DeepCopy()}
	p.Namespace = w.Namespace
	return p
}

// PodOf is the Pod of that namespace and name among objs, or the pod of the workload of that
// namespace and name (named after it); nil when there is neither.
func PodOf(objs []runtime.Object, namespace, name string) *corev1.Pod {
	for _, obj := range objs {
		if w, ok := WorkloadOf(obj); ok && w.Name == name && w.Namespace == namespace {
			pod := w.Pod()
			pod.Name = name
			return pod
		}
	}
	return nil
}

// WorkloadOf finds the pod template of the kinds whose pods the webhook would inject.
func WorkloadOf(obj runtime.Object) (Workload, bool) {
	tmpl := []string{"spec", "template"}
	switch o := obj.(type) {
	case *corev1.Pod:
		return Workload{"Pod", o.Namespace, o.Name, &corev1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}, nil}, true
	case *appsv1.Deployment:
		return Workload{"Deployment", o.Namespace, o.Name, &o.Spec.Template, tmpl}, true
	case *appsv1.StatefulSet:
		return Workload{"StatefulSet", o.Namespace, o.Name, &o.Spec.Template, tmpl}, true
	case *appsv1.DaemonSet:
		return Workload{"DaemonSet", o.Namespace, o.Name, &o.Spec.Template, tmpl}, true
	case *appsv1.ReplicaSet:
		return Workload{"ReplicaSet", o.Namespace, o.Name, &o.Spec.Template, tmpl}, true
	case *batchv1.Job:
		return Workload{"Job", o.Namespace, o.Name, &o.Spec.Template, tmpl}, true
	case *batchv1.CronJob:
		return Workload{"CronJob", o.Namespace, o.Name, &o.Spec.JobTemplate.Spec.Template, []string{"spec", "jobTemplate", "spec", "template"}}, true
	}
	return Workload{}, false
}

// Apply writes an injection's change set onto the pod template of obj, the workload's document
// as read: the annotations and labels, the init containers before the template's and the
// volumes after. The rest of the document is left exactly as it was read, so the output
// differs from the input only by the injection (no defaulted fields, no creationTimestamp:
// null).
func (w Workload) Apply(obj map[string]any, annotations, labels map[string]string, initContainers []corev1.Container, volumes []corev1.Volume) error {
	tmpl, path := obj, w.Path
	if len(path) > 0 {
		m, found, err := unstructured.NestedMap(obj, path...)
		if err != nil || !found {
			return fmt.Errorf("no pod template at %s", strings.Join(path, "."))
		}
		tmpl = m
	}
	for _, f := range []struct {
		name string
		set  map[string]string
	}{{"annotations", annotations}, {"labels", labels}} {
		for k, v := range f.set {
			if err := unstructured.SetNestedField(tmpl, v, "metadata", f.name, k); err != nil {
				return err
			}
		}
	}
	inits, err := toUnstructured(initContainers)
	if err != nil {
		return err
	}
	if err := addToSlice(tmpl, inits, true, "spec", "initContainers"); err != nil {
		return err
	}
	vols, err := toUnstructured(volumes)
	if err != nil {
		return err
	}
	if err := addToSlice(tmpl, vols, false, "spec", "volumes"); err != nil {
		return err
	}
	if len(path) > 0 {
		return unstructured.SetNestedMap(obj, tmpl, path...)
	}
	return nil
}

// toUnstructured converts API values for an unstructured document.
func toUnstructured[T any](items []T) ([]any, error) {
	out := make([]any, 0, len(items))
	for i := range items {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&items[i])
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// addToSlice puts items before (first) or after the list at path: init containers go first,
// as the pod contract requires the redirect before the app starts; volumes go last.
func addToSlice(obj map[string]any, items []any, first bool, path ...string) error {
	if len(items) == 0 {
		return nil
	}
	existing, _, err := unstructured.NestedFieldNoCopy(obj, path...)
	if err != nil {
		return err
	}
	list, _ := existing.([]any)
	if first {
		return unstructured.SetNestedField(obj, append(items, list...), path...)
	}
	return unstructured.SetNestedField(obj, append(append([]any(nil), list...), items...), path...)
}

// PodAndCluster finds the pod named in docs (PodOf: a Pod, or a workload's pod template) and the
// cluster the documents describe, for questions about one pod offline (`describe -f`).
func PodAndCluster(docs []Document, namespace, name string) (*corev1.Pod, *clusterstate.Snapshot, error) {
	snap, objs, err := Snapshot(docs, namespace)
	if err != nil {
		return nil, nil, err
	}
	if pod := PodOf(objs, namespace, name); pod != nil {
		return pod, snap, nil
	}
	return nil, nil, fmt.Errorf("no Pod or workload %s/%s in the input", namespace, name)
}
