//go:build linux

package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/cors-webhook/cors-webhook/certs"
)

// NodeOptions describe a control plane with a real node.
type NodeOptions struct {
	// Images are served to the node's containerd by in-process registries, keyed by the
	// reference pods name them by (e.g. flomesh/pipy:latest, PauseImage, CoreDNSImage).
	Images map[string]remote.Taggable
	// LogDir receives one log file per component (default: a folder removed on Stop).
	LogDir string
	// Output receives progress lines (nil: discarded).
	Output io.Writer
	// StopOnSignal stops the node on SIGINT or SIGTERM and then exits the process with status
	// 130, for callers (tests) that have no clean-up of their own on a signal.
	StopOnSignal bool
}

// Node is a control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with
// one real node: containerd with runc and a CNI bridge, the kubelet, kube-proxy in nftables mode
// and CoreDNS. Pods run for real; Services and cluster DNS work from inside pods; the API
// server is reachable from pods at the `kubernetes` Service. Stop puts the host back as it was.
type Node struct {
	*Cluster
	// Timings of the bring-up, for benchmarks.
	Timings NodeTimings

	opts    NodeOptions
	paths   nodePaths
	logDir  string
	before  HostState
	mirrors *mirrors
	cri     *cri
	procs   []*nodeProc // started in order, stopped in reverse
	// kubeletClientCA signs the only client certificate the kubelet accepts: the API server's.
	kubeletClientCA string

	stopOnce sync.Once
	stopErr  error
	sigs     chan os.Signal
}

// NodeTimings are how long the bring-up's stages took.
type NodeTimings struct {
	ControlPlane, Runtime, NodeReady, DNSReady, Total time.Duration
}

// nodeProc is one long-running component.
type nodeProc struct {
	name string
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// NodeBinaries are what `make tools` builds into bin/ for the node, besides the control plane.
var NodeBinaries = []string{"kubelet", "kube-scheduler", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr"}

// CheckNode says what is missing to run a node here: root, the binaries of `make tools`,
// Debian's runc and CNI plugins, nft.
func CheckNode() error {
	var problems []string
	if os.Geteuid() != 0 {
		problems = append(problems, "root")
	}
	binDir, err := BinDir()
	if err != nil {
		return err
	}
	for _, b := range append([]string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"}, NodeBinaries...) {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			problems = append(problems, b+" in "+binDir+" (make tools)")
		}
	}
	for _, f := range []string{runcPath, "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback"} {
		if _, err := os.Stat(f); err != nil {
			problems = append(problems, f+" (make prereqs installs it)")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("cannot run a node here, missing: %s", strings.Join(problems, ", "))
	}
	return nil
}

// StartNode brings up the control plane and the node, and waits until the node is Ready and
// cluster DNS answers. Stop it with Stop, also on the caller's error paths (see also
// NodeOptions.StopOnSignal). A node whose process was killed is cleaned up by the next one.
func StartNode(ctx context.Context, opts NodeOptions) (n *Node, err error) {
	if err := CheckNode(); err != nil {
		return nil, err
	}
	for _, ref := range []string{PauseImage, CoreDNSImage} {
		if opts.Images[ref] == nil {
			return nil, fmt.Errorf("NodeOptions.Images has no %s", ref)
		}
	}
	if err := RecoverStaleNode(); err != nil {
		return nil, fmt.Errorf("cleaning up after an earlier node: %w", err)
	}
	start := time.Now()
	n = &Node{opts: opts}
	if n.before, err = HostSnapshot(); err != nil {
		return nil, err
	}
	work, err := os.MkdirTemp("", "cors-node-")
	if err != nil {
		return nil, err
	}
	n.paths = nodePaths{work: work}
	n.logDir = opts.LogDir
	if n.logDir == "" {
		n.logDir = filepath.Join(work, "logs")
	}
	if err := os.MkdirAll(n.logDir, 0o755); err != nil {
		return nil, err
	}
	record := nodeRecord{PID: os.Getpid(), Work: work, Before: n.before}
	if err := saveNodeRecord(record); err != nil {
		_ = os.RemoveAll(work)
		return nil, err
	}
	if opts.StopOnSignal {
		n.sigs = make(chan os.Signal, 1)
		signal.Notify(n.sigs, syscall.SIGINT, syscall.SIGTERM)
		go func() {
			if sig, ok := <-n.sigs; ok {
				fmt.Fprintf(os.Stderr, "%s: stopping the node and putting the host back\n", sig)
				_ = n.Stop()
				os.Exit(130)
			}
		}()
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, n.Stop())
			n = nil
		}
	}()

	if err := n.startNetwork(); err != nil {
		return n, err
	}
	if n.mirrors, err = startMirrors(ctx, opts.Images, n.paths.registryHosts()); err != nil {
		return n, err
	}
	n.progress("in-process registries: %s", n.mirrors)
	if err := n.startControlPlane(); err != nil {
		return n, err
	}
	n.Timings.ControlPlane = time.Since(start)
	// Recorded as they start: a killed caller's children are ended by the next node.
	record.Children = children()
	if err := saveNodeRecord(record); err != nil {
		return n, err
	}
	n.progress("control plane up at %s", n.Config.Host)
	if err := n.startContainerd(ctx); err != nil {
		return n, err
	}
	n.Timings.Runtime = time.Since(start)
	if err := n.startKubelet(ctx); err != nil {
		return n, err
	}
	n.Timings.NodeReady = time.Since(start)
	record.Children = children()
	if err := saveNodeRecord(record); err != nil {
		return n, err
	}
	n.progress("node %s Ready", NodeName)
	if err := n.startKubeProxy(ctx); err != nil {
		return n, err
	}
	if err := n.startCoreDNS(ctx); err != nil {
		return n, err
	}
	n.Timings.DNSReady = time.Since(start)
	n.Timings.Total = time.Since(start)
	n.progress("cluster DNS ready; node up in %s", n.Timings.Total.Round(100*time.Millisecond))
	return n, nil
}

