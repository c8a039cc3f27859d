package sidecar

// Serving inside one poller wait.
//
// Go's poller forgets a socket's readiness each time a read begins, so a plain Read of an idle
// keep-alive connection must first try the socket, find nothing (EAGAIN) and only then wait: a
// system call per request that finds nothing. Within one RawConn read the readiness is kept
// across the callback's calls, so once a read has found the socket empty (sockIO.drained), the
// callback can wait at once: whatever arrives later wakes it. That is what serveInWait does
// for a keep-alive connection's requests after the first, as long as each can be served
// without waiting for the client: its head arrived whole, and it has no body and is no
// upgrade or CONNECT. Anything else (a head in pieces, a body, a tunnel, a malformed request)
// goes back to the plain path, which waits for the client as usual; so does every error
// answer that lingers to read what the client still sends.

// waitResult is how serveInWait ended.
type waitResult uint8

const (
	waitClosed waitResult = iota // the connection is done
	waitPlain                    // a request began whose head is not whole yet: the plain path reads it
	waitParsed                   // a request was read (c.req, or the error reading it) for the plain path to answer
	waitLoop                     // the event loop may take the connection (loopMayTake)
)

type waitState struct {
	idle   bool // the connection was set idle for the request being waited for
	read   bool // a read happened in this wait, so sockIO.drained speaks for it
	result waitResult
	err    error
}

// serveInWait serves the connection's next requests from inside one RawConn read of the client
// socket, until one needs the plain path or the connection ends.
func (c *clientConn) serveInWait() (waitResult, error) {
	c.wait = waitState{}
	c.sock.inWait = true
	err := c.sock.raw.Read(c.waitFn)
	c.sock.inWait = false
	if err != nil {
		return waitClosed, nil // the idle deadline, Shutdown's expired deadline, or Close
	}
	return c.wait.result, c.wait.err
}

// waitStep is serveInWait's RawConn callback: false means "wait until the client's socket is
// readable, then call again". It must not wait for the client itself: its reads go through
// sockIO.readNow.
func (c *clientConn) waitStep(fd uintptr) bool {
	c.sock.fd = fd
	for {
		if !c.wait.idle {
			if !c.enterIdle(false) {
				return c.endWait(waitClosed)
			}
			c.wait.idle = true
		}
		if c.br.Buffered() == 0 {
			if c.wait.read && c.sock.drained {
				c.sock.drained = false // the call after the wake reads
				return false
			}
			c.wait.read = true
			if _, err := c.br.Peek(1); err == errWouldBlock {
				continue
			} else if err != nil {
				return c.endWait(waitClosed) // the client went away
			}
		}
		c.wait.idle = false
		if !c.state.CompareAndSwap(stateIdle, stateActive) {
			return c.endWait(waitClosed) // Shutdown closed it while the first byte arrived
		}
		if !c.headBuffered() {
			return c.endWait(waitPlain)
		}
		r := &c.req
		if err := c.readRequest(r); err != nil || r.body != bodyNone || r.upgrade || r.method == "CONNECT" {
			c.wait.err = err
			return c.endWait(waitParsed)
		}
		if !c.respond(r, nil) {
			return c.endWait(waitClosed)
		}
		c.trim()
		if c.loopMayTake() {
			return c.endWait(waitLoop)
		}
	}
}

func (c *clientConn) endWait(res waitResult) bool {
	c.wait.result = res
	return true
}
