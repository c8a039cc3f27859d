// Package tools pins the command-line tools the project builds from Go modules:
// the test control plane (kube-apiserver, kube-controller-manager, etcd, kubectl),
// helm and controller-gen. See the Makefile's `tools` target.
package tools