func (n *Node) progress(format string, args ...any) {
	if n.opts.Output != nil {
		fmt.Fprintf(n.opts.Output, ">> node: "+format+"\n", args...)
	}
}

// startNetwork creates the bridge with the node's address before anything listens on it.
func (n *Node) startNetwork() error {
	if err := run("ip", "link", "add", NodeBridge, "type", "bridge"); err != nil {
		return err
	}
	if err := run("ip", "addr", "add", NodeIP+"/16", "dev", NodeBridge); err != nil {
		return err
	}
	if err := run("ip", "link", "set", NodeBridge, "up"); err != nil {
		return err
	}
	if err := os.MkdirAll(n.paths.cniBinDir(), 0o755); err != nil {
		return err
	}
	conf, err := cniConfig(n.paths)
	if err != nil {
		return err
	}
	return writeFile(n.CNIConfFile(), conf)
}

// CNIBinDir is the node's own CNI bin dir, searched before the host's /usr/lib/cni: what a
// CNI node agent (cni.binDir) installs into. CNIConfDir is containerd's conf_dir (cni.confDir),
// and CNIConfFile its one conflist, the node's primary network configuration.
func (n *Node) CNIBinDir() string  { return n.paths.cniBinDir() }
func (n *Node) CNIConfDir() string { return n.paths.cniConfDir() }
func (n *Node) CNIConfFile() string {
	return filepath.Join(n.paths.cniConfDir(), "10-cors-node.conflist")
}

