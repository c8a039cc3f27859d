package server

import (
	"github.com/cors-webhook/cors-webhook/inject"
)

// LeaderElectionID names the controller's election lease.
const LeaderElectionID = "cors-webhook.cors-webhook.io"

// injectionSettings are inj with the CORS plugin names of --cors-plugins when inj names none,
// so that --cors-plugins means one thing in admission and in the controller.
func injectionSettings(inj inject.Settings, corsPlugins []string) inject.Settings {
	if len(inj.CORSPlugins) == 0 {
		inj.CORSPlugins = corsPlugins
	}
	return inj
}

// endpoints are the bind addresses of /metrics and of the probes, defaulted.
func endpoints(metrics, probe string) (string, string) {
	if metrics == "" {
		metrics = ":8080"
	}
	if probe == "" {
		probe = ":8081"
	}
	return metrics, probe
}
