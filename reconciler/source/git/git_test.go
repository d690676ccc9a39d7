package git

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/reconciler/source"
	"github.com/charter-policy/charter/reconciler/source/sourcetest"
)

var ctx = context.Background()

var commitID = regexp.MustCompile(`^[0-9a-f]{40}$`)

// policy is a small valid policy root.
var policy = map[string]string{
	"policies/roles.cue": "package policies\n\nroles: {}\n",
	"README.md":          "# a policy repository\n",
}

// newSource makes a source for url, closed at the end of the test, whose
// log goes to the returned buffer.
func newSource(t *testing.T, url string, opts Options) (*Source, *gittest.Buffer) {
	t.Helper()
	logs := &gittest.Buffer{}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	s, err := New(url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, logs
}

func fetch(t *testing.T, s *Source) (source.Revision, map[string]string) {
	t.Helper()
	rev, fsys, err := s.Fetch(ctx)
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	return rev, sourcetest.ReadAll(t, fsys)
}

// conformance runs the conformance suite with sources made by newURL over
// a fresh remote.
func conformance(t *testing.T, secret string, newURL func(t *testing.T, root string) (string, Options)) {
	sourcetest.Run(t, sourcetest.Harness{
		New: func(t *testing.T, files map[string]string) sourcetest.Fixture {
			root := t.TempDir()
			remote := gittest.NewRemote(t, root, "policy")
			prefixed := map[string]string{}
			for name, data := range files {
				prefixed["policies/"+name] = data
			}
			remote.Set(t, prefixed, "first")
			url, opts := newURL(t, root)
			opts.Path = "policies"
			s, _ := newSource(t, url, opts)
			return sourcetest.Fixture{
				Source: s,
				Set: func(files map[string]string) {
					prefixed := map[string]string{}
					for name, data := range files {
						prefixed["policies/"+name] = data
					}
					remote.Set(t, prefixed, "change")
				},
			}
		},
		IDPattern: commitID,
		Secret:    secret,
		Commits:   true,
	})
}

func TestConformanceFile(t *testing.T) {
	conformance(t, "", func(t *testing.T, root string) (string, Options) {
		return "file://" + filepath.Join(root, "policy.git"), Options{}
	})
}

func TestConformanceDaemon(t *testing.T) {
	conformance(t, "", func(t *testing.T, root string) (string, Options) {
		return gittest.StartDaemon(t, root).URL("policy.git"), Options{}
	})
}

func TestConformanceHTTPS(t *testing.T) {
	const token = "s3cr3t-t0ken-for-conformance"
	conformance(t, token, func(t *testing.T, root string) (string, Options) {
		srv := gittest.StartHTTP(t, root, "git", token)
		tokenFile := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return srv.URL + "/policy.git", Options{HTTPClient: srv.Client(), Credentials: Credentials{TokenFile: tokenFile}}
	})
}

func TestFetchFollowsBranch(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	first := remote.Set(t, policy, "first")
	s, logs := newSource(t, "file://"+remote.Bare, Options{Path: "policies"})
	rev, files := fetch(t, s)
	if rev.ID != first || rev.Subject != "first" || rev.Author.Name != "Ada Author" || rev.CommitTime.IsZero() || len(rev.Parents) != 0 {
		t.Errorf("first revision = %+v", rev)
	}
	if rev.Signature.Status != source.SignatureNone {
		t.Errorf("signature = %+v, want none (the source verifies nothing)", rev.Signature)
	}
	if !maps.Equal(files, map[string]string{"roles.cue": policy["policies/roles.cue"]}) {
		t.Errorf("files = %v", files)
	}
	if s.Branch() != "main" {
		t.Errorf("Branch() = %q, want main (the remote's HEAD)", s.Branch())
	}
	if !strings.Contains(logs.String(), "cloned the policy repository") {
		t.Errorf("no log line for the clone:\n%s", logs)
	}

	next := remote.Set(t, map[string]string{"policies/roles.cue": "package policies\n\nroles: {} // next\n"}, "next")
	rev, files = fetch(t, s)
	if rev.ID != next || len(rev.Parents) != 1 || rev.Parents[0] != first || files["roles.cue"] != "package policies\n\nroles: {} // next\n" {
		t.Errorf("after a push: %+v %v", rev, files)
	}

	// A force-push to an older commit is followed (the reconciler decides
	// what to make of it).
	gittest.Git(t, remote.Work, "reset", "-q", "--hard", first)
	remote.Push(t, "--force")
	if rev, _ = fetch(t, s); rev.ID != first {
		t.Errorf("after a force-push back: %s, want %s", rev.ID, first)
	}
}

func TestBranchOption(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	remote.Set(t, policy, "on main")
	gittest.Git(t, remote.Work, "checkout", "-q", "-b", "release")
	gittest.WriteFile(t, remote.Work, "policies/release.cue", "package policies\n")
	release := gittest.CommitAll(t, remote.Work, "release")
	gittest.Git(t, remote.Work, "push", "-q", "origin", "release")

	s, _ := newSource(t, "file://"+remote.Bare, Options{Branch: "release", Path: "policies"})
	if rev, files := fetch(t, s); rev.ID != release || files["release.cue"] == "" {
		t.Errorf("--branch release: %s %v", rev.ID, files)
	}

	// The remote's HEAD moved to another branch: followed without --branch.
	gittest.Git(t, remote.Bare, "symbolic-ref", "HEAD", "refs/heads/release")
	s2, _ := newSource(t, "file://"+remote.Bare, Options{Path: "policies"})
	if rev, _ := fetch(t, s2); rev.ID != release || s2.Branch() != "release" {
		t.Errorf("remote HEAD on release: %s on %q", rev.ID, s2.Branch())
	}

	missing, _ := newSource(t, "file://"+remote.Bare, Options{Branch: "nope"})
	_, _, err := missing.Fetch(ctx)
	if err == nil || !strings.Contains(err.Error(), `branch "nope" does not exist`) || !strings.Contains(err.Error(), "main, release") {
		t.Errorf("a missing branch: %v, want an error naming it and the remote's branches", err)
	}
	var ce *source.ContentError
	if errors.As(err, &ce) {
		t.Errorf("a missing branch is a ContentError: it is a fetch error, retried")
	}
	if _, err := New("file://"+remote.Bare, Options{Branch: "a..b", CacheDir: t.TempDir()}); err == nil {
		t.Error("--branch a..b was accepted")
	}
	if _, err := New("file://"+remote.Bare, Options{Path: "policies/../../x", CacheDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "leaves the repository") {
		t.Errorf("--path out of the repository: %v", err)
	}
}

func TestPathMissingInTip(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	tip := remote.Set(t, map[string]string{"elsewhere/roles.cue": "package p\n"}, "no policies dir")
	s, _ := newSource(t, "file://"+remote.Bare, Options{Path: "policies"})
	rev, files, err := s.Fetch(ctx)
	var ce *source.ContentError
	if !errors.As(err, &ce) || ce.Path != "policies" || rev.ID != tip || files != nil {
		t.Errorf("Fetch with --path missing = %+v, %v, %v; want a ContentError with revision %s", rev, files, err, tip)
	}
}

func TestUnchangedTipCostsOneAdvertisement(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	remote.Set(t, policy, "first")
	srv := gittest.StartHTTP(t, root, "git", "token")
	tokenFile := writeFile(t, "token", "token")
	s, logs := newSource(t, srv.URL+"/policy.git", Options{Path: "policies", HTTPClient: srv.Client(), Credentials: Credentials{TokenFile: tokenFile}})
	first, _, err := s.Fetch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if srv.InfoRefs.Load() != 1 || srv.Packs.Load() != 1 {
		t.Fatalf("the clone: %d advertisements and %d packs, want 1 and 1", srv.InfoRefs.Load(), srv.Packs.Load())
	}
	// With the clone's objects gone, anything but the reference check
	// would fail: the unchanged tip reads no tree.
	objects := filepath.Join(s.Dir(), "objects")
	if err := os.Rename(objects, objects+".away"); err != nil {
		t.Fatal(err)
	}
	logLen := len(logs.String())
	for range 3 {
		again, _, err := s.Fetch(ctx)
		if err != nil || again.ID != first.ID || again.Key != first.Key {
			t.Fatalf("unchanged tip: %+v, %v", again, err)
		}
	}
	if err := os.Rename(objects+".away", objects); err != nil {
		t.Fatal(err)
	}
	if srv.InfoRefs.Load() != 4 || srv.Packs.Load() != 1 {
		t.Errorf("3 fetches of an unchanged tip: %d advertisements and %d packs, want 4 and 1 in all", srv.InfoRefs.Load(), srv.Packs.Load())
	}
	if extra := logs.String()[logLen:]; extra != "" {
		t.Errorf("an unchanged tip logged:\n%s", extra)
	}
	// A push: one more advertisement and one pack.
	remote.Set(t, map[string]string{"policies/roles.cue": "package policies\n// two\n"}, "two")
	if rev, _ := fetch(t, s); rev.ID == first.ID || srv.InfoRefs.Load() != 5 || srv.Packs.Load() != 2 {
		t.Errorf("after a push: %s, %d advertisements, %d packs", rev.ID, srv.InfoRefs.Load(), srv.Packs.Load())
	}
}

func TestConcurrentFetchesShareOne(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	remote.Set(t, policy, "first")
	srv := gittest.StartHTTP(t, root, "git", "token")
	s, _ := newSource(t, srv.URL+"/policy.git", Options{HTTPClient: srv.Client(), Credentials: Credentials{TokenFile: writeFile(t, "token", "token")}})
	fetch(t, s)
	srv.Delay.Store(int64(300 * time.Millisecond))
	before := srv.InfoRefs.Load()
	var wg sync.WaitGroup
	ids := make([]string, 5)
	for i := range ids {
		wg.Go(func() {
			rev, _, err := s.Fetch(ctx)
			if err != nil {
				t.Error(err)
			}
			ids[i] = rev.ID
		})
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	if n := srv.InfoRefs.Load() - before; n != 1 {
		t.Errorf("5 concurrent fetches made %d ref advertisements, want 1", n)
	}
	for _, id := range ids {
		if id != ids[0] || id == "" {
			t.Errorf("the fetches saw %v", ids)
			break
		}
	}
	// A caller that gives up does not cancel the fetch for the others.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, _, err := s.Fetch(ctx); done <- err }()
	if _, _, err := s.Fetch(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a caller whose context ends: %v", err)
	}
	if err := <-done; err != nil {
		t.Errorf("the other caller: %v", err)
	}
}

// writeFile writes data to a new file in a temporary directory.
func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRestartWithRemoteDown(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	first := remote.Set(t, policy, "first")
	daemon := gittest.StartDaemon(t, root)
	cache := t.TempDir()
	s, _ := newSource(t, daemon.URL("policy.git"), Options{Path: "policies", CacheDir: cache})
	fetch(t, s)
	s.Close()

	daemon.Stop()
	restarted, _ := newSource(t, daemon.URL("policy.git"), Options{Path: "policies", CacheDir: cache, FetchTimeout: 2 * time.Second})
	rev, fsys, err := restarted.Fetch(ctx)
	var stale *source.StaleError
	if !errors.As(err, &stale) || rev.ID != first || fsys == nil {
		t.Fatalf("restart with the remote down: %+v, %v; want the cached %s with a StaleError", rev, err, first)
	}
	if files := sourcetest.ReadAll(t, fsys); files["roles.cue"] != policy["policies/roles.cue"] {
		t.Errorf("cached files = %v", files)
	}
	if restarted.Branch() != "main" {
		t.Errorf("Branch() from the clone = %q", restarted.Branch())
	}
	if ok, err := restarted.Includes(ctx, first, first[:10]); !ok || err != nil {
		t.Errorf("Includes on the cached clone = %v, %v", ok, err)
	}

	next := remote.Set(t, map[string]string{"policies/roles.cue": "package policies\n// next\n"}, "next")
	daemon.Start()
	if rev, _ := fetch(t, restarted); rev.ID != next {
		t.Errorf("the daemon back: %s, want %s", rev.ID, next)
	}
	if ok, _ := restarted.Includes(ctx, next, first); !ok {
		t.Error("the new tip does not include the first")
	}
}

func TestDamagedCloneIsClonedAgain(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	tip := remote.Set(t, policy, "first")
	damage := map[string]func(t *testing.T, dir string){
		"truncated pack": func(t *testing.T, dir string) {
			packs, _ := filepath.Glob(filepath.Join(dir, "objects/pack/*.pack"))
			if len(packs) == 0 {
				t.Fatal("no pack in the clone")
			}
			for _, p := range packs {
				if err := os.Truncate(p, 40); err != nil {
					t.Fatal(err)
				}
			}
		},
		"objects removed": func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "objects")); err != nil {
				t.Fatal(err)
			}
		},
		"half-written": func(t *testing.T, dir string) {
			if err := os.RemoveAll(filepath.Join(dir, "refs")); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, "packed-refs"))
		},
		"not a repository": func(t *testing.T, dir string) {
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "HEAD"), []byte("garbage"), 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
	for name, do := range damage {
		t.Run(name, func(t *testing.T) {
			cache := t.TempDir()
			url := "file://" + remote.Bare
			s, _ := newSource(t, url, Options{Path: "policies", CacheDir: cache})
			fetch(t, s)
			dir := s.Dir()
			s.Close()
			do(t, dir)

			// With the remote gone, a damaged clone is never served.
			away := remote.Bare + ".away"
			if err := os.Rename(remote.Bare, away); err != nil {
				t.Fatal(err)
			}
			down, downLogs := newSource(t, url, Options{Path: "policies", CacheDir: cache})
			if rev, fsys, err := down.Fetch(ctx); err == nil || fsys != nil || rev.ID != "" {
				t.Errorf("a damaged clone with the remote gone: %+v, %v, %v; want an error and nothing served", rev, fsys, err)
			}
			if !strings.Contains(downLogs.String(), "removing the cached clone") {
				t.Errorf("the damage was not logged:\n%s", downLogs)
			}
			down.Close()
			if err := os.Rename(away, remote.Bare); err != nil {
				t.Fatal(err)
			}

			again, _ := newSource(t, url, Options{Path: "policies", CacheDir: cache})
			rev, files := fetch(t, again)
			if rev.ID != tip || files["roles.cue"] != policy["policies/roles.cue"] {
				t.Errorf("after cloning again: %s %v", rev.ID, files)
			}
			if leftovers, _ := filepath.Glob(dir + ".*-*"); len(leftovers) != 0 {
				t.Errorf("left behind: %v", leftovers)
			}
		})
	}
}

