package engine

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"

	"github.com/charter-policy/charter/schema"
)

// TestResult is the outcome of one policy test.
type TestResult struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	Passed bool   `json:"passed"`
	// Expect is the expected answer, "allow" or "deny"; Got the answer
	// given, or "error" when the question could not be asked.
	Expect string `json:"expect"`
	Got    string `json:"got"`
	// Error is why the question could not be asked (a malformed URI,
	// an unknown role).
	Error    string   `json:"error,omitempty"`
	Question Question `json:"question"`
	// Decision is the explained decision, kept for failed tests.
	Decision *Decision `json:"decision,omitempty"`
}

// TestReport is the outcome of running a policy's tests, in name order.
type TestReport struct {
	Revision string       `json:"revision"`
	Results  []TestResult `json:"results"`
	Passed   int          `json:"passed"`
	Failed   int          `json:"failed"`
}

// OK reports whether every test that ran passed.
func (r *TestReport) OK() bool { return r.Failed == 0 }

// RunTests builds a snapshot of p and runs its tests whose names match
// filter (all when filter is nil). A test without a time is asked at now.
func RunTests(p *schema.PolicySet, filter *regexp.Regexp, now time.Time) (*TestReport, error) {
	s, err := Build(p, "")
	if err != nil {
		return nil, fmt.Errorf("run tests: %w", err)
	}
	return s.RunTests(p.Tests, filter, now), nil
}

// RunTests runs the given tests against the snapshot; see the function RunTests.
func (s *Snapshot) RunTests(tests map[string]*schema.Test, filter *regexp.Regexp, now time.Time) *TestReport {
	rep := &TestReport{Revision: s.revision, Results: []TestResult{}}
	names := sortedKeys(tests)
	for _, name := range names {
		if filter != nil && !filter.MatchString(name) {
			continue
		}
		t := tests[name]
		q := Question{User: t.User, Resource: t.Resource, Action: t.Action, Role: t.Role, Assign: t.Assign,
			Environment: t.Environment, Time: now}
		if t.Time != nil {
			q.Time = *t.Time
		}
		res := TestResult{Name: name, Source: t.Pos.Short(), Expect: t.Expect, Question: q}
		d, err := s.Decide(q)
		switch {
		case err != nil:
			res.Got, res.Error = "error", err.Error()
		default:
			res.Got = allowDeny(d.Allowed)
			res.Passed = res.Got == t.Expect
		}
		if !res.Passed && err == nil {
			if ex, err := s.Explain(q); err == nil {
				res.Decision = &ex
			}
		}
		if res.Passed {
			rep.Passed++
		} else {
			rep.Failed++
		}
		rep.Results = append(rep.Results, res)
	}
	return rep
}

// Failures returns the failed results.
func (r *TestReport) Failures() []TestResult {
	return slices.DeleteFunc(slices.Clone(r.Results), func(t TestResult) bool { return t.Passed })
}

// WriteText renders the report: one line per failed test, followed by its
// decision trace indented, and the closing line "N passed, N failed".
func (r *TestReport) WriteText(w io.Writer) error {
	for _, res := range r.Failures() {
		line := fmt.Sprintf("FAIL %s (%s): %s expected %s, got %s", res.Name, res.Source, describe(res.Question), res.Expect, res.Got)
		if res.Error != "" {
			line += ": " + res.Error
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
		if res.Decision != nil {
			if err := WriteTrace(w, "    ", res.Decision.Trace); err != nil {
				return err
			}
		}
	}
	_, err := fmt.Fprintf(w, "%d passed, %d failed\n", r.Passed, r.Failed)
	return err
}

// String renders the question in words: "ann may do documents:read on
// documents/d1", "ann holds role User on …", "ann may assign role User on …".
func (q Question) String() string {
	switch {
	case q.Role != "":
		return fmt.Sprintf("%s holds role %s on %s", q.User, q.Role, q.Resource)
	case q.Assign != "":
		return fmt.Sprintf("%s may assign role %s on %s", q.User, q.Assign, q.Resource)
	}
	return fmt.Sprintf("%s may do %s on %s", q.User, q.Action, q.Resource)
}

// describe renders a question in words, with its environment.
func describe(q Question) string {
	s := q.String()
	if q.Environment != "" {
		s += " in " + q.Environment
	}
	return s + ":"
}
