package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/certs"
	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/internal/localcluster"
	"github.com/cors-webhook/cors-webhook/server"
)

// TestAdmissionAvailability shows that admission is apart from the controller and survives
// its own rollout. The chart is installed with webhook.devURL pointing at a local TCP balancer
// that stands in for the webhook Service: it routes new connections to the serve replicas whose
// /readyz passes, as the endpoints controller and kube-proxy would. No kubelet runs here (the
// real-node counterpart is TestGuideOnARealNode's rolling restart), so the replicas are local
// processes with the Deployment's args under its service account, and a "rolling restart" is
// done by hand with the Deployment's
// strategy (maxSurge 1, maxUnavailable 0): start a new replica, wait until it is routed, SIGTERM
// an old one. First of all, a replica started before the controller has issued the
// certificate must not report ready.
func TestAdmissionAvailability(t *testing.T) {
	chart := helmChartDir(t)
	bin := framework.BuildBinary(t, "./cmd/cors-webhook")
	c := framework.Start(t, localcluster.Options{})
	const ns, release, name, appNS = "cors-avail", "cors-webhook", "cors-webhook", "avail-app"
	ctx := context.Background()

	lb := certsStartBalancer(t)
	eps := availStartEndpoints(t, lb)
	helmInstall(t, c, chart, release, ns, "--set", "plugin.declare=true", "--set", "webhook.devURL=https://"+lb.addr)
	first := availServeBeforeCABundle(t, c, bin, ns, name)
	ctrl := helmStartController(t, c, bin, ns, name+"-controller")
	replicas := []*localcluster.Server{first(), availStartServe(t, c, bin, ns, name)}
	for _, r := range replicas {
		eps.add(r)
	}
	eps.waitRouted(t, replicas...)
	helmCheckAdmission(t, c, appNS)

	t.Run("the controller loses its lease and stops while admission runs", func(t *testing.T) {
		lease := &coordinationv1.Lease{}
		key := client.ObjectKey{Namespace: ns, Name: server.LeaderElectionID}
		framework.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
			err := c.Client.Get(ctx, key, lease)
			return err == nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "", fmt.Sprintf("no leader yet (%v)", err)
		})
		load := certsStartLoad(t, c, lb.addr, name, appNS)
		load.waitFor(t, 30)

		// Another identity takes the lease, as a partitioned leader finds it when it comes
		// back; the controller cannot renew, gives up leading and exits.
		now := metav1.NewMicroTime(time.Now())
		lease.Spec.HolderIdentity = ptrTo("somebody-else")
		lease.Spec.AcquireTime, lease.Spec.RenewTime = &now, &now
		lease.Spec.LeaseDurationSeconds = ptrTo(int32(3600))
		if err := c.Client.Update(ctx, lease); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctrl.Done():
		case <-time.After(45 * time.Second):
			t.Fatalf("the controller still runs 45s after losing its lease:\n%s", localcluster.Tail(ctrl.QuietLog(), 30))
		}
		if !strings.Contains(ctrl.Log.String(), "leader election lost") {
			t.Fatalf("the controller exited, but not for its lease:\n%s", localcluster.Tail(ctrl.QuietLog(), 30))
		}
		t.Log("the controller lost its lease and exited; admission goes on without it")
		load.waitFor(t, 60)
		ok, failed, handshakes := load.stop()
		t.Logf("%d admission requests (%d fresh TLS handshakes) while the controller lost its lease and stopped, %d failed", ok, handshakes, failed)
		if failed != 0 {
			t.Fatalf("%d admission requests failed; first errors:\n%s", failed, strings.Join(load.errors(), "\n"))
		}
		for _, r := range replicas {
			select {
			case <-r.Done():
				t.Fatalf("serve %s exited with the controller:\n%s", r.Addr, localcluster.Tail(r.QuietLog(), 30))
			default:
			}
		}
	})

	t.Run("a rolling restart of serve fails no pod creation", func(t *testing.T) {
		creations := availStartPodCreations(t, c, appNS)
		creations.waitFor(t, 20)
		for i, old := range slices.Clone(replicas) {
			surge := availStartServe(t, c, bin, ns, name)
			eps.add(surge)
			eps.waitRouted(t, surge)
			creations.waitFor(t, 10)
			t.Logf("replica %d: SIGTERM to %s", i, old.Addr)
			stopped := time.Now()
			if err := old.Stop(); err != nil {
				t.Fatal(err)
			}
			t.Logf("replica %d: %s exited %s after SIGTERM", i, old.Addr, time.Since(stopped).Round(10*time.Millisecond))
			eps.remove(old)
			if !strings.Contains(old.Log.String(), "still serving while endpoints drain") {
				t.Fatalf("%s did not drain:\n%s", old.Addr, localcluster.Tail(old.QuietLog(), 30))
			}
			replicas[i] = surge
			creations.waitFor(t, 10)
		}
		ok, failed := creations.stop()
		t.Logf("%d pods created during a rolling restart of both serve replicas, %d failed", ok, failed)
		if failed != 0 {
			t.Fatalf("%d pod creations failed; first errors:\n%s", failed, strings.Join(creations.errors(), "\n"))
		}
	})
}

