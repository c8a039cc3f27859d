package sidecar

import (
	"runtime"
	"testing"
)

// bothPaths runs test with the event loops (where the system has them) and without, so that a
// connection's requests after its first are served by the loop in one and by serveInWait in the
// other.
func bothPaths(t *testing.T, test func(t *testing.T, path func(*Config))) {
	t.Run("event loop", func(t *testing.T) { atLeastTwoProcs(t); test(t, func(*Config) {}) })
	t.Run("goroutines", func(t *testing.T) { test(t, func(c *Config) { c.NoEventLoop = true }) })
}

// atLeastTwoProcs raises GOMAXPROCS to 2 for the test on a one-CPU machine: the event loops need
// a P besides the goroutines' (newEventLoops).
func atLeastTwoProcs(t *testing.T) {
	if prev := runtime.GOMAXPROCS(0); prev < 2 {
		runtime.GOMAXPROCS(2)
		t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	}
}
