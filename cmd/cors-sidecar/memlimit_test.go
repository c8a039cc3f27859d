package main

import (
	"math"
	"runtime/debug"
	"testing"
)

func TestMemoryLimitHeadroom(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })
	for _, tc := range []struct {
		env  string
		set  int64 // the limit in effect before, as the runtime read GOMEMLIMIT
		want string
	}{
		{"134217728", 134217728, "120795956"}, // resourceFieldRef of 128Mi: 90%
		{"100MiB", 100 << 20, "104857600"},    // written by hand: kept
		{"", math.MaxInt64, "none"},
		{"off", math.MaxInt64, "none"},
	} {
		t.Setenv("GOMEMLIMIT", tc.env)
		debug.SetMemoryLimit(tc.set)
		if got := applyMemoryLimitHeadroom(); got != tc.want {
			t.Errorf("GOMEMLIMIT=%q: limit %s, want %s", tc.env, got, tc.want)
		}
	}
}
