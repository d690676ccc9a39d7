// Package gittest makes real git repositories for tests with the git
// command-line tool, isolated from the user's and the system's git
// configuration, and signs their commits with real keys made for the test:
// OpenPGP keys with gpg in a temporary GNUPGHOME, SSH keys with ssh-keygen.
// A test that needs git, gpg or ssh-keygen fails, never skips, when it is
// not installed.
package gittest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Git runs git with args in dir, with a fixed author and committer and no
// global or system configuration, and returns its trimmed output. Any
// failure, git missing included, fails the test.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	return GitEnv(t, dir, nil, args...)
}

// GitEnv is Git with extra environment variables ("NAME=value"), which
// override the fixed author and committer.
func GitEnv(t testing.TB, dir string, env []string, args ...string) string {
	t.Helper()
	return run(t, dir, env, nil, args)
}

// GitInput is Git with data on its standard input.
func GitInput(t testing.TB, dir string, data []byte, args ...string) string {
	t.Helper()
	return run(t, dir, nil, data, args)
}

func run(t testing.TB, dir string, env []string, stdin []byte, args []string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_AUTHOR_NAME=Ada Author", "GIT_AUTHOR_EMAIL=ada@example.com",
		"GIT_COMMITTER_NAME=Ada Author", "GIT_COMMITTER_EMAIL=ada@example.com",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull, "HOME="+dir,
		"GIT_TERMINAL_PROMPT=0")
	cmd.Env = append(cmd.Env, env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Init makes dir a new repository on branch main.
func Init(t testing.TB, dir string) {
	t.Helper()
	Git(t, dir, "init", "-q", "-b", "main")
}

// CommitAll commits every change in the work tree at dir (none is fine)
// and returns the new commit's hash.
func CommitAll(t testing.TB, dir, msg string) string {
	t.Helper()
	Git(t, dir, "add", "-A")
	Git(t, dir, "commit", "-q", "--allow-empty", "-m", msg)
	return Git(t, dir, "rev-parse", "HEAD")
}

// WriteFile writes data to the slash-separated name below dir, making
// directories as needed. It writes a hidden temporary file and renames it
// into place, as editors do, so that a concurrent reader never sees half a
// file.
func WriteFile(t testing.TB, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp")
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

// Unpack turns the packs of the repository whose git directory is gitDir
// into loose objects, one file per object, so that a test can remove or
// damage one object.
func Unpack(t testing.TB, gitDir string) {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(gitDir, "objects", "pack", "*.pack"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range packs {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		base := strings.TrimSuffix(p, ".pack")
		for _, ext := range []string{".pack", ".idx", ".rev"} {
			if err := os.Remove(base + ext); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		GitInput(t, gitDir, data, "unpack-objects", "-q")
	}
}

// ObjectFile returns the file of the loose object hash in gitDir.
func ObjectFile(gitDir, hash string) string {
	return filepath.Join(gitDir, "objects", hash[:2], hash[2:])
}
