package sidecar

import (
	"runtime"
	"sync/atomic"
	"time"
)

// loopTick is how often the loop checks its deadlines (Config.IdleTimeout, UpstreamTimeout,
// UpstreamIdleTimeout) and how long it waits at most when idle.
const loopTick = 250 * time.Millisecond

// loopSpin is how long the loop waits in epoll_wait holding its P before it waits the usual
// way (which gives the P up): long enough that a busy loop never gives it up, short enough
// that an idle one does not hold it.
const loopSpin = 2 // milliseconds

// loopYield is how long a busy loop keeps its P before it lets other goroutines run.
const loopYield = time.Millisecond

// loopMaxHead is the largest request head the loop sends: a write of it to an idle application
// connection cannot be cut short by a full socket buffer.
const loopMaxHead = smallHeadBytes

// eventLoops are the proxy's event loops (eventLoop), one per P: a connection goes to them in
// turn.
type eventLoops struct {
	all  []*eventLoop
	next atomic.Uint32

	adopted, handedBack atomic.Int64 // connections taken from and given back to goroutines
}

// newEventLoops returns the proxy's event loops, or nil when it has none: on a system without
// them, with a single P (a loop keeps its P while busy, and the goroutines need one too), or
// when Config.NoEventLoop is set.
func newEventLoops(p *Proxy) *eventLoops {
	n := runtime.GOMAXPROCS(0)
	if !loopsSupported || p.cfg.NoEventLoop || n < 2 {
		return nil
	}
	ls := &eventLoops{all: make([]*eventLoop, n)}
	for i := range ls.all {
		ls.all[i] = &eventLoop{p: p}
	}
	return ls
}

// EventLoops is how many event loops the proxy has (0: every connection stays on a goroutine).
func (p *Proxy) EventLoops() int {
	if p.loops == nil {
		return 0
	}
	return len(p.loops.all)
}

// adopt hands c to a loop (eventLoop.adopt).
func (ls *eventLoops) adopt(c *clientConn) bool {
	if !ls.all[int(ls.next.Add(1))%len(ls.all)].adopt(c) {
		return false
	}
	ls.adopted.Add(1)
	return true
}

func (ls *eventLoops) drain() {
	if ls != nil {
		for _, l := range ls.all {
			l.drain()
		}
	}
}

func (ls *eventLoops) closeAll() {
	if ls != nil {
		for _, l := range ls.all {
			l.closeAll()
		}
	}
}

func (ls *eventLoops) waitStopped() {
	if ls != nil {
		for _, l := range ls.all {
			l.waitStopped()
		}
	}
}
