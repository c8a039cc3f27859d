package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ServeOptions say which installed Deployment `cors-webhook serve` stands in for, and where it
// listens. See Cluster.StartServe.
type ServeOptions struct {
	// Binary is the cors-webhook binary to run.
	Binary string
	// Namespace and Deployment name the chart's Deployment whose container is run.
	Namespace, Deployment string
	// Port is the webhook port on 127.0.0.1: the port of the chart's webhook.devURL.
	Port int
	// ProbeAddr is where /healthz and /readyz listen (default: a free port on 127.0.0.1).
	ProbeAddr string
	// MetricsAddr is where /metrics listens (default "0": off).
	MetricsAddr string
	// ShutdownDelay replaces the Deployment's --shutdown-delay (default 0: a local process
	// has no endpoints to drain, and tests stop servers often).
	ShutdownDelay time.Duration
	// ExtraArgs come after every other flag, so they override the Deployment's.
	ExtraArgs []string
	// Output also receives the server's log (optional).
	Output io.Writer
	// ReadyTimeout bounds the wait for /readyz (default 60s).
	ReadyTimeout time.Duration
}

// ControllerOptions say which installed Deployment `cors-webhook controller` stands in for.
// See Cluster.StartController.
type ControllerOptions struct {
	// Binary is the cors-webhook binary to run.
	Binary string
	// Namespace and Deployment name the chart's controller Deployment whose container is run.
	Namespace, Deployment string
	// Name is the pod name the process stands in for: its leader election identity starts
	// with it (default "<Deployment>-local").
	Name string
	// ProbeAddr is where /healthz and /readyz listen (default: a free port on 127.0.0.1).
	ProbeAddr string
	// MetricsAddr is where /metrics listens (default "0": off).
	MetricsAddr string
	// ExtraArgs come after every other flag, so they override the Deployment's.
	ExtraArgs []string
	// Output also receives the controller's log (optional).
	Output io.Writer
	// ReadyTimeout bounds the wait for /readyz (default 60s).
	ReadyTimeout time.Duration
}

// Server is `cors-webhook serve` or `cors-webhook controller` run on this machine in place of
// a pod.
type Server struct {
	Addr        string // host:port of the webhook server (serve only)
	ProbeAddr   string
	MetricsAddr string
	// Args are the arguments it runs with (the Deployment's, resolved, then the overrides).
	Args []string
	// Log is everything the server printed.
	Log *SyncBuffer

	cmd     *exec.Cmd
	done    chan struct{}
	command string
}

// StartServe runs the webhook server as a pod of the installed Deployment would run: the
// container's args and env (downward API resolved for the namespace, $(VAR) expanded as the
// kubelet does), under the Deployment's service account, whose RBAC it therefore has and
// nothing more. Only where it listens and which kubeconfig it uses are overridden by later
// flags (plus opts.ExtraArgs). It waits until /readyz passes; on error the server is stopped
// and the error carries the end of its log.
func (c *Cluster) StartServe(ctx context.Context, opts ServeOptions) (*Server, error) {
	probe, metrics, err := localAddrs(opts.ProbeAddr, opts.MetricsAddr)
	if err != nil {
		return nil, err
	}
	return c.startDeployment(ctx, deploymentProcess{
		binary: opts.Binary, namespace: opts.Namespace, deployment: opts.Deployment, command: "serve",
		podName: fmt.Sprintf("%s-local-%d", opts.Deployment, opts.Port),
		overrides: []string{
			"--host=127.0.0.1", fmt.Sprintf("--port=%d", opts.Port),
			"--metrics-bind-address=" + metrics, "--health-probe-bind-address=" + probe,
			"--shutdown-delay=" + opts.ShutdownDelay.String(),
		},
		extra: opts.ExtraArgs, output: opts.Output, readyTimeout: opts.ReadyTimeout,
		server: &Server{Addr: fmt.Sprintf("127.0.0.1:%d", opts.Port), ProbeAddr: probe, MetricsAddr: metrics},
	})
}

