package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMain lets a test run this binary's main as a real child process.
func TestMain(m *testing.M) {
	if os.Getenv("CHARTER_TEST_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const serveRoles = `package policies

roles: User: {name: "User", permissions: [{action: "documents:read"}]}
`

// versionRecords grants ann User on documents/d<k> only.
func versionRecords(k int) string {
	return fmt.Sprintf(`package policies

records: r1: {name: "R1", users: ["ann"], statements: [{roles: ["User"], resources: ["documents/d%d"]}]}
`, k)
}

type server struct {
	base    string
	dir     string
	metrics prometheus.Gatherer // the server's registry, as GET /metrics serves it
	cancel  context.CancelFunc
	done    chan int
	logs    *syncBuffer
}

// startServer runs charter serve over a policy directory on 127.0.0.1:0
// and waits for its first snapshot.
func startServer(t *testing.T, files map[string]string) *server {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		writePolicyFile(t, dir, name, data)
	}
	s := launchServer(t, serveConfig{source: dir, debounce: 50 * time.Millisecond})
	s.waitFor(t, func() bool { return s.status(t).Revision != "" })
	return s
}

// launchServer runs charter serve with cfg on 127.0.0.1:0 until the test
// ends; it fills in what cfg leaves empty.
func launchServer(tb testing.TB, cfg serveConfig) *server {
	tb.Helper()
	cfg.listen = "127.0.0.1:0"
	cfg.logFormat = cmp.Or(cfg.logFormat, "text")
	cfg.logLevel = cmp.Or(cfg.logLevel, "info")
	cfg.minRevisionWait = cmp.Or(cfg.minRevisionWait, time.Second)
	cfg.debounce = cmp.Or(cfg.debounce, 200*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	env := &cliEnv{stdout: logs, stderr: logs, getenv: func(string) string { return "" }, now: time.Now}
	ready := make(chan serving, 1)
	done := make(chan int, 1)
	go func() {
		code, err := serve(ctx, env, cfg, ready)
		if err != nil {
			tb.Errorf("serve: %v", err)
		}
		done <- code
	}()
	s := &server{dir: cfg.source, cancel: cancel, done: done, logs: logs}
	select {
	case up := <-ready:
		s.base, s.metrics = "http://"+up.addr.String(), up.metrics
	case <-time.After(10 * time.Second):
		tb.Fatalf("server did not start:\n%s", logs.String())
	}
	tb.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			tb.Error("server did not stop")
		}
	})
	return s
}

func writePolicyFile(t *testing.T, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	// Write then rename, as editors do, so a reload never reads half a file.
	tmp := p + ".tmp~"
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

type statusBody struct {
	Revision        string     `json:"revision"`
	Source          string     `json:"source"`
	Subject         string     `json:"subject"`
	Branch          *string    `json:"branch"`
	FetchedRevision *string    `json:"fetchedRevision"`
	LastFetch       *time.Time `json:"lastFetch"`
	LastFetchError  *string    `json:"lastFetchError"`
	Signature       *struct {
		Status string  `json:"status"`
		Signer *string `json:"signer"`
	} `json:"signature"`
	Counts map[string]int `json:"counts"`
	Error  *struct {
		Revision string `json:"revision"`
		Errors   []struct {
			Position string `json:"position"`
			Message  string `json:"message"`
		} `json:"errors"`
	} `json:"error"`
	WatchError *struct {
		Message string    `json:"message"`
		At      time.Time `json:"at"`
	} `json:"watchError"`
}

func (s *server) status(t testing.TB) statusBody {
	t.Helper()
	resp, err := http.Get(s.base + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st statusBody
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// check asks the single-check route and returns the decision and its revision header.
func (s *server) check(user, resource, action string) (bool, string, error) {
	resp, err := http.Get(s.base + "/v1/users/" + user + "/resources/" + strings.ReplaceAll(resource, "/", "%2F") + "/permissions/" + action)
	if err != nil {
		return false, "", err
	}
	defer resp.Body.Close()
	var body struct {
		Allowed  bool   `json:"allowed"`
		Revision string `json:"revision"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return false, "", err
	}
	rev := resp.Header.Get("Charter-Revision")
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound || body.Allowed != (resp.StatusCode == http.StatusOK) || rev != body.Revision {
		return false, "", fmt.Errorf("status %d, body %+v, header %q", resp.StatusCode, body, rev)
	}
	return body.Allowed, rev, nil
}

