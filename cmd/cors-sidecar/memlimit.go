package main

import (
	"math"
	"os"
	"runtime/debug"
	"strconv"
)

// memoryHeadroomDivisor: a tenth of the container's memory limit is kept out of the Go
// runtime's memory limit, for what the runtime does not count but the cgroup does: the
// binary's text, kernel socket buffers charged to the container, the logs' page cache.
const memoryHeadroomDivisor = 10

// applyMemoryLimitHeadroom lowers the Go memory limit to 90% of GOMEMLIMIT when GOMEMLIMIT is a
// plain number of bytes: the form a resourceFieldRef to limits.memory renders, which is how the
// injected container sets it (its memory limit). A value with a unit ("100MiB") was chosen by
// hand and is kept as it is. It returns the limit in effect, "none" without one.
func applyMemoryLimitHeadroom() string {
	v := os.Getenv("GOMEMLIMIT")
	n, err := strconv.ParseInt(v, 10, 64)
	if err == nil && n > 0 && n < math.MaxInt64 {
		debug.SetMemoryLimit(n - n/memoryHeadroomDivisor)
	}
	if limit := debug.SetMemoryLimit(-1); limit != math.MaxInt64 {
		return strconv.FormatInt(limit, 10)
	}
	return "none"
}
