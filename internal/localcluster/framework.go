// Package localcluster starts a real local control plane (etcd, kube-apiserver and optionally
// kube-controller-manager, built by `make tools` into bin/) through controller-runtime's envtest,
// installs the project's CRDs, and hands out clients, a kubeconfig and kubectl. The e2e tests and
// the demo use it, so that everything that crosses the API server is exercised for real.
package localcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/cors-webhook/cors-webhook/clusterstate"
)

// Options choose what runs besides etcd and kube-apiserver.
type Options struct {
	// ControllerManager also runs kube-controller-manager, so Deployments create ReplicaSets and
	// Pods, and namespaces get their default ServiceAccount.
	ControllerManager bool

	// Webhook registers webhook configurations pointing at a local server that the caller
	// starts on WebhookHost:WebhookPort with the certificate in WebhookCertDir.
	Webhook envtest.WebhookInstallOptions

	// AdmissionConfig is the path of an AdmissionConfiguration file for kube-apiserver
	// (--admission-control-config-file), e.g. a cluster-wide Pod Security default.
	AdmissionConfig string

	// Output receives the control plane's own logs (nil: discarded).
	Output io.Writer
}

var setLoggerOnce sync.Once

// Cluster is a running local control plane.
type Cluster struct {
	Env        *envtest.Environment
	Config     *rest.Config
	Client     client.Client
	Kubeconfig string // path of an admin kubeconfig file
	BinDir     string

	// Where the caller serves the webhooks registered through Options.Webhook.
	WebhookHost    string
	WebhookPort    int
	WebhookCertDir string

	workDir string
	kcm     *exec.Cmd
	kcmDone chan error
}

// Scheme knows the built-in kinds and the plugin.flomesh.io kinds.
var Scheme = clusterstate.Scheme

// RepoRoot finds the repository root (the folder holding go.mod) from this source file, so
// tests and the demo work from any working directory. A binary built with -trimpath (make demo
// builds its program that way, to share compiled packages with the images it builds) knows no
// source path: it looks up from the working directory for this module's go.mod instead.
func RepoRoot() (string, error) {
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the framework's source file")
	}
	if filepath.IsAbs(file) {
		return goModAbove(filepath.Dir(file), "")
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	return goModAbove(wd, modulePath)
}

// modulePath is this repository's module, as its go.mod declares it.
const modulePath = "github.com/cors-webhook/cors-webhook"

// goModAbove returns dir or its nearest parent that holds a go.mod, of module module when that
// is not empty.
func goModAbove(dir, module string) (string, error) {
	for start := dir; ; {
		if mod, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			(module == "" || bytes.HasPrefix(mod, []byte("module "+module+"\n"))) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			if module != "" {
				return "", fmt.Errorf("the go.mod of %s is not in %s or above: run from the repository", module, start)
			}
			return "", errors.New("go.mod not found above " + start)
		}
		dir = parent
	}
}

// ExamplesDir is the repository's examples/ folder: the guide's manifests (manifests/) and
// expected responses (expected/), as files for kubectl and helm.
func ExamplesDir() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(root, "examples")
	if _, err := os.Stat(filepath.Join(dir, "manifests")); err != nil {
		return "", fmt.Errorf("examples not found: %w", err)
	}
	return dir, nil
}

// BinDir is where `make tools` puts the control plane binaries: $KUBEBUILDER_ASSETS or bin/.
func BinDir() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bin"), nil
}

// StartCluster starts the control plane. Stop it with Stop, also on error paths of the caller.
func StartCluster(opts Options) (*Cluster, error) { return startCluster(opts, nil, nil) }