// waitFor polls cond for up to 20 seconds, a bound for a loaded CI machine
// under -race, not a speed requirement: how fast an edit is served is
// measured by BenchmarkEditToServed (README, Performance).
func (s *server) waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("condition not met within 20s; server log:\n%s", s.logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServeFollowsEditsAndKeepsLastGood(t *testing.T) {
	s := startServer(t, map[string]string{"roles.cue": serveRoles, "records.cue": versionRecords(1)})
	if ok, _, err := s.check("ann", "documents/d1", "documents:read"); err != nil || !ok {
		t.Fatalf("first decision: %v %v", ok, err)
	}
	first := s.status(t).Revision

	// An edit is served (how fast: BenchmarkEditToServed).
	writePolicyFile(t, s.dir, "records.cue", versionRecords(2))
	s.waitFor(t, func() bool { ok, _, _ := s.check("ann", "documents/d2", "documents:read"); return ok })
	good := s.status(t).Revision
	if good == first {
		t.Fatal("the revision did not change")
	}

	// An invalid file: old decisions keep being served, readyz stays 200, status names file and line.
	writePolicyFile(t, s.dir, "records.cue", strings.Replace(versionRecords(3), `"User"`, `"Usr"`, 1))
	s.waitFor(t, func() bool { return s.status(t).Error != nil })
	st := s.status(t)
	if st.Revision != good || st.Error.Errors[0].Position != "records.cue:3:56" || !strings.Contains(st.Error.Errors[0].Message, `role "Usr" does not exist`) {
		t.Fatalf("status after an invalid edit: %+v", st.Error)
	}
	if ok, rev, err := s.check("ann", "documents/d2", "documents:read"); err != nil || !ok || rev != good {
		t.Fatalf("old decision after an invalid edit: %v %q %v", ok, rev, err)
	}
	if resp, err := http.Get(s.base + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz after an invalid edit: %v %v", resp, err)
	}

	// Fixing the file recovers without a restart and clears the error.
	writePolicyFile(t, s.dir, "records.cue", versionRecords(3))
	s.waitFor(t, func() bool { ok, _, _ := s.check("ann", "documents/d3", "documents:read"); return ok })
	if st := s.status(t); st.Error != nil || st.Revision == good {
		t.Fatalf("status after the fix: %+v", st)
	}
	if !strings.Contains(s.logs.String(), "revision served") {
		t.Errorf("no audit line in the log:\n%s", s.logs.String())
	}
}

// TestServeNoTornSnapshots: 50 goroutines check while the policy is
// reloaded 20 times; every answer must agree with the revision in its
// header, so within one revision ann holds exactly one document.
func TestServeNoTornSnapshots(t *testing.T) {
	s := startServer(t, map[string]string{"roles.cue": serveRoles, "records.cue": versionRecords(0)})
	const reloads, checkers = 20, 50
	type answer struct {
		doc     int
		allowed bool
	}
	var mu sync.Mutex
	seen := map[string][]answer{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var checkErr error
	for g := range checkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				// A short pause per check leaves the reconciler some CPU on
				// two cores shared by 50 checkers and their 50 handlers.
				time.Sleep(2 * time.Millisecond)
				doc := (g + i) % (reloads + 1)
				ok, rev, err := s.check("ann", fmt.Sprintf("documents/d%d", doc), "documents:read")
				mu.Lock()
				if err != nil && checkErr == nil {
					checkErr = err
				}
				seen[rev] = append(seen[rev], answer{doc, ok})
				mu.Unlock()
			}
		}()
	}
	for k := 1; k <= reloads; k++ {
		writePolicyFile(t, s.dir, "records.cue", versionRecords(k))
		s.waitFor(t, func() bool { ok, _, _ := s.check("ann", fmt.Sprintf("documents/d%d", k), "documents:read"); return ok })
	}
	close(stop)
	wg.Wait()
	if checkErr != nil {
		t.Fatal(checkErr)
	}
	if len(seen) < reloads/2 {
		t.Errorf("answers came from only %d revisions over %d reloads", len(seen), reloads)
	}
	total := 0
	for rev, answers := range seen {
		granted := -1
		for _, a := range answers {
			total++
			if !a.allowed {
				continue
			}
			if granted >= 0 && granted != a.doc {
				t.Fatalf("revision %s allowed both d%d and d%d: a torn snapshot", rev, granted, a.doc)
			}
			granted = a.doc
		}
		for _, a := range answers {
			if !a.allowed && a.doc == granted {
				t.Fatalf("revision %s both allowed and denied d%d", rev, a.doc)
			}
		}
	}
	t.Logf("%d answers from %d revisions", total, len(seen))
}

