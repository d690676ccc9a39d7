package engine

import (
	"sync"
	"testing"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/change"
)

// TestConcurrentReaders: readers of a snapshot keep their answers while
// newer snapshots are applied on top of it, with no lock (run with -race).
func TestConcurrentReaders(t *testing.T) {
	p1 := std().rec("r", "alice", stmt("Editor", "documents")).rec("s", "g:g1", stmt("User", "reports")).p
	s1, err := Build(p1, "one")
	if err != nil {
		t.Fatal(err)
	}
	questions := []Question{
		ask("alice", "documents/d1", "documents:write"),
		ask("bob", "reports/q1", "documents:read"),
		ask("carol", "documents/d1", "documents:read"),
	}
	want := make([]bool, len(questions))
	for i, q := range questions {
		d, _ := s1.Check(q)
		want[i] = d.Allowed
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i := n % len(questions)
				if d, err := s1.Check(questions[i]); err != nil || d.Allowed != want[i] || d.Revision != "one" {
					t.Errorf("reader: %+v %v, want allowed %t", d, err, want[i])
					return
				}
				if _, err := s1.Resources(ResourceQuery{User: "alice", Action: "documents:read", Collection: "documents", Time: mustTime("2026-01-01T00:00:00Z")}); err != nil {
					t.Error(err)
					return
				}
				// The enumerations read the statement indexes that the
				// applies below rewrite in newer snapshots.
				l, err := s1.Users(UsersQuery{Resource: "documents/d1", Action: "documents:read"})
				if err != nil || len(l.Users) != 1 || l.Users[0].User != "alice" {
					t.Errorf("users: %+v, %v; want alice alone", l, err)
					return
				}
				if h := s1.RoleHolders("Admin", ""); len(h) != 0 {
					t.Errorf("holders of Admin: %+v, want none", h)
					return
				}
				if st, err := s1.StatementsBelow("documents", ""); err != nil || len(st) != 0 {
					t.Errorf("statements below documents: %+v, %v; want none", st, err)
					return
				}
			}
		}()
	}
	prev, prevP := s1, p1
	for i := range 20 {
		next := schema.NewPolicySet()
		next.Roles, next.Groups = prevP.Roles, prevP.Groups
		if i%2 == 0 {
			next.Records["x"] = std().rec("x", "carol", stmt("Admin", "documents")).p.Records["x"]
		}
		s, err := prev.Apply(change.Between(prevP, next), "next")
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := s.Check(questions[2]); d.Allowed != (i%2 == 0) {
			t.Errorf("apply %d: carol allowed %t", i, d.Allowed)
		}
		prev, prevP = s, next
	}
	close(stop)
	wg.Wait()
}
