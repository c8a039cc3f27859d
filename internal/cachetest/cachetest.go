// Package cachetest runs a real controller-runtime informer cache over objects held in
// memory, for the tests of the packages that read the cluster through clusterstate.CacheReader.
package cachetest

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// Start runs a real controller-runtime informer cache, set up as the server's CacheReader
// sets it up, over a fixed set of objects: its informers list them from memory instead of an apiserver (the
// cache's NewInformer hook, meant for tests), so reads go through exactly the code the server
// uses, including the field indexes.
func Start(t testing.TB, objs ...client.Object) cache.Cache {
	t.Helper()
	c, _ := StartWatched(t, objs...)
	return c
}

// StartWatched is Start with the informers' watches returned by object type, so a
// test can send changes as the API server would.
func StartWatched(t testing.TB, objs ...client.Object) (cache.Cache, map[reflect.Type]*watch.FakeWatcher) {
	t.Helper()
	scheme, err := clusterstate.NewScheme()
	if err != nil {
		t.Fatal(err)
	}
	mapper := meta.NewDefaultRESTMapper(nil)
	mapper.Add(v1alpha1.GroupVersion.WithKind("Plugin"), meta.RESTScopeRoot)
	mapper.Add(v1alpha1.GroupVersion.WithKind("PluginChain"), meta.RESTScopeNamespace)
	mapper.Add(v1alpha1.GroupVersion.WithKind("PluginConfig"), meta.RESTScopeNamespace)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Namespace"), meta.RESTScopeRoot)
	mapper.Add(corev1.SchemeGroupVersion.WithKind("Service"), meta.RESTScopeNamespace)

	byType := map[reflect.Type][]runtime.Object{}
	for _, o := range objs {
		byType[reflect.TypeOf(o)] = append(byType[reflect.TypeOf(o)], o)
	}
	listOf := func(obj runtime.Object) (runtime.Object, error) {
		gvk, err := apiutilGVK(scheme, obj)
		if err != nil {
			return nil, err
		}
		list, err := scheme.New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err != nil {
			return nil, err
		}
		if err := meta.SetList(list, byType[reflect.TypeOf(obj)]); err != nil {
			return nil, err
		}
		list.(metav1.ListInterface).SetResourceVersion("1")
		return list, nil
	}
	var mu sync.Mutex
	watchers := map[reflect.Type]*watch.FakeWatcher{}
	for _, o := range clusterstate.CachedKinds() {
		watchers[reflect.TypeOf(o)] = watch.NewFake()
	}
	c, err := cache.New(&rest.Config{Host: "https://127.0.0.1:1"}, cache.Options{
		Scheme:           scheme,
		Mapper:           mapper,
		DefaultTransform: cache.TransformStripManagedFields(),
		NewInformer: func(_ toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
			lw := &toolscache.ListWatch{
				ListFunc: func(metav1.ListOptions) (runtime.Object, error) { return listOf(obj) },
				WatchFunc: func(metav1.ListOptions) (watch.Interface, error) {
					mu.Lock()
					defer mu.Unlock()
					if w, ok := watchers[reflect.TypeOf(obj)]; ok {
						return w, nil
					}
					return watch.NewFake(), nil
				},
			}
			return toolscache.NewSharedIndexInformer(listOnly{lw}, obj, resync, indexers)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if _, err := clusterstate.NewCacheReader(ctx, c); err != nil {
		t.Fatal(err)
	}
	go func() {
		if err := c.Start(ctx); err != nil {
			t.Error(err)
		}
	}()
	syncCtx, done := context.WithTimeout(ctx, 30*time.Second)
	defer done()
	if !c.WaitForCacheSync(syncCtx) {
		t.Fatal("cache did not sync")
	}
	return c, watchers
}

// listOnly tells the reflector that the in-memory lister cannot stream a watch-list (the
// WatchListClient feature), so it lists and then watches.
type listOnly struct{ *toolscache.ListWatch }

func (listOnly) IsWatchListSemanticsUnSupported() bool { return true }

func apiutilGVK(scheme *runtime.Scheme, obj runtime.Object) (gvk schema.GroupVersionKind, err error) {
	gvks, _, err := scheme.ObjectKinds(obj)
	if err != nil {
		return gvk, err
	}
	return gvks[0], nil
}
