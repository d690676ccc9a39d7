package git

import (
	"syscall"
	"testing"
	"time"

	"github.com/charter-policy/charter/reconciler/gitrepo/gittest"
)

// BenchmarkNoChangeFetch measures a fetch that finds the branch tip
// unchanged, against a real git daemon: one ref advertisement, no pack,
// no tree read. Besides wall time (ns/op, which includes the daemon's
// upload-pack starting) and allocations (-benchmem), it reports this
// process's CPU time per fetch (user and system, from getrusage), which is
// what the sidecar pays.
func BenchmarkNoChangeFetch(b *testing.B) {
	root := b.TempDir()
	remote := gittest.NewRemote(b, root, "policy")
	remote.Set(b, policy, "first")
	for _, tt := range []struct {
		name string
		url  func() string
		opts func() Options
	}{
		{"git-daemon", func() string { return gittest.StartDaemon(b, root).URL("policy.git") }, func() Options { return Options{} }},
		{"file", func() string { return "file://" + remote.Bare }, func() Options { return Options{} }},
	} {
		b.Run(tt.name, func(b *testing.B) {
			opts := tt.opts()
			opts.Path, opts.CacheDir = "policies", b.TempDir()
			s, err := New(tt.url(), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			first, _, err := s.Fetch(ctx)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				rev, _, err := s.Fetch(ctx)
				if err != nil || rev.ID != first.ID {
					b.Fatalf("%+v, %v", rev, err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime returns the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