// TestServeSIGTERMDrains runs charter serve as a real process and orders
// the events by what the process says, not by sleeps: a request is in
// flight (its handler asked for the body with 100 Continue), SIGTERM
// arrives, the process logs that it drains and stops accepting connections,
// and only then is the body sent. The request must be answered 200 and the
// process exit 0.
func TestServeSIGTERMDrains(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	p := startProcess(t, "serve", "--listen", "127.0.0.1:0", "--log-format", "json")
	cmd, log, addr := p.cmd, p.log, p.addr
	log.await(t, "revision served") // the first snapshot is served: checks are answered

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil { // a bound, not an ordering
		t.Fatal(err)
	}
	body := `{"checks":[{"userId":"bob","resourceUri":"documents/d1","action":"documents:read"}]}`
	fmt.Fprintf(conn, "POST /v1/check HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", addr, len(body))
	r := bufio.NewReader(conn)
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != http.StatusContinue {
		t.Fatalf("want 100 Continue once the handler reads the body: %v %v", resp, err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	log.await(t, "shutting down: draining in-flight requests")
	waitRefused(t, addr)

	if _, err := io.WriteString(conn, body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("the in-flight request got no answer: %v\n%s", err, log.raw.String())
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(answer), `"results":[{"allowed":true}]`) {
		t.Errorf("in-flight request answered %d %s, want 200 with bob allowed", resp.StatusCode, answer)
	}
	log.await(t, "stopped")
	log.awaitEOF(t) // all of stderr is read before Wait closes the pipe
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, log.raw.String())
	}
	if !strings.Contains(log.raw.String(), "embedded in the binary") {
		t.Errorf("the log does not say it serves the embedded example:\n%s", log.raw.String())
	}
}

// process is charter running as a child process with JSON logs.
type process struct {
	cmd  *exec.Cmd
	log  *logLines
	addr string // where it listens, from its log
	base string // http:// and addr
}

// startProcess runs this test binary's main (charter) with args, which
// must ask for JSON logs, and waits for "charter is serving". The process
// is killed when the test ends, if it is still running.
func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CHARTER_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &process{cmd: cmd, log: readLogLines(stderr)}
	p.addr, _ = p.log.await(t, "charter is serving")["listen"].(string)
	p.base = "http://" + p.addr
	return p
}

// waitStatus polls /v1/status until cond holds, for 20 seconds at most (a
// bound for a loaded machine, not a speed requirement), and returns it.
func (p *process) waitStatus(t *testing.T, cond func(statusBody) bool) statusBody {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := getStatus(t, http.DefaultClient, p.base)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v: condition not met within 20s; the log:\n%s", st, p.log.raw.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends the process with SIGTERM and waits for its clean exit.
func (p *process) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.log.awaitEOF(t)
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit: %v\n%s", err, p.log.raw.String())
	}
}

// waitRefused waits until addr refuses connections: the server has closed
// its listener.
func waitRefused(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s still accepts connections 20s after the drain began", addr)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logLines are the JSON log lines of a child process, read as it writes them.
type logLines struct {
	ch   <-chan map[string]any // closed at the end of the stream
	seen []map[string]any      // the lines received so far
	eof  bool
	raw  *syncBuffer // everything read, for failure messages
}

// readLogLines starts reading JSON log lines from r.
func readLogLines(r io.Reader) *logLines {
	ch := make(chan map[string]any, 1024)
	l := &logLines{ch: ch, raw: &syncBuffer{}}
	go func() {
		defer close(ch)
		dec := json.NewDecoder(io.TeeReader(r, l.raw))
		for {
			var line map[string]any
			if err := dec.Decode(&line); err != nil {
				return
			}
			ch <- line
		}
	}()
	return l
}

// next receives one more line; it fails the test after 20 seconds.
func (l *logLines) next(t *testing.T, waitingFor string) (map[string]any, bool) {
	t.Helper()
	select {
	case line, ok := <-l.ch:
		if !ok {
			l.eof = true
			return nil, false
		}
		l.seen = append(l.seen, line)
		return line, true
	case <-time.After(20 * time.Second):
		t.Fatalf("no log line for 20s while waiting for %s; the log:\n%s", waitingFor, l.raw.String())
		return nil, false
	}
}

// await returns the first line, already received or still to come, whose
// msg is msg.
func (l *logLines) await(t *testing.T, msg string) map[string]any {
	t.Helper()
	for _, line := range l.seen {
		if line["msg"] == msg {
			return line
		}
	}
	for !l.eof {
		if line, ok := l.next(t, fmt.Sprintf("%q", msg)); ok && line["msg"] == msg {
			return line
		}
	}
	t.Fatalf("the log ended without %q:\n%s", msg, l.raw.String())
	return nil
}

// awaitEOF reads the remaining lines until the stream ends.
func (l *logLines) awaitEOF(t *testing.T) {
	t.Helper()
	for !l.eof {
		l.next(t, "the end of the log")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
