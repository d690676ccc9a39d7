//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	policiesexample "github.com/charter-policy/charter/policies-example"
	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
	"github.com/charter-policy/charter/schema/policygen"
)

// hostileLoad is a crowd of clients from issue 8's table, run against the
// sidecar while a probe client times ordinary checks.
type hostileLoad struct {
	name    string
	clients int
	// request is one request of a client.
	request func(base string) (*http.Request, error)
}

// unknownCommit is a commit no repository here has (issue 8: "aaaa…").
const unknownCommit = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

var hostileLoads = []hostileLoad{
	{name: "none"},
	{
		// 100 clients that each ask, again and again, for a commit that is
		// not served; each waits --min-revision-wait (2 s), then gets 409.
		name: "min-revision-100", clients: 100,
		request: func(base string) (*http.Request, error) {
			req, err := http.NewRequest(http.MethodGet, base+"/v1/users/carol/resources/documents%2Fd1/permissions/documents:read", nil)
			if err == nil {
				req.Header.Set("Charter-Min-Revision", unknownCommit)
			}
			return req, err
		},
	},
	{
		// POST /v1/reconcile in a tight loop from loopback, 8 at a time.
		name: "reconcile-loop", clients: 8,
		request: func(base string) (*http.Request, error) {
			return http.NewRequest(http.MethodPost, base+"/v1/reconcile", nil)
		},
	},
}

// BenchmarkHostileClients measures what the two crowds of issue 8's table
// cost a real charter serve, a child process serving a git work tree (so
// that Charter-Min-Revision asks git's history): one op is one ordinary
// check by a probe client, sequential, while the crowd runs. It reports
// the probe's p50 and p99 (ms), the fetches the sidecar ran per second
// (charter_reconcile_duration_seconds_count{phase="fetch"}), the sidecar's
// CPU seconds per second (from /proc), and the crowd's answers per second
// by status. Run with -benchtime 10s, as the issue measured 10 s:
//
//	go test ./cmd/charter -run '^$' -bench HostileClients -benchtime 10s -count 3
func BenchmarkHostileClients(b *testing.B) {
	policies := []struct {
		name  string
		write func(b *testing.B, dir string)
		probe string // a check path
	}{
		{"policies-example", func(b *testing.B, dir string) {
			if err := os.CopyFS(dir, policiesexample.FS()); err != nil {
				b.Fatal(err)
			}
		}, "/v1/users/bob/resources/documents%2Fd1/permissions/documents:update"},
		{"100k-records", func(b *testing.B, dir string) {
			if _, err := policygen.Write(dir, policygen.Options{}); err != nil {
				b.Fatal(err)
			}
		}, "/v1/users/u1/resources/documents%2Fd1/permissions/documents:read"},
	}
	for _, p := range policies {
		b.Run(p.name, func(b *testing.B) {
			if testing.Short() && p.name != "policies-example" {
				b.Skip("-short: the example only")
			}
			repo := b.TempDir()
			gittest.Init(b, repo)
			p.write(b, repo)
			gittest.CommitAll(b, repo, "policies")
			for _, load := range hostileLoads {
				b.Run(load.name, func(b *testing.B) { benchHostileLoad(b, repo, p.probe, load) })
			}
		})
	}
}

