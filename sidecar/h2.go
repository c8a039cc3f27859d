package sidecar

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"

	"github.com/cors-webhook/cors-webhook/cors"
)

// The HTTP/2 path. A client connection that opens with the HTTP/2 preface (h2c with prior
// knowledge: gRPC, curl --http2-prior-knowledge) is handed to a net/http server restricted to
// unencrypted HTTP/2, whose handler applies the same decisions and forwards with
// httputil.ReverseProxy over h2c: a client that knows the port speaks HTTP/2 expects the
// application to (trailers and all). This path is for correctness, not speed.

// h2Conn is a handed-over client connection: reads go through the bufio.Reader that already
// holds the preface, and the target travels with the connection. Closing it gives back the
// connection's slot (Config.MaxConns).
type h2Conn struct {
	net.Conn
	br      *bufio.Reader
	t       *target
	p       *Proxy
	release sync.Once
}

func (c *h2Conn) Read(p []byte) (int, error) { return c.br.Read(p) }

func (c *h2Conn) Close() error {
	err := c.Conn.Close()
	c.release.Do(func() {
		<-c.p.h2slots
		c.p.releaseSlot()
	})
	return err
}

// chanListener feeds handed-over connections to http.Server.Serve.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4zero} }

type targetKey struct{}
type decisionKey struct{}

type decided struct {
	pol *cors.Policy
	d   cors.Decision
	t   *target
}

type h2Server struct {
	p       *Proxy
	srv     *http.Server
	ln      *chanListener
	started sync.Once
}

func newH2Server(p *Proxy) *h2Server {
	h := &h2Server{p: p, ln: &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}}
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return dialUpstream(ctx, p.cfg.DialTimeout, addr)
		},
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       p.cfg.UpstreamIdleTimeout,
		ResponseHeaderTimeout: max(p.cfg.UpstreamTimeout, 0),
		Protocols:             new(http.Protocols),
	}
	tr.Protocols.SetUnencryptedHTTP2(true)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			t := pr.In.Context().Value(decisionKey{}).(*decided).t
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = t.addr
			setForwarded(pr)
		},
		Transport:      tr,
		FlushInterval:  -1, // stream: gRPC and server-sent events must not wait in a buffer
		ModifyResponse: modifyH2Response,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			dc := r.Context().Value(decisionKey{}).(*decided)
			dc.t.stats.upErrors.Add(1)
			p.logUpstreamError(dc.t, err)
			hdr := w.Header()
			setCORSHeaders(hdr, dc.pol, dc.d)
			hdr.Set("Content-Type", "text/plain; charset=utf-8")
			code, body := http.StatusBadGateway, "upstream unavailable\n"
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				code, body = http.StatusGatewayTimeout, "upstream timed out\n"
			}
			hdr.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(code)
			w.Write([]byte(body))
		},
	}
	h.srv = &http.Server{
		Handler:           h.handler(rp),
		ReadHeaderTimeout: p.cfg.HeaderTimeout,
		IdleTimeout:       p.cfg.IdleTimeout,
		MaxHeaderBytes:    p.cfg.MaxHeaderBytes,
		Protocols:         new(http.Protocols),
		// Frames a client does not read: the same bound as writes on the HTTP/1.1 path, as
		// net/http measures it (extended whenever any byte is written).
		HTTP2: &http.HTTP2Config{WriteByteTimeout: p.cfg.WriteTimeout},
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if hc, ok := c.(*h2Conn); ok {
				return context.WithValue(ctx, targetKey{}, hc.t)
			}
			return ctx
		},
		ErrorLog: slog.NewLogLogger(p.cfg.Log.Handler(), slog.LevelWarn),
	}
	h.srv.Protocols.SetUnencryptedHTTP2(true)
	return h
}

func (h *h2Server) handler(rp *httputil.ReverseProxy) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := r.Context().Value(targetKey{}).(*target)
		if t == nil {
			http.Error(w, "no target", http.StatusInternalServerError)
			return
		}
		pol := h.p.policies.Lookup(t.port)
		creq := cors.Request{
			Method:         r.Method,
			Origin:         r.Header.Get("Origin"),
			RequestMethod:  r.Header.Get("Access-Control-Request-Method"),
			RequestHeaders: strings.Join(r.Header.Values("Access-Control-Request-Headers"), ", "),
		}
		d := pol.Decide(creq)
		t.stats.record(pol, &creq, d)
		if d.Action == cors.Preflight {
			hdr := w.Header()
			setCORSHeaders(hdr, pol, d)
			hdr.Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return
		}
		ctx := context.WithValue(r.Context(), decisionKey{}, &decided{pol: pol, d: d, t: t})
		rp.ServeHTTP(w, r.WithContext(ctx))
	})
}

// setForwarded applies the forwarding contract (forward.go) to an HTTP/2 request as the
// HTTP/1.1 path does: X-Forwarded-For gets the client's address appended to what the client
// sent, X-Forwarded-Proto is "http", and X-Forwarded-Host passes as received (Rewrite removes
// all three first). ReverseProxy itself drops TE but "trailers".
func setForwarded(pr *httputil.ProxyRequest) {
	if v := pr.In.Header.Values("X-Forwarded-For"); len(v) > 0 {
		pr.Out.Header["X-Forwarded-For"] = []string{strings.Join(v, ", ")}
	}
	pr.SetXForwarded()
	if v := pr.In.Header.Values("X-Forwarded-Host"); len(v) > 0 {
		pr.Out.Header["X-Forwarded-Host"] = v
	} else {
		pr.Out.Header.Del("X-Forwarded-Host")
	}
}

// modifyH2Response adds the CORS headers of the request's decision to the application's answer.
func modifyH2Response(res *http.Response) error {
	dc := res.Request.Context().Value(decisionKey{}).(*decided)
	if dc.d.Action == cors.Actual {
		res.Header.Del(cors.HeaderAllowOrigin)
		res.Header.Del(cors.HeaderAllowCredentials)
		res.Header.Del(cors.HeaderExposeHeaders)
	}
	setCORSHeaders(res.Header, dc.pol, dc.d)
	return nil
}

// setCORSHeaders sets the CORS headers of d and, when a policy is active, merges Vary.
func setCORSHeaders(hdr http.Header, pol *cors.Policy, d cors.Decision) {
	var buf [cors.MaxHeaders]cors.Header
	for _, h := range pol.AppendHeaders(buf[:0], d) {
		hdr.Set(h.Name, h.Value)
	}
	if pol != nil {
		hdr.Set("Vary", cors.MergeVary(strings.Join(hdr.Values("Vary"), ", ")))
	}
}

// serve hands a client connection that opened with the HTTP/2 preface to the HTTP/2 server.
func (h *h2Server) serve(c *clientConn) {
	h.started.Do(func() { go h.srv.Serve(h.ln) })
	hc := &h2Conn{Conn: c.nc, br: c.br, t: c.t, p: h.p}
	select {
	case h.ln.ch <- hc:
	case <-h.ln.done:
		hc.Close()
	}
}

// shutdown drains the HTTP/2 connections (GOAWAY, in-flight streams finish).
func (h *h2Server) shutdown(ctx context.Context) error {
	h.ln.Close()
	err := h.srv.Shutdown(ctx)
	if err != nil {
		h.srv.Close()
	}
	return err
}
