package sidecar

import (
	"strings"
	"testing"
)

// TestClassify: every header the proxy acts on is found whatever its case, and names that
// only share a length or a prefix with one are not.
func TestClassify(t *testing.T) {
	seen := 0
	for n, kinds := range headerKinds {
		for _, k := range kinds {
			seen++
			if len(k.name) != n {
				t.Errorf("%q is filed under length %d", k.name, n)
			}
			for _, name := range []string{k.name, strings.ToUpper(k.name), strings.ToUpper(k.name[:1]) + k.name[1:]} {
				if got := classify([]byte(name)); got != k.kind {
					t.Errorf("classify(%q) = %d, want %d", name, got, k.kind)
				}
			}
			if got := classify([]byte(k.name[:n-1] + "x")); got != hOther && k.name[n-1] != 'x' {
				t.Errorf("classify(%q) = %d, want other", k.name[:n-1]+"x", got)
			}
		}
	}
	if seen != int(hForwardedProto) {
		t.Errorf("%d headers filed, %d kinds besides hOther", seen, hForwardedProto)
	}
	for _, name := range []string{"", "x", "content-type", strings.Repeat("a", 100)} {
		if got := classify([]byte(name)); got != hOther {
			t.Errorf("classify(%q) = %d, want other", name, got)
		}
	}
}
