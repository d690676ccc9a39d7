package schema_test

import (
	"context"
	"errors"
	"os"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/charter-policy/charter/schema"
	"github.com/charter-policy/charter/schema/cueproc"
)

// TestMain lets this test binary be the child of the cueproc.Runner its
// tests and benchmarks load with.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == cueproc.Subcommand {
		os.Exit(cueproc.Child(context.Background(), os.Args[2:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// childRunner returns a cueproc.Runner that is closed when the test ends.
func childRunner(tb testing.TB) *cueproc.Runner {
	tb.Helper()
	r, err := cueproc.New(cueproc.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

// loaderWith returns a new Loader that evaluates CUE with r.
func loaderWith(r schema.CUERunner) *schema.Loader {
	l := schema.NewLoader()
	l.CUE = r
	return l
}

// TestCUERunnerAgrees: loading through child processes gives what loading
// in this process gives, error for error and entity for entity, on every
// CUE input of this package's tests. The children are shared, as in the
// sidecar, so that nothing one unit leaves in a child may change another's
// result.
func TestCUERunnerAgrees(t *testing.T) {
	inputs := schema.CUETestInputs(t)
	runner := childRunner(t)
	var valid, invalid atomic.Int32
	t.Run("inputs", func(t *testing.T) {
		for name, fsys := range inputs {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				want, wantErr := schema.NewLoader().Load(context.Background(), fsys)
				got, gotErr := loaderWith(runner).Load(context.Background(), fsys)
				var wantErrs, gotErrs schema.Errors
				switch {
				case errors.As(wantErr, &wantErrs):
					if !errors.As(gotErr, &gotErrs) || gotErrs.Error() != wantErrs.Error() {
						t.Fatalf("through a child:\n%v\nin this process:\n%v", gotErr, wantErr)
					}
					invalid.Add(1)
				case wantErr != nil:
					t.Fatalf("in this process: %v", wantErr)
				case gotErr != nil:
					t.Fatalf("through a child: %v", gotErr)
				default:
					if !reflect.DeepEqual(got, want) {
						t.Fatal("the policy sets differ")
					}
					valid.Add(1)
				}
			})
		}
	})
	if valid, invalid := valid.Load(), invalid.Load(); valid < 5 || invalid < 5 {
		t.Errorf("%d valid and %d invalid inputs: want several of each", valid, invalid)
	}
}

// BenchmarkLoadCUE: a cold load of 10,000 records in CUE files of 1,000
// records, one file per directory (10 directories, and one more of extra
// records), each directory evaluated in a child process as the CLI and
// the sidecar do. Target: under 2 s.
func BenchmarkLoadCUE(b *testing.B) {
	root := schema.BenchRepository(b, 10_000, "cue")
	b.ReportAllocs()
	for b.Loop() {
		runner := childRunner(b) // new children: a cold load, as in charter validate
		_, err := loaderWith(runner).Load(context.Background(), os.DirFS(root))
		runner.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoadCUEInProcess is BenchmarkLoadCUE with CUE evaluated in this
// process (a Loader without a CUERunner), to show the cost of the children.
func BenchmarkLoadCUEInProcess(b *testing.B) {
	root := schema.BenchRepository(b, 10_000, "cue")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := schema.NewLoader().Load(context.Background(), os.DirFS(root)); err != nil {
			b.Fatal(err)
		}
	}
}
