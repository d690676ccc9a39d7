package reconciler

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/engine"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const rolesCUE = `package policies

roles: User: {name: "User", permissions: [{action: "documents:read"}]}
roles: Editor: {name: "Editor", permissions: [{action: "documents"}]}
`

func recordCUE(user, role string) string {
	return `package policies

records: r1: {name: "R1", users: ["` + user + `"], statements: [{roles: ["` + role + `"], resources: ["documents"]}]}
`
}

func writeFile(t *testing.T, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func allowed(t *testing.T, s *engine.Snapshot, user, action string) bool {
	t.Helper()
	d, err := s.Check(engine.Question{User: user, Resource: "documents/d1", Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return d.Allowed
}

func newDirReconciler(t *testing.T, dir string, reg prometheus.Registerer) *Reconciler {
	t.Helper()
	src, err := NewDirSource(dir, "", 20*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	var m *Metrics
	if reg != nil {
		m = NewMetrics(reg)
	}
	return New(src, Options{Metrics: m})
}

func TestReconcileKeepsLastGoodSnapshot(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "roles.cue", rolesCUE)
	writeFile(t, dir, "records.cue", recordCUE("ann", "User"))
	reg := prometheus.NewRegistry()
	r := newDirReconciler(t, dir, reg)
	ctx := context.Background()

	if r.Snapshot() != nil {
		t.Fatal("a snapshot before the first reconcile")
	}
	if err := r.ReconcileNow(ctx); err != nil {
		t.Fatal(err)
	}
	first := r.Served()
	if !strings.HasPrefix(first.Revision.ID, "sha256:") || first.Snapshot.Revision() != first.Revision.ID {
		t.Fatalf("revision %q, snapshot revision %q", first.Revision.ID, first.Snapshot.Revision())
	}
	if !allowed(t, first.Snapshot, "ann", "documents:read") || allowed(t, first.Snapshot, "ann", "documents:update") {
		t.Fatal("first revision decides wrongly")
	}

	// An unchanged source is no work.
	if err := r.ReconcileNow(ctx); err != nil || r.Served() != first {
		t.Fatalf("unchanged source replaced the snapshot (err %v)", err)
	}

	// An invalid edit keeps the last good snapshot and is reported with its position.
	writeFile(t, dir, "records.cue", recordCUE("ann", "Edtor"))
	if err := r.ReconcileNow(ctx); err == nil {
		t.Fatal("an invalid revision was accepted")
	}
	st := r.Status()
	if st.Served != first || st.Rejected == nil || st.Rejected.Result != ResultInvalid {
		t.Fatalf("status after an invalid edit: %+v", st)
	}
	if e := st.Rejected.Errors[0]; e.Pos.String() != "records.cue:3:56" || !strings.Contains(e.Message, `role "Edtor" does not exist`) {
		t.Fatalf("rejection error = %v", e)
	}
	// The same bad revision is not retried.
	if err := r.ReconcileNow(ctx); err != nil {
		t.Fatalf("the same invalid revision was tried again: %v", err)
	}

	// Fixing the file recovers without a restart, and clears the error.
	writeFile(t, dir, "records.cue", recordCUE("ann", "Editor"))
	if err := r.ReconcileNow(ctx); err != nil {
		t.Fatal(err)
	}
	st = r.Status()
	if st.Rejected != nil || st.Served == first || !allowed(t, st.Served.Snapshot, "ann", "documents:update") {
		t.Fatalf("status after the fix: %+v", st)
	}
	// Readers of the first snapshot still see the first revision.
	if allowed(t, first.Snapshot, "ann", "documents:update") {
		t.Fatal("the old snapshot changed")
	}

	if got := testutil.ToFloat64(r.m.reconciles.WithLabelValues(ResultSuccess)); got != 2 {
		t.Errorf("success reconciles = %v, want 2", got)
	}
	if got := testutil.ToFloat64(r.m.reconciles.WithLabelValues(ResultInvalid)); got != 1 {
		t.Errorf("invalid reconciles = %v, want 1", got)
	}
	if got := testutil.ToFloat64(r.m.info.WithLabelValues(st.Served.Revision.ID)); got != 1 {
		t.Errorf("snapshot_info of the served revision = %v", got)
	}
	if n := testutil.CollectAndCount(r.m.info); n != 1 {
		t.Errorf("snapshot_info has %d series, want only the served revision", n)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %v", problems, err)
	}
}

func TestReconcileRejectsPermissionTypeChange(t *testing.T) {
	dir := t.TempDir()
	server := func(typ, extra string) string {
		return `package policies

resourceServers: s: {name: "S", scopes: ["read"], policies: p: {name: "P", type: "user", users: ["ann"]}
	permissions: read: {name: "Read", type: "` + typ + `", ` + extra + ` policies: ["p"]}}