func benchHostileLoad(b *testing.B, repo, probe string, load hostileLoad) {
	srv := startServeProcess(b, "--source", repo)
	client := &http.Client{Timeout: 30 * time.Second}
	crowdTransport := &http.Transport{MaxIdleConnsPerHost: 256}
	defer crowdTransport.CloseIdleConnections()
	crowd := &http.Client{Transport: crowdTransport, Timeout: 30 * time.Second}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var mu sync.Mutex
	answers := map[int]int{}
	var counting atomic.Bool
	for range load.clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, err := load.request(srv.base)
				if err != nil {
					b.Error(err)
					return
				}
				resp, err := crowd.Do(req.WithContext(ctx))
				if err != nil {
					continue // stopped, or a refused connection: the crowd goes on
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if counting.Load() {
					mu.Lock()
					answers[resp.StatusCode]++
					mu.Unlock()
				}
			}
		})
	}
	warmUp := 2 * time.Second // the crowd reaches its steady state (a min-revision wait is 2 s)
	if testing.Short() {
		warmUp = 100 * time.Millisecond // a smoke pass
	}
	time.Sleep(warmUp)

	fetches0, cpu0 := srv.fetches(b), srv.cpuSeconds(b)
	counting.Store(true)
	start := time.Now()
	var latencies []time.Duration
	for b.Loop() {
		t0 := time.Now()
		resp, err := client.Get(srv.base + probe)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusNotFound {
			b.Fatalf("probe check: %d", resp.StatusCode)
		}
		latencies = append(latencies, time.Since(t0))
	}
	elapsed := time.Since(start).Seconds()
	counting.Store(false)
	fetches, cpu := srv.fetches(b)-fetches0, srv.cpuSeconds(b)-cpu0
	stop()
	wg.Wait()

	slices.Sort(latencies)
	ms := func(q float64) float64 {
		return float64(latencies[min(len(latencies)-1, int(q*float64(len(latencies))))].Microseconds()) / 1000
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(fetches/elapsed, "fetches/s")
	b.ReportMetric(cpu/elapsed, "server-cpu-s/s")
	for code, n := range answers {
		b.ReportMetric(float64(n)/elapsed, "http"+strconv.Itoa(code)+"/s")
	}
}

// serveProcess is charter serve run as a child process of the test binary.
type serveProcess struct {
	base string
	pid  int
	log  syncBuffer // its JSON log
}

// startServeProcess runs charter serve with args (its flags but --listen
// and --log-format) until the benchmark ends, and waits for its first
// snapshot.
func startServeProcess(b *testing.B, args ...string) *serveProcess {
	b.Helper()
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--log-format", "json"}, args...)
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CHARTER_TEST_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
		}
	})
	s := &serveProcess{pid: cmd.Process.Pid}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() { // read to the end, or the child blocks on a full pipe
			s.log.Write(append(sc.Bytes(), '\n'))
			var line struct{ Msg, Listen string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "charter is serving" {
				addr <- line.Listen
			}
		}
	}()
	select {
	case a := <-addr:
		s.base = "http://" + a
	case <-time.After(30 * time.Second):
		b.Fatalf("charter serve did not start:\n%s", s.log.String())
	}
	for deadline := time.Now().Add(120 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(s.base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("no first snapshot within 120 s:\n%s", s.log.String())
		}
	}
}

// fetches returns the fetches the sidecar has run, from GET /metrics.
func (s *serveProcess) fetches(b *testing.B) float64 {
	b.Helper()
	return float64(reconcilePhases(b, s.base)["fetch"].count)
}

// rssBytes returns the resident set size of the sidecar process, from
// /proc/PID/status.
func (s *serveProcess) rssBytes(b *testing.B) int64 {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(s.pid), "status"))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("parse %q: %v", line, err)
			}
			return kb << 10
		}
	}
	b.Fatalf("no VmRSS in %s", data)
	return 0
}

// cpuSeconds returns the user and system CPU time of the sidecar process,
// from /proc/PID/stat (in clock ticks of 1/100 s, Linux's USER_HZ).
func (s *serveProcess) cpuSeconds(b *testing.B) float64 {
	b.Helper()
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(s.pid), "stat"))
	if err != nil {
		b.Fatal(err)
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	fields := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	utime, err1 := strconv.ParseFloat(fields[11], 64) // field 14
	stime, err2 := strconv.ParseFloat(fields[12], 64) // field 15
	if err1 != nil || err2 != nil {
		b.Fatalf("parse %s: %v %v", data, err1, err2)
	}
	return (utime + stime) / 100
}
