package reconcile

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/utils/ptr"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
)

// TestTrimPodKeepsWhatTheReconcilersRead: the facts the reconcilers take from a pod are the
// same for the cached (trimmed) pod as for the full one, while what they never read is gone.
func TestTrimPodKeepsWhatTheReconcilersRead(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	full := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "app", Labels: map[string]string{"app": "web"},
			Annotations:     map[string]string{contract.AnnotationPolicy: `{"version":1,"ports":{}}`, contract.AnnotationRedirectPorts: "8080"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web-1", UID: "u1", Controller: ptr.To(true)}},
			ManagedFields:   []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: contract.ContainerSidecar, RestartPolicy: &always, Ports: []corev1.ContainerPort{{Name: "cors-admin", ContainerPort: 15023}}, Args: []string{"proxy"}}},
			Containers: []corev1.Container{{Name: "app", Image: "web:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
				Env: []corev1.EnvVar{{Name: "A", Value: "b"}}}},
			Volumes: []corev1.Volume{{Name: "data"}},
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.0.0.1", Conditions: []corev1.PodCondition{{Type: corev1.PodReady}}},
	}
	obj, err := TrimPod(full.DeepCopy())
	if err != nil {
		t.Fatal(err)
	}
	trimmed := obj.(*corev1.Pod)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "app"}}
	if got, want := factsOf(trimmed, ns, inject.RedirectInit), factsOf(full, ns, inject.RedirectInit); !reflect.DeepEqual(got, want) {
		t.Errorf("facts of the trimmed pod %+v, of the full one %+v", got, want)
	}
	if active(trimmed) != active(full) || metav1.GetControllerOf(trimmed).UID != "u1" {
		t.Error("phase or controller lost")
	}
	if !reflect.DeepEqual(trimmed.Spec.Containers[0].Ports, full.Spec.Containers[0].Ports) || *trimmed.Spec.InitContainers[0].RestartPolicy != always {
		t.Error("container ports or restart policy lost")
	}
	if trimmed.ManagedFields != nil || trimmed.Spec.Containers[0].Env != nil || trimmed.Spec.Volumes != nil || trimmed.Status.PodIP != "" || trimmed.Spec.InitContainers[0].Args != nil {
		t.Errorf("not trimmed: %+v", trimmed)
	}
}