func TestDamageFoundWhileServingIsClonedAgain(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	files := maps.Clone(policy)
	// A blob the clone holds but the source has never read (it lies
	// outside --path), so no cache of go-git's can hold it either.
	const kept = "package policies\n\n// kept outside the policy root at first\ngroups: {}\n"
	files["elsewhere/kept.cue"] = kept
	first := remote.Set(t, files, "first")
	// Through git daemon: git's own upload-pack sends only what the clone
	// lacks by its commits, so the lost blob is never sent again.
	daemon := gittest.StartDaemon(t, root)
	s, logs := newSource(t, daemon.URL("policy.git"), Options{Path: "policies"})
	fetch(t, s)
	// The blob is lost from the clone; the next commit brings it into
	// --path, and the next fetch brings only what the clone lacks.
	gittest.Unpack(t, s.Dir())
	blob := gittest.Git(t, remote.Work, "rev-parse", first+":elsewhere/kept.cue")
	if err := os.Remove(gittest.ObjectFile(s.Dir(), blob)); err != nil {
		t.Fatal(err)
	}
	files["policies/kept.cue"] = kept
	next := remote.Set(t, files, "next")
	rev, got := fetch(t, s)
	if rev.ID != next || got["kept.cue"] != kept || got["roles.cue"] != files["policies/roles.cue"] {
		t.Errorf("after the damage and a push: %s %v", rev.ID, got)
	}
	if !strings.Contains(logs.String(), "removing the cached clone") {
		t.Errorf("the damage was not logged:\n%s", logs)
	}
}

