//go:build !linux

package localcluster

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os/exec"
)

// Network namespaces exist on Linux only; elsewhere every function says so.

var errNoNetNS = errors.New("network namespaces need Linux")

// NetNSPrefix starts the name of every namespace NewNetNS creates.
const NetNSPrefix = "cors-"

// NetNS is a named network namespace (Linux only).
type NetNS struct{ Name string }

// CheckNetNS fails: network namespaces need Linux.
func CheckNetNS(...string) error { return errNoNetNS }

// NewNetNS fails: network namespaces need Linux.
func NewNetNS(string) (*NetNS, error) { return nil, errNoNetNS }

// Delete fails: network namespaces need Linux.
func (ns *NetNS) Delete() error { return errNoNetNS }

// LinkNetNS fails: network namespaces need Linux.
func LinkNetNS(*NetNS, string, *NetNS, string) error { return errNoNetNS }

// Command returns a command that fails to start.
func (ns *NetNS) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "false")
}

// Run fails: network namespaces need Linux.
func (ns *NetNS) Run(context.Context, string, ...string) (Result, error) {
	return Result{}, errNoNetNS
}

// Do fails: network namespaces need Linux.
func (ns *NetNS) Do(func() error) error { return errNoNetNS }

// Listen fails: network namespaces need Linux.
func (ns *NetNS) Listen(string, string) (net.Listener, error) { return nil, errNoNetNS }

// DialContext fails: network namespaces need Linux.
func (ns *NetNS) DialContext(context.Context, string, string) (net.Conn, error) {
	return nil, errNoNetNS
}

// HTTPClient is a client whose dials fail: network namespaces need Linux.
func (ns *NetNS) HTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: ns.DialContext}}
}

// CleanStaleNetNS does nothing: there are no network namespaces.
func CleanStaleNetNS(string) ([]string, error) { return nil, nil }
