package sidecar

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cors-webhook/cors-webhook/cors"
)

// Metrics are the sidecar's counters, exposed in the Prometheus text format on the admin port.
// They are plain atomics rather than a Prometheus client registry: the request path increments
// one counter per request and the binary stays small. The zero value is ready to use.
type Metrics struct {
	mu    sync.Mutex
	ports map[uint16]*portStats

	reloads      atomic.Uint64
	reloadErrors atomic.Uint64
	policyLoaded atomic.Bool
	connsOpen    atomic.Int64
	connErrors   atomic.Uint64 // connections closed because no destination could be found
}

// portStats are the per-port counters. A connection resolves its port's stats once, so a
// request only pays for one atomic add.
type portStats struct {
	port      uint16
	decisions [3]atomic.Uint64 // indexed by cors.Action
	cors      corsStats        // requests with an Origin (decisions.go)
	upErrors  atomic.Uint64
}

func (s *portStats) count(a cors.Action) {
	if int(a) < len(s.decisions) {
		s.decisions[a].Add(1)
	}
}

// port returns the counters of a port, creating them on first use.
func (m *Metrics) port(p uint16) *portStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ports == nil {
		m.ports = map[uint16]*portStats{}
	}
	s := m.ports[p]
	if s == nil {
		s = &portStats{port: p}
		m.ports[p] = s
	}
	return s
}

// Requests returns how many requests of a port got a decision, for tests and logs.
func (m *Metrics) Requests(port uint16, a cors.Action) uint64 {
	m.mu.Lock()
	s := m.ports[port]
	m.mu.Unlock()
	if s == nil || int(a) >= len(s.decisions) {
		return 0
	}
	return s.decisions[a].Load()
}

// Reloads returns the number of successful policy loads (the first one included).
func (m *Metrics) Reloads() uint64 { return m.reloads.Load() }

// ReloadErrors returns the number of policy files that could not be loaded.
func (m *Metrics) ReloadErrors() uint64 { return m.reloadErrors.Load() }

// decisionLabel names a cors.Action in the metrics, as the issue words them.
func decisionLabel(a cors.Action) string {
	switch a {
	case cors.Preflight:
		return "preflight"
	case cors.Actual:
		return "actual"
	default:
		return "pass-through"
	}
}

// WritePrometheus writes all metrics in the Prometheus text exposition format (version 0.0.4).
func (m *Metrics) WritePrometheus(w io.Writer) error {
	m.mu.Lock()
	stats := make([]*portStats, 0, len(m.ports))
	for _, s := range m.ports {
		stats = append(stats, s)
	}
	m.mu.Unlock()
	slices.SortFunc(stats, func(a, b *portStats) int { return int(a.port) - int(b.port) })

	bw := bufio.NewWriter(w)
	header := func(name, typ, help string) {
		bw.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
	}
	value := func(name string, v uint64) {
		bw.WriteString(name + " " + strconv.FormatUint(v, 10) + "\n")
	}

	header("cors_sidecar_requests_total", "counter",
		"HTTP requests by original destination port and CORS decision (preflight answered by the sidecar, actual with CORS headers added, pass-through unchanged).")
	for _, s := range stats {
		for _, a := range []cors.Action{cors.Preflight, cors.Actual, cors.PassThrough} {
			value(`cors_sidecar_requests_total{port="`+strconv.Itoa(int(s.port))+`",decision="`+decisionLabel(a)+`"}`,
				s.decisions[a].Load())
		}
	}
	writeCORSDecisions(bw, stats)
	header("cors_sidecar_upstream_errors_total", "counter",
		"Requests answered 502 because the application could not be reached or answered malformed HTTP, by port.")
	for _, s := range stats {
		value(`cors_sidecar_upstream_errors_total{port="`+strconv.Itoa(int(s.port))+`"}`, s.upErrors.Load())
	}
	header("cors_sidecar_policy_reloads_total", "counter", "Policy files loaded successfully, the first load included.")
	value("cors_sidecar_policy_reloads_total", m.reloads.Load())
	header("cors_sidecar_policy_reload_errors_total", "counter",
		"Policy files that could not be read or parsed; the previous policy stays in force.")
	value("cors_sidecar_policy_reload_errors_total", m.reloadErrors.Load())
	header("cors_sidecar_policy_loaded", "gauge", "1 once a policy has been loaded (the sidecar is ready), else 0.")
	loaded := uint64(0)
	if m.policyLoaded.Load() {
		loaded = 1
	}
	value("cors_sidecar_policy_loaded", loaded)
	header("cors_sidecar_connections_open", "gauge", "HTTP/1.x client connections currently open (HTTP/2 connections are served by net/http and not counted).")
	value("cors_sidecar_connections_open", uint64(max(m.connsOpen.Load(), 0)))
	header("cors_sidecar_connection_errors_total", "counter",
		"Client connections closed at once because their original destination could not be determined.")
	value("cors_sidecar_connection_errors_total", m.connErrors.Load())
	return bw.Flush()
}
