package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"sigs.k8s.io/yaml"
)

// gradeCritical is kube-score's grade for CRITICAL (scorecard.GradeCritical).
const gradeCritical = 1

// scoredObject is the part of kube-score's JSON output (--output-format json, version v2) that
// is read here.
type scoredObject struct {
	TypeMeta struct {
		Kind string `json:"kind"`
	} `json:"type_meta"`
	ObjectMeta struct {
		Name string `json:"name"`
	} `json:"object_meta"`
	Checks []struct {
		Check struct {
			ID string `json:"id"`
		} `json:"check"`
		Grade    int  `json:"grade"`
		Skipped  bool `json:"skipped"`
		Comments []struct {
			Path    string `json:"path"`
			Summary string `json:"summary"`
		} `json:"comments"`
	} `json:"checks"`
}

// finding is one CRITICAL comment of one check on one object of one rendering.
type finding struct {
	rendering string
	check     string
	object    string // Kind/name
	container string // empty for findings about the pod or the object
	summary   string
	reason    string // of the exception that accepted it
}

func (f finding) String() string {
	where := f.object
	if f.container != "" {
		where += " container " + f.container
	}
	return fmt.Sprintf("[%s] %s %s: %s", f.rendering, f.check, where, f.summary)
}

// criticalFindings lists the CRITICAL findings of kube-score's JSON output.
func criticalFindings(rendering string, out []byte) ([]finding, error) {
	var objects []scoredObject
	if err := json.Unmarshal(out, &objects); err != nil {
		return nil, fmt.Errorf("kube-score output: %w", err)
	}
	var res []finding
	for _, o := range objects {
		object := o.TypeMeta.Kind + "/" + o.ObjectMeta.Name
		for _, c := range o.Checks {
			if c.Skipped || c.Grade != gradeCritical {
				continue
			}
			if len(c.Comments) == 0 {
				res = append(res, finding{rendering: rendering, check: c.Check.ID, object: object})
			}
			for _, cm := range c.Comments {
				res = append(res, finding{rendering: rendering, check: c.Check.ID, object: object,
					container: cm.Path, summary: cm.Summary})
			}
		}
	}
	return res, nil
}

// exception accepts the findings of one check on matching objects and containers.
type exception struct {
	// Check is a kube-score check ID (`kube-score list`), e.g. container-resources.
	Check string `json:"check"`
	// Object is Kind/name; path.Match patterns, e.g. Deployment/pipy-ok-*.
	Object string `json:"object"`
	// Container is the container name (a path.Match pattern); empty for findings about the
	// pod or the object itself.
	Container string `json:"container,omitempty"`
	// Summary, when set, limits the exception to one of the check's findings, e.g. "CPU limit
	// is not set" of container-resources, which also reports missing memory limits.
	Summary string `json:"summary,omitempty"`
	// Reason says why the finding is accepted.
	Reason string `json:"reason"`
}

func (e exception) String() string {
	s := e.Check + " " + e.Object
	if e.Container != "" {
		s += " container " + e.Container
	}
	if e.Summary != "" {
		s += fmt.Sprintf(" %q", e.Summary)
	}
	return s
}

func (e exception) matches(f finding) bool {
	if e.Check != f.check || (e.Summary != "" && e.Summary != f.summary) {
		return false
	}
	if ok, _ := path.Match(e.Object, f.object); !ok {
		return false
	}
	if e.Container == "" {
		return f.container == ""
	}
	ok, _ := path.Match(e.Container, f.container)
	return ok
}

// parseExceptions reads the exceptions file: a YAML list under the key "exceptions".
func parseExceptions(raw []byte) ([]exception, error) {
	var doc struct {
		Exceptions []exception `json:"exceptions"`
	}
	if err := yaml.UnmarshalStrict(raw, &doc); err != nil {
		return nil, err
	}
	var errs []error
	for i, e := range doc.Exceptions {
		if e.Check == "" || e.Object == "" || e.Reason == "" {
			errs = append(errs, fmt.Errorf("exceptions[%d] (%s): check, object and reason are required", i, e))
		}
		for _, p := range []string{e.Object, e.Container} {
			if _, err := path.Match(p, ""); err != nil {
				errs = append(errs, fmt.Errorf("exceptions[%d]: pattern %q: %w", i, p, err))
			}
		}
	}
	return doc.Exceptions, errors.Join(errs...)
}

type filtered struct {
	accepted []finding   // with the reason of the first matching exception
	failing  []finding   // matched by no exception
	unused   []exception // matching no finding: stale, to remove
}

// filter sorts findings into accepted and failing, and reports exceptions that accept nothing.
func filter(findings []finding, exceptions []exception) filtered {
	var res filtered
	used := make([]bool, len(exceptions))
	for _, f := range findings {
		accepted := false
		for i, e := range exceptions {
			if e.matches(f) {
				used[i] = true
				if !accepted {
					f.reason = e.Reason
					res.accepted = append(res.accepted, f)
					accepted = true
				}
			}
		}
		if !accepted {
			res.failing = append(res.failing, f)
		}
	}
	for i, e := range exceptions {
		if !used[i] {
			res.unused = append(res.unused, e)
		}
	}
	return res
}
