package engine

import (
	"strings"
	"testing"
)

// TestTraceShowsDeclaredActions: a trace shows a role entry's action as the
// role declares it, beside the entry's file:line (SPEC 5), while the asked
// action is shown normalized, as it is matched.
func TestTraceShowsDeclaredActions(t *testing.T) {
	b := newPB().
		role("Docs", "Documents:* +grant").      // role at test.cue:1, entry at test.cue:2
		role("Reader", "documents:READ").        // 3, 4
		role("Shouter", "DOCUMENTS:READ +grant") // 5, 6
	p := b.rec("r", "alice", stmt("Docs", "documents")).p
	s, err := Build(p, "rev1")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		q    Question
		want []string // steps rendered by Step.String, each of which must appear
	}{
		{ask("alice", "documents/d1", "Documents:Read"), []string{
			"role Docs (test.cue:2): allow — entry Documents:* matches documents:read with allow: true",
		}},
		{askAssign("alice", "documents/d1", "Reader"), []string{
			"role Reader (test.cue:4): allow — entry documents:READ needs grant or delegate on a covering action: held through Documents:*",
		}},
		{askAssign("alice", "documents/d1", "Shouter"), []string{
			"role Shouter (test.cue:6): deny — entry DOCUMENTS:READ needs delegate on a covering action: not held",
		}},
	} {
		d, err := s.Explain(c.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, st := range d.Trace {
			got = append(got, st.String())
		}
		for _, w := range c.want {
			found := false
			for _, g := range got {
				found = found || strings.TrimSpace(g) == w
			}
			if !found {
				t.Errorf("%s: no step\n  %s\nin\n  %s", c.q, w, strings.Join(got, "\n  "))
			}
		}
	}
}