`
	}
	writeFile(t, dir, "server.cue", server("scope", `scopes: ["read"],`))
	r := newDirReconciler(t, dir, nil)
	if err := r.ReconcileNow(context.Background()); err != nil {
		t.Fatal(err)
	}
	good := r.Served()
	writeFile(t, dir, "server.cue", server("resource", `resourceType: "doc",`))
	if err := r.ReconcileNow(context.Background()); err == nil {
		t.Fatal("a permission type change was served")
	}
	st := r.Status()
	if st.Served != good || st.Rejected.Result != ResultRejected || !strings.Contains(st.Rejected.Errors[0].Error(), "type cannot change") {
		t.Fatalf("status: %+v", st.Rejected)
	}
}

func gitCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ada Author", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada Author", "GIT_COMMITTER_EMAIL=ada@example.com", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commitAll commits every change in repo and returns the commit's hash.
func commitAll(t *testing.T, repo, msg string) string {
	t.Helper()
	gitCLI(t, repo, "add", ".")
	gitCLI(t, repo, "commit", "-q", "-m", msg)
	return gitCLI(t, repo, "rev-parse", "HEAD")
}

func TestDirSourceRevisionInGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed: this test needs the git binary to make commits (.ci/test installs it)")
	}
	repo := t.TempDir()
	gitCLI(t, repo, "init", "-q", "-b", "main")
	writeFile(t, repo, "README.md", "# policies\n")
	writeFile(t, repo, "policies/roles.cue", rolesCUE)
	writeFile(t, repo, "policies/records.cue", recordCUE("ann", "User"))
	head := commitAll(t, repo, "first")

	src, err := NewDirSource(repo, "policies", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rev, files, err := src.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rev.ID != head || rev.Author != "Ada Author" || rev.CommitTime.IsZero() {
		t.Fatalf("clean revision = %+v, want %s by Ada Author", rev, head)
	}
	if _, err := files.Open("roles.cue"); err != nil {
		t.Fatalf("files are not relative to the policy root: %v", err)
	}

	// A change outside the policy files is not dirty.
	writeFile(t, repo, "README.md", "# changed\n")
	if rev, _, _ := src.Fetch(ctx); rev.ID != head {
		t.Errorf("a README edit made the revision %q", rev.ID)
	}
	// A policy edit is dirty, and each further edit has a new key.
	writeFile(t, repo, "policies/records.cue", recordCUE("bob", "User"))
	dirty1, _, _ := src.Fetch(ctx)
	writeFile(t, repo, "policies/records.cue", recordCUE("cy", "User"))
	dirty2, _, _ := src.Fetch(ctx)
	if dirty1.ID != head+"+dirty" || dirty2.ID != dirty1.ID || dirty1.Key == dirty2.Key {
		t.Errorf("dirty revisions %+v and %+v", dirty1, dirty2)
	}
	// An added and a removed policy file are dirty too.
	writeFile(t, repo, "policies/records.cue", recordCUE("ann", "User"))
	writeFile(t, repo, "policies/more/extra.json", `{}`)
	if rev, _, _ := src.Fetch(ctx); rev.ID != head+"+dirty" {
		t.Errorf("an added file: revision %q", rev.ID)
	}
	if err := os.RemoveAll(filepath.Join(repo, "policies/more")); err != nil {
		t.Fatal(err)
	}
	if rev, _, _ := src.Fetch(ctx); rev.ID != head {
		t.Errorf("back to the commit: revision %q", rev.ID)
	}
	if err := os.Remove(filepath.Join(repo, "policies/records.cue")); err != nil {
		t.Fatal(err)
	}
	if rev, _, _ := src.Fetch(ctx); rev.ID != head+"+dirty" {
		t.Errorf("a removed file: revision %q", rev.ID)
	}
}

func TestDirSourceIncludesAncestors(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is not installed: this test needs the git binary to make commits (.ci/test installs it)")
	}
	repo := t.TempDir()
	gitCLI(t, repo, "init", "-q", "-b", "main")
	writeFile(t, repo, "roles.cue", rolesCUE)
	first := commitAll(t, repo, "first")
	writeFile(t, repo, "records.cue", recordCUE("ann", "User"))
	second := commitAll(t, repo, "second")
	src, err := NewDirSource(repo, "", 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		served, min string
		want        bool
	}{
		{second, first, true},
		{second + "+dirty", first, true},
		{second, second, true},
		{first, second, false},
		{second, "0123456789abcdef0123456789abcdef01234567", false},
		{"sha256:abc", first, false},
	}
	for _, tt := range tests {
		if got := src.Includes(tt.served, tt.min); got != tt.want {
			t.Errorf("Includes(%.7s, %.7s) = %v, want %v", tt.served, tt.min, got, tt.want)
		}
	}
}

func TestDirSourceWatchesNewSubdirectories(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "roles.cue", rolesCUE)
	writeFile(t, dir, "records.cue", recordCUE("ann", "User"))
	r := newDirReconciler(t, dir, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	waitFor(t, func() bool { return r.Snapshot() != nil })

	// A file in a directory created after the watch started.
	writeFile(t, dir, "teams/new/bob.json", `{"records": {"r2": {"name": "R2", "users": ["bob"], "statements": [{"roles": ["Editor"], "resources": ["documents"]}]}}}`)
	waitFor(t, func() bool { return allowed(t, r.Snapshot(), "bob", "documents:update") })
	// An edit deep in that directory.
	writeFile(t, dir, "teams/new/bob.json", `{"records": {"r2": {"name": "R2", "users": ["bob"], "statements": [{"roles": ["User"], "resources": ["documents"]}]}}}`)
	waitFor(t, func() bool { return !allowed(t, r.Snapshot(), "bob", "documents:update") })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
