package sidecar

import (
	"strings"
	"testing"
)

func TestParseChunkLine(t *testing.T) {
	for _, tc := range []struct {
		line   string
		size   int64
		digits string
		ok     bool
	}{
		{"3", 3, "3", true},
		{"0003", 3, "0003", true},
		{"fF", 255, "fF", true},
		{"3 ", 3, "3", true},
		{"3;a", 3, "3", true},
		{"3 ; a = b ; c=\"x y\"", 3, "3", true},
		{"3;a=\"q\\\"d\"", 3, "3", true},
		{"", 0, "", false},
		{"zz", 0, "", false},
		{"3;", 0, "", false},
		{"3;=v", 0, "", false},
		{"3;a=", 0, "", false},
		{"3;a b", 0, "", false},
		{"3;a=b\rc", 0, "", false},
		{"3;a=\x01", 0, "", false},
		{"3;a=\"open", 0, "", false},
		{"3 x", 0, "", false},
		{"1000000000000000", 0, "", false}, // 16 digits
	} {
		size, digits, err := parseChunkLine([]byte(tc.line))
		if ok := err == nil; ok != tc.ok || ok && (size != tc.size || string(digits) != tc.digits) {
			t.Errorf("parseChunkLine(%q) = %d %q %v, want %d %q ok=%v", tc.line, size, digits, err, tc.size, tc.digits, tc.ok)
		}
	}
}

func TestValidHost(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"", true},
		{"example.com", true},
		{"example.com:8080", true},
		{"example.com:", true},
		{"127.0.0.1", true},
		{"[::1]", true},
		{"[::1]:80", true},
		{"a%20b", true},
		{"a b", false},
		{"a/b", false},
		{"u@a", false},
		{"a:b", false},
		{"[::1", false},
		{"[v1.x]", false},
		{"[1.2.3.4]", false},
		{"[::1]x", false},
		{"a%2", false},
		{"a\x7f", false},
	} {
		if got := validHost([]byte(tc.host)); got != tc.ok {
			t.Errorf("validHost(%q) = %v, want %v", tc.host, got, tc.ok)
		}
	}
}

func TestValidTarget(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		ok             bool
	}{
		{"GET", "/", true},
		{"GET", "/a?b=%zz", true},
		{"GET", "http://a/b", true},
		{"OPTIONS", "*", true},
		{"CONNECT", "a:443", true},
		{"GET", "*", false},
		{"GET", "a", false},
		{"GET", "/%zz", false},
		{"GET", "/a\x01", false},
		{"CONNECT", "/a", false},
		{"CONNECT", "%00:", false},
		{"GET", "1ttp://a/", false},
		{"GET", "aA://#0/", false},
		{"GET", "http://u@a/", false},
		{"GET", "http://a%20b/", false},
		{"GET", "http://[::1]:8080/", true},
		{"GET", "http://a:80?q", true},
	} {
		if got := validTarget(tc.method, []byte(tc.target)); got != tc.ok {
			t.Errorf("validTarget(%s %q) = %v, want %v", tc.method, tc.target, got, tc.ok)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		v     string
		minor int
		err   error
	}{
		{"HTTP/1.1", 1, nil},
		{"HTTP/1.0", 0, nil},
		{"HTTP/1.2", 1, nil},
		{"HTTP/1.9", 1, nil},
		{"HTTP/2.0", 0, errVersion},
		{"HTTP/0.9", 0, errVersion},
		{"HTTP/1.1 ", 0, errBadRequest},
		{"HTTP/1.x", 0, errBadRequest},
		{"http/1.1", 0, errBadRequest},
	} {
		minor, err := parseVersion([]byte(tc.v))
		if minor != tc.minor || err != tc.err {
			t.Errorf("parseVersion(%q) = %d %v, want %d %v", tc.v, minor, err, tc.minor, tc.err)
		}
	}
}

func TestDropHopFields(t *testing.T) {
	head := "GET / HTTP/1.1\r\n"
	lines := []string{"Host: x", "X-Hop: 1", "Content-Length: 3", "X-Keep: 2", "x-hop: 3"}
	buf := []byte(head)
	var spans []fieldSpan
	for _, l := range lines {
		spans = append(spans, fieldSpan{len(buf), len(buf) + len(l) + 2, strings.IndexByte(l, ':')})
		buf = append(buf, l+"\r\n"...)
	}
	for _, tc := range []struct{ conn, want string }{
		{"close", head + "Host: x\r\nX-Hop: 1\r\nContent-Length: 3\r\nX-Keep: 2\r\nx-hop: 3\r\n"},
		{"keep-alive, X-HOP", head + "Host: x\r\nContent-Length: 3\r\nX-Keep: 2\r\n"},
		{"x-hop, host, content-length", head + "Host: x\r\nContent-Length: 3\r\nX-Keep: 2\r\n"},
	} {
		got := dropHopFields(append([]byte(nil), buf...), spans, []byte(tc.conn))
		if string(got) != tc.want {
			t.Errorf("Connection: %s: %q, want %q", tc.conn, got, tc.want)
		}
	}
}
