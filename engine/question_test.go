package engine

import (
	"errors"
	"strings"
	"testing"
)

// TestUserIDValidated: every question validates its user ID as the
// schema's #UserID does (1 to 256 characters, none below U+0020), so that
// the CLI and policy tests reject what the HTTP API rejects.
func TestUserIDValidated(t *testing.T) {
	s, err := Build(std().rec("r", "alice", stmt("User", "documents")).p, "rev1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user string
		ok   bool
	}{
		{"alice", true},
		{"ünïcode user+1@example.com", true},
		{strings.Repeat("ü", 256), true},
		{strings.Repeat("a", 256), true},
		{"a\x7fb", true}, // DEL is not below U+0020
		{"", false},
		{"bo\x01b", false},
		{"bob\n", false},
		{"\x00", false},
		{"tab\there", false},
		{strings.Repeat("ü", 257), false},
		{strings.Repeat("a", 257), false},
		{"bad \xff utf8", false},
	} {
		asks := map[string]func() error{
			"Check":       func() error { _, err := s.Check(ask(c.user, "documents/d1", "documents:read")); return err },
			"Decide":      func() error { _, err := s.Decide(ask(c.user, "documents/d1", "documents:read")); return err },
			"Explain":     func() error { _, err := s.Explain(askRole(c.user, "documents/d1", "User")); return err },
			"Assignable":  func() error { _, err := s.Assignable(c.user, "User", "documents/d1", ""); return err },
			"Roles":       func() error { _, err := s.Roles(c.user, "documents/d1", ""); return err },
			"Permissions": func() error { _, err := s.Permissions(c.user, "documents/d1", ""); return err },
			"Resources": func() error {
				_, err := s.Resources(ResourceQuery{User: c.user, Action: "documents:read", Collection: "documents"})
				return err
			},
		}
		for name, f := range asks {
			err := f()
			if c.ok {
				if err != nil {
					t.Errorf("%s(%q): %v", name, c.user, err)
				}
				continue
			}
			var qe *QuestionError
			if !errors.As(err, &qe) || qe.Arg != "user" {
				t.Errorf("%s(%q) = %v, want a QuestionError about the user", name, c.user, err)
			}
		}
		if got := CheckUserID(c.user) == nil; got != c.ok {
			t.Errorf("CheckUserID(%q) ok = %v, want %v", c.user, got, c.ok)
		}
	}
}
