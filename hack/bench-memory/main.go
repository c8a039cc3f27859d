// Command bench-memory measures what `cors-webhook serve` and `cors-webhook controller` keep in
// memory as a cluster grows: it starts a local control plane (etcd, kube-apiserver; no
// kubelet), installs the chart, runs both processes as their Deployments would (args, env,
// service accounts; GOMEMLIMIT from the chart's memory limits), then creates 1,000 PluginChains
// and 10,000 Services in 100 namespaces and 10,000 pods (through the webhook, so they are
// injected), and prints the RSS of both processes after each step as a Markdown table for
// docs/benchmarks.md. `make bench-memory` runs it; it is not part of `make test`.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/cors-webhook/cors-webhook/api/v1alpha1"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

const (
	namespaces       = 100
	chainsPerNS      = 10 // 1,000 PluginChains
	servicesPerChain = 10 // 10,000 Services
	podsPerChain     = 10 // 10,000 pods
	podSteps         = 4  // RSS measured after each quarter of the pods
	workers          = 16 // concurrent creations
	release, ns      = "cors-webhook", "cors-system"
	sidecarImage     = "registry.example/cors-sidecar:bench"
	settleTimeout    = 2 * time.Minute
	stableFor        = 3 // RSS samples within 2% of each other, 1s apart
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "bench-memory:", err)
		os.Exit(1)
	}
}

type row struct {
	step              string
	pods              int
	serveRSS, ctrlRSS int64
}

// buildWebhook builds cors-webhook from the repository at root into bin.
func buildWebhook(ctx context.Context, root, bin string) error {
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/cors-webhook")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	return nil
}

// installChart installs the chart into c, for a webhook served on the returned local port.
func installChart(ctx context.Context, c *localcluster.Cluster) (int, error) {
	helm, err := localcluster.NewHelm()
	if err != nil {
		return 0, err
	}
	defer helm.Close()
	chart, err := localcluster.ChartDir()
	if err != nil {
		return 0, err
	}
	port, err := localcluster.FreePort()
	if err != nil {
		return 0, err
	}
	res, err := helm.Run(ctx, c.Kubeconfig, "install", release, chart, "--namespace", ns, "--create-namespace",
		"--set", "plugin.declare=true", "--set", fmt.Sprintf("webhook.devURL=https://127.0.0.1:%d", port),
		"--set", "injector.sidecar.image.repository="+strings.Split(sidecarImage, ":")[0],
		"--set", "injector.sidecar.image.tag="+strings.Split(sidecarImage, ":")[1])
	if err != nil || res.ExitCode != 0 {
		return 0, fmt.Errorf("helm install: %v %s", err, res.Output())
	}
	return port, nil
}