// startControlPlane runs etcd and kube-apiserver (through envtest) on the node's address, with
// a serving certificate that pods trust for the `kubernetes` Service, ServiceAccount tokens
// for pods, and the Node authorizer; then kube-controller-manager and kube-scheduler.
func (n *Node) startControlPlane() error {
	pki := n.paths.pki()
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	serving, err := certs.PlanRotation(nil, certs.Request{
		Hosts: []string{NodeIP, "127.0.0.1", NodeAPIServiceIP, "localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc." + NodeClusterDomain},
		CertValidity: 48 * time.Hour, CAValidity: 96 * time.Hour,
	}, time.Now())
	if err != nil {
		return err
	}
	signer, err := certs.PlanRotation(nil, certs.Request{Hosts: []string{"service-accounts"}, CertValidity: 48 * time.Hour, CAValidity: 96 * time.Hour}, time.Now())
	if err != nil {
		return err
	}
	// envtest keeps certificates it finds in its CertDir.
	for file, data := range map[string][]byte{
		"apiserver.crt": serving.Data[certs.KeyTLSCert], "apiserver.key": serving.Data[certs.KeyTLSKey],
		"sa-signer.crt": signer.Data[certs.KeyCABundle], "sa-signer.key": signer.Data[certs.KeyCAKey],
		"ca.crt": serving.Data[certs.KeyCABundle],
	} {
		if err := writeFile(filepath.Join(pki, file), data); err != nil {
			return err
		}
	}
	port, err := freePortOn(NodeIP)
	if err != nil {
		return err
	}
	api := &envtest.APIServer{CertDir: pki}
	api.SecureServing.Address = NodeIP
	api.SecureServing.Port = strconv.Itoa(port)
	api.SecureServing.CA = serving.Data[certs.KeyCABundle]
	args := api.Configure()
	args.Disable("disable-admission-plugins") // ServiceAccount admission: pods get their token
	args.Set("enable-admission-plugins", "NodeRestriction")
	args.Set("authorization-mode", "Node,RBAC")
	args.Set("service-cluster-ip-range", NodeServiceCIDR)
	args.Set("advertise-address", NodeIP)
	args.Set("kubelet-preferred-address-types", "Hostname,InternalIP")
	kubeletCA, kubeletCert, kubeletKey, err := writeKubeletClientCert(pki)
	if err != nil {
		return err
	}
	args.Set("kubelet-client-certificate", kubeletCert)
	args.Set("kubelet-client-key", kubeletKey)
	n.kubeletClientCA = kubeletCA
	// Webhook Services are called at their endpoints' pod IPs, which the host reaches.
	args.Set("enable-aggregator-routing", "true")
	args.Set("allow-privileged", "true")

	out, err := n.logFile("control-plane")
	if err != nil {
		return err
	}
	c, err := startCluster(Options{ControllerManager: true, Output: out}, api,
		[]string{"--root-ca-file=" + filepath.Join(pki, "ca.crt"), "--service-cluster-ip-range=" + NodeServiceCIDR})
	if err != nil {
		return fmt.Errorf("%w\n%s", err, tail(out.Name(), 30))
	}
	n.Cluster = c
	port, err = freePort()
	if err != nil {
		return err
	}
	return n.startProc("kube-scheduler", nil, filepath.Join(c.BinDir, "kube-scheduler"),
		"--kubeconfig="+c.Kubeconfig,
		"--authentication-kubeconfig="+c.Kubeconfig,
		"--authorization-kubeconfig="+c.Kubeconfig,
		"--leader-elect=false",
		"--bind-address=127.0.0.1",
		fmt.Sprintf("--secure-port=%d", port),
	)
}

func (n *Node) startContainerd(ctx context.Context) error {
	if err := writeFile(n.paths.containerdConfig(), []byte(containerdConfig(n.paths, n.BinDir))); err != nil {
		return err
	}
	env := append(os.Environ(), "PATH="+n.BinDir+":"+os.Getenv("PATH"))
	if err := n.startProc("containerd", env, filepath.Join(n.BinDir, "containerd"), "--config", n.paths.containerdConfig()); err != nil {
		return err
	}
	var err error
	if n.cri, err = dialCRI(n.paths.containerdSocket()); err != nil {
		return err
	}
	return n.poll(ctx, "containerd", 30*time.Second, func(ctx context.Context) (bool, error) {
		return n.cri.ready(ctx), nil
	})
}

