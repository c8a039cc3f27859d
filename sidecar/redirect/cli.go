package redirect

import (
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/cors-webhook/cors-webhook/contract"
)

// Exit codes of [Flags.Run]: 0 done, 1 failed, 2 bad usage.
const (
	ExitOK    = 0
	ExitFail  = 1
	ExitUsage = 2
)

// Flags are the command-line inputs of the redirect. Two commands share them: `cors-init`
// (what injected pods run) and `cors-sidecar redirect` (what pods injected by earlier releases
// run), so both accept the same flags and print the same messages.
type Flags struct {
	ProxyPort       uint
	Ports, Table    string
	DryRun, Cleanup bool
}

// Register adds the flags to fs.
func (fl *Flags) Register(fs *pflag.FlagSet) {
	fs.UintVar(&fl.ProxyPort, "proxy-port", contract.DefaultInboundPort, "the proxy's inbound port, where connections are redirected")
	fs.StringVar(&fl.Ports, "ports", "", "comma-separated application ports whose inbound TCP connections are redirected")
	fs.StringVar(&fl.Table, "table", DefaultTable, "the nftables table (family inet) holding the rules")
	fs.BoolVar(&fl.DryRun, "dry-run", false, "print the rules (nft syntax) instead of installing them")
	fs.BoolVar(&fl.Cleanup, "cleanup", false, "remove the rules (the whole table) instead of installing them")
}

// Run installs (or prints, or removes) the rules the flags describe in the current network
// namespace and returns the exit code; errors go to stderr prefixed with name.
func (fl *Flags) Run(name string, stdout, stderr io.Writer) int {
	if fl.Cleanup {
		if fl.DryRun {
			fmt.Fprintf(stdout, "delete table inet %s\n", fl.Table)
			return ExitOK
		}
		if err := Cleanup(fl.Table); err != nil {
			fmt.Fprintln(stderr, name+":", err)
			return ExitFail
		}
		fmt.Fprintf(stdout, "removed table inet %s\n", fl.Table)
		return ExitOK
	}
	list, err := ParsePorts(fl.Ports)
	if err != nil {
		fmt.Fprintln(stderr, "--ports:", err)
		return ExitUsage
	}
	if fl.ProxyPort == 0 || fl.ProxyPort > 65535 {
		fmt.Fprintln(stderr, "--proxy-port must be in 1..65535")
		return ExitUsage
	}
	rules := Rules{Table: fl.Table, ProxyPort: uint16(fl.ProxyPort), Ports: list}
	if err := rules.Validate(); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return ExitUsage
	}
	if fl.DryRun {
		fmt.Fprint(stdout, rules)
		return ExitOK
	}
	if err := Install(rules); err != nil {
		fmt.Fprintln(stderr, name+":", err)
		return ExitFail
	}
	fmt.Fprintf(stdout, "installed table inet %s: inbound TCP to ports %s redirected to :%d\n",
		rules.Table, contract.FormatPorts(list), rules.ProxyPort)
	return ExitOK
}
