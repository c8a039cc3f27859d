package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
	"github.com/cors-webhook/cors-webhook/sidecar"
)

// TestSidecarMemoryUnderLoad is the sidecar half of issue 28's load test: the real cors-sidecar
// binary, run with the injected container's arguments and GOMEMLIMIT as its resourceFieldRef
// renders the chart's memory limit, is held by thousands of client connections at once (within
// the connection cap it derives from that limit): idle keep-alive and h2c clients, clients
// sending a head (small or large) or a body slowly, clients that stop reading a large response,
// while new clients keep being answered. Its peak RSS (VmHWM) must stay under
// the limit, and the idle clients must hold no application connection (the pool keeps at most
// its 256 idle ones): before issue 28 each pinned one. Then a second sidecar is filled to its
// connection cap with the costliest clients there are (h2c up to their quarter, large heads up
// to their bound, the rest not reading their answers): its peak RSS must stay under the limit
// too, which is what the cap is for.
func TestSidecarMemoryUnderLoad(t *testing.T) {
	limit := chartSidecarMemoryLimit(t)
	maxConns := sidecar.MaxConnsFor(limit - limit/10) // as the sidecar derives it from GOMEMLIMIT
	t.Run("thousands of idle and slow clients", func(t *testing.T) {
		sidecarCrowd(t, limit, sidecarCrowdSize{idle: 1400, slowHeads: 300, largeHeads: 100, slowBodies: 200, stuckReaders: 200, idleH2C: 100}, true)
	})
	t.Run("the connection cap of the costliest clients", func(t *testing.T) {
		h2c := maxConns / 4
		sidecarCrowd(t, limit, sidecarCrowdSize{largeHeads: 128, idleH2C: h2c, stuckReaders: maxConns - h2c - 128 - 2}, false)
	})
}

// sidecarCrowdSize is how many clients of each kind sidecarCrowd opens.
type sidecarCrowdSize struct {
	idle, slowHeads, largeHeads, slowBodies, stuckReaders, idleH2C int
}

