// Package redirect installs the nftables rules that send a pod's inbound HTTP traffic to the
// cors-sidecar proxy: one table of its own, one NAT prerouting chain, one rule that redirects
// TCP connections arriving on a non-loopback interface for the chosen ports to the proxy port.
//
// It talks netlink through github.com/google/nftables, so the init container's image needs
// neither the nft nor the iptables binary. Only traffic arriving from outside the pod is
// redirected: the proxy's own connections to 127.0.0.1:<port> never pass prerouting on a
// non-loopback interface, so they cannot loop back into the proxy.
package redirect

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/cors-webhook/cors-webhook/contract"
)

// Names of what Install creates. The table is ours alone, so installing and removing it never
// touches rules of other owners (a CNI, kube-proxy in the pod's namespace, a mesh).
const (
	DefaultTable = "cors_sidecar"
	ChainName    = "prerouting"
	SetName      = "redirect_ports"
)

// Rules describes the redirect.
type Rules struct {
	// Table is the nftables table (family inet: IPv4 and IPv6); empty means DefaultTable.
	Table string
	// ProxyPort is where redirected connections go: the proxy's inbound port.
	ProxyPort uint16
	// Ports are the application ports whose inbound connections are redirected (any order;
	// duplicates are ignored).
	Ports []uint16
}

func (r Rules) table() string {
	if r.Table == "" {
		return DefaultTable
	}
	return r.Table
}

// Validate checks the rules make sense: ports given, the proxy port not among them (that would
// redirect the proxy to itself), a table name nft accepts.
func (r Rules) Validate() error {
	var errs []error
	if r.ProxyPort == 0 {
		errs = append(errs, errors.New("the proxy port must be in 1..65535"))
	}
	if len(r.Ports) == 0 {
		errs = append(errs, errors.New("at least one port to redirect is required"))
	}
	for _, p := range r.Ports {
		switch {
		case p == 0:
			errs = append(errs, errors.New("port 0 cannot be redirected"))
		case p == r.ProxyPort:
			errs = append(errs, fmt.Errorf("port %d is the proxy port itself: redirecting it would loop", p))
		}
	}
	t := r.table()
	if len(t) > 32 || !isIdent(t) {
		errs = append(errs, fmt.Errorf("table name %q: want letters, digits and _ (at most 32), starting with a letter", t))
	}
	return errors.Join(errs...)
}

func isIdent(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case (c >= '0' && c <= '9' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// ParsePorts parses a comma-separated list of ports ("8080,8443"); duplicates are dropped and
// the result is sorted.
func ParsePorts(s string) ([]uint16, error) {
	ports, bad := contract.ParsePorts(s)
	if len(bad) > 0 {
		return nil, fmt.Errorf("port %w", bad[0])
	}
	out := make([]uint16, len(ports))
	for i, p := range ports {
		out[i] = uint16(p)
	}
	return out, nil
}

// String renders the rules in nft syntax, exactly as `nft list table inet <table>` shows them
// once installed, and a valid input for `nft -f`, so an operator can inspect or reproduce them.
// ("tcp dport" carries the implicit "meta l4proto tcp" that Install spells out.)
func (r Rules) String() string {
	ports := slices.Clone(r.Ports)
	slices.Sort(ports)
	ports = slices.Compact(ports)
	elems := make([]string, len(ports))
	for i, p := range ports {
		elems[i] = strconv.Itoa(int(p))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {\n", r.table())
	fmt.Fprintf(&b, "\tset %s {\n\t\ttype inet_service\n\t\telements = { %s }\n\t}\n\n", SetName, strings.Join(elems, ", "))
	fmt.Fprintf(&b, "\tchain %s {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n", ChainName)
	fmt.Fprintf(&b, "\t\tiifname != \"lo\" tcp dport @%s redirect to :%d\n\t}\n}\n", SetName, r.ProxyPort)
	return b.String()
}

// Install replaces the table atomically with the rules: one netlink batch adds the table (a
// no-op when it exists), deletes it with whatever it held, and creates it anew. Running it again
// therefore converges on the same rules (an init container re-run after a pod restart), and a
// packet never sees a half-installed table. opts select the network namespace in tests.
func Install(r Rules, opts ...nftables.ConnOption) error {
	if err := r.Validate(); err != nil {
		return err
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	t := &nftables.Table{Name: r.table(), Family: nftables.TableFamilyINet}
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	accept := nftables.ChainPolicyAccept
	ch := c.AddChain(&nftables.Chain{
		Name:     ChainName,
		Table:    t,
		Type:     nftables.ChainTypeNAT,
		Hooknum:  nftables.ChainHookPrerouting,
		Priority: nftables.ChainPriorityNATDest,
		Policy:   &accept,
	})
	set := &nftables.Set{Table: t, Name: SetName, KeyType: nftables.TypeInetService}
	ports := slices.Compact(slices.Sorted(slices.Values(r.Ports)))
	elems := make([]nftables.SetElement, len(ports))
	for i, p := range ports {
		elems[i] = nftables.SetElement{Key: binaryutil.BigEndian.PutUint16(p)}
	}
	if err := c.AddSet(set, elems); err != nil {
		return fmt.Errorf("nftables set: %w", err)
	}
	c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: ruleExprs(set, r.ProxyPort)})
	if err := c.Flush(); err != nil {
		return fmt.Errorf("installing nftables table inet %s: %w (the redirect needs CAP_NET_ADMIN)", t.Name, err)
	}
	return nil
}

// ruleExprs is `iifname != "lo" tcp dport @set redirect to :port` as the expressions nft itself
// generates for it (`nft --debug=netlink`).
func ruleExprs(set *nftables.Set, port uint16) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname("lo")},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID},
		&expr.Immediate{Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
		&expr.Redir{RegisterProtoMin: 1, RegisterProtoMax: 1, Flags: unix.NF_NAT_RANGE_PROTO_SPECIFIED},
	}
}

// ifname pads an interface name to IFNAMSIZ, as the kernel stores it.
func ifname(n string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, n)
	return b
}

// Cleanup removes the table and everything in it. A missing table is not an error.
func Cleanup(table string, opts ...nftables.ConnOption) error {
	if table == "" {
		table = DefaultTable
	}
	c, err := nftables.New(opts...)
	if err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	t := &nftables.Table{Name: table, Family: nftables.TableFamilyINet}
	c.AddTable(t) // so that deleting an absent table is not an error
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("removing nftables table inet %s: %w", table, err)
	}
	return nil
}
