package clusterstate

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
)

// Read lists from c what validation and injection read for pods of namespace into a Snapshot,
// once: the Namespaces, Plugins and PluginChains, and the Services and PluginConfigs of
// namespace. For a one-off question (`cors-webhook describe`) against a live cluster, through
// the same Reader the offline mode uses.
func Read(ctx context.Context, c client.Reader, namespace string) (*Snapshot, error) {
	var (
		namespaces corev1.NamespaceList
		services   corev1.ServiceList
		plugins    v1alpha1.PluginList
		chainList  v1alpha1.PluginChainList
		configs    v1alpha1.PluginConfigList
	)
	for _, l := range []struct {
		list client.ObjectList
		opts []client.ListOption
	}{
		{&namespaces, nil}, {&services, []client.ListOption{client.InNamespace(namespace)}}, {&plugins, nil},
		{&chainList, nil}, {&configs, []client.ListOption{client.InNamespace(namespace)}},
	} {
		if err := c.List(ctx, l.list, l.opts...); err != nil {
			return nil, err
		}
	}
	snap := NewSnapshot()
	for i := range namespaces.Items {
		snap.Add(&namespaces.Items[i])
	}
	for i := range services.Items {
		snap.Add(&services.Items[i])
	}
	for i := range plugins.Items {
		snap.Add(&plugins.Items[i])
	}
	for i := range chainList.Items {
		snap.Add(&chainList.Items[i])
	}
	for i := range configs.Items {
		snap.Add(&configs.Items[i])
	}
	return snap, nil
}

// ReadPod reads the pod namespace/name from c and, into a Snapshot (Read), what its
// description depends on: the same Reader the offline mode builds from manifests.
func ReadPod(ctx context.Context, c client.Reader, namespace, name string) (*corev1.Pod, *Snapshot, error) {
	pod := &corev1.Pod{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, pod); err != nil {
		return nil, nil, err
	}
	snap, err := Read(ctx, c, namespace)
	if err != nil {
		return nil, nil, err
	}
	return pod, snap, nil
}
