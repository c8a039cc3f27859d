package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// mirrors are in-process registries, one per upstream registry host that the node's images name
// (docker.io, ghcr.io, registry.k8s.io, ...). containerd is told through hosts.toml to pull from
// them instead of the upstream host, so manifests that name e.g. flomesh/pipy:latest apply
// unchanged and their images are pulled (and re-pulled) like on any node.
type mirrors struct {
	servers []*http.Server
	// addrs maps an upstream host as containerd names it (docker.io) to the mirror's host:port.
	addrs map[string]string
}

// containerdHost is the registry host as containerd's hosts.toml folders name it.
func containerdHost(ref name.Reference) string {
	if h := ref.Context().RegistryStr(); h != name.DefaultRegistry {
		return h
	}
	return "docker.io"
}

// startMirrors serves images (reference -> image or index) from in-process registries on
// 127.0.0.1 and writes containerd's hosts.toml for each upstream host into certsDir.
func startMirrors(ctx context.Context, images map[string]remote.Taggable, certsDir string) (*mirrors, error) {
	m := &mirrors{addrs: map[string]string{}}
	for _, raw := range slices.Sorted(maps.Keys(images)) {
		ref, err := name.ParseReference(raw)
		if err != nil {
			return m, fmt.Errorf("image %q: %w", raw, err)
		}
		host := containerdHost(ref)
		addr, ok := m.addrs[host]
		if !ok {
			if addr, err = m.serve(); err != nil {
				return m, err
			}
			m.addrs[host] = addr
			if err := writeHostsTOML(certsDir, host, addr); err != nil {
				return m, err
			}
		}
		local, err := name.ParseReference(addr+"/"+ref.Context().RepositoryStr()+":"+tagOf(ref), name.Insecure)
		if err != nil {
			return m, err
		}
		if err := remote.Push(local, images[raw], remote.WithContext(ctx)); err != nil {
			return m, fmt.Errorf("pushing %s to the in-process registry: %w", raw, err)
		}
	}
	return m, nil
}

func tagOf(ref name.Reference) string {
	if t, ok := ref.(name.Tag); ok {
		return t.TagStr()
	}
	return "latest"
}

func (m *mirrors) serve() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	m.servers = append(m.servers, srv)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), nil
}

// writeHostsTOML makes containerd resolve and pull host's images from the mirror only (no
// fallback to the upstream host: this machine has no way out).
func writeHostsTOML(certsDir, host, mirror string) error {
	dir := filepath.Join(certsDir, host)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	toml := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n",
		"http://"+mirror, "http://"+mirror)
	return os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(toml), 0o644)
}

func (m *mirrors) close() error {
	var errs []error
	for _, s := range m.servers {
		if err := s.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// String lists the mirrors, for logs.
func (m *mirrors) String() string {
	var parts []string
	for h, a := range m.addrs {
		parts = append(parts, h+"="+a)
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// Registry returns the address (host:port, plain HTTP) of the in-process registry that the
// node's containerd pulls host's images from (e.g. "ghcr.io"), and false when no image of the
// node's Images names that host. Pushing REPOSITORY:TAG there makes host/REPOSITORY:TAG
// pullable on the node, as `make push REGISTRY=host/...` would for a real registry.
func (n *Node) Registry(host string) (string, bool) {
	if n.mirrors == nil {
		return "", false
	}
	addr, ok := n.mirrors.addrs[host]
	return addr, ok
}
