package main

import (
	"github.com/cors-webhook/cors-webhook/contract"
	"github.com/cors-webhook/cors-webhook/explain"
)

// redirectLine is the describe text line of the redirect.
func redirectLine(s *explain.Redirect) string {
	who := "cors-init (init mode)"
	if s.Mode == contract.RedirectModeCNI {
		who = "the node's cors-cni plugin (cni mode)"
	}
	switch {
	case s.Validated == nil:
		return "installed by " + who
	case *s.Validated && s.Mode == contract.RedirectModeCNI:
		return "installed by " + who + "; validated: the sidecar's startup probe reached it through the redirect"
	case *s.Validated:
		return "installed by " + who + "; validated: cors-init completed"
	case s.Mode == contract.RedirectModeCNI:
		return "installed by " + who + "; NOT validated: the sidecar has not started, so the redirect is missing or the pod is starting (the controller recreates it once its node's cors-cni is Ready)"
	}
	return "installed by " + who + "; NOT validated: cors-init has not completed"
}
