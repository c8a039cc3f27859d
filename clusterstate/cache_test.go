package clusterstate_test

import (
	"reflect"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// TestCacheReaderMatchesSnapshot checks that the cache-backed Reader answers every lookup as
// the in-memory Snapshot does for the same objects.
func TestCacheReaderMatchesSnapshot(t *testing.T) {
	chain := func(ns, name string, namespaces map[string]string) *v1alpha1.PluginChain {
		c := &v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		if namespaces != nil {
			c.Spec.Selectors.NamespaceSelector = &metav1.LabelSelector{MatchLabels: namespaces}
		}
		return c
	}
	config := func(ns, name, plugin string, services ...string) *v1alpha1.PluginConfig {
		c := &v1alpha1.PluginConfig{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
		c.Spec.Plugin = plugin
		for _, s := range services {
			c.Spec.DestinationRefs = append(c.Spec.DestinationRefs, corev1.ObjectReference{Kind: "Service", Name: s})
		}
		return c
	}
	objs := []client.Object{
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "a", Labels: map[string]string{"team": "x"}}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "b"}},
		chain("a", "local", nil),
		chain("a", "global", map[string]string{"team": "x"}),
		chain("b", "local", nil),
		config("a", "c1", "cors-policy", "s1", "s2"),
		config("a", "c2", "other", "s1"),
		config("b", "c1", "cors-policy", "s1"),
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "s1"}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "s1"}},
	}
	snapObjs := make([]any, len(objs))
	for i, o := range objs {
		snapObjs[i] = o
	}
	snap := clusterstate.NewSnapshot(snapObjs...)
	cr := newCacheReader(t, objs...)

	names := func(v any, err error) []string {
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Slice {
			if rv.IsNil() {
				return nil
			}
			return []string{v.(client.Object).GetNamespace() + "/" + v.(client.Object).GetName()}
		}
		for i := 0; i < rv.Len(); i++ {
			o := rv.Index(i).Interface().(client.Object)
			out = append(out, o.GetNamespace()+"/"+o.GetName())
		}
		sort.Strings(out)
		return out
	}
	for _, tc := range []struct {
		name      string
		got, want func() []string
	}{
		{"Plugin", func() []string { return names(cr.Plugin("cors-policy")) }, func() []string { return names(snap.Plugin("cors-policy")) }},
		{"Plugin missing", func() []string { return names(cr.Plugin("nope")) }, func() []string { return names(snap.Plugin("nope")) }},
		{"PluginChainsInNamespace", func() []string { return names(cr.PluginChainsInNamespace("a")) }, func() []string { return names(snap.PluginChainsInNamespace("a")) }},
		{"PluginChainsWithNamespaceSelector", func() []string { return names(cr.PluginChainsWithNamespaceSelector()) }, func() []string { return names(snap.PluginChainsWithNamespaceSelector()) }},
		{"PluginConfigsForPlugin", func() []string { return names(cr.PluginConfigsForPlugin("a", "cors-policy")) }, func() []string { return names(snap.PluginConfigsForPlugin("a", "cors-policy")) }},
		{"PluginConfigsForService", func() []string { return names(cr.PluginConfigsForService("a", "s1")) }, func() []string { return names(snap.PluginConfigsForService("a", "s1")) }},
		{"Namespace", func() []string { return names(cr.Namespace("a")) }, func() []string { return names(snap.Namespace("a")) }},
		{"Namespace missing", func() []string { return names(cr.Namespace("z")) }, func() []string { return names(snap.Namespace("z")) }},
		{"Namespaces", func() []string { return names(cr.Namespaces()) }, func() []string { return names(snap.Namespaces()) }},
		{"Service", func() []string { return names(cr.Service("b", "s1")) }, func() []string { return names(snap.Service("b", "s1")) }},
		{"Service missing", func() []string { return names(cr.Service("b", "s2")) }, func() []string { return names(snap.Service("b", "s2")) }},
		{"ServicesInNamespace", func() []string { return names(cr.ServicesInNamespace("a")) }, func() []string { return names(snap.ServicesInNamespace("a")) }},
	} {
		if got, want := tc.got(), tc.want(); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: cache reader = %v, snapshot = %v", tc.name, got, want)
		}
	}
}
