package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/clusterstate"
	"github.com/cors-webhook/cors-webhook/contract"
)

// selftestConfigWebhook is the chart's PluginConfig webhook, as the API server quotes it in a
// denial.
const selftestConfigWebhook = "pluginconfigs.validate.cors-webhook.io"

// selftestLabel marks the pods of one self-test run, which its temporary PluginChain selects.
const selftestLabel = "cors-webhook.io/selftest"

type selftestOptions struct {
	namespace string
	plugin    string
	timeout   time.Duration
	poll      time.Duration
}

// newSelftestCommand is what the chart's `helm test` hook runs: it proves, through the API
// server, that the installed release answers admission requests.
func newSelftestCommand() *cobra.Command {
	o := selftestOptions{}
	cmd := &cobra.Command{
		Use:   "selftest",
		Short: "Prove through the API server that the installed webhooks answer (helm test)",
		Long: `selftest sends admission requests through the API server, as server-side dry runs that
store nothing, in --namespace (which the webhooks must cover):

 1. an invalid PluginConfig: the validating webhook must deny it;
 2. when the CORS Plugin --plugin is declared, a temporary PluginChain selecting only this run's
    pods is created, and a pod it selects is dry-run created until the mutating webhook returns it
    with the cors-sidecar (or refuses to inject it with a warning, e.g. under Pod Security);
    the chain is deleted afterwards. Without the Plugin, injection cannot be shown and the step
    says so.

It uses the in-cluster configuration (or $KUBECONFIG) and needs: create on pluginconfigs and
pods (dry run) and on pluginchains, delete on pluginchains in --namespace, get on plugins.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
			defer cancel()
			return runSelftest(ctx, cmd.OutOrStdout(), o)
		},
	}
	cmd.Flags().StringVar(&o.namespace, "namespace", "default", "namespace to send the dry runs to (one the webhooks cover: not the release's)")
	cmd.Flags().StringVar(&o.plugin, "plugin", "cors-policy", "the CORS plugin name (one of the server's --cors-plugins)")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up after this long")
	cmd.Flags().DurationVar(&o.poll, "poll", time.Second, "interval between dry runs while the webhook's cache catches up with the chain")
	return cmd
}

// warningLog keeps the API server's warnings (admission warnings among them).
type warningLog struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningLog) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	w.msgs = append(w.msgs, msg)
	w.mu.Unlock()
}

func (w *warningLog) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.msgs
	w.msgs = nil
	return out
}

func runSelftest(ctx context.Context, out io.Writer, o selftestOptions) error {
	cfg, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("load kubeconfig: %w", err)
	}
	warnings := &warningLog{}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = warnings
	c, err := client.New(cfg, client.Options{Scheme: clusterstate.Scheme})
	if err != nil {
		return err
	}
	id := randomID()

	// 1. The validating webhook denies an invalid PluginConfig.
	pc := &v1alpha1.PluginConfig{
		ObjectMeta: metav1.ObjectMeta{Name: "cors-webhook-selftest-" + id, Namespace: o.namespace},
		Spec:       v1alpha1.PluginConfigSpec{Plugin: o.plugin, Config: runtime.RawExtension{Raw: []byte(`{"allowOrigins":[]}`)}},
	}
	err = c.Create(ctx, pc, client.DryRunAll)
	if verdict := deniedBy(err, selftestConfigWebhook); verdict != "" {
		return fmt.Errorf("validating webhook: %s", verdict)
	}
	fmt.Fprintf(out, "ok: the validating webhook denied an invalid PluginConfig in %s: %v\n", o.namespace, err)

	// 2. The mutating webhook injects a pod that a chain selects.
	plugin := &v1alpha1.Plugin{}
	if err := c.Get(ctx, client.ObjectKey{Name: o.plugin}, plugin); apierrors.IsNotFound(err) {
		fmt.Fprintf(out, "skipped: no Plugin %s is declared (chart value plugin.declare), so no chain can select a pod for injection\n", o.plugin)
		return nil
	} else if err != nil {
		return fmt.Errorf("reading Plugin %s: %w", o.plugin, err)
	}
	chain := &v1alpha1.PluginChain{
		ObjectMeta: metav1.ObjectMeta{Name: "cors-webhook-selftest-" + id, Namespace: o.namespace, Labels: map[string]string{selftestLabel: id}},
		Spec: v1alpha1.PluginChainSpec{
			Chains:    []v1alpha1.ChainPluginSpec{{Name: v1alpha1.ChainInboundHTTP, Plugins: []string{o.plugin}}},
			Selectors: v1alpha1.ChainSelectorSpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{selftestLabel: id}}},
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
		pod := selftestPod(o.namespace, id)
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
		case <-time.After(o.poll):
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
	if slices.ContainsFunc(pod.Spec.InitContainers, func(c corev1.Container) bool { return c.Name == contract.ContainerSidecar }) {
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

// selftestPod is a minimal pod of this run, with an HTTP port.
func selftestPod(namespace, id string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "cors-webhook-selftest-", Namespace: namespace, Labels: map[string]string{selftestLabel: id}},
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
