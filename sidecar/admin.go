package sidecar

import (
	"net/http"

	"github.com/cors-webhook/cors-webhook/contract"
)

// AdminHandler serves the admin port:
//   - /healthz: 200 while the process serves (liveness);
//   - /readyz: 200 once a policy is loaded and until shutdown begins, else 503 (readiness: the
//     pod receives traffic only when the sidecar enforces its policy);
//   - /metrics: the Prometheus text exposition of m.
//
// draining may be nil.
func AdminHandler(store *PolicyStore, m *Metrics, draining func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+contract.StartupPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET "+contract.ReadinessPath, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		switch {
		case draining != nil && draining():
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("shutting down\n"))
		case !store.Loaded():
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("no policy loaded yet\n"))
		default:
			w.Write([]byte("ok\n"))
		}
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m.WritePrometheus(w)
	})
	return mux
}
