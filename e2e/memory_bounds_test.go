package e2e

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// TestWebhookMemoryUnderLargePods sends serve, run with the Deployment's arguments and
// GOMEMLIMIT from the chart's memory limit, 40 distinct selected pods of 3 MiB each, four at a
// time, straight to its port (as any pod could: the port is open to the cluster), half of them
// as dry runs. Its peak RSS must stay under the chart's limit, every one must be injected, and
// an ordinary pod must still be answered afterwards. Before the memo was bounded by bytes, it
// kept every pod's JSON as a key: ~120 MiB for these pods.
func TestWebhookMemoryUnderLargePods(t *testing.T) {
	const (
		release, ns = "cors-webhook", "cors-system"
		fullname    = "cors-webhook"
		tenant      = "memload"
		pods        = 40
		parallel    = 4
		podSize     = 3 << 20
	)
	chart := helmChartDir(t)
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{})
	port := helmFreePort(t)
	helmInstall(t, c, chart, release, ns, "--set", "plugin.declare=true",
		"--set", fmt.Sprintf("webhook.devURL=https://127.0.0.1:%d", port))
	// The controller issues the serving certificate; serve is ready once caBundle trusts it.
	helmStartController(t, c, bin, ns, fullname+"-controller")
	srv := helmStartServe(t, c, bin, ns, fullname, port)
	limit := helmDeployment(t, c, ns, fullname).Spec.Template.Spec.Containers[0].Resources.Limits.Memory().Value()
	if limit == 0 {
		t.Fatal("the chart sets no memory limit for serve")
	}
	res := c.KubectlStdin(t, namespaceManifest(tenant)+selectedWebManifests(tenant), "apply", "-f", "-")
	if res.ExitCode != 0 {
		t.Fatalf("kubectl apply: %s", res.Output())
	}

	hc := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		// The attacker's view: any client that reaches the port, without the CA.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
	}}
	t.Cleanup(hc.CloseIdleConnections)
	review := func(i int, big string, dryRun bool) (bool, string) {
		pod := fmt.Sprintf(`{"apiVersion":"v1","kind":"Pod","metadata":{"generateName":"web-","namespace":%q,"labels":{"app":"web"}},`+
			`"spec":{"containers":[{"name":"web","image":"web","ports":[{"containerPort":8080}],"env":[{"name":"BIG","value":%q}]}]}}`, tenant, big)
		body := fmt.Sprintf(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-%d",`+
			`"kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},`+
			`"namespace":%q,"operation":"CREATE","dryRun":%v,"userInfo":{"username":"tenant"},"object":%s}}`, i, tenant, dryRun, pod)
		resp, err := hc.Post("https://"+srv.addr+"/mutate-v1-pod", "application/json", strings.NewReader(body))
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var ar struct {
			Response struct {
				Allowed bool   `json:"allowed"`
				Patch   []byte `json:"patch"`
			} `json:"response"`
		}
		if err := json.Unmarshal(out, &ar); err != nil {
			return false, fmt.Sprintf("%s: %s", resp.Status, out)
		}
		return ar.Response.Allowed && bytes.Contains(ar.Response.Patch, []byte(`"cors-sidecar"`)), string(out)
	}
	// The server sees the chain within moments.
	framework.Eventually(t, 30*time.Second, 200*time.Millisecond, func() (bool, string) { return review(0, "small", true) })

	peak := watchPeakRSS(t, srv.srv)
	var wg sync.WaitGroup
	var injected atomic.Int64
	next := make(chan int)
	for range parallel {
		wg.Go(func() {
			for i := range next {
				big := strings.Repeat(string(rune('a'+i%26))+strconv.Itoa(i), podSize/(2+len(strconv.Itoa(i))))
				if ok, out := review(i, big, i%2 == 1); ok {
					injected.Add(1)
				} else {
					t.Errorf("pod %d of %d MiB was not injected: %.300s", i, len(big)>>20, out)
				}
			}
		})
	}
	for i := range pods {
		next <- i + 1
	}
	close(next)
	wg.Wait()
	if ok, out := review(pods+1, "small", false); !ok {
		t.Errorf("an ordinary pod after the large ones was not injected: %.300s", out)
	}
	max := peak()
	t.Logf("%d pods of ~%d MiB injected; serve's peak RSS %.1f MiB, limit %.0f MiB", injected.Load(), podSize>>20, float64(max)/(1<<20), float64(limit)/(1<<20))
	if max >= limit {
		t.Errorf("serve's peak RSS %.1f MiB reached the chart's memory limit %.0f MiB", float64(max)/(1<<20), float64(limit)/(1<<20))
	}
}

// watchPeakRSS samples the resident set of srv until the test ends; the returned function
// stops the sampling and returns the largest in bytes.
func watchPeakRSS(t *testing.T, srv *localcluster.Server) func() int64 {
	t.Helper()
	var peak atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			if rss, err := srv.ResidentBytes(); err == nil && rss > peak.Load() {
				peak.Store(rss)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	var once sync.Once
	finish := func() int64 {
		once.Do(func() { close(stop); <-done })
		return peak.Load()
	}
	t.Cleanup(func() { finish() })
	return finish
}
