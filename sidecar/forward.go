package sidecar

import (
	"context"
	"net"
	"net/netip"
	"time"
)

// The forwarding contract: what the application sees of a proxied request.
//   - Its peer is ForwardSource, not 127.0.0.1, when the application listens on loopback (always,
//     in transparent mode): an application that trusts its own pod's loopback clients, or proxy
//     headers from them, must not extend that trust to every remote client.
//   - X-Forwarded-For gets the client's address appended and X-Forwarded-Proto is set to
//     "http" (the proxy receives plaintext only), on HTTP/1.1 and h2c alike.
//   - TE, hop-by-hop (RFC 9110 §10.1.4), is dropped, except that "trailers" passes on.

// ForwardSource is the source address of the proxy's connections to an application on
// loopback, the address Istio's sidecar uses for the same purpose. Every 127/8 address is the
// pod's own (Linux routes the whole block to lo), so nothing needs configuring, and the
// redirect rules (sidecar/redirect) act only on traffic arriving on other interfaces, so these
// connections are never redirected back to the proxy.
var ForwardSource = netip.AddrFrom4([4]byte{127, 0, 0, 6})

// dialUpstream connects to the application at addr, from ForwardSource when addr is an IPv4
// loopback address.
func dialUpstream(ctx context.Context, timeout time.Duration, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Unmap().Is4() && ap.Addr().IsLoopback() {
		d.LocalAddr = &net.TCPAddr{IP: ForwardSource.AsSlice()}
		d.Control = bindNoPort
	}
	return d.DialContext(ctx, "tcp", addr)
}

// clientAddr is the IP address of nc's peer, as X-Forwarded-For carries it.
func clientAddr(nc net.Conn) string {
	if a, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap().String()
	}
	host, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
	return host
}