func (n *Node) startKubelet(ctx context.Context) error {
	user, err := n.Env.AddUser(envtest.User{Name: "system:node:" + NodeName, Groups: []string{"system:nodes"}}, nil)
	if err != nil {
		return err
	}
	kubeconfig, err := user.KubeConfig()
	if err != nil {
		return err
	}
	kubeconfigPath := filepath.Join(n.paths.work, "kubelet.kubeconfig")
	if err := writeFile(kubeconfigPath, kubeconfig); err != nil {
		return err
	}
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	if err := writeFile(n.paths.kubeletConfig(), []byte(kubeletConfig(n.paths, ports[0], ports[1], n.kubeletClientCA))); err != nil {
		return err
	}
	// No iptables on the kubelet's PATH: it would add KUBE-* chains to the host's tables.
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + n.paths.work}
	if err := n.startProc("kubelet", env, filepath.Join(n.BinDir, "kubelet"),
		"--config="+n.paths.kubeletConfig(),
		"--kubeconfig="+kubeconfigPath,
		"--root-dir="+n.paths.kubeletRoot(),
		"--cert-dir="+filepath.Join(n.paths.kubeletRoot(), "pki"),
		"--hostname-override="+NodeName,
		"--node-ip="+NodeIP,
		"-v=1",
	); err != nil {
		return err
	}
	return n.poll(ctx, "node Ready", 60*time.Second, func(ctx context.Context) (bool, error) {
		node := &corev1.Node{}
		if err := n.Client.Get(ctx, client.ObjectKey{Name: NodeName}, node); err != nil {
			return false, nil
		}
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, nil
			}
		}
		return false, nil
	})
}

func (n *Node) startKubeProxy(ctx context.Context) error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	healthz := ports[0]
	if err := writeFile(n.paths.kubeProxyConfig(), []byte(kubeProxyConfig(n.Kubeconfig, healthz, ports[1]))); err != nil {
		return err
	}
	// nft only, of the host's sbin: no iptables, so that it cannot touch the host's iptables.
	bin := filepath.Join(n.paths.work, "proxy-bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	nft, err := exec.LookPath("nft")
	if err != nil {
		return fmt.Errorf("kube-proxy needs nft (apt-get install nftables): %w", err)
	}
	if err := os.Symlink(nft, filepath.Join(bin, "nft")); err != nil {
		return err
	}
	env := []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + n.paths.work}
	if err := n.startProc("kube-proxy", env, filepath.Join(n.BinDir, "kube-proxy"), "--config="+n.paths.kubeProxyConfig(), "-v=1"); err != nil {
		return err
	}
	url := fmt.Sprintf("http://127.0.0.1:%d/healthz", healthz)
	return n.poll(ctx, "kube-proxy", 30*time.Second, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func (n *Node) startCoreDNS(ctx context.Context) error {
	res, err := n.RunKubectl(ctx, coreDNSManifests(), "apply", "-f", "-")
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("applying CoreDNS: %s", res.Output())
	}
	return n.poll(ctx, "CoreDNS", 90*time.Second, func(ctx context.Context) (bool, error) {
		dep := &appsv1.Deployment{}
		if err := n.Client.Get(ctx, client.ObjectKey{Namespace: "kube-system", Name: "coredns"}, dep); err != nil {
			return false, nil
		}
		return dep.Status.ReadyReplicas >= 1, nil
	})
}

// PodNetNS is the path of a running pod's network namespace (for nsenter or nftables).
func (n *Node) PodNetNS(ctx context.Context, namespace, pod string) (string, error) {
	return n.cri.podNetNS(ctx, namespace, pod)
}

// LogDir holds one log file per component.
func (n *Node) LogDir() string { return n.logDir }

// poll polls cond until it holds, a component exits, or timeout; the error carries the end of
// every component's log.
func (n *Node) poll(ctx context.Context, what string, timeout time.Duration, cond wait.ConditionWithContextFunc) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		for _, p := range n.procs {
			select {
			case err := <-p.done:
				p.done <- err
				return false, fmt.Errorf("%s exited: %v", p.name, err)
			default:
			}
		}
		return cond(ctx)
	})
	if err != nil {
		return fmt.Errorf("waiting for %s: %w\n%s\n%s", what, err, n.logTails(20), n.Diagnose(context.Background()))
	}
	return nil
}

