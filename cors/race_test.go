//go:build race

package cors

// raceEnabled: the race detector makes sync.Pool drop items at random, so allocation counts of
// code that pools (regexp's matchers) are not the program's.
const raceEnabled = true
