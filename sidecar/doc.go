// Package sidecar is the runtime of the cors-sidecar proxy: it accepts the pod's inbound HTTP
// connections (redirected to it by the nftables rules of package [redirect], or sent to it
// explicitly), applies the pod's per-port CORS policy from package cors to every request, and
// forwards the rest to the application on 127.0.0.1.
//
// The request path is purpose-built rather than net/http plus httputil.ReverseProxy, because the
// sidecar sits in front of every request of the pod and must cost less than an nginx in the same
// place: a client connection's request head is read, the method and the Origin header decide,
// and the proxy either answers a preflight itself or writes the head to an application
// connection from a pool, then streams the bodies with their framing (content-length, chunked,
// or until close). A connection's first request is served by a goroutine of its own; then its
// simple requests (a whole head, no body) are served by epoll event loops, one per P, and
// anything else goes back to a goroutine (see eventLoop). Only the headers the proxy must act on are parsed:
// framing, Host, Connection (and the fields it names) and its hop-by-hop friends, Origin,
// Expect, Upgrade and, on responses, Vary and the access-control-* headers it overrides.
//
// What it forwards is held to RFC 9112 in both directions, since the proxy is where a
// disagreement between two parsers would become request smuggling or a response served to the
// wrong client: a message with ambiguous framing, an invalid request line, Host or field line is
// refused (400 to a client, 502 for an application); chunk extensions are checked and dropped,
// trailers checked as field lines; an application connection goes back to the pool only if
// nothing but the complete response came from it. The differential fuzz targets (fuzz_test.go)
// compare these readers with net/http's, and the conformance test runs one row per RFC rule. WebSocket (and
// any other HTTP/1.1 Upgrade) is tunnelled after the upstream's 101; HTTP/2 with prior knowledge
// (h2c) is detected by its preface and handed to net/http's HTTP/2 server, which forwards with
// httputil.ReverseProxy over h2c. "Upgrade: h2c" (deprecated by RFC 9113) is ignored and the
// request answered in HTTP/1.1, as the upgrade mechanism allows.
//
// The policy comes from a file (the pod annotation cors-webhook.io/policy projected by a
// downwardAPI volume) and is swapped atomically on change; see [Watcher]. The package imports
// neither client-go nor controller-runtime: the sidecar binary stays small.
package sidecar
