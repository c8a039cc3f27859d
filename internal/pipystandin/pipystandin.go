// Package pipystandin does what the FSM guide's pipy script does, so tests run the guide's
// pipy-ok deployments without pipy: `pipy -e "pipy().listen(PORT).serveHTTP(new Message('TEXT'))"`
// answers every HTTP request on PORT with status 200 and TEXT. Only that script is understood;
// anything else is an error, so a test can never pass on a script the stand-in ignored.
package pipystandin

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"
)

// Script is what the guide's script says: the port it listens on and the body it answers with.
type Script struct {
	Port int
	Body string
}

// script matches the guide's one-pipeline script, whitespace and newlines allowed between the
// calls, the message in single or double quotes without escapes.
var script = regexp.MustCompile(`^\s*pipy\(\s*\)\s*\.listen\(\s*(\d+)\s*\)\s*\.serveHTTP\(\s*new\s+Message\(\s*(?:'([^'\\]*)'|"([^"\\]*)")\s*\)\s*\)\s*;?\s*$`)

// ParseScript reads the guide's script.
func ParseScript(s string) (Script, error) {
	m := script.FindStringSubmatch(s)
	if m == nil {
		return Script{}, fmt.Errorf("the pipy stand-in understands only `pipy().listen(PORT).serveHTTP(new Message('TEXT'))`, not %q", s)
	}
	port, err := strconv.Atoi(m[1])
	if err != nil || port < 1 || port > 65535 {
		return Script{}, fmt.Errorf("listen(%s): not a port", m[1])
	}
	return Script{Port: port, Body: m[2] + m[3]}, nil
}

// ParseArgs reads pipy's command line after the program name: `-e SCRIPT` (or `--eval SCRIPT`).
func ParseArgs(args []string) (Script, error) {
	if len(args) != 2 || (args[0] != "-e" && args[0] != "--eval") {
		return Script{}, fmt.Errorf("the pipy stand-in runs only `pipy -e SCRIPT`, not %q", args)
	}
	return ParseScript(args[1])
}

// Serve answers every HTTP/1.1 request on ln as pipy's `serveHTTP(new Message(body))` does:
// status 200, content-length and the body, on keep-alive connections, in pipy's lower-case
// header names. It returns when ln is closed, after the open connections end.
func Serve(ln net.Listener, body string) {
	response := fmt.Sprintf("HTTP/1.1 200 OK\r\ncontent-length: %d\r\nconnection: keep-alive\r\n\r\n%s", len(body), body)
	var conns sync.WaitGroup
	defer conns.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				_ = c.SetReadDeadline(time.Now().Add(time.Minute))
				req, err := http.ReadRequest(r)
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				req.Body.Close()
				if _, err := io.WriteString(c, response); err != nil || req.Close {
					return
				}
			}
		}()
	}
}
