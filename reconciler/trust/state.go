package trust

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// maxStateFile bounds the state file read.
const maxStateFile = 64 << 10

// State is the file that keeps the last served commit of one source across
// restarts, so that --no-rewind and --verify-commits all still compare a new
// tip with what was served before the restart. It is written atomically (a
// temporary file renamed over it), so a crash leaves the old or the new
// content, never half of one.
type State struct {
	path   string
	source string
}

// StatePath returns the state file of the source described by source
// (source.Source.String) below the cache directory dir:
// dir/served/<16 hex of the description's SHA-256>.json.
func StatePath(dir, source string) string {
	sum := sha256.Sum256([]byte(source))
	return filepath.Join(dir, "served", hex.EncodeToString(sum[:8])+".json")
}

// NewState returns the state file at path for the source described by
// source.
func NewState(path, source string) *State { return &State{path: path, source: source} }

// Path returns the file's path.
func (s *State) Path() string { return s.path }

// stateFile is the file's content.
type stateFile struct {
	Source   string    `json:"source"`
	Commit   string    `json:"commit"`
	ServedAt time.Time `json:"servedAt"`
}

// Load returns the commit recorded last, or "" when the file does not
// exist. A file that cannot be read, or does not hold a commit of this
// source, is an error naming it: the caller should refuse to guess.
func (s *State) Load() (string, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("state file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxStateFile+1))
	if err != nil {
		return "", fmt.Errorf("state file %s: %w", s.path, err)
	}
	commit, err := parseState(data, s.source)
	if err != nil {
		return "", fmt.Errorf("state file %s %v; remove it to start afresh", s.path, err)
	}
	return commit, nil
}

// parseState returns the commit a state file's content records for source.
func parseState(data []byte, source string) (string, error) {
	if len(data) > maxStateFile {
		return "", fmt.Errorf("is larger than %d bytes: not one Charter wrote", maxStateFile)
	}
	var st stateFile
	if err := json.Unmarshal(data, &st); err != nil {
		return "", fmt.Errorf("does not parse (%v)", err)
	}
	if !IsCommitHash(st.Commit) {
		return "", fmt.Errorf("records %q, which is not a commit hash", st.Commit)
	}
	if st.Source != source {
		return "", fmt.Errorf("is for source %q, not %q", st.Source, source)
	}
	return st.Commit, nil
}

// Store records commit as served at time at.
func (s *State) Store(commit string, at time.Time) error {
	if !IsCommitHash(commit) {
		return fmt.Errorf("state file: %q is not a commit hash", commit)
	}
	data, err := json.Marshal(stateFile{Source: s.source, Commit: commit, ServedAt: at.UTC()})
	if err != nil {
		return err
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".served-*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename, there is nothing to remove
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("state file: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// CheckWritable makes sure the state file's directory exists and a file can
// be written in it, so that a command can refuse to start rather than lose
// its state at the first served commit.
func (s *State) CheckWritable() error {
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".served-check-*")
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	tmp.Close()
	return os.Remove(tmp.Name())
}

// IsCommitHash reports whether s is a full commit hash: 40 (SHA-1) or 64
// (SHA-256) lower-case hex digits.
func IsCommitHash(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}
