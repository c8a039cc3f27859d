// Command sign signs what `make push` published and checks it, with sigstore/cosign's Go
// libraries, in cosign's formats (so the cosign CLI, Kyverno or the policy-controller verify it
// too):
//
//	go run . keygen -dir DIR                                   # cosign.key (COSIGN_PASSWORD) and cosign.pub
//	go run . sign   -key cosign.key -registry R -tag T -chart-version V
//	go run . verify -key cosign.pub -registry R -tag T -chart-version V
//	go run . sbom   -registry R -tag T -dir DIR               # the SBOMs alone (for a keyless signer)
//
// sign signs the image indexes R/cors-webhook:T, R/cors-sidecar:T and R/cors-cni:T and the chart
// R/charts/cors-webhook:V (a cosign signature, with the tag as claimed identity), and attaches to
// every platform image a signed in-toto attestation whose predicate is a CycloneDX SBOM made from
// the Go build info of the binaries in the image. verify checks the signatures of all four and
// that each platform image carries a signed SBOM whose subject is that image and which lists the
// cors-webhook module. No transparency log is used with a key (an offline key pair, as in the
// tests); the release workflow signs keyless instead (.github/workflows/release.yaml).
//
// It is a module of its own: cosign's dependencies are many and the product needs none of them.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sign:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: sign keygen|sign|verify|sbom [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	key := fs.String("key", "", "sign: the cosign private key (password in $COSIGN_PASSWORD); verify: the public key")
	registry := fs.String("registry", "", "host[:port]/path the images and the chart were pushed to (make push REGISTRY)")
	tag := fs.String("tag", "", "the images' tag (the chart's appVersion)")
	chartVersion := fs.String("chart-version", "", "the chart's version (its OCI tag)")
	images := fs.String("images", "cors-webhook,cors-sidecar,cors-cni", "image names under -registry")
	dir := fs.String("dir", ".", "keygen, sbom: output folder")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	a := artifacts{registry: *registry, tag: *tag, chartVersion: *chartVersion, images: strings.Split(*images, ",")}
	switch args[0] {
	case "keygen":
		return keygen(*dir)
	case "sign":
		if *key == "" || !a.complete() {
			return fmt.Errorf("sign needs -key, -registry, -tag and -chart-version")
		}
		return sign(ctx, os.Stdout, a, *key)
	case "verify":
		if *key == "" || !a.complete() {
			return fmt.Errorf("verify needs -key, -registry, -tag and -chart-version")
		}
		return verify(ctx, os.Stdout, a, *key)
	case "sbom":
		if *registry == "" || *tag == "" {
			return fmt.Errorf("sbom needs -registry and -tag")
		}
		return writeSBOMs(ctx, os.Stdout, a, *dir)
	}
	return fmt.Errorf("unknown command %q: keygen, sign, verify or sbom", args[0])
}

// artifacts are what one `make push` published.
type artifacts struct {
	registry, tag, chartVersion string
	images                      []string
}

func (a artifacts) complete() bool { return a.registry != "" && a.tag != "" && a.chartVersion != "" }

func (a artifacts) imageRefs() []string {
	var out []string
	for _, n := range a.images {
		out = append(out, a.registry+"/"+n+":"+a.tag)
	}
	return out
}

func (a artifacts) chartRef() string { return a.registry + "/charts/cors-webhook:" + a.chartVersion }
