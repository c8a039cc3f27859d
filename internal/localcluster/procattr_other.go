//go:build !linux

package localcluster

import "syscall"

// ChildProcAttr puts a long-running child in its own process group, so that a Ctrl-C in the
// terminal reaches only the caller, which stops its children in order.
func ChildProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
