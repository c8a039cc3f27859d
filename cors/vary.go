package cors

import "strings"

// MergeVary returns the Vary header value to send when a policy is active.
//
// Responses of a port with a CORS policy differ by Origin (allowed or not, and the echoed
// value), so a shared cache must key on it or it would serve one origin's answer to another
// (docs/design.md section 5, point 4; the one intended difference from FSM). existing is the response's current
// Vary value, with several Vary lines joined by ", ". It is returned as it is when it already
// lists Origin (case-insensitively) or "*" (which varies on everything); otherwise Origin is
// added: "Origin" for an empty value, else existing + ", Origin". MergeVary allocates only when
// it has to add Origin to a non-empty value.
func MergeVary(existing string) string {
	rest := existing
	for rest != "" {
		var tok string
		tok, rest, _ = strings.Cut(rest, ",")
		tok = strings.Trim(tok, " \t")
		if tok == "*" || strings.EqualFold(tok, "Origin") {
			return existing
		}
	}
	trimmed := strings.TrimRight(existing, " \t,")
	if strings.Trim(trimmed, " \t,") == "" {
		return "Origin"
	}
	return trimmed + ", Origin"
}
