package pipystandin

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"testing"
)

// guideScript is the script of the guide's pipy-ok-v1 deployment, as YAML's `|` block gives it.
const guideScript = "pipy()\n.listen(8080)\n.serveHTTP(new Message('Hi, I am PIPY-OK v1!'))\n"

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want Script
		ok   bool
	}{
		{"guide", []string{"-e", guideScript}, Script{8080, "Hi, I am PIPY-OK v1!"}, true},
		{"one line", []string{"-e", "pipy().listen(9000).serveHTTP(new Message('x'))"}, Script{9000, "x"}, true},
		{"double quotes", []string{"--eval", `pipy().listen(1).serveHTTP(new Message("a b"))`}, Script{1, "a b"}, true},
		{"empty body", []string{"-e", "pipy().listen(80).serveHTTP(new Message(''))"}, Script{80, ""}, true},
		{"no -e", []string{guideScript}, Script{}, false},
		{"script file", []string{"main.js"}, Script{}, false},
		{"extra args", []string{"-e", guideScript, "--admin-port=6060"}, Script{}, false},
		{"other pipeline", []string{"-e", "pipy().listen(8080).demuxHTTP().to($=>$.serveHTTP(new Message('x')))"}, Script{}, false},
		{"port too large", []string{"-e", "pipy().listen(70000).serveHTTP(new Message('x'))"}, Script{}, false},
		{"escape", []string{"-e", `pipy().listen(80).serveHTTP(new Message('it\'s'))`}, Script{}, false},
		{"trailing code", []string{"-e", guideScript + "pipy().listen(81)"}, Script{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseArgs(tc.args)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseArgs(%q) error = %v, want ok=%v", tc.args, err, tc.ok)
			}
			if got != tc.want {
				t.Errorf("ParseArgs(%q) = %+v, want %+v", tc.args, got, tc.want)
			}
		})
	}
}

func TestServeAnswersLikePipy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { Serve(ln, "Hi, I am PIPY-OK v1!"); close(done) }()
	defer func() { ln.Close(); <-done }()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	for i := range 2 { // two requests on one keep-alive connection
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: pipy-ok.pipy:8080\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(body) != "Hi, I am PIPY-OK v1!" || resp.Header.Get("Connection") != "keep-alive" {
			t.Errorf("request %d: %d %q %v", i, resp.StatusCode, body, resp.Header)
		}
	}
}
