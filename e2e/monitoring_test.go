package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// externalMetrics are the metrics the chart's alerts and dashboard read from elsewhere than
// serve, the controller and the sidecar, with where they come from.
var externalMetrics = map[string]string{
	"up": "Prometheus, for every target it scrapes",
	"kube_pod_init_container_status_restarts_total": "kube-state-metrics (the sidecar is a native sidecar: an init container)",
}

// monitoringQueries renders the chart's dashboard and PrometheusRule and returns, for each
// metric their PromQL expressions name, where it is named. The expressions are parsed by
// Prometheus' own PromQL parser, in hack/metricnames (a module of its own: the parser's module
// is heavy).
func monitoringQueries(t *testing.T) map[string][]string {
	t.Helper()
	res := helmRun(t, nil, "template", realNodeRelease, helmChartDir(t), "--namespace", realNodeNamespace,
		"--set", "metrics.dashboard.enabled=true", "--set", "metrics.prometheusRule.enabled=true")
	if res.ExitCode != 0 {
		t.Fatalf("helm template: %s", res.Output())
	}
	root, err := localcluster.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "run", ".")
	cmd.Dir = filepath.Join(root, "hack", "metricnames")
	cmd.Stdin = strings.NewReader(res.Stdout)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hack/metricnames: %v\n%s", err, stderr.String())
	}
	uses := map[string][]string{}
	for line := range strings.Lines(stdout.String()) {
		name, where, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if !ok {
			t.Fatalf("hack/metricnames printed %q", line)
		}
		uses[name] = append(uses[name], where)
	}
	if len(uses) == 0 {
		t.Fatal("the dashboard and the alerts name no metric")
	}
	return uses
}

// exposedNames parses a Prometheus text exposition and returns the sample names it holds: a
// histogram's _bucket, _sum and _count, a summary's _sum and _count, other families' own name.
// A family without samples does not count: a query over it finds nothing.
func exposedNames(t *testing.T, source, text string) map[string]bool {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("%s: /metrics does not parse: %v", source, err)
	}
	out := map[string]bool{}
	for name, f := range families {
		if len(f.GetMetric()) == 0 {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			out[name], out[name+"_sum"], out[name+"_count"] = true, true, true
		default:
			out[name] = true
		}
	}
	return out
}

// checkMonitoringMetricsExist scrapes the real /metrics of every serve and controller pod of the
// release and of the sidecars (through the API server's pod proxy) and fails for every metric
// the chart's dashboard or alerts name that none of them exposes and that is not external.
// Call it after traffic went through the sidecars and pods were injected and rolled, so that
// the metrics with labels (by namespace, port, outcome) have series.
func checkMonitoringMetricsExist(t *testing.T, n *framework.Node, sidecars []corev1.Pod) {
	uses := monitoringQueries(t)
	ctx := context.Background()
	exposed := map[string]string{} // metric -> the first scrape that has it
	scrape := func(pod *corev1.Pod, port int) {
		text := n.Cluster.MustKubectl(t, "get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:%d/proxy/metrics", pod.Namespace, pod.Name, port)).Stdout
		source := fmt.Sprintf("%s/%s:%d", pod.Namespace, pod.Name, port)
		for name := range exposedNames(t, source, text) {
			if _, ok := exposed[name]; !ok {
				exposed[name] = source
			}
		}
	}
	scraped := map[string]int{}
	for _, deployment := range []string{realNodeRelease, realNodeRelease + "-controller"} {
		dep := &appsv1.Deployment{}
		if err := n.Client.Get(ctx, client.ObjectKey{Namespace: realNodeNamespace, Name: deployment}, dep); err != nil {
			t.Fatal(err)
		}
		var pods corev1.PodList
		if err := n.Client.List(ctx, &pods, client.InNamespace(realNodeNamespace), client.MatchingLabels(dep.Spec.Selector.MatchLabels)); err != nil {
			t.Fatal(err)
		}
		for i := range pods.Items {
			if pods.Items[i].Status.Phase == corev1.PodRunning && pods.Items[i].DeletionTimestamp == nil {
				scrape(&pods.Items[i], 8080)
				scraped[deployment]++
			}
		}
	}
	for i := range sidecars {
		scrape(&sidecars[i], contract.DefaultAdminPort)
		scraped[contract.ContainerSidecar]++
	}
	if scraped[realNodeRelease] == 0 || scraped[realNodeRelease+"-controller"] == 0 || scraped[contract.ContainerSidecar] == 0 {
		t.Fatalf("scraped %v: want serve, controller and sidecar pods", scraped)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range uses {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		switch source, ok := exposed[name]; {
		case ok:
			t.Logf("%-60s exposed by %s", name, source)
		case externalMetrics[name] != "":
			t.Logf("%-60s from %s", name, externalMetrics[name])
		default:
			t.Errorf("%s is named by %s, but no serve, controller or sidecar pod exposes it", name, strings.Join(uses[name], "; "))
		}
	}
	t.Logf("%d metrics named by the dashboard and the alerts; scraped %v", len(names), scraped)
}
