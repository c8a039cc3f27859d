package sidecar

import (
	"bufio"
	"strconv"
	"sync/atomic"

	"github.com/cors-webhook/cors-webhook/cors"
)

// corsOutcome is what the CORS policy said to a request that carried an Origin, for
// cors_sidecar_cors_decisions_total: what an operator asks when a browser reports a CORS
// error ("was the preflight denied? did the origin match?"), which the request-level
// decision (preflight, actual, pass-through) does not tell apart from requests without an
// Origin.
type corsOutcome uint8

const (
	// preflightAnswered: the sidecar answered an OPTIONS request for a listed origin.
	preflightAnswered corsOutcome = iota
	// preflightDenied: a CORS preflight (OPTIONS with access-control-request-method) from an
	// origin no entry lists: forwarded without CORS headers, or answered without them under
	// unmatchedPreflights: Ignore. The browser refuses the actual request.
	preflightDenied
	// originMatched: any other request from a listed origin (CORS headers added).
	originMatched
	// originUnmatched: any other request from an origin no entry lists (no CORS headers).
	originUnmatched
	numCORSOutcomes
)

var corsOutcomeLabels = [numCORSOutcomes]string{"preflight-answered", "preflight-denied", "origin-matched", "origin-unmatched"}

// Policy label values: whether the port has a policy at all. A request with an Origin on a port
// without one is answered as if no origin matched (origin-unmatched, preflight-denied).
const (
	policyNone = iota
	policyConfigured
	numPolicyStates
)

var policyLabels = [numPolicyStates]string{"none", "configured"}

// corsStats are a port's counters of CORS outcomes, by policy state.
type corsStats [numPolicyStates][numCORSOutcomes]atomic.Uint64

// corsOutcomeOf returns the outcome of a decided request, and false for a request without an Origin
// (not a CORS request: the browser did not ask).
func corsOutcomeOf(r *cors.Request, d cors.Decision) (corsOutcome, bool) {
	switch {
	case r.Origin == "":
		return 0, false
	case d.Action == cors.Preflight && d.Origin != "":
		return preflightAnswered, true
	case r.Method == "OPTIONS" && r.RequestMethod != "":
		return preflightDenied, true
	case d.Action == cors.Actual:
		return originMatched, true
	default:
		return originUnmatched, true
	}
}

// record counts one decided request: its decision, and its CORS outcome when it carried an
// Origin. It is the request path's only metrics call: a few atomic adds, no allocation.
func (s *portStats) record(pol *cors.Policy, r *cors.Request, d cors.Decision) {
	s.count(d.Action)
	o, ok := corsOutcomeOf(r, d)
	if !ok {
		return
	}
	state := policyNone
	if pol != nil {
		state = policyConfigured
	}
	s.cors[state][o].Add(1)
}

// corsDecisions returns a port's count of one outcome, for tests.
func (m *Metrics) corsDecisions(port uint16, configured bool, o corsOutcome) uint64 {
	m.mu.Lock()
	s := m.ports[port]
	m.mu.Unlock()
	if s == nil {
		return 0
	}
	state := policyNone
	if configured {
		state = policyConfigured
	}
	return s.cors[state][o].Load()
}

// writeCORSDecisions writes cors_sidecar_cors_decisions_total for every port seen, every
// outcome and policy state included, so that rates exist from a port's first request.
func writeCORSDecisions(bw *bufio.Writer, stats []*portStats) {
	const name = "cors_sidecar_cors_decisions_total"
	bw.WriteString("# HELP " + name + " Requests with an Origin header by original destination port, policy (configured, or none on the port) and outcome (preflight-answered, preflight-denied, origin-matched, origin-unmatched).\n")
	bw.WriteString("# TYPE " + name + " counter\n")
	for _, s := range stats {
		port := strconv.Itoa(int(s.port))
		for state := range numPolicyStates {
			for o := range numCORSOutcomes {
				bw.WriteString(name + `{port="` + port + `",policy="` + policyLabels[state] + `",outcome="` + corsOutcomeLabels[o] + `"} ` +
					strconv.FormatUint(s.cors[state][o].Load(), 10) + "\n")
			}
		}
	}
}
