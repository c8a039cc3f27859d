// Command pause is a test stand-in for the Kubernetes pause image (a pod sandbox's first
// process): as PID 1 of the pod it reaps every child that exits and ends on SIGTERM or SIGINT.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	run(sigs)
}

// run reaps exited children on every SIGCHLD and returns on any other signal.
func run(sigs <-chan os.Signal) {
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return
		}
		for { // reap every exited child; SIGCHLDs coalesce
			var status syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
