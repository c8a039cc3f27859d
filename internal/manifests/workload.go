package manifests

import (
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
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
