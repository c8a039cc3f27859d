// Package containerd pins the container runtime the test node runs: containerd v2, its runc
// shim and ctr, built from Go modules. It is a module of its own so that containerd's
// dependencies stay apart from Kubernetes' in hack/tools. See the Makefile's `tools` target.
package containerd
