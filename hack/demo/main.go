// Command demo walks through FSM's "CORS via plugins" guide (its manifests in examples/) end to
// end on one machine: it is what `make demo` runs.
//
// By default it brings up a one-node cluster on this machine (internal/localcluster's real
// node: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd with runc,
// the kubelet, kube-proxy and CoreDNS from bin/), builds the product's images from this
// repository, installs the Helm chart in self-signed certificate mode, and runs the guide on
// it: the webhook and the guide's pods run as real pods, and the guide's curl commands run as
// it writes them, through kubectl exec.
//
// With KUBECONFIG set it targets that cluster instead (the local node is skipped).
//
// Every step prints a heading; everything the demo starts is stopped and removed at the end,
// and the host put back as it was, also on Ctrl-C (SIGINT) and SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cors-webhook/cors-webhook/internal/localcluster"
)

// The names the demo installs under, as docs/install.md does.
const (
	release          = "cors-webhook"
	releaseNamespace = "cors-system"
	// demoStrictPlugin is a second CORS plugin name the chart is told about
	// (validation.corsPlugins), so that step 6 can show a conflict between two PluginChains.
	demoStrictPlugin = "cors-strict"
	// demoImageTag tags the product images the demo builds for the local node.
	demoImageTag = "demo"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// Signals stay caught until the clean-up has finished: a second Ctrl-C must not leave
	// network namespaces or processes behind.
	defer stop()

	d := &demo{ctx: ctx, out: os.Stdout, started: time.Now(), tty: isTerminal(os.Stdout)}
	err := d.run()
	ok := err == nil && ctx.Err() == nil
	switch {
	case ok:
		d.summary()
	case ctx.Err() != nil:
		fmt.Fprintln(d.out, "\ninterrupted: cleaning up")
	default:
		fmt.Fprintln(d.out, "\nfailed (the error follows the clean-up): cleaning up")
	}
	cleanupStart := time.Now()
	cleanupErr := d.cleanUp(!ok)
	switch {
	case cleanupErr != nil:
		fmt.Fprintf(os.Stderr, "\nthe clean-up failed: %v\n", cleanupErr)
		return 1
	case ctx.Err() != nil:
		fmt.Fprintln(os.Stderr, "demo interrupted; everything it started is stopped and removed")
		return 130
	case err != nil:
		fmt.Fprintf(os.Stderr, "\ndemo failed: %v\n", err)
		return 1
	}
	fmt.Fprintf(d.out, "\nDemo finished in %s (clean-up %s); everything it started is stopped and removed.\n",
		time.Since(d.started).Round(100*time.Millisecond), time.Since(cleanupStart).Round(100*time.Millisecond))
	return 0
}

// demo holds what the steps share and what must be cleaned up.
type demo struct {
	ctx     context.Context
	out     io.Writer
	tty     bool
	started time.Time

	// local is true for the node on this machine, false for $KUBECONFIG's cluster.
	local      bool
	kubeconfig string
	repo, seed string
	tmp        string
	kubectlBin string
	client     client.Client

	node *localcluster.Node
	helm *localcluster.Helm

	steps    []stepRecord
	facts    []string // what ran, for the summary
	cleanups []cleanupStep
}

type stepRecord struct {
	title string
	took  time.Duration
}

type cleanupStep struct {
	what string
	fn   func() error
}

func (d *demo) run() error {
	var err error
	if d.repo, err = localcluster.RepoRoot(); err != nil {
		return err
	}
	if d.seed, err = localcluster.ExamplesDir(); err != nil {
		return err
	}
	binDir, err := localcluster.BinDir()
	if err != nil {
		return err
	}
	d.kubectlBin = filepath.Join(binDir, "kubectl")
	if _, err := os.Stat(d.kubectlBin); err != nil {
		return fmt.Errorf("kubectl missing from %s: run `make tools` (or `make demo`, which builds it) first", binDir)
	}
	if d.tmp, err = os.MkdirTemp("", "cors-demo-"); err != nil {
		return err
	}
	d.onCleanup("removed the demo's temporary files", func() error { return os.RemoveAll(d.tmp) })
	if d.helm, err = localcluster.NewHelm(); err != nil {
		return err
	}
	d.helm.Dir = d.repo // the chart path is printed relative to it
	d.onCleanup("removed the private Helm home", d.helm.Close)

	d.kubeconfig = os.Getenv("KUBECONFIG")
	d.local = d.kubeconfig == ""
	if d.local {
		if err := localcluster.CheckNode(); err != nil {
			return fmt.Errorf("the demo brings up a one-node cluster here (run as root, after `make tools`): %w", err)
		}
	}

	steps := []struct {
		title string
		fn    func() error
	}{
		{d.titleOfStep1(), d.step1Cluster},
		{"Install the Helm chart (self-signed certificates): the webhook runs as the chart's pods", d.step2Install},
		{"The guide: create and label the namespaces, deploy curl and pipy-ok, declare the Plugin, the PluginChain and the PluginConfig", d.step3Guide},
		{"The injected pipy-ok pod: sidecar, init container and policy", d.step4InjectedPod},
		{`The guide's "Test": curl from the curl pod (kubectl exec), through cluster DNS and the Service`, d.step5Test},
		{"The validating webhook rejects a malformed PluginConfig and a conflicting PluginChain", d.step6Rejections},
	}
	for i, s := range steps {
		title := fmt.Sprintf("%d. %s", i+1, s.title)
		d.heading(title)
		start := time.Now()
		err := s.fn()
		d.steps = append(d.steps, stepRecord{title: title, took: time.Since(start)})
		if d.ctx.Err() != nil {
			return d.ctx.Err()
		}
		if err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	return nil
}

// onCleanup registers what the clean-up undoes, in reverse order of registration.
func (d *demo) onCleanup(what string, fn func() error) {
	d.cleanups = append(d.cleanups, cleanupStep{what: what, fn: fn})
}

// cleanUp undoes what the demo started, in reverse order, printing each.
func (d *demo) cleanUp(heading bool) error {
	if len(d.cleanups) == 0 {
		return nil
	}
	if heading {
		d.heading("Clean up")
	} else {
		fmt.Fprintln(d.out, "\nclean-up:")
	}
	var errs []error
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		c := d.cleanups[i]
		if err := c.fn(); err != nil {
			fmt.Fprintf(d.out, "  FAILED: %s: %v\n", c.what, err)
			errs = append(errs, fmt.Errorf("%s: %w", c.what, err))
			continue
		}
		fmt.Fprintf(d.out, "  %s\n", c.what)
	}
	d.cleanups = nil
	return errors.Join(errs...)
}

