// Command cors-sidecar is the image the cors-webhook injects into pods:
//
//	cors-sidecar proxy --inbound-port 15003 --admin-port 15023 --policy-file /etc/cors-webhook/policy.json [--upstream HOST:PORT]
//	cors-sidecar redirect --proxy-port 15003 --ports 8080[,...] [--dry-run] [--cleanup]
//
// "proxy" is the native sidecar container: the CORS proxy in front of the application.
// "redirect" is the init container: it installs the nftables rules that send inbound traffic
// for the application's HTTP ports to the proxy.
//
// It depends on neither client-go nor controller-runtime and builds static (CGO_ENABLED=0).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/sidecar"
	"github.com/cors-webhook/cors-webhook/sidecar/redirect"
)

// Exit codes: 0 done, 1 failed, 2 bad usage.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `cors-sidecar: the CORS sidecar of cors-webhook

Usage:
  cors-sidecar proxy    --policy-file FILE [--inbound-port 15003] [--admin-port 15023] [--upstream HOST:PORT] [flags]
  cors-sidecar redirect --ports PORT[,PORT...] [--proxy-port 15003] [--dry-run] [--cleanup]
  cors-sidecar version

Run "cors-sidecar COMMAND --help" for the flags of a command.
`

// version is set with -ldflags "-X main.version=...".
var version = ""

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch args[0] {
	case "proxy":
		return runProxy(args[1:], stderr)
	case "redirect":
		return runRedirect(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, versionString())
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return exitUsage
	}
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

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("cors-sidecar "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses and rejects stray arguments; it returns an exit code when the command
// should stop (help asked, bad usage).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return exitUsage, false
	}
	return 0, true
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func runProxy(args []string, stderr io.Writer) int {
	fs := newFlagSet("proxy", stderr)
	var (
		inboundPort  = fs.Uint("inbound-port", contract.DefaultInboundPort, "port of the proxy's listener (on all addresses), where the redirect sends inbound connections")
		adminPort    = fs.Uint("admin-port", contract.DefaultAdminPort, "port of /healthz, /readyz and /metrics (on all addresses); 0 disables it")
		policyFile   = fs.String("policy-file", "", "the pod policy JSON file {\"version\":1,\"ports\":{...}} (a downwardAPI volume item); watched for changes")
		upstream     = fs.String("upstream", "", "explicit mode: forward every connection to HOST:PORT and apply the policy of PORT (no redirect rules needed)")
		maxHeader    = fs.Int("max-header-bytes", 64<<10, "largest request line plus headers accepted (431 beyond)")
		headerTO     = fs.Duration("header-timeout", 10*time.Second, "time allowed to send a request head once it started (408 beyond)")
		idleTO       = fs.Duration("idle-timeout", 120*time.Second, "close client keep-alive connections idle for longer")
		dialTO       = fs.Duration("dial-timeout", 5*time.Second, "time allowed to connect to the application")
		upIdleTO     = fs.Duration("upstream-idle-timeout", 30*time.Second, "retire application keep-alive connections idle for longer")
		drainTO      = fs.Duration("drain-timeout", 25*time.Second, "on SIGTERM, time allowed for in-flight requests before connections are closed")
		pollInterval = fs.Duration("policy-poll-interval", 5*time.Second, "re-read the policy file at this interval too, in case a change event is missed")
		logLevel     = fs.String("log-level", "info", "debug, info, warn or error")
	)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	log, err := newLogger(stderr, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}
	switch {
	case *policyFile == "":
		fmt.Fprintln(stderr, "--policy-file is required")
		return exitUsage
	case *inboundPort == 0 || *inboundPort > 65535:
		fmt.Fprintln(stderr, "--inbound-port must be in 1..65535")
		return exitUsage
	case *adminPort > 65535:
		fmt.Fprintln(stderr, "--admin-port must be in 0..65535")
		return exitUsage
	case *adminPort == *inboundPort:
		fmt.Fprintln(stderr, "--admin-port and --inbound-port must differ")
		return exitUsage
	}

	store := &sidecar.PolicyStore{}
	metrics := &sidecar.Metrics{}
	proxy, err := sidecar.New(sidecar.Config{
		Upstream:            *upstream,
		MaxHeaderBytes:      *maxHeader,
		HeaderTimeout:       *headerTO,
		IdleTimeout:         *idleTO,
		DialTimeout:         *dialTO,
		UpstreamIdleTimeout: *upIdleTO,
		Log:                 log,
	}, store, metrics)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitUsage
	}

	listeners, err := listenAll(int(*inboundPort))
	if err != nil {
		log.Error("cannot listen", "port", *inboundPort, "err", err)
		return exitFail
	}
	var admin *http.Server
	var adminLns []net.Listener
	if *adminPort != 0 {
		if adminLns, err = listenAll(int(*adminPort)); err != nil {
			log.Error("cannot listen on the admin port", "port", *adminPort, "err", err)
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
	watcher := &sidecar.Watcher{Path: *policyFile, Store: store, Metrics: metrics, Log: log, Interval: *pollInterval}
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
	if *upstream != "" {
		mode = "explicit upstream " + *upstream
	}
	log.Info("cors-sidecar proxy started", "version", versionString(), "inbound_port", *inboundPort,
		"admin_port", *adminPort, "mode", mode, "policy_file", *policyFile)

	code := exitOK
	select {
	case <-ctx.Done():
		log.Info("signal received; draining", "timeout", *drainTO)
	case err := <-serveErr:
		log.Error("listener failed; shutting down", "err", err)
		code = exitFail
	}
	stop()
	drainCtx, cancel := context.WithTimeout(context.Background(), *drainTO)
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

func runRedirect(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("redirect", stderr)
	var (
		proxyPort = fs.Uint("proxy-port", contract.DefaultInboundPort, "the proxy's inbound port, where connections are redirected")
		ports     = fs.String("ports", "", "comma-separated application ports whose inbound TCP connections are redirected")
		table     = fs.String("table", redirect.DefaultTable, "the nftables table (family inet) holding the rules")
		dryRun    = fs.Bool("dry-run", false, "print the rules (nft syntax) instead of installing them")
		cleanup   = fs.Bool("cleanup", false, "remove the rules (the whole table) instead of installing them")
	)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *cleanup {
		if *dryRun {
			fmt.Fprintf(stdout, "delete table inet %s\n", *table)
			return exitOK
		}
		if err := redirect.Cleanup(*table); err != nil {
			fmt.Fprintln(stderr, "cors-sidecar redirect:", err)
			return exitFail
		}
		fmt.Fprintf(stdout, "removed table inet %s\n", *table)
		return exitOK
	}
	list, err := redirect.ParsePorts(*ports)
	if err != nil {
		fmt.Fprintln(stderr, "--ports:", err)
		return exitUsage
	}
	if *proxyPort == 0 || *proxyPort > 65535 {
		fmt.Fprintln(stderr, "--proxy-port must be in 1..65535")
		return exitUsage
	}
	rules := redirect.Rules{Table: *table, ProxyPort: uint16(*proxyPort), Ports: list}
	if err := rules.Validate(); err != nil {
		fmt.Fprintln(stderr, "cors-sidecar redirect:", err)
		return exitUsage
	}
	if *dryRun {
		fmt.Fprint(stdout, rules)
		return exitOK
	}
	if err := redirect.Install(rules); err != nil {
		fmt.Fprintln(stderr, "cors-sidecar redirect:", err)
		return exitFail
	}
	fmt.Fprintf(stdout, "installed table inet %s: inbound TCP to ports %s redirected to :%d\n",
		rules.Table, contract.FormatPorts(list), rules.ProxyPort)
	return exitOK
}
