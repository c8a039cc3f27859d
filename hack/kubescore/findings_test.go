package main

import (
	"strings"
	"testing"
)

// out is kube-score JSON output trimmed to what criticalFindings reads.
const out = `[{
  "type_meta": {"kind": "Deployment", "apiVersion": "apps/v1"},
  "object_meta": {"name": "web"},
  "checks": [
    {"check": {"id": "container-resources"}, "grade": 1, "skipped": false, "comments": [
      {"path": "app", "summary": "CPU limit is not set"},
      {"path": "app", "summary": "Memory limit is not set"}]},
    {"check": {"id": "pod-networkpolicy"}, "grade": 1, "skipped": false, "comments": [
      {"path": "", "summary": "The pod does not have a matching NetworkPolicy"}]},
    {"check": {"id": "deployment-replicas"}, "grade": 5, "skipped": false, "comments": [
      {"path": "", "summary": "Deployment few replicas"}]},
    {"check": {"id": "container-image-tag"}, "grade": 1, "skipped": true, "comments": []},
    {"check": {"id": "pod-probes"}, "grade": 10, "skipped": false, "comments": null}
  ]}]`

func TestCriticalFindings(t *testing.T) {
	got, err := criticalFindings("r", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"[r] container-resources Deployment/web container app: CPU limit is not set",
		"[r] container-resources Deployment/web container app: Memory limit is not set",
		"[r] pod-networkpolicy Deployment/web: The pod does not have a matching NetworkPolicy",
	}
	if len(got) != len(want) {
		t.Fatalf("got %d findings %v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("finding %d = %q, want %q", i, got[i], want[i])
		}
	}
	if _, err := criticalFindings("r", []byte("{")); err == nil {
		t.Error("invalid JSON accepted")
	}
}

func TestFilter(t *testing.T) {
	findings, err := criticalFindings("r", []byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name                      string
		exceptions                []exception
		accepted, failing, unused int
	}{
		{name: "none", failing: 3},
		{name: "summary narrows a check to one finding",
			exceptions: []exception{{Check: "container-resources", Object: "Deployment/web", Container: "app", Summary: "CPU limit is not set", Reason: "r"}},
			accepted:   1, failing: 2},
		{name: "without summary the whole check of the container",
			exceptions: []exception{{Check: "container-resources", Object: "Deployment/*", Container: "a*", Reason: "r"}},
			accepted:   2, failing: 1},
		{name: "no container: only the pod-level finding",
			exceptions: []exception{{Check: "pod-networkpolicy", Object: "Deployment/web", Reason: "r"}, {Check: "container-resources", Object: "Deployment/web", Reason: "r"}},
			accepted:   1, failing: 2, unused: 1},
		{name: "other object",
			exceptions: []exception{{Check: "pod-networkpolicy", Object: "StatefulSet/web", Reason: "r"}},
			failing:    3, unused: 1},
		{name: "other check",
			exceptions: []exception{{Check: "container-image-tag", Object: "Deployment/web", Container: "app", Reason: "r"}},
			failing:    3, unused: 1},
		{name: "overlapping exceptions are both used, the finding accepted once",
			exceptions: []exception{{Check: "pod-networkpolicy", Object: "Deployment/web", Reason: "a"}, {Check: "pod-networkpolicy", Object: "*/*", Reason: "b"}},
			accepted:   1, failing: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := filter(findings, tc.exceptions)
			if len(res.accepted) != tc.accepted || len(res.failing) != tc.failing || len(res.unused) != tc.unused {
				t.Errorf("accepted %d, failing %d, unused %d; want %d, %d, %d\n%+v",
					len(res.accepted), len(res.failing), len(res.unused), tc.accepted, tc.failing, tc.unused, res)
			}
			for _, f := range res.accepted {
				if f.reason == "" {
					t.Errorf("%s accepted without a reason", f)
				}
			}
		})
	}
}

func TestParseExceptions(t *testing.T) {
	for _, tc := range []struct {
		name, in, err string
	}{
		{name: "valid", in: "exceptions:\n- check: pod-networkpolicy\n  object: Deployment/x\n  reason: because\n"},
		{name: "empty file", in: ""},
		{name: "no reason", in: "exceptions:\n- check: pod-networkpolicy\n  object: Deployment/x\n", err: "reason are required"},
		{name: "unknown field", in: "exceptions:\n- check: c\n  object: o\n  reason: r\n  why: typo\n", err: "unknown field"},
		{name: "bad pattern", in: "exceptions:\n- check: c\n  object: \"[\"\n  reason: r\n", err: "pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseExceptions([]byte(tc.in))
			if tc.err == "" && err != nil {
				t.Fatal(err)
			}
			if tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("error %v, want one containing %q", err, tc.err)
			}
		})
	}
}
