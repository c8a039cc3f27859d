package contract

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Port is a TCP port number as the contract writes it. The type parameter lets Kubernetes code
// (int32 ports) and the sidecar (uint16 ports) share one format.
type Port interface{ ~int32 | ~uint16 | ~int }

// FormatPorts renders a port list the one way the contract writes it ("8080,8443"): sorted,
// without duplicates, comma-separated, no spaces. An empty list is "".
func FormatPorts[P Port](ports []P) string {
	sorted := slices.Clone(ports)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	var b strings.Builder
	for i, p := range sorted {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

// ParsePorts reads a port list: comma-separated decimal ports in 1..65535, spaces around
// entries and empty entries allowed (hand-written annotations). The ports are returned sorted
// and without duplicates. Entries that are not ports are skipped and each reported in bad, so
// that a caller can refuse the list (the redirect command) or carry on without them (the
// injector, which reports them as problems).
func ParsePorts(s string) (ports []int32, bad []BadPort) {
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			bad = append(bad, BadPort(f))
			continue
		}
		ports = append(ports, int32(n))
	}
	slices.Sort(ports)
	return slices.Compact(ports), bad
}

// BadPort is an entry of a port list that is not a port number.
type BadPort string

func (b BadPort) Error() string { return fmt.Sprintf("%q is not a port number in 1..65535", string(b)) }
