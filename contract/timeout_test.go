package contract

import "testing"

func TestParseUpstreamTimeout(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"90s", "1m30s", true},
		{"15m", "15m0s", true},
		{"0", "0s", true},
		{"1h30m", "1h30m0s", true},
		{"", "", false},
		{"90", "", false},
		{"-1s", "", false},
		{"soon", "", false},
	} {
		got, err := ParseUpstreamTimeout(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseUpstreamTimeout(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
