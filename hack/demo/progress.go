package main

import (
	"fmt"
	"strings"
	"time"
)

// waitFor polls check every 200ms until it reports done, showing one progress line: rewritten
// in place on a terminal, otherwise printed again whenever the status changes. An error from
// check ends the wait.
func (d *demo) waitFor(what string, timeout time.Duration, check func() (done bool, status string, err error)) error {
	start := time.Now()
	deadline := start.Add(timeout)
	spinner := `|/-\`
	last := ""
	width := 0
	for i := 0; ; i++ {
		done, status, err := check()
		if err != nil {
			if d.tty && width > 0 {
				fmt.Fprintln(d.out)
			}
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		elapsed := time.Since(start).Round(100 * time.Millisecond)
		if done {
			line := fmt.Sprintf("waiting for %s: done in %s (%s)", what, elapsed, status)
			if d.tty {
				fmt.Fprintf(d.out, "\r%s%s\n", line, strings.Repeat(" ", max(0, width-len(line))))
			} else {
				fmt.Fprintln(d.out, line)
			}
			return nil
		}
		if d.tty {
			line := fmt.Sprintf("%c waiting for %s: %s (%s)", spinner[i%len(spinner)], what, status, elapsed)
			fmt.Fprintf(d.out, "\r%s%s", line, strings.Repeat(" ", max(0, width-len(line))))
			width = len(line)
		} else if status != last {
			fmt.Fprintf(d.out, "waiting for %s: %s (%s)\n", what, status, elapsed)
		}
		last = status
		if time.Now().After(deadline) {
			if d.tty {
				fmt.Fprintln(d.out)
			}
			return fmt.Errorf("timed out after %s waiting for %s: %s", timeout, what, status)
		}
		select {
		case <-d.ctx.Done():
			if d.tty {
				fmt.Fprintln(d.out)
			}
			return d.ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