func run(ctx context.Context) error {
	root, err := localcluster.RepoRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bench-memory-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "cors-webhook")
	if err := buildWebhook(ctx, root, bin); err != nil {
		return err
	}

	c, err := localcluster.StartCluster(localcluster.Options{})
	if err != nil {
		return err
	}
	defer c.Stop()
	port, err := installChart(ctx, c)
	if err != nil {
		return err
	}
	ctrl, err := c.StartController(ctx, localcluster.ControllerOptions{Binary: bin, Namespace: ns, Deployment: release + "-controller"})
	if err != nil {
		return err
	}
	defer ctrl.Stop()
	srv, err := c.StartServe(ctx, localcluster.ServeOptions{Binary: bin, Namespace: ns, Deployment: release, Port: port})
	if err != nil {
		return err
	}
	defer srv.Stop()

	var rows []row
	measure := func(step string, pods int) error {
		s, err := settledRSS(ctx, srv)
		if err != nil {
			return fmt.Errorf("serve: %w", err)
		}
		k, err := settledRSS(ctx, ctrl)
		if err != nil {
			return fmt.Errorf("controller: %w", err)
		}
		rows = append(rows, row{step: step, pods: pods, serveRSS: s, ctrlRSS: k})
		fmt.Fprintf(os.Stderr, "%-40s serve %6.1f MiB  controller %6.1f MiB\n", step, mib(s), mib(k))
		return nil
	}
	if err := measure("installed, empty cluster", 0); err != nil {
		return err
	}

	start := time.Now()
	err = parallel(ctx, namespaces, func(i int) error {
		return c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: nsName(i), Labels: map[string]string{"team": fmt.Sprintf("t%d", i%10)}}})
	})
	if err != nil {
		return err
	}
	err = parallel(ctx, namespaces*chainsPerNS, func(i int) error {
		n, app := nsName(i/chainsPerNS), fmt.Sprintf("app-%d", i%chainsPerNS)
		chain := &v1alpha1.PluginChain{
			ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: n},
			Spec: v1alpha1.PluginChainSpec{
				Chains:    []v1alpha1.ChainPluginSpec{{Name: "inbound-http", Plugins: []string{"cors-policy"}}},
				Selectors: v1alpha1.ChainSelectorSpec{PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
			},
		}
		if err := c.Client.Create(ctx, chain); err != nil {
			return err
		}
		for s := 0; s < servicesPerChain; s++ {
			svc := &corev1.Service{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-svc-%d", app, s), Namespace: n},
				Spec: corev1.ServiceSpec{
					// Headless: the local API server's service IP range has 256 addresses.
					ClusterIP: corev1.ClusterIPNone,
					Selector:  map[string]string{"app": app},
					Ports:     []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}},
				},
			}
			if err := c.Client.Create(ctx, svc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "created %d PluginChains and %d Services in %s\n", namespaces*chainsPerNS, namespaces*chainsPerNS*servicesPerChain, time.Since(start).Round(time.Second))
	if err := measure(fmt.Sprintf("+ %d PluginChains, %d Services", namespaces*chainsPerNS, namespaces*chainsPerNS*servicesPerChain), 0); err != nil {
		return err
	}

	total := namespaces * chainsPerNS * podsPerChain
	var injected atomic.Int64
	for step := 1; step <= podSteps; step++ {
		from, to := total*(step-1)/podSteps, total*step/podSteps
		start := time.Now()
		err := parallel(ctx, to-from, func(k int) error {
			i := from + k
			chain := i / podsPerChain
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i), Namespace: nsName(chain / chainsPerNS),
					Labels: map[string]string{"app": fmt.Sprintf("app-%d", chain%chainsPerNS)}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.example/app:1",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					Env:   []corev1.EnvVar{{Name: "MODE", Value: "bench"}},
				}}},
			}
			if err := c.Client.Create(ctx, pod); err != nil {
				return err
			}
			if len(pod.Spec.InitContainers) > 0 {
				injected.Add(1)
			}
			return nil
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "created pods %d..%d in %s (%d injected so far)\n", from, to-1, time.Since(start).Round(time.Second), injected.Load())
		if err := measure(fmt.Sprintf("+ %d pods", to), to); err != nil {
			return err
		}
	}
	if injected.Load() != int64(total) {
		return fmt.Errorf("%d of %d pods were injected", injected.Load(), total)
	}

	first, last := rows[1], rows[len(rows)-1]
	perK := func(a, b int64) float64 { return mib(b-a) / float64(last.pods-first.pods) * 1000 }
	fmt.Printf("| Step | serve RSS (MiB) | controller RSS (MiB) |\n|---|---|---|\n")
	for _, r := range rows {
		fmt.Printf("| %s | %.1f | %.1f |\n", r.step, mib(r.serveRSS), mib(r.ctrlRSS))
	}
	fmt.Printf("\nGrowth per 1,000 pods (from %d to %d pods): serve %+.1f MiB, controller %+.1f MiB.\n",
		first.pods, last.pods, perK(first.serveRSS, last.serveRSS), perK(first.ctrlRSS, last.ctrlRSS))
	return nil
}

// settledRSS polls the process's resident set until three samples a second apart are within
// 2% (the informers have taken in the last creations and the collector has run), up to
// settleTimeout, and returns the last sample.
func settledRSS(ctx context.Context, s *localcluster.Server) (int64, error) {
	deadline := time.Now().Add(settleTimeout)
	var samples []int64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		rss, err := s.ResidentBytes()
		if err != nil {
			return 0, err
		}
		samples = append(samples, rss)
		if n := len(samples); n >= stableFor {
			lo, hi := samples[n-stableFor], samples[n-stableFor]
			for _, v := range samples[n-stableFor:] {
				lo, hi = min(lo, v), max(hi, v)
			}
			if float64(hi-lo) <= 0.02*float64(hi) {
				return rss, nil
			}
		}
		if time.Now().After(deadline) {
			return rss, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-s.Done():
			return 0, errors.New("the process exited:\n" + localcluster.Tail(s.QuietLog(), 30))
		case <-tick.C:
		}
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func nsName(i int) string { return fmt.Sprintf("bench-%03d", i) }

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n int, fn func(int) error) error {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		first   error
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					errOnce.Do(func() { first = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}
