package engine

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/charter-policy/charter/schema/match"
)

// Layers that decide a question (SPEC 2.6, last paragraph).
const (
	LayerRecords        = "records"
	LayerResourceServer = "resourceServer"
)

// ErrUnknownRole is wrapped by the error for a role or assign question
// about a role the snapshot does not hold.
var ErrUnknownRole = errors.New("unknown role")

// ErrNoQuestion is wrapped when a question sets none, or more than one, of
// Action, Role and Assign.
var ErrNoQuestion = errors.New("exactly one of action, role and assign must be set")

// QuestionError reports a malformed question and names the argument at
// fault: "user", "resource", "action", "role", "assign", "question" (none or
// several of action, role and assign; both for a user listing), for a
// listing "collection", "limit" or "cursor", or for Grants "subject".
type QuestionError struct {
	Arg string
	Err error
}

// Error names the argument and the reason: `invalid action: action "documents:*": …`.
func (e *QuestionError) Error() string { return "invalid " + e.Arg + ": " + e.Err.Error() }

// Unwrap returns the reason, such as match.ErrWildcardAction or ErrUnknownRole.
func (e *QuestionError) Unwrap() error { return e.Err }

// Question is one authorization question. Exactly one of Action, Role and
// Assign is set: may User do Action on Resource (Check), does User hold
// Role on Resource (Roles), may User assign Assign on Resource to others
// (Assignable).
type Question struct {
	User     string `json:"userId"`
	Resource string `json:"resourceUri"`
	Action   string `json:"action,omitempty"`
	Role     string `json:"role,omitempty"`
	Assign   string `json:"assign,omitempty"`
	// Environment excludes records tagged with another environment (SPEC 2.7).
	Environment string `json:"environment,omitempty"`
	// Time is the time of the question for time policies; zero means now.
	Time time.Time `json:"time,omitzero"`
}

// Decision is the answer to a question, with the revision of the snapshot
// that made it, the layer that decided and, when explained, the trace.
type Decision struct {
	Allowed  bool   `json:"allowed"`
	Revision string `json:"revision"`
	Layer    string `json:"layer"`
	Trace    []Step `json:"trace,omitempty"`
}

// MaxUserIDLen bounds a user ID, in characters (the schema's #UserID).
const MaxUserIDLen = 256

// Reasons a user ID is invalid (SPEC 1, #UserID), wrapped by the
// QuestionError of a question about it.
var (
	ErrEmptyUserID   = errors.New("user ID is empty")
	ErrUserIDTooLong = errors.New("user ID is longer than 256 characters")
	ErrUserIDControl = errors.New("user ID holds a control character")
	ErrUserIDUTF8    = errors.New("user ID is not valid UTF-8")
)

// CheckUserID reports why id is not a user ID as the schema's #UserID
// defines it: 1 to MaxUserIDLen characters of UTF-8, none of them a control
// character below U+0020. It returns nil for a valid ID.
func CheckUserID(id string) error {
	if id == "" {
		return ErrEmptyUserID
	}
	if len(id) <= MaxUserIDLen {
		// The common case: short ASCII, one pass, no decoding.
		i := 0
		for ; i < len(id) && id[i] < utf8.RuneSelf; i++ {
			if id[i] < 0x20 {
				return ErrUserIDControl
			}
		}
		if i == len(id) {
			return nil
		}
	}
	if !utf8.ValidString(id) {
		return ErrUserIDUTF8
	}
	n := 0
	for _, c := range id {
		if c < 0x20 {
			return ErrUserIDControl
		}
		n++
	}
	if n > MaxUserIDLen {
		return ErrUserIDTooLong
	}
	return nil
}

// Check answers whether q.User may do q.Action on q.Resource (SPEC 2.4,
// 2.6). It records no trace; see Explain.
func (s *Snapshot) Check(q Question) (Decision, error) {
	uri, err := parseUserResource(q.User, "resource", q.Resource)
	if err != nil {
		return Decision{}, err
	}
	action, err := parseAction(q.Action)
	if err != nil {
		return Decision{}, err
	}
	var e evalCtx
	s.initEval(&e, &q, uri, nil)
	return e.decideAction(action), nil
}

