package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// KubeletStandIn plays the kubelet's part in pod status, since no kubelet runs beside the
// local control plane: it marks pods Running and Ready with a pod IP, through the status
// subresource, as a kubelet reports a started pod. Without it Deployments never become
// available and rollouts never finish. It runs no container: whoever needs a pod's processes
// runs them (the demo does, in network namespaces, at the pod IP given here).
type KubeletStandIn struct {
	// PodCIDR is the /16 the pod IPs come from, e.g. 10.244.0.0/16 gives 10.244.0.2, ...
	PodCIDR string

	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	next int
	ips  map[types.UID]string
}

// KubeletPodCIDR is the range of the stand-in's pod IPs, as a kind or kubeadm cluster's
// default pod network (only ever used inside network namespaces this project creates).
const KubeletPodCIDR = "10.244.0.0/16"

// StartKubeletStandIn marks every pod of the given namespaces (all when none is given) that is
// not terminating Running and Ready, once, with a pod IP unique among the pods it has seen. It
// polls every 100ms until Stop or ctx ends.
func StartKubeletStandIn(ctx context.Context, c *Cluster, namespaces ...string) *KubeletStandIn {
	ctx, cancel := context.WithCancel(ctx)
	k := &KubeletStandIn{PodCIDR: KubeletPodCIDR, cancel: cancel, done: make(chan struct{}), ips: map[types.UID]string{}}
	if len(namespaces) == 0 {
		namespaces = []string{""}
	}
	go func() {
		defer close(k.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			for _, ns := range namespaces {
				var pods corev1.PodList
				if err := c.Client.List(ctx, &pods, client.InNamespace(ns)); err != nil {
					continue // the API server may be starting or stopping; try again
				}
				for i := range pods.Items {
					pod := &pods.Items[i]
					if pod.DeletionTimestamp != nil || (IsPodReady(pod) && pod.Status.PodIP != "") {
						continue
					}
					_ = c.Client.Status().Patch(ctx, pod, client.RawPatch(types.MergePatchType, k.statusPatch(pod)))
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return k
}

// Stop stops marking pods and waits until it has stopped.
func (k *KubeletStandIn) Stop() {
	k.cancel()
	<-k.done
}

// podIP gives the pod its IP, the same one each time it is asked.
func (k *KubeletStandIn) podIP(pod *corev1.Pod) string {
	if pod.Status.PodIP != "" {
		return pod.Status.PodIP
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if ip, ok := k.ips[pod.UID]; ok {
		return ip
	}
	n := k.next
	k.next++
	var a, b int
	if _, err := fmt.Sscanf(k.PodCIDR, "%d.%d.", &a, &b); err != nil {
		a, b = 10, 244
	}
	ip := fmt.Sprintf("%d.%d.%d.%d", a, b, n/250, n%250+2)
	k.ips[pod.UID] = ip
	return ip
}

// statusPatch is what a kubelet reports once every container of the pod runs: phase,
// conditions, the pod IP, and a status per container (init containers completed, native
// sidecars running and ready).
func (k *KubeletStandIn) statusPatch(pod *corev1.Pod) []byte {
	now := metav1.Now().UTC().Format(time.RFC3339)
	ip := k.podIP(pod)
	cond := func(typ corev1.PodConditionType) map[string]any {
		return map[string]any{"type": typ, "status": corev1.ConditionTrue, "lastTransitionTime": now}
	}
	running := func(ctr corev1.Container) map[string]any {
		return map[string]any{
			"name": ctr.Name, "image": ctr.Image, "imageID": "", "ready": true, "started": true, "restartCount": 0,
			"state": map[string]any{"running": map[string]any{"startedAt": now}},
		}
	}
	var inits, ctrs []map[string]any
	for _, ctr := range pod.Spec.InitContainers {
		if ctr.RestartPolicy != nil && *ctr.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			inits = append(inits, running(ctr))
			continue
		}
		inits = append(inits, map[string]any{
			"name": ctr.Name, "image": ctr.Image, "imageID": "", "ready": true, "started": false, "restartCount": 0,
			"state": map[string]any{"terminated": map[string]any{"exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}},
		})
	}
	for _, ctr := range pod.Spec.Containers {
		ctrs = append(ctrs, running(ctr))
	}
	status := map[string]any{
		"phase": corev1.PodRunning, "startTime": now,
		"podIP": ip, "podIPs": []map[string]string{{"ip": ip}},
		"conditions": []map[string]any{
			cond(corev1.PodReadyToStartContainers), cond(corev1.PodInitialized), cond(corev1.PodScheduled),
			cond(corev1.ContainersReady), cond(corev1.PodReady),
		},
		"containerStatuses": ctrs,
	}
	if len(inits) > 0 {
		status["initContainerStatuses"] = inits
	}
	patch, _ := json.Marshal(map[string]any{"status": status})
	return patch
}

// IsPodReady reports whether the pod's Ready condition is True.
func IsPodReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
