// Command pipy is a test stand-in for the flomesh/pipy:latest image of the FSM guide: it runs
// the guide's `pipy -e "pipy().listen(PORT).serveHTTP(new Message('TEXT'))"` (see
// internal/pipystandin) and exits with an error on any other command line. It is not pipy.
package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/cors-webhook/cors-webhook/internal/pipystandin"
)

func main() {
	s, err := pipystandin.ParseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipy (test stand-in):", err)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", s.Port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "pipy (test stand-in):", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "pipy (test stand-in): listening on :%d, answering %q\n", s.Port, s.Body)
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	go func() { <-stop; ln.Close() }()
	pipystandin.Serve(ln, s.Body)
}
