package webhook

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/chains"
	"github.com/cors-webhook/cors-webhook/validate"
)

// TestPluginChainValidationFollowsChainChanges: the CacheReader's chains.Index follows
// the PluginChain informer. Once a chain is created, changed or deleted in the informer's
// store, the next validations (as soon as the informer's event handler, which runs just after
// the store update, has filed it) decide with it, also while validations run concurrently
// (go test -race).
func TestPluginChainValidationFollowsChainChanges(t *testing.T) {
	web := func(rv, app string) *v1alpha1.PluginChain {
		c := chain("team-a", "web", "cors-policy", selector(map[string]string{"app": app}), nil)
		c.ResourceVersion = rv
		return c
	}
	wide := chain("team-b", "wide", "cors-policy", selector(map[string]string{"app": "web"}), &metav1.LabelSelector{})
	wide.ResourceVersion = "5"
	c, watchers := startWatchedCache(t,
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-policy"}},
		&v1alpha1.Plugin{ObjectMeta: metav1.ObjectMeta{Name: "cors-b"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-a"}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team-b"}},
		web("1", "web"))
	opts := validate.Options{Plugins: chains.NewPlugins("cors-policy", "cors-b"),
		Tenancy: chains.Tenancy{ClusterNamespaces: []string{"team-b"}}}
	sel := chains.Selection{Plugins: opts.Plugins, Tenancy: opts.Tenancy}
	r := newCacheReaderFor(t, c, sel)
	if ix, err := sel.IndexOf(r); err != nil || ix == nil {
		t.Fatal("the CacheReader offers no chains.Index of validation's rule: validation would list chains", err)
	}
	// A chain putting another CORS plugin on app=web pods of team-a.
	newChain := chain("team-a", "new", "cors-b", selector(map[string]string{"app": "web"}), nil)
	conflictsWith := func() string {
		errs, _ := validate.PluginChainCreate(r, newChain, opts)
		var with []string
		for _, e := range errs {
			if e.Type == "FieldValueForbidden" {
				for _, other := range []string{"team-a/web", "team-b/wide"} {
					if strings.Contains(e.Detail, "PluginChain "+other) {
						with = append(with, other)
					}
				}
				continue
			}
			t.Errorf("unexpected error %v", e)
		}
		return strings.Join(with, ",")
	}
	if got := conflictsWith(); got != "team-a/web" {
		t.Fatalf("before any change: conflicts with %q, want team-a/web", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				validate.PluginChainCreate(r, newChain, opts)
			}
		}()
	}
	defer wg.Wait()
	defer cancel()

	// stored waits until the informer's store holds the chain at rv ("" for deleted).
	stored := func(ns, name, rv string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got := ""
			list, _ := r.PluginChainsInNamespace(ns)
			for _, c := range list {
				if c.Name == name {
					got = c.ResourceVersion
				}
			}
			if got == rv {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("chain %s/%s at resourceVersion %q in the store, want %q", ns, name, got, rv)
			}
			time.Sleep(time.Millisecond)
		}
	}
	chainWatcher := watchers[reflect.TypeFor[*v1alpha1.PluginChain]()]
	steps := []struct {
		name     string
		change   func()
		ns, obj  string
		rv, want string
	}{
		{"web reselected to other pods", func() { chainWatcher.Modify(web("2", "api")) }, "team-a", "web", "2", ""},
		{"web back on app=web", func() { chainWatcher.Modify(web("3", "web")) }, "team-a", "web", "3", "team-a/web"},
		{"web deleted", func() { chainWatcher.Delete(web("4", "web")) }, "team-a", "web", "", ""},
		{"a cluster-wide chain created", func() { chainWatcher.Add(wide) }, "team-b", "wide", "5", "team-b/wide"},
	}
	for _, s := range steps {
		s.change()
		stored(s.ns, s.obj, s.rv)
		deadline := time.Now().Add(10 * time.Second)
		for got := conflictsWith(); got != s.want; got = conflictsWith() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: validation still conflicts with %q, want %q", s.name, got, s.want)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

// TestPluginChainIndexIsWholeOnFirstRead: a CacheReader added to a running cache (its event
// handler then receives the 10,000 chains the informer holds) answers its first lookup with
// all of them filed, not with the part the handler got through so far.
func TestPluginChainIndexIsWholeOnFirstRead(t *testing.T) {
	c := startCache(t, clusterOf10k()...)
	r := newCacheReader(t, c)
	ix, err := r.ChainIndex()
	if err != nil {
		t.Fatal(err)
	}
	if got := ix.Len(); got != 10000 {
		t.Fatalf("the first lookup sees %d chains filed, want 10000", got)
	}
}