// Diagnose describes the cluster's pods for a failure message: kubectl get pods, the events,
// and the logs of every pod that is not Ready.
func (n *Node) Diagnose(ctx context.Context) string {
	if n.Cluster == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var b strings.Builder
	kubectl := func(args ...string) {
		res, err := n.RunKubectl(ctx, "", args...)
		fmt.Fprintf(&b, "$ kubectl %s\n%s", strings.Join(args, " "), res.Output())
		if err != nil {
			fmt.Fprintf(&b, "%v\n", err)
		}
	}
	kubectl("get", "pods", "-A", "-o", "wide")
	kubectl("get", "events", "-A", "--sort-by=.lastTimestamp")
	var pods corev1.PodList
	if err := n.Client.List(ctx, &pods); err != nil {
		return b.String() + err.Error()
	}
	for _, p := range pods.Items {
		if !IsPodReady(&p) {
			kubectl("logs", "-n", p.Namespace, p.Name, "--all-containers", "--tail=30")
		}
	}
	return b.String()
}

func (n *Node) logTails(lines int) string {
	var b strings.Builder
	for _, p := range n.procs {
		fmt.Fprintf(&b, "--- %s (end of %s)\n%s\n", p.name, p.log.Name(), tail(p.log.Name(), lines))
	}
	return b.String()
}

func (n *Node) logFile(name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(n.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// startProc starts a component with its output in its log file, in its own process group
// (a Ctrl-C reaches only this process, which stops the components in order). env nil keeps
// this process's environment.
func (n *Node) startProc(name string, env []string, path string, args ...string) error {
	log, err := n.logFile(name)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = env
	cmd.SysProcAttr = ChildProcAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &nodeProc{name: name, cmd: cmd, done: make(chan error, 1), log: log}
	go func() { p.done <- cmd.Wait() }()
	n.procs = append(n.procs, p)
	return nil
}

func (p *nodeProc) stop(timeout time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.log.Close()
}

// Stop deletes the workloads and pods while the kubelet still runs (so that their sandboxes
// and networks are torn down), stops every component, and puts the host back as it was: mounts,
// cgroups, nftables tables, the bridge, network namespaces, sysctls and the fixed folders the
// kubelet and containerd create. It is safe to call more than once.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() { n.stopErr = n.stop() })
	return n.stopErr
}

func (n *Node) stop() error {
	if n.sigs != nil {
		signal.Stop(n.sigs)
		close(n.sigs)
	}
	var errs []error
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if n.Cluster != nil && n.running("kubelet") {
		errs = append(errs, n.deleteWorkloads(ctx))
		n.progress("workloads and pods deleted (%s)", time.Since(start).Round(100*time.Millisecond))
	}
	for _, name := range []string{"kube-proxy", "kubelet"} {
		n.stopProc(name)
	}
	if n.cri != nil && n.running("containerd") {
		errs = append(errs, n.cri.removeAllSandboxes(ctx))
	}
	if n.cri != nil {
		_ = n.cri.close()
	}
	for i := len(n.procs) - 1; i >= 0; i-- {
		n.stopProc(n.procs[i].name)
	}
	n.progress("node components stopped (%s)", time.Since(start).Round(100*time.Millisecond))
	if n.Cluster != nil {
		errs = append(errs, n.Cluster.Stop())
		n.progress("control plane stopped (%s)", time.Since(start).Round(100*time.Millisecond))
	}
	if n.mirrors != nil {
		errs = append(errs, n.mirrors.close())
	}
	errs = append(errs, restoreHost(n.paths.work, n.before))
	if n.paths.work != "" {
		errs = append(errs, os.RemoveAll(n.paths.work))
	}
	errs = append(errs, removeNodeRecord())
	return errors.Join(errs...)
}

func (n *Node) running(name string) bool {
	for _, p := range n.procs {
		if p.name == name && p.cmd.ProcessState == nil {
			select {
			case err := <-p.done:
				p.done <- err
				return false
			default:
				return true
			}
		}
	}
	return false
}

func (n *Node) stopProc(name string) {
	for i, p := range n.procs {
		if p.name == name {
			p.stop(20 * time.Second)
			n.procs = slices.Delete(n.procs, i, i+1)
			return
		}
	}
}

// deleteWorkloads deletes every workload, orphaning its pods (so that none gets the default
// 30 s grace period through the garbage collector), then every pod with a one-second grace
// period, and waits until the kubelet has stopped them all.
func (n *Node) deleteWorkloads(ctx context.Context) error {
	var nss corev1.NamespaceList
	if err := n.Client.List(ctx, &nss); err != nil {
		return err
	}
	grace := client.GracePeriodSeconds(1)
	var errs []error
	for _, ns := range nss.Items {
		in := client.InNamespace(ns.Name)
		for _, obj := range []client.Object{&appsv1.Deployment{}, &appsv1.DaemonSet{}, &appsv1.StatefulSet{}, &appsv1.ReplicaSet{}, &batchv1.Job{}} {
			if err := n.Client.DeleteAllOf(ctx, obj, in, client.PropagationPolicy(metav1.DeletePropagationOrphan)); err != nil {
				errs = append(errs, err)
			}
		}
		if err := n.Client.DeleteAllOf(ctx, &corev1.Pod{}, in, grace); err != nil {
			errs = append(errs, err)
		}
	}
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 90*time.Second, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := n.Client.List(ctx, &pods); err != nil {
			return false, nil
		}
		for i := range pods.Items {
			if pods.Items[i].DeletionTimestamp == nil {
				_ = n.Client.Delete(ctx, &pods.Items[i], grace)
			}
		}
		return len(pods.Items) == 0, nil
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("waiting for the pods to be gone: %w", err))
	}
	return errors.Join(errs...)
}

