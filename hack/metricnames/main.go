// Command metricnames lists the metrics that the chart's Grafana dashboards and Prometheus alert
// rules query, so that a test can check each against what the processes really expose. It reads
// rendered manifests (helm template) on stdin, finds the PromQL expressions of PrometheusRules
// (spec.groups[].rules[].expr) and of dashboard ConfigMaps (every "expr" in a *.json data
// item), parses each with Prometheus' own PromQL parser and prints one line per metric name:
// the name, a tab, and where it is queried. An expression that does not parse is an error.
//
// It is a module of its own: the PromQL parser's module brings many dependencies that the
// product has no use for.
package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

func main() {
	uses, err := collect(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "metricnames:", err)
		os.Exit(1)
	}
	w := bufio.NewWriter(os.Stdout)
	for _, u := range uses {
		fmt.Fprintf(w, "%s\t%s\n", u.Metric, u.Where)
	}
	w.Flush()
}

// Use is one metric named by one query.
type Use struct {
	Metric string
	Where  string
}

// collect reads the manifests and returns every metric they query, sorted by name, then place.
func collect(r io.Reader) ([]Use, error) {
	var uses []Use
	dec := yaml.NewDecoder(r)
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		exprs, err := expressions(doc)
		if err != nil {
			return nil, err
		}
		for _, e := range exprs {
			names, err := metricNames(e.expr)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", e.where, err)
			}
			for _, n := range names {
				uses = append(uses, Use{Metric: n, Where: e.where})
			}
		}
	}
	slices.SortFunc(uses, func(a, b Use) int {
		if c := strings.Compare(a.Metric, b.Metric); c != 0 {
			return c
		}
		return strings.Compare(a.Where, b.Where)
	})
	return slices.Compact(uses), nil
}
