// Command images builds and pushes the project's OCI images without a container engine (see
// internal/imagebuild):
//
//	go run ./hack/images build    -out bin/images -tag 0.1.0 -version v0.1.0 -revision SHA [-repository ghcr.io/cors-webhook]
//	go run ./hack/images push     -out bin/images -tag 0.1.0 -registry host[:port]/path
//	go run ./hack/images standins -out bin/images/standins
//
// build writes bin/images/cors-webhook and bin/images/cors-sidecar (OCI image layouts of a
// linux/amd64 + linux/arm64 index) and NAME-linux-ARCH.tar per platform for
// `ctr -n k8s.io images import`; push sends both indexes to REGISTRY/NAME:TAG; standins writes
// the test stand-in images (pause, pipy, curl) as tarballs. `make images` and `make push` run it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"

	"github.com/cors-webhook/cors-webhook/internal/imagebuild"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("usage: images build|push|standins [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	out := fs.String("out", "bin/images", "output directory")
	tag := fs.String("tag", "", "image tag (the chart's appVersion)")
	version := fs.String("version", "", "version stamped into the binaries and the annotations (default: -tag)")
	revision := fs.String("revision", "", "commit the images are built from")
	repository := fs.String("repository", imagebuild.DefaultRepository, "repository the tarballs are named in (REPOSITORY/NAME:TAG)")
	registry := fs.String("registry", "", "push: host[:port]/path to push REGISTRY/NAME:TAG to")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	switch args[0] {
	case "build":
		if *tag == "" {
			return fmt.Errorf("build needs -tag")
		}
		if *version == "" {
			*version = *tag
		}
		if err := imagebuild.WriteProduct(ctx, *out, *repository, *tag, imagebuild.Release{Version: *version, Revision: *revision}); err != nil {
			return err
		}
		for _, pi := range imagebuild.ProductImages {
			idx, err := imagebuild.ReadLayout(imagebuild.LayoutDir(*out, pi.Name))
			if err != nil {
				return err
			}
			d, err := idx.Digest()
			if err != nil {
				return err
			}
			fmt.Printf("%s %s/%s:%s %s\n", imagebuild.LayoutDir(*out, pi.Name), *repository, pi.Name, *tag, d)
			for _, p := range imagebuild.Platforms {
				img, err := imagebuild.PlatformImage(idx, p)
				if err != nil {
					return err
				}
				compressed, uncompressed, err := imagebuild.Sizes(img)
				if err != nil {
					return err
				}
				fmt.Printf("  %s: %.1f MiB compressed, %.1f MiB uncompressed\n", p, mib(compressed), mib(uncompressed))
			}
		}
	case "push":
		if *registry == "" || *tag == "" {
			return fmt.Errorf("push needs -registry and -tag")
		}
		pushed, err := imagebuild.PushProduct(ctx, *out, *registry, *tag)
		if err != nil {
			return err
		}
		for _, pi := range imagebuild.ProductImages {
			fmt.Printf("pushed %s:%s as %s\n", pushed[pi.Name].Context(), *tag, pushed[pi.Name])
		}
	case "standins":
		built, err := imagebuild.Standins(ctx, *out)
		if err != nil {
			return err
		}
		for _, s := range built {
			fmt.Printf("%s %s (test stand-in)\n", s.Tarball, s.Ref)
		}
	default:
		return fmt.Errorf("unknown command %q: build, push or standins", args[0])
	}
	return nil
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
