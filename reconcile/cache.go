package reconcile

import (
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/contract"
)

// The reconcilers cache every Pod and ReplicaSet of the cluster, so what they keep of each is
// what the controller's memory grows with. ReplicaSets are only walked from a pod to its
// Deployment (ownerReferences) and listed by controller: metadata is enough, and
// controller-runtime then runs a metadata-only informer. Pods are read for their metadata,
// phase, hostNetwork and their containers' names, ports and restart policy (the policy's
// ports, whether the sidecar is there), their node, Ready condition and whether the sidecar
// started (the CNI repair): TrimPod drops the rest before it is stored.

func replicaSetMetadata() *metav1.PartialObjectMetadata {
	rs := &metav1.PartialObjectMetadata{}
	rs.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
	return rs
}

func replicaSetMetadataList() *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{}
	l.SetGroupVersionKind(appsv1.SchemeGroupVersion.WithKind("ReplicaSetList"))
	return l
}

// CacheByObject are the per-kind cache settings the controllers need (package server merges
// them into the manager's cache options).
func CacheByObject() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&corev1.Pod{}: {Transform: TrimPod},
	}
}

// TrimPod is the cache transform of Pods: it keeps what the reconcilers read and drops the
// rest (managedFields, env, volumes, probes, resources, status but the phase).
func TrimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	trimmed := &corev1.Pod{
		TypeMeta:   pod.TypeMeta,
		ObjectMeta: pod.ObjectMeta,
		Spec: corev1.PodSpec{
			HostNetwork:    pod.Spec.HostNetwork,
			NodeName:       pod.Spec.NodeName,
			InitContainers: trimContainers(pod.Spec.InitContainers),
			Containers:     trimContainers(pod.Spec.Containers),
		},
		Status: corev1.PodStatus{Phase: pod.Status.Phase},
	}
	// The CNI repair reads the Ready condition (of the node agents) and whether the sidecar
	// has started (of injected pods).
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			trimmed.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status, LastTransitionTime: c.LastTransitionTime}}
		}
	}
	for _, c := range pod.Status.InitContainerStatuses {
		if c.Name == contract.ContainerSidecar {
			trimmed.Status.InitContainerStatuses = []corev1.ContainerStatus{{Name: c.Name, Started: c.Started, RestartCount: c.RestartCount}}
		}
	}
	trimmed.ManagedFields = nil
	return trimmed, nil
}

func trimContainers(cs []corev1.Container) []corev1.Container {
	if len(cs) == 0 {
		return nil
	}
	out := make([]corev1.Container, len(cs))
	for i := range cs {
		out[i] = corev1.Container{Name: cs[i].Name, Ports: cs[i].Ports, RestartPolicy: cs[i].RestartPolicy}
	}
	return out
}
