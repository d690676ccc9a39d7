package main

import (
	"strings"
	"testing"
)

// TestCheckBadUser: charter check rejects a user ID that the schema's
// #UserID rejects (here a control character) as a bad argument, exit 2,
// as the HTTP API answers 400: the engine validates user IDs itself.
func TestCheckBadUser(t *testing.T) {
	for _, user := range []string{"bo\x01b", "bob\n", strings.Repeat("u", 257)} {
		code, stdout, stderr := runCLI(t, "check", "--dir", "../../policies-example", user, "documents/d1", "documents:read")
		if code != exitFailure || stdout != "" || !strings.Contains(stderr, "user ID") {
			t.Errorf("check %q: exit %d, stdout %q, stderr %q; want exit %d and a message about the user ID", user, code, stdout, stderr, exitFailure)
		}
	}
}
