package main

import (
	"slices"
	"strings"
	"testing"
)

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr    string
		want    []string
		wantErr string
	}{
		{expr: `up`, want: []string{"up"}},
		{expr: `absent(up{job="x"} == 1)`, want: []string{"up"}},
		{expr: `sum by (le) (rate(a_bucket[5m])) / on() group_left sum(b)`, want: []string{"a_bucket", "b"}},
		{expr: `min(c > 0) - time() < 14 * 86400`, want: []string{"c"}},
		{expr: `{__name__="d", x="y"} + d`, want: []string{"d"}},
		{expr: `"outcome"`, want: nil},
		{expr: `{job="x"}`, wantErr: "names no metric"},
		{expr: `{__name__=~"cors_.*"}`, wantErr: "names no metric"},
		{expr: `sum(rate(x[5m]`, wantErr: "unclosed"},
	} {
		got, err := metricNames(tc.expr)
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%s: error %v, want one with %q", tc.expr, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case !slices.Equal(got, tc.want):
			t.Errorf("%s: %v, want %v", tc.expr, got, tc.want)
		}
	}
}

func TestCollect(t *testing.T) {
	manifests := `
apiVersion: v1
kind: ConfigMap
metadata: {name: dash}
data:
  notes.txt: "not a dashboard"
  d.json: |
    {"panels": [{"type": "row", "title": "r", "panels": []},
      {"title": "p1", "targets": [{"expr": "sum(rate(reqs_total[$__rate_interval]))"}]},
      {"title": "p2", "targets": [{"expr": "histogram_quantile(0.99, sum by (le) (rate(lat_bucket[$__rate_interval])))"}, {"expr": "reqs_total"}]}]}
---
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata: {name: rules}
spec:
  groups:
    - name: g
      rules:
        - alert: Down
          expr: absent(up{job="x"} == 1)
        - record: job:reqs:rate5m
          expr: sum(rate(reqs_total[5m]))
---
apiVersion: v1
kind: Service
metadata: {name: ignored}
`
	uses, err := collect(strings.NewReader(manifests))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, u := range uses {
		got = append(got, u.Metric+" @ "+u.Where)
	}
	want := []string{
		`lat_bucket @ dashboard d.json panel "p2"`,
		`reqs_total @ PrometheusRule rules rule job:reqs:rate5m`,
		`reqs_total @ dashboard d.json panel "p1"`,
		`reqs_total @ dashboard d.json panel "p2"`,
		`up @ PrometheusRule rules rule Down`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	if _, err := collect(strings.NewReader("kind: PrometheusRule\nmetadata: {name: r}\nspec: {groups: [{rules: [{alert: A, expr: 'rate(x['}]}]}\n")); err == nil || !strings.Contains(err.Error(), "rule A") {
		t.Errorf("a rule that does not parse: %v", err)
	}
}