// restoreHost undoes what a node whose files are under work changed on the host since before.
func restoreHost(work string, before HostState) error {
	var errs []error
	if work != "" {
		errs = append(errs, killShims(work))
		errs = append(errs, unmountUnder(work))
	}
	for _, h := range kubepodsCgroups() {
		if !slices.Contains(before.Cgroups, h) {
			errs = append(errs, removeCgroupTree(filepath.Join("/sys/fs/cgroup", h)))
		}
	}
	if !slices.Contains(before.NFTables, "ip kube-proxy") && !slices.Contains(before.NFTables, "ip6 kube-proxy") {
		errs = append(errs, deleteNFTables("kube-proxy"))
	}
	if links, _ := linkNames(); slices.Contains(links, NodeBridge) && !slices.Contains(before.Links, NodeBridge) {
		// Pods' veths still on the bridge (their network namespace outlived a killed node).
		ports, _ := dirNames(filepath.Join("/sys/class/net", NodeBridge, "brif"))
		for _, port := range ports {
			errs = append(errs, run("ip", "link", "del", port))
		}
		errs = append(errs, run("ip", "link", "del", NodeBridge))
	}
	errs = append(errs, restoreSysctls(before.Sysctls))
	for _, p := range nodeHostPaths {
		if _, err := os.Lstat(p); err == nil && !slices.Contains(before.Paths, p) {
			errs = append(errs, os.RemoveAll(p))
		}
	}
	return errors.Join(errs...)
}

// killShims ends containerd shims (and their containers' processes) still running for the node
// whose files are under work: they outlive containerd by design.
func killShims(work string) error {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") && strings.Contains(string(cmdline), work) {
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// freePorts are count distinct free ports on 127.0.0.1.
func freePorts(count int) ([]int, error) {
	var ports []int
	for len(ports) < count {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports, nil
}

func freePortOn(host string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail is the last lines of a file.
func tail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
