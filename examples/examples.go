// Package examples holds the manifests of FSM's "CORS via plugins" guide exactly as users apply
// them (manifests/: the namespaces, the cors-policy Plugin, the guide's PluginChain and
// PluginConfig, the curl client and the pipy-ok services) and the two responses the guide
// shows (expected/). The demo and the e2e tests apply the files from this folder; unit tests read
// the embedded copies through [Manifest] and [Expected].
package examples

import (
	"embed"
	"fmt"
)

//go:embed manifests/*.yaml expected/*.txt
var files embed.FS

// File names under manifests/ and expected/.
const (
	Namespaces       = "ns.yaml"
	Plugin           = "cors.yaml"
	PluginChain      = "cors-policy-chain.yaml"
	PluginConfig     = "cors-policy-config.yaml"
	Curl             = "curl.yaml"
	PipyOK           = "pipy-ok.pipy.yaml"
	GetOriginBBB     = "get-origin-bbb.txt"     // the guide's GET with Origin http://www.bbb.com
	OptionsOriginBBB = "options-origin-bbb.txt" // the guide's preflight
)

// Manifest is the text of manifests/name.
func Manifest(name string) string { return mustRead("manifests/" + name) }

// Expected is the text of expected/name: a response as `curl -si` prints it.
func Expected(name string) string { return mustRead("expected/" + name) }

func mustRead(path string) string {
	b, err := files.ReadFile(path)
	if err != nil {
		panic(fmt.Sprintf("examples: %v", err))
	}
	return string(b)
}
