// Command kubescore runs kube-score over rendered manifests and fails on every CRITICAL finding
// that the checked-in exceptions file does not list with a reason. It reads kube-score's JSON
// output, so findings are matched by check ID, object and container, not by message text.
//
//	go run ./hack/kubescore -kube-score bin/kube-score -exceptions hack/kube-score-exceptions.yaml \
//	    chart-self-signed=out/a.yaml injected=out/b.yaml
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

func main() {
	kubeScore := flag.String("kube-score", "kube-score", "path of the kube-score binary")
	kubernetesVersion := flag.String("kubernetes-version", "v1.37", "Kubernetes version kube-score checks the API versions against")
	exceptionsFile := flag.String("exceptions", "", "YAML list of accepted findings (check, object, container, summary, reason)")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s [flags] NAME=FILE...\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *exceptionsFile == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*kubeScore, *kubernetesVersion, *exceptionsFile, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "kubescore:", err)
		os.Exit(1)
	}
}

func run(kubeScore, kubernetesVersion, exceptionsFile string, renderings []string) error {
	raw, err := os.ReadFile(exceptionsFile)
	if err != nil {
		return err
	}
	exceptions, err := parseExceptions(raw)
	if err != nil {
		return fmt.Errorf("%s: %w", exceptionsFile, err)
	}
	var findings []finding
	for _, arg := range renderings {
		name, file, ok := strings.Cut(arg, "=")
		if !ok || name == "" || file == "" {
			return fmt.Errorf("argument %q: want NAME=FILE", arg)
		}
		out, err := score(kubeScore, kubernetesVersion, file)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		found, err := criticalFindings(name, out)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		findings = append(findings, found...)
	}
	res := filter(findings, exceptions)
	for _, f := range res.accepted {
		fmt.Printf("accepted  %s: %s\n", f, f.reason)
	}
	for _, f := range res.failing {
		fmt.Printf("CRITICAL  %s\n", f)
	}
	for _, e := range res.unused {
		fmt.Printf("UNUSED    exception %s matches no finding: remove it\n", e)
	}
	fmt.Printf("kube-score: %d CRITICAL findings in %d renderings, %d accepted by %s, %d not, %d unused exceptions\n",
		len(findings), len(renderings), len(res.accepted), exceptionsFile, len(res.failing), len(res.unused))
	if len(res.failing) > 0 || len(res.unused) > 0 {
		return errors.New("fix the findings, or list them with a reason in " + exceptionsFile)
	}
	return nil
}

// score runs kube-score on one file. kube-score exits 1 when it finds CRITICAL grades, so the
// exit status alone says nothing: the JSON on standard output is the result.
func score(kubeScore, kubernetesVersion, file string) ([]byte, error) {
	cmd := exec.Command(kubeScore, "score", "--output-format", "json", "--kubernetes-version", kubernetesVersion,
		// Annotations on the objects must not hide findings: every exception lives in one file.
		"--disable-ignore-checks-annotations", file)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		return nil, err
	}
	if !json.Valid(stdout.Bytes()) {
		return nil, fmt.Errorf("kube-score %s: %v: no JSON output: %s", file, err, stderr.String())
	}
	return stdout.Bytes(), nil
}
