package main

import (
	"strings"
	"testing"
)

func TestConvertCommand(t *testing.T) {
	const faithful = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: api
  namespace: shop
  annotations:
    nginx.ingress.kubernetes.io/enable-cors: "true"
    nginx.ingress.kubernetes.io/cors-allow-origin: "https://shop.example.com"
    nginx.ingress.kubernetes.io/cors-max-age: "600"
spec:
  defaultBackend:
    service:
      name: api
      port:
        number: 8080
`
	for _, tt := range []struct {
		name       string
		stdin      string
		args       []string
		code       int
		stdout     []string
		stderr     []string
		validateOK bool
	}{
		{name: "faithful conversion", stdin: faithful, args: []string{"-f", "-", "--with-plugin", "-l", "app=api"}, code: exitOK,
			stdout: []string{"kind: Plugin\n", "kind: PluginChain\n", "matchLabels:\n        app: api", "kind: PluginConfig\n", "exact: https://shop.example.com", "maxAge: 600"},
			stderr: []string{"Ingress shop/api -> PluginConfig shop/api-cors\n", "3 objects: 3 valid, 0 invalid"}, validateOK: true},
		{name: "real-world inputs with scoping the sidecar cannot keep", args: []string{"-f", "../../convert/testdata"}, code: exitInvalid,
			stdout: []string{"name: api-cors", "name: web-cors", "name: http-route-cors-cors", "wildcard: https://*.bar.com:443"},
			stderr: []string{"not carried over: hostnames api.shop.example.com", `not carried over: per-path rules http[0] uri prefix "/api"`}, validateOK: true},
		{name: "no CORS in the input", stdin: "apiVersion: v1\nkind: Service\nmetadata: {name: a}\n", args: []string{"-f", "-"}, code: exitInvalid,
			stderr: []string{"nothing converted"}},
		{name: "bad selector", stdin: faithful, args: []string{"-f", "-", "-l", "a b c"}, code: exitUsage, stderr: []string{"--selector"}},
		{name: "unreadable input", stdin: "kind: [", args: []string{"-f", "-"}, code: exitUsage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := runCommand(t, tt.stdin, append([]string{"convert"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tt.code, stderr)
			}
			for _, s := range tt.stdout {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout)
				}
			}
			for _, s := range tt.stderr {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tt.validateOK {
				// What convert writes, validate accepts.
				if _, verr, vcode := runCommand(t, stdout, "validate", "-f", "-"); vcode != exitOK {
					t.Errorf("validate of the output: exit %d\n%s", vcode, verr)
				}
			}
		})
	}
}
