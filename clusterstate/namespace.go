package clusterstate

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// NamespaceOrLive returns the namespace name from r, or from live (the API server, when not
// nil) when r has not seen it yet: a namespace created a moment before its first pod, whose
// labels must not be missed. When neither has it, it is a label-less stand-in.
func NamespaceOrLive(ctx context.Context, r Reader, live client.Reader, name string) (*corev1.Namespace, error) {
	ns, err := r.Namespace(name)
	if err != nil || ns != nil {
		return ns, err
	}
	if live != nil {
		ns := &corev1.Namespace{}
		err := live.Get(ctx, client.ObjectKey{Name: name}, ns)
		if err == nil {
			return ns, nil
		}
		if !apierrors.IsNotFound(err) {
			return nil, err
		}
	}
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, nil
}
