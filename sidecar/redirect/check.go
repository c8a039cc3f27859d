package redirect

import (
	"errors"
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"

	"github.com/cors-webhook/cors-webhook/contract"
)

// ErrNotInstalled is wrapped by Check when the table is absent.
var ErrNotInstalled = errors.New("redirect not installed")

// Check reports whether the table that Install(r) creates is in place: the table, its
// prerouting chain with exactly one rule redirecting to r.ProxyPort, and the port set holding
// exactly r's ports. A CNI CHECK and a diagnosis ask this; nil means the redirect holds.
func Check(r Rules, opts ...nftables.ConnOption) error {
	if err := r.Validate(); err != nil {
		return err
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	t, err := c.ListTableOfFamily(r.table(), nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("table inet %s: %w", r.table(), ErrNotInstalled)
	}
	ch, err := c.ListChain(t, ChainName)
	if err != nil {
		return fmt.Errorf("table inet %s has no chain %s: %w", t.Name, ChainName, err)
	}
	rules, err := c.GetRules(t, ch)
	if err != nil {
		return fmt.Errorf("rules of chain %s: %w", ChainName, err)
	}
	if len(rules) != 1 || redirectPort(rules[0]) != r.ProxyPort {
		return fmt.Errorf("chain %s of table inet %s does not hold the one rule redirecting to :%d", ChainName, t.Name, r.ProxyPort)
	}
	set, err := c.GetSetByName(t, SetName)
	if err != nil {
		return fmt.Errorf("set %s: %w", SetName, err)
	}
	elems, err := c.GetSetElements(set)
	if err != nil {
		return fmt.Errorf("elements of set %s: %w", SetName, err)
	}
	got := make([]uint16, 0, len(elems))
	for _, e := range elems {
		if len(e.Key) == 2 {
			got = append(got, binaryutil.BigEndian.Uint16(e.Key))
		}
	}
	slices.Sort(got)
	want := slices.Compact(slices.Sorted(slices.Values(r.Ports)))
	if !slices.Equal(got, want) {
		return fmt.Errorf("set %s holds ports %s, want %s", SetName, formatPorts(got), formatPorts(want))
	}
	return nil
}

// redirectPort is the port the rule's immediate loads for its redir, or 0.
func redirectPort(rule *nftables.Rule) uint16 {
	var port uint16
	for _, e := range rule.Exprs {
		switch e := e.(type) {
		case *expr.Immediate:
			if len(e.Data) == 2 {
				port = binaryutil.BigEndian.Uint16(e.Data)
			}
		case *expr.Redir:
			return port
		}
	}
	return 0
}

func formatPorts(ports []uint16) string {
	if s := contract.FormatPorts(ports); s != "" {
		return s
	}
	return "none"
}
