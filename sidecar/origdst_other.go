//go:build !linux

package sidecar

import (
	"errors"
	"net"
	"net/netip"
)

// originalDst needs Linux netfilter; elsewhere only the explicit --upstream mode works.
func originalDst(net.Conn) (netip.AddrPort, error) {
	return netip.AddrPort{}, errors.New("transparent mode (SO_ORIGINAL_DST) needs Linux; use an explicit upstream")
}