// StartController runs the controller as a pod of the installed controller Deployment would,
// as StartServe does for serve (the container's args and env, the Deployment's service
// account), overriding only the probe and metrics addresses and the kubeconfig. It waits until
// /readyz passes (its caches synced; it may not hold the lease yet).
func (c *Cluster) StartController(ctx context.Context, opts ControllerOptions) (*Server, error) {
	probe, metrics, err := localAddrs(opts.ProbeAddr, opts.MetricsAddr)
	if err != nil {
		return nil, err
	}
	name := opts.Name
	if name == "" {
		name = opts.Deployment + "-local"
	}
	return c.startDeployment(ctx, deploymentProcess{
		binary: opts.Binary, namespace: opts.Namespace, deployment: opts.Deployment, command: "controller",
		podName:   name,
		overrides: []string{"--metrics-bind-address=" + metrics, "--health-probe-bind-address=" + probe},
		extra:     opts.ExtraArgs, output: opts.Output, readyTimeout: opts.ReadyTimeout,
		server: &Server{ProbeAddr: probe, MetricsAddr: metrics},
	})
}

// FreePort is a free TCP port on 127.0.0.1, for a server to listen on.
func FreePort() (int, error) { return freePort() }

// localAddrs defaults the probe address to a free loopback port and metrics to off.
func localAddrs(probe, metrics string) (string, string, error) {
	if probe == "" {
		port, err := freePort()
		if err != nil {
			return "", "", err
		}
		probe = fmt.Sprintf("127.0.0.1:%d", port)
	}
	if metrics == "" {
		metrics = "0"
	}
	return probe, metrics, nil
}

// deploymentProcess is a process run from a Deployment's container.
type deploymentProcess struct {
	binary, namespace, deployment, command, podName string
	overrides, extra                                []string
	output                                          io.Writer
	readyTimeout                                    time.Duration
	server                                          *Server
}

func (c *Cluster) startDeployment(ctx context.Context, p deploymentProcess) (*Server, error) {
	dep := &appsv1.Deployment{}
	if err := c.Client.Get(ctx, client.ObjectKey{Namespace: p.namespace, Name: p.deployment}, dep); err != nil {
		return nil, fmt.Errorf("the release's Deployment %s: %w", p.deployment, err)
	}
	args, env, err := DeploymentCommand(dep, p.podName, p.command)
	if err != nil {
		return nil, err
	}
	kubeconfig, err := c.ServiceAccountKubeconfig(p.namespace, dep.Spec.Template.Spec.ServiceAccountName)
	if err != nil {
		return nil, err
	}
	args = append(append(append(args, p.overrides...), "--kubeconfig="+kubeconfig), p.extra...)

	s := p.server
	s.Args, s.Log, s.done, s.command = args, &SyncBuffer{}, make(chan struct{}), p.command
	s.cmd = exec.Command(p.binary, args...)
	s.cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "KUBECONFIG=") || strings.HasPrefix(kv, "POD_NAMESPACE=")
	}), env...)
	var out io.Writer = s.Log
	if p.output != nil {
		out = io.MultiWriter(s.Log, p.output)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	// A Ctrl-C in the terminal reaches the caller, which stops the server with SIGTERM.
	s.cmd.SysProcAttr = ChildProcAttr()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s %s: %w", p.binary, p.command, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()

	timeout := p.readyTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	if err := s.waitReady(ctx, timeout); err != nil {
		_ = s.Stop()
		return nil, err
	}
	return s, nil
}

func (s *Server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	hc := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-s.done:
			return fmt.Errorf("cors-webhook %s exited (%s):\n%s", strings.Join(s.Args, " "), s.cmd.ProcessState, Tail(s.QuietLog(), 80))
		default:
		}
		if resp, err := hc.Get("http://" + s.ProbeAddr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cors-webhook %s not ready (%w):\n%s", s.command, ctx.Err(), Tail(s.QuietLog(), 80))
		case <-tick.C:
		}
	}
}

