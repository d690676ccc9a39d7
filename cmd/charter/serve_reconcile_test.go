package main

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/engine/api"
	"github.com/charter-policy/charter/reconciler"
	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/source/dir"
)

// heldSource holds each Fetch until the test releases it.
type heldSource struct {
	source.Source
	entered chan struct{}
	release chan struct{}
}

func (h *heldSource) Fetch(ctx context.Context) (source.Revision, fs.FS, error) {
	h.entered <- struct{}{}
	select {
	case <-h.release:
	case <-ctx.Done():
		return source.Revision{}, nil, ctx.Err()
	}
	return h.Source.Fetch(ctx)
}

// TestStatusDuringHeldReload: while a reload is held inside Fetch, GET
// /v1/status and checks are answered at once from the served snapshot, by
// the real handler over the serve backend.
func TestStatusDuringHeldReload(t *testing.T) {
	root := t.TempDir()
	writePolicyFile(t, root, "roles.cue", serveRoles)
	writePolicyFile(t, root, "records.cue", versionRecords(1))
	d, err := dir.New(root, dir.Options{})
	if err != nil {
		t.Fatal(err)
	}
	src := &heldSource{Source: d, entered: make(chan struct{}, 4), release: make(chan struct{})}
	rec := reconciler.New(src, reconciler.Options{})
	srv := httptest.NewServer(api.NewHandler(backend{rec}, api.Options{}))
	defer srv.Close() // after the loop stopped: a handler stuck on the reload would keep it open
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	client := &http.Client{Timeout: 2 * time.Second} // a request that waited for the reload would fail

	<-src.entered
	src.release <- struct{}{} // the first reload ends
	var first string
	for deadline := time.Now().Add(10 * time.Second); first == ""; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no first snapshot")
		}
		first = getStatus(t, client, srv.URL).Revision
	}

	// A new revision, and a reload that stays held.
	writePolicyFile(t, root, "records.cue", versionRecords(2))
	resp, err := client.Post(srv.URL+"/v1/reconcile", "application/json", nil)
	if err != nil || resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/reconcile: %v %v", resp, err)
	}
	resp.Body.Close()
	select {
	case <-src.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload did not start")
	}
	for range 5 {
		start := time.Now()
		st := getStatus(t, client, srv.URL)
		if took := time.Since(start); st.Revision != first || took > 500*time.Millisecond {
			t.Fatalf("status during a held reload: revision %q (want %q) after %v", st.Revision, first, took)
		}
		resp, err := client.Get(srv.URL + "/v1/users/ann/resources/documents%2Fd1/permissions/documents:read")
		if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Charter-Revision") != first {
			t.Fatalf("check during a held reload: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	close(src.release)
	for deadline := time.Now().Add(10 * time.Second); getStatus(t, client, srv.URL).Revision == first; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the released reload was not served")
		}
	}
}

