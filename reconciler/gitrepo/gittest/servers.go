package gittest

import (
	"bytes"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to accept connections.
const startTimeout = 10 * time.Second

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Buffer is a bytes.Buffer that a writer (a child process, a logger) and a
// test may use at once.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// process is a server run as a child process, stopped at the end of the
// test.
type process struct {
	t      testing.TB
	name   string
	args   []string
	addr   string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   Buffer
}

func (p *process) start() {
	p.t.Helper()
	p.cmd = exec.Command(p.name, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = &p.logs, &p.logs
	// Its own process group, so that stop ends its children too (git
	// daemon runs git-daemon, which runs an upload-pack per connection).
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.cmd.WaitDelay = 5 * time.Second
	if err := p.cmd.Start(); err != nil {
		p.t.Fatalf("start %s: %v", p.name, err)
	}
	p.exited = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.exited) }()
	deadline := time.Now().Add(startTimeout)
	for {
		if c, err := net.DialTimeout("tcp", p.addr, 100*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case <-p.exited:
			p.t.Fatalf("%s exited before listening on %s:\n%s", p.name, p.addr, p.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			p.stop()
			p.t.Fatalf("%s does not listen on %s after %s:\n%s", p.name, p.addr, startTimeout, p.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the process and waits for it; it may be called again.
func (p *process) stop() {
	if p.cmd == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// Daemon is a git daemon serving the repositories below a directory over
// git:// on 127.0.0.1.
type Daemon struct {
	p    *process
	port int
}

// StartDaemon starts `git daemon` on a free port of 127.0.0.1, exporting
// every repository below root (read-only); it is stopped at the end of the
// test.
func StartDaemon(t testing.TB, root string) *Daemon {
	t.Helper()
	port := freePort(t)
	d := &Daemon{port: port, p: &process{t: t, name: "git", addr: "127.0.0.1:" + strconv.Itoa(port), args: []string{
		"daemon", "--listen=127.0.0.1", "--port=" + strconv.Itoa(port), "--reuseaddr", "--export-all",
		"--informative-errors", "--base-path=" + root, root,
	}}}
	d.p.start()
	t.Cleanup(d.Stop)
	return d
}

// URL returns the git:// URL of the repository at name below the root.
func (d *Daemon) URL(name string) string {
	return fmt.Sprintf("git://127.0.0.1:%d/%s", d.port, name)
}

// Stop stops the daemon; Start starts it again on the same port.
func (d *Daemon) Stop() { d.p.stop() }

// Start starts a stopped daemon again.
func (d *Daemon) Start() { d.p.t.Helper(); d.p.start() }

// Logs returns what the daemon wrote.
func (d *Daemon) Logs() string { return d.p.logs.String() }

// HTTPServer is git's smart HTTP protocol (git http-backend, run through
// net/http/cgi) behind basic auth, on an httptest TLS server.
type HTTPServer struct {
	*httptest.Server
	// InfoRefs counts the ref advertisements served (GET .../info/refs).
	InfoRefs atomic.Int64
	// Packs counts the packs asked for (POST .../git-upload-pack).
	Packs atomic.Int64
	// Delay, when set, is slept before each request is served.
	Delay atomic.Int64
	// requests records, for each request, its method, path and
	// Authorization header, so that a test can check what was sent.
	mu       sync.Mutex
	requests []string
}

// StartHTTP serves the repositories below root with `git http-backend`,
// requiring basic auth with username and password: a request without
// credentials is answered 401, one with wrong credentials 403. It is closed
// at the end of the test. Its Client() trusts its certificate.
func StartHTTP(t testing.TB, root, username, password string) *HTTPServer {
	t.Helper()
	execPath := Git(t, root, "--exec-path")
	backend := &cgi.Handler{
		Path: filepath.Join(execPath, "git-http-backend"),
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + root},
	}
	s := &HTTPServer{}
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests = append(s.requests, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		s.mu.Unlock()
		if d := s.Delay.Load(); d > 0 {
			time.Sleep(time.Duration(d))
		}
		u, p, ok := r.BasicAuth()
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		if subtle.ConstantTimeCompare([]byte(u), []byte(username)) != 1 || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/info/refs"):
			s.InfoRefs.Add(1)
		case strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			s.Packs.Add(1)
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// Requests returns "METHOD PATH AUTHORIZATION" for each request so far.
func (s *HTTPServer) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

// SSHD is OpenSSH's sshd on a free port of 127.0.0.1, with a host key and
// a user key made for the test, that runs git-upload-pack for its user.
type SSHD struct {
	p *process
	// Port is its port; User the user it lets in (the test's own).
	Port int
	User string
	// KeyFile holds the user's private key, KnownHosts a known_hosts file
	// naming the server's host key, OtherKnownHosts one naming another
	// key for the same host (a man in the middle).
	KeyFile, KnownHosts, OtherKnownHosts string
}

// sshdPath is where Debian's openssh-server installs sshd.
const sshdPath = "/usr/sbin/sshd"

// StartSSHD starts sshd for the test; it is stopped at the end of the test.
// Without sshd installed the test is skipped, unless CI is set (CI
// installs openssh-server: there a missing sshd fails).
func StartSSHD(t testing.TB) *SSHD {
	t.Helper()
	if _, err := os.Stat(sshdPath); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing in CI: .ci/test installs openssh-server", sshdPath)
		}
		t.Skipf("%s is not installed (Debian: apt-get install openssh-server); CI installs it and runs this test", sshdPath)
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// sshd run as root wants its privilege separation directory.
		if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	keygen := func(file, kind string) string {
		t.Helper()
		out, err := exec.Command("ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "charter-test", "-f", file).CombinedOutput()
		if err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
		pub, err := os.ReadFile(file + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(pub))
	}
	hostPub := keygen(filepath.Join(dir, "host_ed25519"), "ed25519")
	otherPub := keygen(filepath.Join(dir, "other_ed25519"), "ed25519")
	userPub := keygen(filepath.Join(dir, "user_ed25519"), "ed25519")
	port := freePort(t)
	s := &SSHD{
		Port: port, User: me.Username,
		KeyFile:         filepath.Join(dir, "user_ed25519"),
		KnownHosts:      filepath.Join(dir, "known_hosts"),
		OtherKnownHosts: filepath.Join(dir, "other_known_hosts"),
	}
	hostField := fmt.Sprintf("[127.0.0.1]:%d", port)
	write := func(name, data string, mode os.FileMode) {
		t.Helper()
		if err := os.WriteFile(name, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(s.KnownHosts, hostField+" "+hostPub+"\n", 0o644)
	write(s.OtherKnownHosts, hostField+" "+otherPub+"\n", 0o644)
	write(filepath.Join(dir, "authorized_keys"), userPub+"\n", 0o600)
	config := strings.Join([]string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + filepath.Join(dir, "host_ed25519"),
		"AuthorizedKeysFile " + filepath.Join(dir, "authorized_keys"),
		"PidFile " + filepath.Join(dir, "sshd.pid"),
		"StrictModes no",
		"UsePAM no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin prohibit-password",
		"AllowUsers " + me.Username,
		"LogLevel VERBOSE",
		"",
	}, "\n")
	configFile := filepath.Join(dir, "sshd_config")
	write(configFile, config, 0o600)
	s.p = &process{t: t, name: sshdPath, addr: "127.0.0.1:" + strconv.Itoa(port), args: []string{"-D", "-e", "-f", configFile}}
	s.p.start()
	t.Cleanup(s.p.stop)
	return s
}

// URL returns the ssh:// URL of the repository at the absolute path p.
func (s *SSHD) URL(p string) string {
	return fmt.Sprintf("ssh://%s@127.0.0.1:%d%s", s.User, s.Port, p)
}

// Logs returns what sshd wrote.
func (s *SSHD) Logs() string { return s.p.logs.String() }
