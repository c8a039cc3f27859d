// Package selftest proves, through the API server, that an installed release answers admission
// requests: what the chart's `helm test` hook runs (cors-webhook selftest).
package selftest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/inject"
)

// Options are what Run needs besides its client.
type Options struct {
	// Namespace receives the dry runs; the webhooks must cover it.
	Namespace string
	// Plugin is the CORS plugin name (one of the server's --cors-plugins).
	Plugin string
	// Poll is the interval between dry runs while the webhook's cache catches up with the chain.
	Poll time.Duration
}

// configWebhook is the chart's PluginConfig webhook, as the API server quotes it in a
// denial.
const configWebhook = "pluginconfigs.validate.cors-webhook.io"

// runLabel marks the pods of one self-test run, which its temporary PluginChain selects.
const runLabel = "cors-webhook.io/selftest"

// Warnings keeps the API server's warnings (admission warnings among them): the rest.Config's
// WarningHandler of Run's client.
type Warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *Warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, msg)
	w.mu.Unlock()
}

func (w *Warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

// RunConfig is Run with a client of cfg (the scheme clusterstate.Scheme) whose API server
// warnings Run reads; cfg is not modified.
func RunConfig(ctx context.Context, cfg *rest.Config, out io.Writer, o Options) error {
	warnings := &Warnings{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = warnings
	c, err := client.New(cfg, client.Options{Scheme: clusterstate.Scheme})
	if err != nil {
		return err
	}
	return Run(ctx, c, warnings, out, o)
}

// Run sends the dry runs through c, whose API server warnings reach warnings, and writes what
// each step showed to out.
func Run(ctx context.Context, c client.Client, warnings *Warnings, out io.Writer, o Options) error {
	id := randomID()

	// 1. The validating webhook denies an invalid PluginConfig.
	pc := &v1alpha1.PluginConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "cors-webhook-selftest-" + id, Namespace: o.Namespace},
		Spec:       v1alpha1.PluginConfigSpec{Plugin: o.Plugin, Config: runtime.RawExtension{Raw: []byte(`{"allowOrigins":[]}`)}},
	}
	err := c.Create(ctx, pc, client.DryRunAll)
	if verdict := deniedBy(err, configWebhook); verdict != "" {
		return fmt.Errorf("validating webhook: %s", verdict)
	}
	fmt.Fprintf(out, "ok: the validating webhook denied an invalid PluginConfig in %s: %v\n", o.Namespace, err)

	// 2. The mutating webhook injects a pod that a chain selects.
	plugin := &v1alpha1.Plugin{}
	if err := c.Get(ctx, client.ObjectKey{Name: o.Plugin}, plugin); apierrors.IsNotFound(err) {
		fmt.Fprintf(out, "skipped: no Plugin %s is declared (chart value plugin.declare), so no chain can select a pod for injection\n", o.Plugin)
		return nil
	} else if err != nil {
		return fmt.Errorf("reading Plugin %s: %w", o.Plugin, err)
	}
	chain := &v1alpha1.PluginChain{
		ObjectMeta: metav1.ObjectMeta{Name: "cors-webhook-selftest-" + id, Namespace: o.Namespace, Labels: map[string]string{runLabel: id}},
		Spec: v1alpha1.PluginChainSpec{
			Chains:    []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{o.Plugin}}},
			Selectors: v1alpha1.ChainSelectorSpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{runLabel: id}}},
		},
	}
	if err := c.Create(ctx, chain); err != nil {
		return fmt.Errorf("creating the temporary PluginChain %s/%s: %w", chain.Namespace, chain.Name, err)
	}
	defer func() {
		// Deleted even when ctx has expired.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := c.Delete(dctx, chain); client.IgnoreNotFound(err) != nil {
			fmt.Fprintf(out, "warning: deleting the temporary PluginChain %s/%s: %v\n", chain.Namespace, chain.Name, err)
		}
	}()
	for attempt := 1; ; attempt++ {
		pod := dryRunPod(o.Namespace, id)
		warnings.take()
		if err := c.Create(ctx, pod, client.DryRunAll); err != nil {
			return fmt.Errorf("dry-run pod: %w", err)
		}
		verdict, ok := injectionVerdict(pod, warnings.take())
		if ok {
			fmt.Fprintf(out, "ok: the mutating webhook %s (dry run %d)\n", verdict, attempt)
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("mutating webhook: after %d dry runs: %s", attempt, verdict)
		case <-time.After(o.Poll):
		}
	}
}

// deniedBy returns "" when err is the API server's denial by the named webhook, and what was
// wrong otherwise.
func deniedBy(err error, webhook string) string {
	switch {
	case err == nil:
		return "an invalid object was admitted: the webhook is not called (is the namespace excluded, or the configuration missing?)"
	case !strings.Contains(err.Error(), `admission webhook "`+webhook+`" denied the request`):
		return fmt.Sprintf("the request failed, but not by %s's denial: %v", webhook, err)
	}
	return ""
}

// injectionVerdict says whether the dry-run pod shows that the mutating webhook answered: it
// carries the sidecar, or the webhook warned why it cannot inject it.
func injectionVerdict(pod *corev1.Pod, warnings []string) (string, bool) {
	if inject.HasSidecar(&pod.Spec) {
		return "injected the " + contract.ContainerSidecar + " into a selected pod", true
	}
	for _, w := range warnings {
		// The webhook's reasons for a selected pod it cannot inject (inject.Result.Reasons).
		if strings.HasPrefix(w, "PluginChain ") && strings.Contains(w, " selects the pod") {
			return "answered a selected pod without injecting it: " + w, true
		}
	}
	return "the selected pod came back without the sidecar and without a warning (the webhook's cache may not have the chain yet, or the pod webhook is not called)", false
}

// dryRunPod is a minimal pod of this run, with an HTTP port.
func dryRunPod(namespace, id string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "cors-webhook-selftest-", Namespace: namespace, Labels: map[string]string{runLabel: id}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "app", Image: "selftest.invalid/app:dry-run",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
		}}},
	}
}

func randomID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}