// Decide answers a question of any kind without a trace.
func (s *Snapshot) Decide(q Question) (Decision, error) { return s.decide(&q, nil) }

// Explain answers a question of any kind with its decision trace.
func (s *Snapshot) Explain(q Question) (Decision, error) {
	tr := &tracer{}
	d, err := s.decide(&q, tr)
	if err != nil {
		return Decision{}, err
	}
	d.Trace = tr.steps
	if d.Trace == nil {
		d.Trace = []Step{}
	}
	return d, nil
}

func (s *Snapshot) decide(q *Question, tr *tracer) (Decision, error) {
	n := 0
	for _, v := range []string{q.Action, q.Role, q.Assign} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return Decision{}, &QuestionError{Arg: "question", Err: ErrNoQuestion}
	}
	uri, err := parseUserResource(q.User, "resource", q.Resource)
	if err != nil {
		return Decision{}, err
	}
	switch {
	case q.Action != "":
		action, err := parseAction(q.Action)
		if err != nil {
			return Decision{}, err
		}
		e := s.newEval(q, uri, tr)
		e.traceQuestion("may " + q.User + " do " + action + " on " + uri)
		return e.decideAction(action), nil
	case q.Role != "":
		if s.roles[q.Role] == nil {
			return Decision{}, &QuestionError{Arg: "role", Err: fmt.Errorf("%w %q", ErrUnknownRole, q.Role)}
		}
		e := s.newEval(q, uri, tr)
		e.traceQuestion("does " + q.User + " hold role " + q.Role + " on " + uri)
		roles := e.heldRoles()
		held := slices.Contains(roles, q.Role)
		if e.tr.on() {
			e.tr.add(Step{Kind: StepDecision, ID: LayerRecords, Result: allowDeny(held), Detail: "holds [" + strings.Join(roles, ", ") + "]"})
		}
		return Decision{Allowed: held, Revision: s.revision, Layer: LayerRecords}, nil
	default:
		role := s.roles[q.Assign]
		if role == nil {
			return Decision{}, &QuestionError{Arg: "assign", Err: fmt.Errorf("%w %q", ErrUnknownRole, q.Assign)}
		}
		e := s.newEval(q, uri, tr)
		e.traceQuestion("may " + q.User + " assign role " + q.Assign + " on " + uri)
		ok := e.assignable(role)
		e.tr.add(Step{Kind: StepDecision, ID: LayerRecords, Result: allowDeny(ok)})
		return Decision{Allowed: ok, Revision: s.revision, Layer: LayerRecords}, nil
	}
}

// parseUser returns the QuestionError of an invalid user ID, or nil.
func parseUser(id string) error {
	if err := CheckUserID(id); err != nil {
		return &QuestionError{Arg: "user", Err: err}
	}
	return nil
}

// parseUserResource validates the user a question is about and the
// resource URI it asks on (named arg in an error), and returns the URI
// normalized. Every question and listing starts with it.
func parseUserResource(user, arg, resource string) (string, error) {
	if err := parseUser(user); err != nil {
		return "", err
	}
	return parseURI(arg, resource)
}

func parseURI(arg, r string) (string, error) {
	uri, err := match.ParseURI(r)
	if err != nil {
		return "", &QuestionError{Arg: arg, Err: err}
	}
	return uri, nil
}

func parseAction(a string) (string, error) {
	action, err := match.ParseAction(a)
	if err != nil {
		return "", &QuestionError{Arg: "action", Err: err}
	}
	return action, nil
}

func allowDeny(ok bool) string {
	if ok {
		return "allow"
	}
	return "deny"
}

func grantDeny(ok bool) string {
	if ok {
		return "grant"
	}
	return "deny"
}
