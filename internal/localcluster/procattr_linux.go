package localcluster

import "syscall"

// ChildProcAttr puts a long-running child in its own process group, so that a Ctrl-C in the
// terminal reaches only the caller, which stops its children in order; the child gets SIGTERM
// if the caller dies without stopping it.
func ChildProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}