// sidecarCrowd starts the sidecar and its application, holds the crowd's connections open at
// once, asks (when fresh is set) that new clients are still answered, and checks the peak RSS
// against limit.
func sidecarCrowd(t *testing.T, limit int64, size sidecarCrowdSize, fresh bool) {
	const (
		bigBody = 1 << 20 // what a stuck reader asks for
		dialers = 32
	)
	idleClients, slowHeads, largeHeads, slowBodies, stuckReaders, idleH2C := size.idle, size.slowHeads, size.largeHeads, size.slowBodies, size.stuckReaders, size.idleH2C
	bin := framework.BuildBinary(t, "./cmd/cors-sidecar")

	// The application.
	appLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", bigBody)
	var appConns atomic.Int64 // open application connections
	app := &http.Server{ConnState: func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			appConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			appConns.Add(-1)
		}
	}, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/big" {
			io.WriteString(w, big)
			return
		}
		io.WriteString(w, pipyBody)
	})}
	go app.Serve(appLn)
	t.Cleanup(func() { app.Close() })
	appPort := appLn.Addr().(*net.TCPAddr).Port

	// The sidecar, in explicit mode in front of it (the redirect is not what is measured).
	dir := t.TempDir()
	policy := fmt.Sprintf(`{"version":1,"ports":{"%d":{"allowOrigins":[{"exact":"http://www.aaa.com"}]}}}`, appPort)
	writeDownwardAPI(t, dir, "policy.json", policy)
	port, adminPort := helmFreePort(t), helmFreePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cmd := exec.Command(bin, "proxy", "--inbound-port", strconv.Itoa(port), "--admin-port", strconv.Itoa(adminPort),
		"--policy-file", filepath.Join(dir, "policy.json"), "--upstream", appLn.Addr().String())
	cmd.Env = append(os.Environ(), "GOMEMLIMIT="+strconv.FormatInt(limit, 10))
	log := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("cors-sidecar log:\n%s", log.String())
		}
	})
	admin := &http.Client{Timeout: 2 * time.Second}
	framework.Eventually(t, 15*time.Second, 50*time.Millisecond, func() (bool, string) {
		res, err := admin.Get("http://127.0.0.1:" + strconv.Itoa(adminPort) + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		res.Body.Close()
		return res.StatusCode == 200, res.Status
	})
	baseline := procStatusBytes(t, cmd.Process.Pid, "VmRSS")

	// One request on a fresh connection, as a new client would send it: answered?
	freshRequest := func() error {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://www.aaa.com\r\n\r\n")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || string(body) != pipyBody || res.Header.Get("Access-Control-Allow-Origin") != "http://www.aaa.com" {
			return fmt.Errorf("%s %q", res.Status, body)
		}
		return nil
	}

	// The crowd: every connection is opened, set in its state, and held until the end.
	type client struct {
		kind string
		open func(net.Conn, *bufio.Reader) error
	}
	kinds := []struct {
		n int
		client
	}{
		{idleClients, client{"idle keep-alive", func(c net.Conn, br *bufio.Reader) error {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nOrigin: http://www.aaa.com\r\n\r\n")
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, res.Body)
			return err
		}}},
		{slowHeads, client{"slow head", func(c net.Conn, _ *bufio.Reader) error {
			_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
			return err
		}}},
		{largeHeads, client{"slow large head", func(c net.Conn, _ *bufio.Reader) error {
			_, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nX-Large: "+strings.Repeat("a", 20<<10))
			return err
		}}},
		{idleH2C, client{"idle h2c", func(c net.Conn, br *bufio.Reader) error {
			// The preface and an empty SETTINGS frame; the server's SETTINGS come back.
			io.WriteString(c, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
			_, err := br.Peek(9)
			return err
		}}},
		{slowBodies, client{"slow body", func(c net.Conn, _ *bufio.Reader) error {
			_, err := io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\nabc")
			return err
		}}},
		{stuckReaders, client{"stuck reader", func(c net.Conn, br *bufio.Reader) error {
			io.WriteString(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
			_, err := br.Peek(1) // the answer started; nothing more is read
			return err
		}}},
	}
	jobs := make(chan client)
	var mu sync.Mutex
	var held []net.Conn
	failed := map[string]int{}
	var firstErr error
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	var wg sync.WaitGroup
	start := time.Now()
	for range dialers {
		wg.Go(func() {
			for cl := range jobs {
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err == nil {
					c.SetDeadline(time.Now().Add(20 * time.Second))
					err = cl.open(c, bufio.NewReaderSize(c, 512))
					c.SetDeadline(time.Time{})
				}
				mu.Lock()
				if c != nil {
					held = append(held, c)
				}
				if err != nil {
					failed[cl.kind]++
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: %w", cl.kind, err)
					}
				}
				mu.Unlock()
			}
		})
	}
	total := 0
	for i := 0; ; i++ {
		more := false
		for _, k := range kinds { // interleaved, so that every kind is in place early
			if i < k.n {
				jobs <- k.client
				more = true
				total++
			}
		}
		if !more {
			break
		}
	}
	close(jobs)
	wg.Wait()
	opened := time.Since(start)
	if len(failed) > 0 {
		t.Errorf("connections that failed to reach their state: %v; first: %v", failed, firstErr)
	}

	// While the crowd holds on, new clients are answered (unless it fills the cap).
	for i := range 20 {
		if !fresh {
			break
		}
		if err := freshRequest(); err != nil {
			t.Errorf("new request %d with %d connections held: %v", i, total, err)
		}
	}
	// Slow bodies stream to the application and stuck readers' answers stream from it: those
	// hold an application connection each; idle clients none.
	if n, most := appConns.Load(), int64(slowBodies+stuckReaders+256); n > most {
		t.Errorf("%d application connections open with %d idle clients, want at most %d", n, idleClients, most)
	}
	rss := procStatusBytes(t, cmd.Process.Pid, "VmRSS")
	peak := procStatusBytes(t, cmd.Process.Pid, "VmHWM")
	mib := func(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	t.Logf("%d application connections open", appConns.Load())
	t.Logf("%d connections (%d idle, %d slow heads, %d slow large heads, %d slow bodies, %d stuck readers of %d KiB, %d idle h2c) opened in %v; RSS %s before, %s held (%.1f KiB a connection), peak %s; limit %s",
		total, idleClients, slowHeads, largeHeads, slowBodies, stuckReaders, bigBody>>10, idleH2C, opened.Round(time.Millisecond),
		mib(baseline), mib(rss), float64(rss-baseline)/float64(total)/1024, mib(peak), mib(limit))
	if peak >= limit {
		t.Errorf("the sidecar's peak RSS %s reached the injected memory limit %s", mib(peak), mib(limit))
	}
}

// chartSidecarMemoryLimit is the chart's memory limit of the injected containers, in bytes.
func chartSidecarMemoryLimit(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(helmChartDir(t), "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Injector struct {
			Sidecar struct {
				Resources struct {
					Limits map[string]string `json:"limits"`
				} `json:"resources"`
			} `json:"sidecar"`
		} `json:"injector"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	q, err := resource.ParseQuantity(values.Injector.Sidecar.Resources.Limits["memory"])
	if err != nil {
		t.Fatalf("the chart's sidecar memory limit: %v", err)
	}
	return q.Value()
}

// procStatusBytes reads a "kB" field of /proc/<pid>/status (VmRSS, VmHWM) in bytes.
func procStatusBytes(t *testing.T, pid int, field string) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
