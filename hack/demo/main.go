// Command demo walks through the seed guide (FSM's "CORS via plugins") on an embedded local
// control plane: it is what `make demo` runs. Every step prints a heading; everything it starts
// is stopped at the end, also on Ctrl-C.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cors-webhook/cors-webhook/e2e/framework"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := time.Now()

	seed, err := framework.SeedDir()
	if err != nil {
		return err
	}

	step("1. Start the embedded control plane (etcd, kube-apiserver)")
	cluster, err := framework.StartCluster(framework.Options{})
	if err != nil {
		return err
	}
	defer func() {
		step("Clean up")
		if err := cluster.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", err)
		}
	}()
	version, err := cluster.ServerVersion()
	if err != nil {
		return err
	}
	fmt.Printf("kube-apiserver %s at %s\n", version, cluster.Config.Host)

	kubectl := func(args ...string) error {
		fmt.Printf("$ kubectl %s\n", strings.Join(args, " "))
		res, err := cluster.RunKubectl(ctx, "", args...)
		fmt.Print(res.Output())
		if err != nil {
			return err
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("kubectl %s: exit %d", strings.Join(args, " "), res.ExitCode)
		}
		return nil
	}
	manifest := func(name string) string { return filepath.Join(seed, "manifests", name) }

	step("2. Create the guide's namespaces, labeled as `fsm namespace add` labels them")
	if err := kubectl("apply", "-f", manifest("ns.yaml")); err != nil {
		return err
	}

	step("3. Declare the cors-policy Plugin, the PluginChain and the PluginConfig (unchanged from the guide)")
	for _, m := range []string{"cors.yaml", "cors-policy-chain.yaml", "cors-policy-config.yaml"} {
		if err := kubectl("apply", "-f", manifest(m)); err != nil {
			return err
		}
	}

	step("4. What is declared")
	if err := kubectl("get", "pi,pichn,picfg", "-A"); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Printf("\nDone in %s.\n", time.Since(started).Round(100*time.Millisecond))
	return nil
}

func step(title string) {
	fmt.Printf("\n==> %s\n", title)
}
