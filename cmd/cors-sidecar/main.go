// Command cors-sidecar is the image the cors-webhook injects into pods:
//
//	cors-sidecar proxy --inbound-port 15003 --admin-port 15023 --policy-file /etc/cors-webhook/policy.json [--upstream HOST:PORT]
//	cors-sidecar redirect --proxy-port 15003 --ports 8080[,...] [--dry-run] [--cleanup]
//
// "proxy" is the native sidecar container: the CORS proxy in front of the application.
// "redirect" installs the nftables rules that send inbound traffic for the application's HTTP
// ports to the proxy. Injected pods run the image's cors-init binary for that (see cmd/cors-init);
// pods injected by earlier releases run this subcommand as root, so it stays.
//
// It depends on neither client-go nor controller-runtime and builds static (CGO_ENABLED=0).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/sidecar"
	"github.com/cors-webhook/cors-webhook/sidecar/redirect"
)

// Exit codes: 0 done, 1 failed, 2 bad usage.
const (
	exitOK    = redirect.ExitOK
	exitFail  = redirect.ExitFail
	exitUsage = redirect.ExitUsage
)

// version is set with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitCode carries a command's exit status out of cobra; err, when set, is printed once.
type exitCode struct {
	code int
	err  error
}

func (e *exitCode) Error() string {
	if e.err == nil {
		return "exit status " + strconv.Itoa(e.code)
	}
	return e.err.Error()
}

func usageError(format string, args ...any) error {
	return &exitCode{code: exitUsage, err: fmt.Errorf(format, args...)}
}

func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCommand(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return exitOK
	}
	var ec *exitCode
	if errors.As(err, &ec) {
		if ec.err != nil {
			fmt.Fprintln(stderr, "Error:", ec.err)
		}
		return ec.code
	}
	fmt.Fprintln(stderr, "Error:", err)
	return exitUsage
}

func newRootCommand(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "cors-sidecar",
		Short: "The CORS sidecar of cors-webhook: the proxy and the redirect of the injected pods",
		Example: `  cors-sidecar proxy    --policy-file FILE [--inbound-port 15003] [--admin-port 15023] [--upstream HOST:PORT]
  cors-sidecar redirect --ports PORT[,PORT...] [--proxy-port 15003] [--dry-run] [--cleanup]
  cors-sidecar version`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		// Without a command there is nothing to do: say how to use it, as a usage error.
		RunE: func(cmd *cobra.Command, _ []string) error {
			cmd.SetOut(stderr)
			_ = cmd.Usage()
			return &exitCode{code: exitUsage}
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitCode{code: exitUsage, err: err} })
	root.AddCommand(newProxyCommand(stderr), newRedirectCommand(stdout, stderr), &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		Run:   func(cmd *cobra.Command, _ []string) { fmt.Fprintln(cmd.OutOrStdout(), versionString()) },
	})
	root.Version = versionString()
	return root
}

// noArgs rejects stray arguments: every input of these commands is a flag.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageError("unexpected arguments: %s", strings.Join(args, " "))
	}
	return nil
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "dev"
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// proxyFlags are the flags of `proxy`.
type proxyFlags struct {
	inboundPort, adminPort                              uint
	policyFile, upstream, logLevel                      string
	maxHeader, maxConns                                 int
	headerTO, idleTO, dialTO, upIdleTO, drainTO, pollTO time.Duration
	bodyTO, writeTO, upstreamTO, tunnelIdleTO           time.Duration
	eventLoops                                          bool
}

