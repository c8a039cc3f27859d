package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/cors-webhook/cors-webhook/inject"
)

func TestPodSecurityVerdict(t *testing.T) {
	pods := schema.GroupResource{Resource: "pods"}
	psa := apierrors.NewForbidden(pods, "cors-webhook-podsecurity-dry-run-x",
		errors.New(`violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "cors-init" must set securityContext.allowPrivilegeEscalation=false)`))
	for _, tc := range []struct {
		name           string
		err            error
		refused, known bool
	}{
		{"admitted", nil, false, true},
		{"refused by Pod Security", psa, true, true},
		{"forbidden by something else", apierrors.NewForbidden(pods, "x", errors.New("error looking up service account app/web: serviceaccount \"web\" not found")), false, false},
		{"invalid before admission", apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", nil), false, false},
		{"timeout", apierrors.NewTimeoutError("slow", 1), false, false},
		{"transport", fmt.Errorf("dial tcp: connection refused"), false, false},
		{"message without Forbidden", apierrors.NewBadRequest("violates PodSecurity"), false, false},
		{"long refusal", apierrors.NewForbidden(pods, "x", errors.New(`violates PodSecurity "restricted:latest": `+strings.Repeat("runAsNonRoot != true, ", 100))), true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused, why, known := podSecurityVerdict(tc.err)
			if refused != tc.refused || known != tc.known {
				t.Fatalf("refused, known = %v, %v; want %v, %v", refused, known, tc.refused, tc.known)
			}
			if refused != (why != "") {
				t.Errorf("why = %q with refused %v", why, refused)
			}
			if len(why) > podSecurityWhyLimit+len("...") {
				t.Errorf("why is %d bytes, bound %d", len(why), podSecurityWhyLimit)
			}
		})
	}
}

func TestVerdictCacheTTL(t *testing.T) {
	c := newVerdictCache(4, time.Minute)
	t0 := time.Unix(1000, 0)
	c.put("a", podSecurityEntry{why: "refused", at: t0})
	if e, ok := c.get("a", t0.Add(59*time.Second)); !ok || e.why != "refused" {
		t.Fatalf("within the TTL: %+v, %v", e, ok)
	}
	if _, ok := c.get("a", t0.Add(time.Minute)); ok {
		t.Fatal("a verdict as old as the TTL is still used")
	}
	if c.len() != 0 {
		t.Fatalf("an expired verdict is kept: %d entries", c.len())
	}
}

// TestVerdictCacheBound pushes past the bound: the oldest verdict goes, the newest stay.
func TestVerdictCacheBound(t *testing.T) {
	const limit = 3
	c := newVerdictCache(limit, time.Hour)
	t0 := time.Unix(1000, 0)
	for i := range 2 * limit {
		c.put(fmt.Sprint("ns", i), podSecurityEntry{at: t0.Add(time.Duration(i) * time.Second)})
		if c.len() > limit {
			t.Fatalf("after %d puts: %d entries, bound %d", i+1, c.len(), limit)
		}
	}
	now := t0.Add(time.Minute)
	for i := range 2 * limit {
		_, ok := c.get(fmt.Sprint("ns", i), now)
		if want := i >= limit; ok != want {
			t.Errorf("ns%d held = %v, want %v", i, ok, want)
		}
	}
	// Replacing a held verdict evicts nothing.
	c.put("ns5", podSecurityEntry{why: "x", at: now})
	if c.len() != limit {
		t.Errorf("replacing a verdict: %d entries, want %d", c.len(), limit)
	}
}

// TestRolloutReconcilerAsksPodSecurity: in init mode with Options.PodSecurityDryRun, a
// workload whose injected pods Pod Security would refuse (here by a cluster default: the
// namespace has no label) is reported, not rolled, and the API server is asked once per
// namespace within the TTL; an answer that says nothing about Pod Security leaves the decision
// to the label rule, and is asked again.
func TestRolloutReconcilerAsksPodSecurity(t *testing.T) {
	refusal := apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "cors-webhook-podsecurity-dry-run-x",
		errors.New(`violates PodSecurity "restricted:latest": unrestricted capabilities (container "cors-init" must not include "NET_ADMIN" in securityContext.capabilities.add)`))
	for _, tc := range []struct {
		name     string
		answer   error
		rolled   bool
		asked    int // dry runs over two reconciles
		event    string
		verdicts int
	}{
		{"refused", refusal, false, 1, "Warning " + ReasonRolloutUnhelpful, 1},
		{"admitted", nil, true, 1, "Normal " + ReasonRollout, 1},
		{"no verdict", apierrors.NewTimeoutError("slow", 1), true, 2, "Normal " + ReasonRollout, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSeedCluster(t)
			d, rs, pod := s.deployment(t, false)
			asked := 0
			cl := interceptor.NewClient(fakeClient(t, d, rs, pod).(client.WithWatch), interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
					co := (&client.CreateOptions{}).ApplyOptions(opts)
					p, ok := obj.(*corev1.Pod)
					if !ok || len(co.DryRun) != 1 || co.DryRun[0] != metav1.DryRunAll {
						t.Fatalf("a create that is not a dry run of a pod: %T %+v", obj, co)
					}
					if p.Namespace != "pipy" || !inject.HasSidecar(&p.Spec) {
						t.Errorf("the dry-run pod is in %q, sidecar %v; want the workload's namespace and the injected template", p.Namespace, inject.HasSidecar(&p.Spec))
					}
					asked++
					return tc.answer
				},
			})
			rec := events.NewFakeRecorder(8)
			clock := &fakeClock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
			opts := Options{PodSecurityDryRun: true}.withDefaults()
			verdicts := newVerdictCache(podSecurityVerdictLimit, opts.PodSecurityVerdictTTL)
			r := &rolloutReconciler{client: cl, reader: s.reader, injector: s.injector, recorder: rec,
				opts: opts, limiter: rate.NewLimiter(rate.Inf, 1),
				pending: map[workloadKey]time.Time{}, notes: newNoteLog(), now: clock.Now,
				podSecurity: &podSecurityProbe{client: cl, verdicts: verdicts, now: clock.Now}}
			key := workloadKey{Kind: kindDeployment, Namespace: "pipy", Name: "pipy-ok-v1"}
			for range 2 {
				if _, err := r.Reconcile(context.Background(), key); err != nil {
					t.Fatal(err)
				}
				clock.t = clock.t.Add(DefaultRolloutSettle)
			}
			got := &appsv1.Deployment{}
			if err := cl.Get(context.Background(), client.ObjectKeyFromObject(d), got); err != nil {
				t.Fatal(err)
			}
			if rolled := got.Spec.Template.Annotations[AnnotationRestartedAt] != ""; rolled != tc.rolled {
				t.Errorf("rolled = %v, want %v", rolled, tc.rolled)
			}
			if asked != tc.asked {
				t.Errorf("%d dry runs, want %d", asked, tc.asked)
			}
			if verdicts.len() != tc.verdicts {
				t.Errorf("%d verdicts cached, want %d", verdicts.len(), tc.verdicts)
			}
			select {
			case e := <-rec.Events:
				if !strings.HasPrefix(e, tc.event) || (!tc.rolled && !strings.Contains(e, "violates PodSecurity")) {
					t.Errorf("event %q, want %s", e, tc.event)
				}
			default:
				t.Errorf("no event, want %s", tc.event)
			}
		})
	}
}