// startCluster starts the control plane with apiServer (nil: envtest's defaults) and extra
// kube-controller-manager flags.
func startCluster(opts Options, apiServer *envtest.APIServer, kcmArgs []string) (*Cluster, error) {
	setLoggerOnce.Do(func() {
		// controller-runtime warns, with a stack trace, when its logger is never set.
		if opts.Output != nil {
			log.SetLogger(zap.New(zap.WriteTo(opts.Output)))
		} else {
			log.SetLogger(logr.Discard())
		}
	})
	binDir, err := BinDir()
	if err != nil {
		return nil, err
	}
	need := []string{"etcd", "kube-apiserver", "kubectl"}
	if opts.ControllerManager {
		need = append(need, "kube-controller-manager")
	}
	for _, b := range need {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			return nil, fmt.Errorf("%s missing from %s: run `make tools` first (%w)", b, binDir, err)
		}
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	workDir, err := os.MkdirTemp("", "cors-e2e-")
	if err != nil {
		return nil, err
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}

	env := &envtest.Environment{
		BinaryAssetsDirectory:    binDir,
		CRDDirectoryPaths:        []string{filepath.Join(root, "charts", "cors-webhook", "crds")},
		ErrorIfCRDPathMissing:    true,
		Scheme:                   Scheme,
		WebhookInstallOptions:    opts.Webhook,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	env.ControlPlane.Etcd = &envtest.Etcd{Out: out, Err: out}
	if apiServer == nil {
		apiServer = &envtest.APIServer{}
	}
	apiServer.Out, apiServer.Err = out, out
	if opts.AdmissionConfig != "" {
		apiServer.Configure().Set("admission-control-config-file", opts.AdmissionConfig)
	}
	env.ControlPlane.APIServer = apiServer
	// The ServiceAccount admission plugin stays off (envtest's default): no token controller
	// runs here, and pods need no mounted token for admission tests.
	cfg, err := env.Start()
	if err != nil {
		_ = os.RemoveAll(workDir)
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	c := &Cluster{
		Env:            env,
		Config:         cfg,
		BinDir:         binDir,
		WebhookHost:    env.WebhookInstallOptions.LocalServingHost,
		WebhookPort:    env.WebhookInstallOptions.LocalServingPort,
		WebhookCertDir: env.WebhookInstallOptions.LocalServingCertDir,
		workDir:        workDir,
	}
	if err := c.setUp(opts, out, kcmArgs); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

func (c *Cluster) setUp(opts Options, out io.Writer, kcmArgs []string) error {
	user, err := c.Env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding admin user: %w", err)
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.workDir, "kubeconfig")
	if err := os.WriteFile(c.Kubeconfig, kubeconfig, 0o600); err != nil {
		return err
	}
	c.Client, err = client.New(c.Config, client.Options{Scheme: Scheme})
	if err != nil {
		return err
	}
	if opts.ControllerManager {
		if err := c.startControllerManager(out, kcmArgs); err != nil {
			return err
		}
	}
	return nil
}

// startControllerManager runs the controllers that turn workloads into pods and keep namespaces
// working; it waits until the default namespace has its ServiceAccount, the sign that the
// controllers run.
func (c *Cluster) startControllerManager(out io.Writer, extraArgs []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + c.Kubeconfig,
		"--authentication-kubeconfig=" + c.Kubeconfig,
		"--authorization-kubeconfig=" + c.Kubeconfig,
		"--leader-elect=false",
		"--controllers=*,-serviceaccount-token-controller",
		"--use-service-account-credentials=false",
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
		"--cert-dir=" + filepath.Join(c.workDir, "kcm-certs"),
		"--concurrent-deployment-syncs=5",
		"--concurrent-replicaset-syncs=5",
		"-v=1",
	}
	cmd := exec.Command(filepath.Join(c.BinDir, "kube-controller-manager"), append(args, extraArgs...)...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting kube-controller-manager: %w", err)
	}
	c.kcm = cmd
	c.kcmDone = make(chan error, 1)
	go func() { c.kcmDone <- cmd.Wait() }()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	err = wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		select {
		case err := <-c.kcmDone:
			c.kcmDone <- err
			return false, fmt.Errorf("kube-controller-manager exited: %v", err)
		default:
		}
		sa := &corev1.ServiceAccount{}
		err := c.Client.Get(ctx, client.ObjectKey{Namespace: "default", Name: "default"}, sa)
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for kube-controller-manager: %w", err)
	}
	return nil
}

// Stop stops everything Start started and removes its files.
func (c *Cluster) Stop() error {
	var errs []error
	if c.kcm != nil && c.kcm.Process != nil {
		_ = c.kcm.Process.Signal(os.Interrupt)
		select {
		case <-c.kcmDone:
		case <-time.After(15 * time.Second):
			_ = c.kcm.Process.Kill()
			<-c.kcmDone
		}
		c.kcm = nil
	}
	if c.Env != nil {
		if err := c.Env.Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.workDir != "" {
		errs = append(errs, os.RemoveAll(c.workDir))
	}
	return errors.Join(errs...)
}

// ServerVersion is the API server's version, as kubectl and helm see it.
func (c *Cluster) ServerVersion() (string, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(c.Config)
	if err != nil {
		return "", err
	}
	v, err := dc.ServerVersion()
	if err != nil {
		return "", err
	}
	return v.GitVersion, nil
}

// Result is what a command printed and how it exited.
type Result struct {
	Stdout, Stderr string
	ExitCode       int
}

// Output is stdout and stderr together, for messages.
func (r Result) Output() string { return r.Stdout + r.Stderr }

// RunKubectl runs bin/kubectl against the cluster with stdin (may be empty). A non-zero exit is
// not an error: it is in Result.ExitCode; the error is for failing to run at all.
func (c *Cluster) RunKubectl(ctx context.Context, stdin string, args ...string) (Result, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, "kubectl"), append([]string{"--kubeconfig=" + c.Kubeconfig}, args...)...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	return runResult(cmd)
}

// runResult runs cmd and captures its output. A non-zero exit is not an error: it is in
// Result.ExitCode; the error is for failing to run at all.
func runResult(cmd *exec.Cmd) (Result, error) {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.ExitCode = exit.ExitCode()
		return res, nil
	}
	return res, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) String() string { return fmt.Sprintf("cluster at %s", c.Config.Host) }