func newProxyCommand(stderr io.Writer) *cobra.Command {
	var fl proxyFlags
	cmd := &cobra.Command{
		Use:   "proxy --policy-file FILE",
		Short: "Run the CORS proxy in front of the application (the injected native sidecar)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if code := runProxy(fl, stderr); code != exitOK {
				return &exitCode{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.UintVar(&fl.inboundPort, "inbound-port", contract.DefaultInboundPort, "port of the proxy's listener (on all addresses), where the redirect sends inbound connections")
	f.UintVar(&fl.adminPort, "admin-port", contract.DefaultAdminPort, "port of /healthz, /readyz and /metrics (on all addresses); 0 disables it")
	f.StringVar(&fl.policyFile, "policy-file", "", "the pod policy JSON file {\"version\":1,\"ports\":{...}} (a downwardAPI volume item); watched for changes")
	f.StringVar(&fl.upstream, "upstream", "", "explicit mode: forward every connection to HOST:PORT and apply the policy of PORT (no redirect rules needed)")
	f.IntVar(&fl.maxHeader, "max-header-bytes", 64<<10, "largest request line plus headers accepted (431 beyond)")
	f.DurationVar(&fl.headerTO, "header-timeout", 10*time.Second, "time allowed to send a request head once it started (408 beyond)")
	f.DurationVar(&fl.bodyTO, "body-timeout", 60*time.Second, "time allowed for a request body, plus one second per 4 KiB received (408 beyond)")
	f.DurationVar(&fl.idleTO, "idle-timeout", 120*time.Second, "close client keep-alive connections idle for longer")
	f.IntVar(&fl.maxConns, "max-connections", 0, "client connections served at once (a quarter of them HTTP/2 at most); beyond it the proxy stops accepting until one ends. 0: one per 40 KiB of the Go memory limit after 24 MiB (GOMEMLIMIT; 4096 without one)")
	f.DurationVar(&fl.writeTO, "write-timeout", 10*time.Second, "time allowed for a write the peer does not take at once, plus one second per 4 KiB (the connection is dropped beyond)")
	f.DurationVar(&fl.upstreamTO, "upstream-timeout", sidecar.DefaultUpstreamTimeout, "time allowed for the application's response head (504 beyond); 0 waits forever. The pod annotation "+contract.AnnotationUpstreamTimeout+" sets it per pod")
	f.DurationVar(&fl.tunnelIdleTO, "tunnel-idle-timeout", time.Hour, "close WebSocket and other tunnels that moved no byte for longer")
	f.DurationVar(&fl.dialTO, "dial-timeout", 5*time.Second, "time allowed to connect to the application")
	f.DurationVar(&fl.upIdleTO, "upstream-idle-timeout", 30*time.Second, "retire application keep-alive connections idle for longer")
	f.DurationVar(&fl.drainTO, "drain-timeout", 25*time.Second, "on SIGTERM, time allowed for in-flight requests before connections are closed")
	f.DurationVar(&fl.pollTO, "policy-poll-interval", 5*time.Second, "re-read the policy file at this interval too, in case a change event is missed")
	f.BoolVar(&fl.eventLoops, "event-loops", true, "serve kept-alive connections' simple requests from epoll event loops, one per GOMAXPROCS (Linux, GOMAXPROCS 2 or more); false keeps every connection on a goroutine of its own")
	f.StringVar(&fl.logLevel, "log-level", "info", "debug, info, warn or error")
	return cmd
}

// check says what is wrong with the flags, before anything starts.
func (fl proxyFlags) check() error {
	switch {
	case fl.policyFile == "":
		return errors.New("--policy-file is required")
	case fl.inboundPort == 0 || fl.inboundPort > 65535:
		return errors.New("--inbound-port must be in 1..65535")
	case fl.adminPort > 65535:
		return errors.New("--admin-port must be in 0..65535")
	case fl.adminPort == fl.inboundPort:
		return errors.New("--admin-port and --inbound-port must differ")
	case fl.maxConns < 0:
		return errors.New("--max-connections must not be negative")
	case fl.upstreamTO < 0:
		return errors.New("--upstream-timeout must not be negative")
	}
	return nil
}

func runProxy(fl proxyFlags, stderr io.Writer) int {
	log, err := newLogger(stderr, fl.logLevel)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	if err := fl.check(); err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	upstreamTO := fl.upstreamTO
	if upstreamTO == 0 {
		upstreamTO = -1 // Config's "off"
	}
	memLimit := applyMemoryLimitHeadroom()
	maxConns := fl.maxConns
	if maxConns == 0 {
		maxConns = sidecar.MaxConnsFor(debug.SetMemoryLimit(-1))
	}

	if os.Getenv("GOMAXPROCS") == "" {
		if n, ok := cpuLimitProcs(os.DirFS("/")); ok && n < runtime.GOMAXPROCS(0) {
			runtime.GOMAXPROCS(n)
		}
	}

	store := &sidecar.PolicyStore{}
	metrics := &sidecar.Metrics{}
	proxy, err := sidecar.New(sidecar.Config{
		Upstream:            fl.upstream,
		MaxHeaderBytes:      fl.maxHeader,
		HeaderTimeout:       fl.headerTO,
		BodyTimeout:         fl.bodyTO,
		IdleTimeout:         fl.idleTO,
		DialTimeout:         fl.dialTO,
		UpstreamIdleTimeout: fl.upIdleTO,
		MaxConns:            maxConns,
		WriteTimeout:        fl.writeTO,
		UpstreamTimeout:     upstreamTO,
		TunnelIdleTimeout:   fl.tunnelIdleTO,
		NoEventLoop:         !fl.eventLoops,
		Log:                 log,
	}, store, metrics)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}

	listeners, err := listenAll(int(fl.inboundPort))
	if err != nil {
		log.Error("cannot listen", "port", fl.inboundPort, "err", err)
		return exitFail
	}
	var admin *http.Server
	var adminLns []net.Listener
	if fl.adminPort != 0 {
		if adminLns, err = listenAll(int(fl.adminPort)); err != nil {
			log.Error("cannot listen on the admin port", "port", fl.adminPort, "err", err)
			return exitFail
		}
		admin = &http.Server{
			Handler:           sidecar.AdminHandler(store, metrics, proxy.Draining),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	watchCtx, stopWatch := context.WithCancel(context.Background())
	watcher := &sidecar.Watcher{Path: fl.policyFile, Store: store, Metrics: metrics, Log: log, Interval: fl.pollTO}
	watchDone := make(chan struct{})
	go func() { watcher.Run(watchCtx); close(watchDone) }()

	var wg sync.WaitGroup
	serveErr := make(chan error, len(listeners))
	for _, ln := range listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := proxy.Serve(ln); err != nil {
				serveErr <- err
			}
		}()
	}
	for _, ln := range adminLns {
		go admin.Serve(ln)
	}
	mode := "transparent"
	if fl.upstream != "" {
		mode = "explicit upstream " + fl.upstream
	}
	log.Info("cors-sidecar proxy started", "version", versionString(), "inbound_port", fl.inboundPort,
		"admin_port", fl.adminPort, "mode", mode, "policy_file", fl.policyFile, "gomaxprocs", runtime.GOMAXPROCS(0),
		"event_loops", proxy.EventLoops(), "max_connections", maxConns, "upstream_timeout", fl.upstreamTO.String(), "memory_limit", memLimit)

	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("signal received; draining", "timeout", fl.drainTO)
	case err := <-serveErr:
		log.Error("listener failed; shutting down", "err", err)
		code = exitFail
	}
	stop()
	drainCtx, cancel := context.WithTimeout(context.Background(), fl.drainTO)
	defer cancel()
	start := time.Now()
	if err := proxy.Shutdown(drainCtx); err != nil {
		log.Warn("drain timed out; remaining connections closed", "err", err)
	}
	wg.Wait()
	if admin != nil {
		shutCtx, cancelAdmin := context.WithTimeout(context.Background(), time.Second)
		admin.Shutdown(shutCtx)
		cancelAdmin()
	}
	stopWatch()
	<-watchDone
	log.Info("stopped", "drain", time.Since(start).Round(time.Millisecond).String())
	return code
}

// listenAll listens on the port on all IPv4 addresses and, when the host has IPv6, on all IPv6
// addresses (IPV6_V6ONLY, so that SO_ORIGINAL_DST is asked in the connection's own family).
func listenAll(port int) ([]net.Listener, error) {
	addr := ":" + strconv.Itoa(port)
	ln4, err := net.Listen("tcp4", "0.0.0.0"+addr)
	if err != nil {
		return nil, err
	}
	lns := []net.Listener{ln4}
	if ln6, err := net.Listen("tcp6", "[::]"+addr); err == nil {
		lns = append(lns, ln6)
	}
	return lns, nil
}

func newRedirectCommand(stdout, stderr io.Writer) *cobra.Command {
	var fl redirect.Flags
	cmd := &cobra.Command{
		Use:   "redirect --ports PORT[,PORT...]",
		Short: "Install the nftables rules that redirect inbound TCP of the ports to the proxy (what cors-init does; kept for pods injected by earlier releases)",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			if code := fl.Run("cors-sidecar redirect", stdout, stderr); code != exitOK {
				return &exitCode{code: code}
			}
			return nil
		},
	}
	fl.Register(cmd.Flags())
	return cmd
}
