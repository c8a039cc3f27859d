package reconcile

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cors-webhook/cors-webhook/inject"
)

// A namespace label is not the whole truth about Pod Security: the API server's
// AdmissionConfiguration can set a cluster-wide default level for every namespace without the
// label. In init mode the injected cors-init adds NET_ADMIN, which baseline and restricted
// refuse, so rolling a workload there would only trade running pods for refused ones. The
// rollout controller therefore asks the API server itself, with a server-side dry-run create of
// a pod built from the injected template, before it rolls (Options.PodSecurityDryRun).

// podSecurityRefusal is the part of the API server's answer that says Pod Security admission
// refused the pod; Forbidden answers for other reasons (a missing ServiceAccount, a quota,
// another policy) are not about the namespace's level.
const podSecurityRefusal = "violates PodSecurity"

// podSecurityVerdict reads the API server's answer to a dry-run create: refused (with the
// server's words) when Pod Security admission forbade the pod; known is false when the answer
// says nothing about Pod Security: any other error may come from a step that runs before it
// (validation, another admission plugin or webhook), so the label decides until the next try.
func podSecurityVerdict(err error) (refused bool, why string, known bool) {
	switch {
	case err == nil:
		return false, "", true
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), podSecurityRefusal):
		why := err.Error()
		if len(why) > podSecurityWhyLimit {
			// Events' notes are bounded (1 KiB); the rule names come first.
			why = strings.ToValidUTF8(why[:podSecurityWhyLimit], "") + "..."
		}
		return true, why, true
	}
	return false, "", false
}

// Bounds of the verdict cache.
const (
	// DefaultPodSecurityVerdictTTL is how long a namespace's verdict is trusted: a changed
	// label or AdmissionConfiguration is seen within it.
	DefaultPodSecurityVerdictTTL = 5 * time.Minute
	// podSecurityVerdictLimit is how many namespaces' verdicts are kept; past it the oldest
	// goes, and its next rollout asks again.
	podSecurityVerdictLimit = 1024
	// podSecurityDryRunTimeout bounds one dry run; without an answer the label decides.
	podSecurityDryRunTimeout = 5 * time.Second
	// podSecurityWhyLimit bounds the API server's words quoted in the Event, whose note the
	// API server refuses beyond 1 KiB.
	podSecurityWhyLimit = 384
)

// podSecurityEntry is one namespace's verdict: why Pod Security refuses injected pods there
// ("" when it admits them), as of at.
type podSecurityEntry struct {
	why string
	at  time.Time
}

// verdictCache keeps one dry run's verdict per namespace, at most limit of them, each for ttl.
type verdictCache struct {
	mu      sync.Mutex
	limit   int
	ttl     time.Duration
	entries map[string]podSecurityEntry
}

func newVerdictCache(limit int, ttl time.Duration) *verdictCache {
	return &verdictCache{limit: limit, ttl: ttl, entries: map[string]podSecurityEntry{}}
}

// get returns namespace's verdict if one younger than the TTL is held.
func (c *verdictCache) get(namespace string, now time.Time) (podSecurityEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[namespace]
	if !ok || now.Sub(e.at) >= c.ttl {
		delete(c.entries, namespace)
		return podSecurityEntry{}, false
	}
	return e, true
}

// put stores namespace's verdict, evicting the oldest one when the cache is full.
func (c *verdictCache) put(namespace string, e podSecurityEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[namespace]; !ok && len(c.entries) >= c.limit {
		oldest := ""
		for ns, o := range c.entries {
			if oldest == "" || o.at.Before(c.entries[oldest].at) {
				oldest = ns
			}
		}
		delete(c.entries, oldest)
	}
	c.entries[namespace] = e
}

func (c *verdictCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// PodSecurityDryRuns counts the dry runs the rollout controller sent, by verdict.
var PodSecurityDryRuns = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "cors_webhook_reconcile_podsecurity_dry_runs_total",
	Help: "Server-side dry-run creates of injected pods sent by the Day-2 reconciler before a rollout in init mode, by verdict (allowed, refused by Pod Security, unknown).",
}, []string{"verdict"})

// The verdicts of PodSecurityDryRuns.
const (
	verdictAllowed = "allowed"
	verdictRefused = "refused"
	verdictUnknown = "unknown"
)

// podSecurityProbe asks the API server whether Pod Security admission lets injected pods into
// a namespace, and remembers the answer.
type podSecurityProbe struct {
	client   client.Client
	verdicts *verdictCache
	now      func() time.Time
}

// probePodName prefixes the generated name of the dry-run pod, so that audit logs and
// the admission policy's messages say what it was.
const probePodName = "cors-webhook-podsecurity-dry-run-"

// refusal says why Pod Security admission refuses injected, a pod of namespace carrying the
// sidecar, or "" when it admits it or the API server gave no usable answer.
func (p *podSecurityProbe) refusal(ctx context.Context, namespace string, injected *corev1.Pod) (string, error) {
	now := p.now()
	if e, ok := p.verdicts.get(namespace, now); ok {
		return e.why, nil
	}
	pod := &corev1.Pod{Spec: *injected.Spec.DeepCopy()}
	pod.Labels, pod.Annotations = injected.Labels, injected.Annotations
	pod.Namespace, pod.GenerateName = namespace, probePodName
	ctx, cancel := context.WithTimeout(ctx, podSecurityDryRunTimeout)
	defer cancel()
	err := p.client.Create(ctx, pod, client.DryRunAll)
	refused, why, known := podSecurityVerdict(err)
	if !known {
		PodSecurityDryRuns.WithLabelValues(verdictUnknown).Inc()
		return "", fmt.Errorf("the dry run of an injected pod in namespace %s gave no Pod Security verdict: %w", namespace, err)
	}
	if refused {
		PodSecurityDryRuns.WithLabelValues(verdictRefused).Inc()
		// Admission does not know this verdict: until the label says so, new pods there
		// (scale-up, rescheduling) are still injected, and refused.
		why = fmt.Sprintf("the API server's Pod Security admission refuses injected pods in namespace %s (server-side dry run; its level may come from the cluster-wide default, not a label), as cors-init adds the capability NET_ADMIN: %s. Label the namespace with its level (%s) so that the webhook skips its pods, or use the cni redirect mode",
			namespace, why, inject.LabelPodSecurityEnforce)
	} else {
		PodSecurityDryRuns.WithLabelValues(verdictAllowed).Inc()
	}
	logf.FromContext(ctx).Info("Pod Security dry run", "dryRunNamespace", namespace, "refused", refused, "why", why)
	p.verdicts.put(namespace, podSecurityEntry{why: why, at: now})
	return why, nil
}
