package engine

import (
	"fmt"
	"io"
	"strings"
)

// Step kinds of a decision trace.
const (
	StepQuestion   = "question"
	StepGroup      = "group"
	StepRecord     = "record"
	StepStatement  = "statement"
	StepRole       = "role"
	StepServer     = "server"
	StepResource   = "resource"
	StepPermission = "permission"
	StepPolicy     = "policy"
	StepDecision   = "decision"
)

// Step is one step of a decision trace. It names the entity it is about
// (Kind and ID) and where it is declared (Source, "file:line"), the raw
// Result of evaluating it and, when logic or enforcement changed it, the
// Final result. Detail carries the arithmetic ("consensus 2 grant / 2
// deny: deny") or the reason in words. Depth nests policies of aggregates
// and permissions of servers.
type Step struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Source string `json:"source,omitempty"`
	Depth  int    `json:"depth,omitempty"`
	Result string `json:"result,omitempty"`
	Final  string `json:"final,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// tracer records steps when a question is explained. A nil tracer records
// nothing, so the hot path pays one nil check per step.
type tracer struct {
	steps []Step
	depth int
}

func (t *tracer) add(s Step) {
	if t == nil {
		return
	}
	s.Depth += t.depth
	t.steps = append(t.steps, s)
}

func (t *tracer) on() bool { return t != nil }

func (t *tracer) indent(d int) {
	if t != nil {
		t.depth += d
	}
}

// WriteTrace renders a trace as text, one step a line, indented by depth
// after the given prefix.
func WriteTrace(w io.Writer, prefix string, steps []Step) error {
	var b strings.Builder
	for _, s := range steps {
		b.WriteString(prefix)
		b.WriteString(strings.Repeat("  ", s.Depth))
		b.WriteString(s.String())
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String renders the step on one line: "kind ID (source): result → final: detail".
func (s Step) String() string {
	var b strings.Builder
	b.WriteString(s.Kind)
	if s.ID != "" {
		b.WriteByte(' ')
		b.WriteString(s.ID)
	}
	if s.Source != "" {
		fmt.Fprintf(&b, " (%s)", s.Source)
	}
	if s.Result != "" {
		b.WriteString(": ")
		b.WriteString(s.Result)
		if s.Final != "" && s.Final != s.Result {
			b.WriteString(" → ")
			b.WriteString(s.Final)
		}
	}
	if s.Detail != "" {
		if s.Result != "" {
			b.WriteString(" — ")
		} else {
			b.WriteString(": ")
		}
		b.WriteString(s.Detail)
	}
	return b.String()
}

func (t *tracer) stepsOrNil() []Step {
	if t == nil {
		return nil
	}
	return t.steps
}