// summary says what ran and how long each step took.
func (d *demo) summary() {
	d.heading("7. Summary and clean-up")
	for _, s := range d.steps {
		fmt.Fprintf(d.out, "  %6.1fs  %s\n", s.took.Seconds(), s.title)
	}
	fmt.Fprintln(d.out, "\nwhat ran:")
	for _, f := range d.facts {
		fmt.Fprintf(d.out, "  - %s\n", f)
	}
}

func (d *demo) fact(format string, args ...any) {
	d.facts = append(d.facts, fmt.Sprintf(format, args...))
}

func (d *demo) heading(title string) { fmt.Fprintf(d.out, "\n==> %s\n", title) }

// note prints an explanation, as a shell comment.
func (d *demo) note(format string, args ...any) {
	for _, l := range strings.Split(fmt.Sprintf(format, args...), "\n") {
		fmt.Fprintf(d.out, "# %s\n", l)
	}
}

// kubectl runs bin/kubectl against the demo's cluster, in the repository root (so that the
// relative paths it prints work as printed). A non-zero exit is in Result.ExitCode.
func (d *demo) kubectl(stdin string, args ...string) (localcluster.Result, error) {
	return d.kubectlCtx(d.ctx, stdin, args...)
}

// kubectlBG runs kubectl for the clean-up, which must run after Ctrl-C too.
func (d *demo) kubectlBG(args ...string) (localcluster.Result, error) {
	return d.kubectlCtx(context.Background(), "", args...)
}

func (d *demo) kubectlCtx(ctx context.Context, stdin string, args ...string) (localcluster.Result, error) {
	cmd := exec.CommandContext(ctx, d.kubectlBin, args...)
	cmd.Dir = d.repo
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.kubeconfigPath())
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := localcluster.Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.ExitCode = exit.ExitCode()
		return res, nil
	}
	return res, err
}

func (d *demo) kubeconfigPath() string {
	if d.local {
		return d.node.Kubeconfig
	}
	return d.kubeconfig
}

// show prints `$ kubectl args`, runs it and prints what it printed; a non-zero exit is an
// error.
func (d *demo) show(args ...string) error {
	return d.showStdin("", "", args...)
}

// showStdin is show with stdin; display (if any) is printed after the command line, as the
// heredoc the guide writes.
func (d *demo) showStdin(display, stdin string, args ...string) error {
	res, err := d.printKubectl(display, stdin, args...)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("kubectl %s: exit %d", shellJoin(args), res.ExitCode)
	}
	return nil
}

func (d *demo) printKubectl(display, stdin string, args ...string) (localcluster.Result, error) {
	fmt.Fprintf(d.out, "$ kubectl %s\n", shellJoin(args))
	if display != "" {
		fmt.Fprint(d.out, display)
	}
	res, err := d.kubectl(stdin, args...)
	if err != nil {
		return res, fmt.Errorf("kubectl %s: %w", shellJoin(args), err)
	}
	fmt.Fprint(d.out, res.Stdout)
	fmt.Fprint(d.out, res.Stderr)
	return res, nil
}

// rel is path relative to the repository root, as the demo prints it.
func (d *demo) rel(path string) string {
	if r, err := filepath.Rel(d.repo, path); err == nil {
		if !strings.HasPrefix(r, "..") {
			return "./" + r
		}
		return r
	}
	return path
}

func (d *demo) manifest(name string) string {
	return d.rel(filepath.Join(d.seed, "manifests", name))
}

// shellJoin quotes args as a POSIX shell needs them (in double quotes, as the guide writes
// them, when that is safe).
func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.IndexFunc(a, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,@%+", r))
		}) < 0 {
			out[i] = a
			continue
		}
		if !strings.ContainsAny(a, "$`\\\"!") {
			out[i] = `"` + a + `"`
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(out, " ")
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