func getStatus(t *testing.T, client *http.Client, base string) statusBody {
	t.Helper()
	resp, err := client.Get(base + "/v1/status")
	if err != nil {
		t.Fatalf("GET /v1/status: %v", err)
	}
	defer resp.Body.Close()
	var st statusBody
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestServeFetchErrorClears: a policy directory that disappears is a fetch
// error in /v1/status (lastFetchError, not the revision error); when it
// comes back with the same content, the error is cleared although nothing
// is reloaded.
func TestServeFetchErrorClears(t *testing.T) {
	s := startServer(t, map[string]string{"roles.cue": serveRoles, "records.cue": versionRecords(1)})
	served := s.status(t).Revision
	if err := os.Rename(s.dir, s.dir+".away"); err != nil {
		t.Fatal(err)
	}
	postReconcile(t, s.base)
	s.waitFor(t, func() bool { return s.status(t).LastFetchError != nil })
	st := s.status(t)
	if st.Revision != served || st.Error != nil || st.LastFetch == nil || *st.LastFetchError == "" {
		t.Fatalf("status after a failed fetch: %+v", st)
	}
	if err := os.Rename(s.dir+".away", s.dir); err != nil {
		t.Fatal(err)
	}
	postReconcile(t, s.base)
	s.waitFor(t, func() bool { return s.status(t).LastFetchError == nil })
	if st := s.status(t); st.Revision != served || st.Error != nil || st.FetchedRevision == nil || *st.FetchedRevision != served {
		t.Errorf("status after the directory came back: %+v, want revision %s", st, served)
	}
}

// TestServeMinRevisionInGit: Charter-Min-Revision is satisfied by the
// served commit's ancestors, through the directory source's ancestry, and
// by an uncommitted edit on top of it; an unknown commit is a 409.
func TestServeMinRevisionInGit(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	writePolicyFile(t, repo, "roles.cue", serveRoles)
	writePolicyFile(t, repo, "records.cue", versionRecords(1))
	c1 := gittest.CommitAll(t, repo, "first")
	writePolicyFile(t, repo, "records.cue", versionRecords(2))
	c2 := gittest.CommitAll(t, repo, "second")
	s := launchServer(t, serveConfig{source: repo, debounce: 50 * time.Millisecond, minRevisionWait: 300 * time.Millisecond})
	s.waitFor(t, func() bool { return s.status(t).Revision == c2 })

	ask := func(min string) (int, string) {
		t.Helper()
		return minRevision(t, s, "documents/d2", min)
	}
	for _, min := range []string{c1, c2, c1[:12]} {
		if code, rev := ask(min); code != http.StatusOK || rev != c2 {
			t.Errorf("Charter-Min-Revision %.12s: %d at %s, want 200 at %.12s", min, code, rev, c2)
		}
	}
	if code, _ := ask("0123456789abcdef0123456789abcdef01234567"); code != http.StatusConflict {
		t.Errorf("an unknown commit: %d, want 409", code)
	}

	writePolicyFile(t, repo, "records.cue", versionRecords(3))
	s.waitFor(t, func() bool { return strings.HasPrefix(s.status(t).Revision, c2+"+dirty.") })
	for _, min := range []string{c1, c2} {
		if code, _ := ask(min); code != http.StatusNotFound { // d2 is no longer allowed, but the revision is new enough
			t.Errorf("Charter-Min-Revision %.12s on a dirty revision: %d, want 404", min, code)
		}
	}
	// A commit of the edit, with no further change, is served as that commit.
	c3 := gittest.CommitAll(t, repo, "third")
	s.waitFor(t, func() bool { return s.status(t).Revision == c3 })
}

// TestServeMinRevisionWaitsForCommit: a request for a commit the served
// repository does not have yet waits; when the commit lands (pulled into
// the work tree) the request is answered from it as soon as it is served,
// long before --min-revision-wait ends.
func TestServeMinRevisionWaitsForCommit(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	writePolicyFile(t, repo, "roles.cue", serveRoles)
	writePolicyFile(t, repo, "records.cue", versionRecords(1))
	c1 := gittest.CommitAll(t, repo, "first")
	const wait = 30 * time.Second
	s := launchServer(t, serveConfig{source: repo, debounce: 50 * time.Millisecond, minRevisionWait: wait})
	s.waitFor(t, func() bool { return s.status(t).Revision == c1 })

	// The next commit is made in another clone: the served repository does
	// not know it yet.
	other := filepath.Join(t.TempDir(), "other")
	gittest.Git(t, repo, "clone", "-q", repo, other)
	writePolicyFile(t, other, "records.cue", versionRecords(2))
	c2 := gittest.CommitAll(t, other, "second")

	type answer struct {
		status   int
		revision string
		err      error
		took     time.Duration
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		req, err := http.NewRequest(http.MethodGet, s.base+"/v1/users/ann/resources/documents%2Fd2/permissions/documents:read", nil)
		if err != nil {
			done <- answer{err: err}
			return
		}
		req.Header.Set("Charter-Min-Revision", c2)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- answer{err: err}
			return
		}
		resp.Body.Close()
		done <- answer{status: resp.StatusCode, revision: resp.Header.Get("Charter-Revision"), took: time.Since(start)}
	}()
	select {
	case a := <-done:
		t.Fatalf("answered before the commit landed: %+v", a)
	case <-time.After(300 * time.Millisecond):
	}

	gittest.Git(t, repo, "pull", "-q", "--ff-only", other, "main")
	var a answer
	select {
	case a = <-done:
	case <-time.After(wait + 10*time.Second):
		t.Fatal("no answer")
	}
	if a.err != nil || a.status != http.StatusOK || a.revision != c2 {
		t.Fatalf("%+v, want 200 at %s; log:\n%s", a, c2, s.logs.String())
	}
	if a.took > wait/2 {
		t.Errorf("answered after %v, with a wait of %v: it did not wake when %s was served", a.took, wait, c2)
	}
}

// TestServeReconcileWait: POST /v1/reconcile?wait=true answers after a
// reconcile that sees the newest commit, with the served revision, and
// says so when that commit cannot be served; /v1/status shows what was
// fetched and the served commit's signature.
func TestServeReconcileWait(t *testing.T) {
	repo := t.TempDir()
	gittest.Init(t, repo)
	writePolicyFile(t, repo, "roles.cue", serveRoles)
	writePolicyFile(t, repo, "records.cue", versionRecords(1))
	c1 := gittest.CommitAll(t, repo, "first")
	s := launchServer(t, serveConfig{source: repo, debounce: 50 * time.Millisecond})
	s.waitFor(t, func() bool { return s.status(t).Revision == c1 })

	type reconciled struct {
		Status   string  `json:"status"`
		Revision string  `json:"revision"`
		Error    *string `json:"error"`
	}
	reconcileWait := func() (reconciled, string) {
		t.Helper()
		resp, err := http.Post(s.base+"/v1/reconcile?wait=true", "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body reconciled
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /v1/reconcile?wait=true: %d %v", resp.StatusCode, err)
		}
		return body, resp.Header.Get("Charter-Revision")
	}

	writePolicyFile(t, repo, "records.cue", versionRecords(2))
	c2 := gittest.CommitAll(t, repo, "second")
	if body, hdr := reconcileWait(); body.Status != "served" || body.Revision != c2 || hdr != c2 || body.Error != nil {
		t.Fatalf("after committing %s: %+v (Charter-Revision %s)", c2, body, hdr)
	}
	st := s.status(t)
	if st.Revision != c2 || st.Subject != "second" || st.FetchedRevision == nil || *st.FetchedRevision != c2 ||
		st.LastFetch == nil || st.LastFetchError != nil || st.Branch != nil {
		t.Errorf("status: %+v", st)
	}
	if sig := st.Signature; sig == nil || sig.Status != "none" || sig.Signer != nil {
		t.Errorf("signature of an unsigned commit: %+v", sig)
	}

	writePolicyFile(t, repo, "records.cue", "package policies\n\nrecords: r1: {name: 7}\n")
	c3 := gittest.CommitAll(t, repo, "broken")
	body, hdr := reconcileWait()
	if body.Status != "not_served" || body.Revision != c2 || hdr != c2 || body.Error == nil || *body.Error == "" {
		t.Fatalf("after committing an invalid %s: %+v (Charter-Revision %s)", c3, body, hdr)
	}
	st = s.status(t)
	if st.Revision != c2 || st.FetchedRevision == nil || *st.FetchedRevision != c3 || st.Error == nil || st.Error.Revision != c3 {
		t.Errorf("status after an invalid commit: %+v", st)
	}
}