// availServeBeforeCABundle starts a serve replica right after the install, before any
// controller has issued the certificate, and shows that it is not ready while caBundle is
// empty (the window in which the API server could not verify it). The returned function waits
// until the replica is ready (after the caller started the controller) and returns it.
func availServeBeforeCABundle(t *testing.T, c *framework.Cluster, bin, ns, deployment string) func() *localcluster.Server {
	t.Helper()
	probe := fmt.Sprintf("127.0.0.1:%d", helmFreePort(t))
	type started struct {
		srv *localcluster.Server
		err error
	}
	ch := make(chan started, 1)
	go func() {
		srv, err := c.StartServe(context.Background(), localcluster.ServeOptions{
			Binary: bin, Namespace: ns, Deployment: deployment, Port: helmFreePort(t), ProbeAddr: probe, ShutdownDelay: availShutdownDelay,
		})
		ch <- started{srv, err}
	}()
	var once sync.Once
	var got started
	wait := func() started { once.Do(func() { got = <-ch }); return got }
	t.Cleanup(func() {
		if s := wait(); s.srv != nil {
			if err := s.srv.Stop(); err != nil {
				t.Log(err)
			}
		}
	})
	framework.Eventually(t, 30*time.Second, 100*time.Millisecond, func() (bool, string) {
		resp, err := http.Get("http://" + probe + "/readyz?verbose")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode != http.StatusOK && strings.Contains(string(body), "[-]"+certs.ReadyzTrusted+" failed") &&
			strings.Contains(string(body), "[+]cache ok"), fmt.Sprintf("readyz %d:\n%s", resp.StatusCode, body)
	})
	t.Log("serve runs with synced caches but is not ready: caBundle trusts no certificate of it yet")
	return func() *localcluster.Server {
		s := wait()
		if s.err != nil {
			t.Fatal(s.err)
		}
		return s.srv
	}
}

// availShutdownDelay is the replicas' --shutdown-delay: longer than the endpoints' probe
// period below, as the chart's 10s is longer than a cluster's endpoint propagation.
const availShutdownDelay = 2 * time.Second

func availStartServe(t *testing.T, c *framework.Cluster, bin, ns, deployment string) *localcluster.Server {
	t.Helper()
	srv, err := c.StartServe(context.Background(), localcluster.ServeOptions{
		Binary: bin, Namespace: ns, Deployment: deployment, Port: helmFreePort(t), ShutdownDelay: availShutdownDelay,
	})
	if err != nil {
		t.Fatal(err)
	}
	helmStopOnCleanup(t, srv, "cors-webhook serve on "+srv.Addr)
	return srv
}

