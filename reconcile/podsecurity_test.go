package reconcile

import (
	"errors"
	"fmt"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			refused, why, known := podSecurityVerdict(tc.err)
			if refused != tc.refused || known != tc.known {
				t.Fatalf("refused, known = %v, %v; want %v, %v", refused, known, tc.refused, tc.known)
			}
			if refused != (why != "") {
				t.Errorf("why = %q with refused %v", why, refused)
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