// DeploymentCommand resolves the first container of dep as the kubelet would for a pod named
// podName: env values from the downward API (metadata.namespace, metadata.name,
// limits.memory) and $(VAR) references in args. It fails unless the container runs
// `cors-webhook <command>` (the image's entrypoint with no command override). env is in
// KEY=VALUE form.
func DeploymentCommand(dep *appsv1.Deployment, podName, command string) (args, env []string, err error) {
	if len(dep.Spec.Template.Spec.Containers) == 0 {
		return nil, nil, fmt.Errorf("deployment %s/%s has no container", dep.Namespace, dep.Name)
	}
	ctr := dep.Spec.Template.Spec.Containers[0]
	values := map[string]string{}
	for _, e := range ctr.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			v = dep.Namespace
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			v = podName
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory":
			v = strconv.FormatInt(ctr.Resources.Limits.Memory().Value(), 10)
		default:
			return nil, nil, fmt.Errorf("env %s: cannot resolve %+v outside a kubelet", e.Name, e.ValueFrom)
		}
		values[e.Name] = v
		env = append(env, e.Name+"="+v)
	}
	expand := regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, a := range ctr.Args {
		args = append(args, expand.ReplaceAllStringFunc(a, func(m string) string {
			if v, ok := values[m[2:len(m)-1]]; ok {
				return v
			}
			return m
		}))
	}
	if len(ctr.Command) != 0 || len(args) == 0 || args[0] != command {
		return nil, nil, fmt.Errorf("the Deployment %s does not run `cors-webhook %s`: command %v args %v", dep.Name, command, ctr.Command, ctr.Args)
	}
	return args, env, nil
}

// Kill ends the process at once (SIGKILL), as a lost node would, and waits for it.
func (s *Server) Kill() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	<-s.done
	return nil
}

// Pid is the process id (for its /proc figures).
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// ResidentBytes reads the process's resident set (VmRSS of /proc/<pid>/status), in bytes: what
// a container's memory limit is held against.
func (s *Server) ResidentBytes() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Pid()))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.Pid())
}

// Done is closed when the server has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM and waits for the server to exit (killing it after 15s).
func (s *Server) Stop() error {
	select {
	case <-s.done:
		return nil
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.done:
		return nil
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("cors-webhook %s did not stop within 15s of SIGTERM; killed", s.command)
	}
}

// QuietLog is the server's log without the lines that readiness polling produces while the
// server starts (TLS handshakes before a certificate exists, failed health checks).
func (s *Server) QuietLog() string {
	var out []string
	for _, l := range strings.Split(s.Log.String(), "\n") {
		if !strings.Contains(l, "TLS handshake error") && !strings.Contains(l, "healthz check failed") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// ServiceAccountKubeconfig writes a kubeconfig that authenticates as the service account ns/sa
// (a client certificate with its user name and groups), so that a process run with it has the
// service account's RBAC and nothing else. The file lives until Stop.
func (c *Cluster) ServiceAccountKubeconfig(ns, sa string) (string, error) {
	user, err := c.Env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + ns + ":" + sa,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
	}, nil)
	if err != nil {
		return "", fmt.Errorf("adding user for service account %s/%s: %w", ns, sa, err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return "", err
	}
	f, err := os.CreateTemp(c.workDir, "kubeconfig-sa-"+ns+"-"+sa+"-")
	if err != nil {
		return "", err
	}
	path := f.Name()
	if _, err := f.Write(kc); err != nil {
		f.Close()
		return "", err
	}
	if err := f.Close(); err != nil {
		return "", err
	}
	return filepath.Clean(path), nil
}

// SyncBuffer collects a process's output; it is safe for concurrent writes and reads.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Tail is the last n lines of s.
func Tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}