func TestBigBlobOutsidePathIsNeverRead(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 100 MB file")
	}
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	big := bytes.Repeat([]byte("0123456789abcdef"), 100<<20/16)
	if err := os.MkdirAll(filepath.Join(remote.Work, "assets"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(remote.Work, "assets/big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	gittest.WriteFile(t, remote.Work, "policies/roles.cue", policy["policies/roles.cue"])
	gittest.CommitAll(t, remote.Work, "with a big blob")
	remote.Push(t)
	// Through git daemon: go-git's in-process server (file://) packs a
	// 100 MB blob slowly under the race detector.
	daemon := gittest.StartDaemon(t, root)
	s, _ := newSource(t, daemon.URL("policy.git"), Options{Path: "policies", FetchTimeout: 5 * time.Minute})
	fetch(t, s)

	// A new tip whose pack holds no big blob: its fetch and read allocate
	// far less than the blob's size.
	gittest.WriteFile(t, remote.Work, "policies/roles.cue", "package policies\n// next\n")
	gittest.CommitAll(t, remote.Work, "next")
	next := remote.Push(t)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rev, _ := fetch(t, s)
	runtime.ReadMemStats(&after)
	if rev.ID != next {
		t.Fatalf("fetched %s, want %s", rev.ID, next)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 20<<20 {
		t.Errorf("the fetch allocated %d MB: the 100 MB blob outside --path was read", alloc>>20)
	}
}

func TestSubmoduleIsLoggedAndIgnored(t *testing.T) {
	root := t.TempDir()
	sub := gittest.NewRemote(t, root, "sub")
	sub.Set(t, map[string]string{"inner.cue": "package p\n"}, "sub")
	remote := gittest.NewRemote(t, root, "policy")
	gittest.WriteFile(t, remote.Work, "policies/roles.cue", policy["policies/roles.cue"])
	gittest.Git(t, remote.Work, "-c", "protocol.file.allow=always", "submodule", "add", "-q", sub.Bare, "policies/vendor")
	gittest.CommitAll(t, remote.Work, "with a submodule")
	remote.Push(t)
	s, logs := newSource(t, "file://"+remote.Bare, Options{Path: "policies"})
	if _, files := fetch(t, s); !maps.Equal(files, map[string]string{"roles.cue": policy["policies/roles.cue"]}) {
		t.Errorf("files = %v", files)
	}
	if !strings.Contains(logs.String(), "submodule ignored") || !strings.Contains(logs.String(), "path=vendor") {
		t.Errorf("no log line names the submodule:\n%s", logs)
	}
	n := strings.Count(logs.String(), "submodule ignored")
	fetch(t, s)
	if strings.Count(logs.String(), "submodule ignored") != n {
		t.Error("the same tip logged its submodule again")
	}
}

func TestSymlinkOutOfRootIsContentError(t *testing.T) {
	root := t.TempDir()
	remote := gittest.NewRemote(t, root, "policy")
	gittest.WriteFile(t, remote.Work, "secret.cue", "package p\nsecret: \"do not read\"\n")
	gittest.WriteFile(t, remote.Work, "policies/roles.cue", policy["policies/roles.cue"])
	if err := os.Symlink("../secret.cue", filepath.Join(remote.Work, "policies/escape.cue")); err != nil {
		t.Fatal(err)
	}
	tip := gittest.CommitAll(t, remote.Work, "escape")
	remote.Push(t)
	s, _ := newSource(t, "file://"+remote.Bare, Options{Path: "policies"})
	rev, _, err := s.Fetch(ctx)
	var ce *source.ContentError
	if !errors.As(err, &ce) || ce.Path != "escape.cue" || rev.ID != tip || strings.Contains(err.Error(), "do not read") {
		t.Errorf("a symlink out of the root: %+v, %v", rev, err)
	}
}

func TestFetchTimeout(t *testing.T) {
	// A server that accepts connections and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns sync.WaitGroup
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Go(func() {
				defer c.Close()
				buf := make([]byte, 1024)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			})
		}
	}()
	key, hosts := sshCredentials(t)
	for _, url := range []string{
		"git://" + ln.Addr().String() + "/policy.git",
		"ssh://git@" + ln.Addr().String() + "/policy.git",
	} {
		opts := Options{FetchTimeout: 300 * time.Millisecond}
		if strings.HasPrefix(url, "ssh") {
			opts.Credentials = Credentials{SSHKeyFile: key, KnownHostsFile: hosts}
		}
		s, _ := newSource(t, url, opts)
		start := time.Now()
		_, _, err := s.Fetch(ctx)
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%s: Fetch took %s with --fetch-timeout 300ms", url, took)
		}
		if err == nil || !strings.Contains(err.Error(), "--fetch-timeout") {
			t.Errorf("%s: Fetch = %v, want an error naming --fetch-timeout", url, err)
		}
	}
}

// sshCredentials writes a key and a known_hosts file that name no real
// server.
func sshCredentials(t *testing.T) (key, knownHosts string) {
	t.Helper()
	k := gittest.NewSSHKey(t, "charter-test")
	knownHosts = filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(knownHosts, []byte("127.0.0.1 "+k.Public+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return k.Private, knownHosts
}
