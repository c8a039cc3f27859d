package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The requests of the guide's "Test" section, and one whose origin no allowOrigins entry
// matches. expect names the seed's expected response (examples/expected), if any.
var testRequests = []struct {
	comment string
	args    []string // after the URL
	expect  string
}{
	{"the guide's first test", []string{"-H", "Origin: http://www.bbb.com"}, "get-origin-bbb.txt"},
	{"the guide's second test: a preflight, answered by the sidecar", []string{"-H", "Origin: http://www.bbb.com", "-X", "OPTIONS"}, "options-origin-bbb.txt"},
	{"an origin that matches no allowOrigins entry: passed through, no access-control-* headers", []string{"-H", "Origin: http://www.ccc.com"}, ""},
}

// step5Test runs the guide's "Test" section as it is written: the curl pod's name in
// curl_client, then kubectl exec curl through cluster DNS and the pipy-ok Service.
func (d *demo) step5Test() error {
	curlPod, err := d.readyPod("curl", map[string]string{"app": "curl"})
	if err != nil {
		return err
	}
	fmt.Fprintln(d.out, `$ curl_client="$(kubectl get pod -n curl -l app=curl -o jsonpath='{.items[0].metadata.name}')"`)
	res, err := d.kubectl("", "get", "pod", "-n", "curl", "-l", "app=curl", "-o", "jsonpath={.items[0].metadata.name}")
	if err != nil {
		return err
	}
	if res.ExitCode != 0 || res.Stdout != curlPod.Name {
		return fmt.Errorf("curl_client: %q, want %s: %s", res.Stdout, curlPod.Name, res.Stderr)
	}
	for _, r := range testRequests {
		fmt.Fprintf(d.out, "\n# %s\n", r.comment)
		args := append([]string{"exec", curlPod.Name, "-n", "curl", "-c", "curl", "--", "curl", "-ksi", "http://pipy-ok.pipy:8080"}, r.args...)
		fmt.Fprintf(d.out, "$ kubectl exec ${curl_client} %s\n", shellJoin(args[2:]))
		res, err := d.kubectl("", args...)
		if err != nil {
			return err
		}
		// As a terminal shows it: CRLF as line ends, and the prompt on a line of its own.
		got := strings.ReplaceAll(res.Stdout, "\r\n", "\n")
		fmt.Fprint(d.out, got, res.Stderr)
		if !strings.HasSuffix(got, "\n") {
			fmt.Fprintln(d.out)
		}
		if res.ExitCode != 0 {
			return fmt.Errorf("kubectl exec: exit %d", res.ExitCode)
		}
		// The Service balances over v1 and v2: either body is right.
		if err := d.checkResponse(got, r.expect, false); err != nil {
			return err
		}
	}
	d.fact("the guide's %d curl requests through kubectl exec, cluster DNS and the Service VIP answered as the guide shows", len(testRequests))
	return nil
}

// checkResponse compares a `curl -si` output with the seed's expected response: status, every
// header value (header order, date, vary and server may differ: ARCHITECTURE section 5) and,
// when exactBody, the body. Without an expected response it checks that no access-control-*
// header was added.
func (d *demo) checkResponse(got, expectFile string, exactBody bool) error {
	g := parseResponse(got)
	if expectFile == "" {
		for name := range g.headers {
			if strings.HasPrefix(name, "access-control-") {
				return fmt.Errorf("a non-matching origin got %s", name)
			}
		}
		if g.status != "HTTP/1.1 200 OK" || !strings.HasPrefix(g.body, "Hi, I am PIPY-OK") {
			return fmt.Errorf("a non-matching origin got %q %q, want the application's answer", g.status, g.body)
		}
		return nil
	}
	raw, err := os.ReadFile(filepath.Join(d.seed, "expected", expectFile))
	if err != nil {
		return err
	}
	w := parseResponse(string(raw))
	var problems []string
	if g.status != w.status {
		problems = append(problems, fmt.Sprintf("status %q, want %q", g.status, w.status))
	}
	for name, want := range w.headers {
		if name == "date" || name == "vary" || name == "server" {
			continue
		}
		if g.headers[name] != want {
			problems = append(problems, fmt.Sprintf("%s: %q, want %q", name, g.headers[name], want))
		}
	}
	if exactBody && g.body != w.body || !exactBody && (g.body == "") != (w.body == "") {
		problems = append(problems, fmt.Sprintf("body %q, want %q", g.body, w.body))
	}
	if len(problems) > 0 {
		return fmt.Errorf("the response differs from the guide's (%s): %s", expectFile, strings.Join(problems, "; "))
	}
	return nil
}

type response struct {
	status  string
	headers map[string]string
	body    string
}

func parseResponse(s string) response {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	head, body, _ := strings.Cut(s, "\n\n")
	lines := strings.Split(head, "\n")
	r := response{status: strings.TrimSpace(lines[0]), headers: map[string]string{}, body: strings.TrimRight(body, "\n")}
	for _, l := range lines[1:] {
		if name, value, ok := strings.Cut(l, ":"); ok {
			r.headers[strings.ToLower(strings.TrimSpace(name))] = strings.TrimSpace(value)
		}
	}
	return r
}
