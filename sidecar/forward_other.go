//go:build !linux

package sidecar

import "syscall"

// bindNoPort is a Linux socket option; elsewhere the kernel picks the port at bind time.
func bindNoPort(_, _ string, _ syscall.RawConn) error { return nil }
