package chains

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/contract"
)

func chain(ns string, pods, namespaces *metav1.LabelSelector, mounts ...v1alpha1.ChainPluginSpec) *v1alpha1.PluginChain {
	if len(mounts) == 0 {
		mounts = []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{DefaultPlugin}}}
	}
	c := &v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c"}}
	c.Spec.Chains = mounts
	c.Spec.Selectors.PodSelector = pods
	c.Spec.Selectors.NamespaceSelector = namespaces
	return c
}

func namespace(name string, l map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
}

func TestSelects(t *testing.T) {
	app := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "a"}}
	other := &metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}
	team := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}
	byName := &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "web"}}
	invalid := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Equals", Values: []string{"a"}}}}
	notIn := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"b"}}}}
	empty := &metav1.LabelSelector{}
	pod := map[string]string{"app": "a"}
	web := namespace("web", map[string]string{"team": "x"}) // no kubernetes.io/metadata.name: as from a file
	for _, tc := range []struct {
		name             string
		chainNS          string
		pods, namespaces *metav1.LabelSelector
		ns               *corev1.Namespace
		want             bool
	}{
		{name: "nil selectors, own namespace", chainNS: "web", ns: web, want: true},
		{name: "nil selectors, other namespace", chainNS: "ops", ns: web, want: false},
		{name: "empty selectors, own namespace", chainNS: "web", pods: empty, namespaces: empty, ns: web, want: true},
		{name: "empty namespaceSelector, other namespace", chainNS: "ops", namespaces: empty, ns: web, want: true},
		{name: "empty podSelector, other namespace", chainNS: "ops", pods: empty, ns: web, want: false},
		{name: "podSelector matches", chainNS: "web", pods: app, ns: web, want: true},
		{name: "podSelector does not match", chainNS: "web", pods: other, ns: web, want: false},
		{name: "NotIn matches", chainNS: "web", pods: notIn, ns: web, want: true},
		{name: "namespaceSelector matches other namespace", chainNS: "ops", pods: app, namespaces: team, ns: web, want: true},
		{name: "namespaceSelector does not match own namespace", chainNS: "web", namespaces: other, ns: web, want: false},
		{name: "metadata.name label added", chainNS: "ops", namespaces: byName, ns: web, want: true},
		{name: "metadata.name label of another namespace", chainNS: "ops", namespaces: byName, ns: namespace("api", nil), want: false},
		{name: "invalid podSelector selects nothing", chainNS: "web", pods: invalid, ns: web, want: false},
		{name: "invalid namespaceSelector selects nothing", chainNS: "web", namespaces: invalid, ns: web, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := chain(tc.chainNS, tc.pods, tc.namespaces)
			s := Selection{Tenancy: Tenancy{ClusterNamespaces: []string{"ops"}}}
			if got := s.Selects(c, pod, tc.ns); got != tc.want {
				t.Errorf("Selects = %v, want %v", got, tc.want)
			}
			compiled, ok := s.Compile(c)
			got := ok && compiled.Selects(pod, tc.ns)
			if got != tc.want {
				t.Errorf("Compiled.Selects = %v, want %v", got, tc.want)
			}
			if ok {
				reaches := slices.Contains(compiled.Namespaces([]*corev1.Namespace{tc.ns}), tc.ns.Name)
				if got := reaches && compiled.PodSelector().Matches(labelSet(pod)); got != tc.want {
					t.Errorf("Namespaces+PodSelector = %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestTenancy: a chain outside the cluster-chain namespaces acts in its own namespace only,
// whatever its namespaceSelector says, and the selector still filters; chains of skipped
// namespaces are ignored unless designated.
func TestTenancy(t *testing.T) {
	empty := &metav1.LabelSelector{}
	team := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}
	web := namespace("web", map[string]string{"team": "x"})
	api := namespace("api", map[string]string{"team": "x"})
	bare := namespace("bare", nil)
	tenancy := Tenancy{ClusterNamespaces: []string{"ops", "cors-system"}, SkippedNamespaces: []string{"kube-system", "cors-system"}}
	for _, tc := range []struct {
		name       string
		chainNS    string
		namespaces *metav1.LabelSelector
		ns         *corev1.Namespace
		want       bool
	}{
		{name: "tenant, empty selector, own namespace", chainNS: "web", namespaces: empty, ns: web, want: true},
		{name: "tenant, empty selector, other namespace", chainNS: "web", namespaces: empty, ns: api, want: false},
		{name: "tenant, label selector, other matching namespace", chainNS: "web", namespaces: team, ns: api, want: false},
		{name: "tenant, label selector, own namespace matches", chainNS: "web", namespaces: team, ns: web, want: true},
		{name: "tenant, label selector filters own namespace", chainNS: "bare", namespaces: team, ns: bare, want: false},
		{name: "tenant, nil selector, own namespace", chainNS: "web", ns: web, want: true},
		{name: "designated, empty selector, other namespace", chainNS: "ops", namespaces: empty, ns: web, want: true},
		{name: "designated, label selector, other namespace", chainNS: "ops", namespaces: team, ns: api, want: true},
		{name: "designated, label selector filters", chainNS: "ops", namespaces: team, ns: bare, want: false},
		{name: "designated, nil selector, other namespace", chainNS: "ops", ns: web, want: false},
		{name: "skipped namespace, own namespace", chainNS: "kube-system", ns: namespace("kube-system", nil), want: false},
		{name: "skipped namespace, empty selector", chainNS: "kube-system", namespaces: empty, ns: web, want: false},
		{name: "skipped but designated namespace", chainNS: "cors-system", namespaces: empty, ns: web, want: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := chain(tc.chainNS, nil, tc.namespaces)
			s := Selection{Tenancy: tenancy}
			if got := s.Selects(c, nil, tc.ns); got != tc.want {
				t.Errorf("Selects = %v, want %v", got, tc.want)
			}
			if got := s.SelectsNamespace(c, tc.ns); got != tc.want {
				t.Errorf("SelectsNamespace = %v, want %v", got, tc.want)
			}
			compiled, ok := s.Compile(c)
			if got := ok && compiled.Selects(nil, tc.ns); got != tc.want {
				t.Errorf("Compiled.Selects = %v, want %v", got, tc.want)
			}
			if ok {
				all := []*corev1.Namespace{web, api, bare}
				if !slices.Contains(all, tc.ns) {
					all = append(all, tc.ns)
				}
				if got := slices.Contains(compiled.Namespaces(all), tc.ns.Name); got != tc.want {
					t.Errorf("Namespaces(%s) = %v, want %v", tc.ns.Name, compiled.Namespaces(all), tc.want)
				}
			}
		})
	}
	// The zero value designates nothing: the rule of the safe default.
	if (Selection{}).Selects(chain("web", nil, empty), nil, api) {
		t.Error("zero Tenancy: a chain reaches another namespace")
	}
	disabled := namespace("ops", map[string]string{"cors-webhook.io/inject": "disabled"})
	if s := (Selection{Tenancy: tenancy}); !s.IgnoresIn(chain("ops", nil, empty), disabled) || s.IgnoresIn(chain("ops", nil, empty), namespace("ops", nil)) {
		t.Error("IgnoresIn: a chain of a namespace labelled inject=disabled must be ignored, and only that one")
	}
}

// TestWouldReachFurther: the answer depends on the chain's own selector only. Before, a
// selector of a label only the chain's own namespace carried gave no warning and one that
// another namespace carried did: an oracle on other namespaces' labels.
func TestWouldReachFurther(t *testing.T) {
	s := Selection{Tenancy: Tenancy{ClusterNamespaces: []string{"ops"}}}
	name := func(op metav1.LabelSelectorOperator, values ...string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: corev1.LabelMetadataName, Operator: op, Values: values}}}
	}
	for _, tc := range []struct {
		name       string
		chainNS    string
		namespaces *metav1.LabelSelector
		want       bool
	}{
		{name: "nil selector", chainNS: "web", want: false},
		{name: "empty selector", chainNS: "web", namespaces: &metav1.LabelSelector{}, want: true},
		{name: "a label, whichever namespaces carry it", chainNS: "web", namespaces: &metav1.LabelSelector{MatchLabels: map[string]string{"team": "x"}}, want: true},
		{name: "its own name as a label", chainNS: "web", namespaces: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "web", "team": "x"}}, want: false},
		{name: "its own name in an expression", chainNS: "web", namespaces: name(metav1.LabelSelectorOpIn, "web"), want: false},
		{name: "its own name and another", chainNS: "web", namespaces: name(metav1.LabelSelectorOpIn, "web", "api"), want: true},
		{name: "another name", chainNS: "web", namespaces: name(metav1.LabelSelectorOpIn, "api"), want: true},
		{name: "not another name", chainNS: "web", namespaces: name(metav1.LabelSelectorOpNotIn, "api"), want: true},
		{name: "designated namespace", chainNS: "ops", namespaces: &metav1.LabelSelector{}, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.WouldReachFurther(chain(tc.chainNS, nil, tc.namespaces)); got != tc.want {
				t.Errorf("WouldReachFurther = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestPlugins(t *testing.T) {
	def := Plugins{}
	if !def.Has(DefaultPlugin) || def.Has("cors-b") || def.String() != DefaultPlugin {
		t.Errorf("zero Plugins: Has(default)=%v Has(cors-b)=%v String=%q", def.Has(DefaultPlugin), def.Has("cors-b"), def.String())
	}
	p := NewPlugins("pipy/cors-2", "cors-b", "cors-b")
	if p.Has("pipy/cors") || !p.Has("pipy/cors-2") || p.Has(DefaultPlugin) || p.String() != "pipy/cors-2,cors-b" {
		t.Errorf("NewPlugins: %v", p.Names())
	}
	c := chain("web", nil, nil,
		v1alpha1.ChainPluginSpec{Name: v1alpha1.ChainInboundTCP, Plugins: []string{"cors-b"}},
		v1alpha1.ChainPluginSpec{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{"token", "pipy/cors-2", "cors-b", "pipy/cors-2"}})
	if got := p.InboundHTTP(c); !slices.Equal(got, []string{"pipy/cors-2", "cors-b"}) {
		t.Errorf("InboundHTTP = %v", got)
	}
	if !p.Mounts(c) || def.Mounts(c) {
		t.Errorf("Mounts: %v, default %v", p.Mounts(c), def.Mounts(c))
	}
	if (Selection{Plugins: def}).Acts(c, nil, namespace("web", nil)) {
		t.Error("Acts without a CORS plugin")
	}
	if !(Selection{Plugins: p}).Acts(c, nil, namespace("web", nil)) {
		t.Error("Acts with a CORS plugin, nil selectors, own namespace")
	}
}

func BenchmarkSelectsMiss(b *testing.B) {
	c := chain("ops", &metav1.LabelSelector{MatchLabels: map[string]string{"app": "b"}}, &metav1.LabelSelector{})
	ns := namespace("web", map[string]string{"team": "x"})
	pod := map[string]string{"app": "a"}
	s := Selection{Tenancy: Tenancy{ClusterNamespaces: []string{"ops"}}}
	b.ReportAllocs()
	for b.Loop() {
		if s.Selects(c, pod, ns) {
			b.Fatal("selected")
		}
	}
}

// The scope's fast checks decide as its selectors do: the selectors are what the chart renders
// into the webhook configurations, the checks are what every selection applies.
func TestScopeChecksAreTheAdmissionSelectors(t *testing.T) {
	tenancy := Tenancy{SkippedNamespaces: []string{"kube-system", "cors-system", "kube-system"}}
	nsSel, err := metav1.LabelSelectorAsSelector(tenancy.AdmissionNamespaceSelector())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ns   *corev1.Namespace
		want bool
	}{
		{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web"}}, true},
		{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}}, false},
		{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "cors-system", Labels: map[string]string{"team": "x"}}}, false},
		{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{contract.LabelNamespaceInject: contract.NamespaceInjectDisabled}}}, false},
		{&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{contract.LabelNamespaceInject: "enabled"}}}, true},
	} {
		if got, sel := tenancy.InScope(tc.ns), nsSel.Matches(NamespaceLabels(tc.ns)); got != tc.want || sel != tc.want {
			t.Errorf("namespace %s %v: InScope %v, selector %v, want %v", tc.ns.Name, tc.ns.Labels, got, sel, tc.want)
		}
	}
	objSel, err := metav1.LabelSelectorAsSelector(AdmissionObjectSelector())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		pod  map[string]string
		want bool
	}{
		{nil, true},
		{map[string]string{"app": "a"}, true},
		{map[string]string{contract.LabelIgnore: contract.LabelIgnoreTrue}, false},
		{map[string]string{contract.LabelIgnore: "false"}, true},
	} {
		if got, sel := PodInScope(tc.pod), objSel.Matches(labels.Set(tc.pod)); got != tc.want || sel != tc.want {
			t.Errorf("pod %v: PodInScope %v, selector %v, want %v", tc.pod, got, sel, tc.want)
		}
	}
	// A chain that would select everything selects nothing out of scope, and its pod listing
	// leaves out ignored pods.
	everything := &v1alpha1.PluginChain{ObjectMeta: metav1.ObjectMeta{Namespace: "cors-system", Name: "all"}}
	everything.Spec.Selectors.NamespaceSelector = &metav1.LabelSelector{}
	everything.Spec.Chains = []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{DefaultPlugin}}}
	s := Selection{Tenancy: Tenancy{ClusterNamespaces: []string{"cors-system"}, SkippedNamespaces: tenancy.SkippedNamespaces}}
	cc, ok := s.Compile(everything)
	if !ok {
		t.Fatal("a cluster-chain namespace's chain is not ignored")
	}
	all := []*corev1.Namespace{{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}}, {ObjectMeta: metav1.ObjectMeta{Name: "cors-system"}}, {ObjectMeta: metav1.ObjectMeta{Name: "web"}}}
	if got := cc.Namespaces(all); !slices.Equal(got, []string{"web"}) {
		t.Errorf("a chain selecting every namespace reaches %v, want [web]", got)
	}
	if cc.PodSelector().Matches(labels.Set{contract.LabelIgnore: contract.LabelIgnoreTrue}) {
		t.Errorf("the pod listing of %s takes ignored pods", cc.PodSelector())
	}
	for _, ns := range all {
		if want := ns.Name == "web"; s.Selects(everything, nil, ns) != want || cc.Selects(nil, ns) != want {
			t.Errorf("namespace %s: Selects %v, compiled %v, want %v", ns.Name, s.Selects(everything, nil, ns), cc.Selects(nil, ns), want)
		}
	}
}