// availEndpoints routes the balancer's new connections to the replicas whose /readyz passes,
// probed every 100ms: the endpoints controller and kube-proxy of a cluster, in small.
type availEndpoints struct {
	lb      *certsBalancer
	mu      sync.Mutex
	members map[*localcluster.Server]bool // replica -> routed now
}

func availStartEndpoints(t *testing.T, lb *certsBalancer) *availEndpoints {
	e := &availEndpoints{lb: lb, members: map[*localcluster.Server]bool{}}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		hc := &http.Client{Timeout: time.Second}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			e.mu.Lock()
			servers := make([]*localcluster.Server, 0, len(e.members))
			for s := range e.members {
				servers = append(servers, s)
			}
			e.mu.Unlock()
			for _, s := range servers {
				ready := false
				if resp, err := hc.Get("http://" + s.ProbeAddr + "/readyz"); err == nil {
					resp.Body.Close()
					ready = resp.StatusCode == http.StatusOK
				}
				e.mu.Lock()
				if routed, ok := e.members[s]; ok && routed != ready {
					e.members[s] = ready
					if ready {
						lb.add(s.Addr)
					} else {
						lb.remove(s.Addr)
					}
				}
				e.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return e
}

func (e *availEndpoints) add(s *localcluster.Server) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.members[s] = false
}

func (e *availEndpoints) remove(s *localcluster.Server) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.members[s] {
		e.lb.remove(s.Addr)
	}
	delete(e.members, s)
}

func (e *availEndpoints) waitRouted(t *testing.T, servers ...*localcluster.Server) {
	t.Helper()
	framework.Eventually(t, 60*time.Second, 50*time.Millisecond, func() (bool, string) {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, s := range servers {
			if !e.members[s] {
				return false, s.Addr + " is not ready (caBundle, caches)"
			}
		}
		return true, ""
	})
}

// remove takes a backend out of the rotation for new connections; open ones stay, as
// conntrack keeps them in a cluster.
func (b *certsBalancer) remove(backend string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.backends = slices.DeleteFunc(b.backends, func(s string) bool { return s == backend })
}

// availPodCreations creates pods (real ones; no kubelet runs them) in a loop from two
// workers, each of which must come back injected.
type availPodCreations struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	errs       []string
	stopCh     chan struct{}
	wg         sync.WaitGroup
}

func availStartPodCreations(t *testing.T, c *framework.Cluster, ns string) *availPodCreations {
	l := &availPodCreations{stopCh: make(chan struct{})}
	for w := 0; w < 2; w++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				select {
				case <-l.stopCh:
					return
				default:
				}
				pod := &corev1.Pod{
					ObjectMeta: metav1.ObjectMeta{GenerateName: "rolling-", Namespace: ns, Labels: map[string]string{"app": "web"}},
					Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/web:1", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}}}},
				}
				err := c.Client.Create(context.Background(), pod)
				if err == nil && len(pod.Spec.InitContainers) == 0 {
					err = fmt.Errorf("pod %s was not injected", pod.Name)
				}
				if err != nil {
					l.failed.Add(1)
					l.mu.Lock()
					if len(l.errs) < 10 {
						l.errs = append(l.errs, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
					}
					l.mu.Unlock()
					continue
				}
				l.ok.Add(1)
			}
		}()
	}
	t.Cleanup(func() { l.stop() })
	return l
}

func (l *availPodCreations) waitFor(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	framework.Eventually(t, 30*time.Second, 20*time.Millisecond, func() (bool, string) {
		return l.ok.Load() >= target, fmt.Sprintf("%d pods created, waiting for %d (%d failed)", l.ok.Load(), target, l.failed.Load())
	})
}

func (l *availPodCreations) stop() (ok, failed int64) {
	select {
	case <-l.stopCh:
	default:
		close(l.stopCh)
	}
	l.wg.Wait()
	return l.ok.Load(), l.failed.Load()
}

func (l *availPodCreations) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}
