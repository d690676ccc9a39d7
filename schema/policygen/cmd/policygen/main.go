// Command policygen writes a generated policy repository for load tests and
// benchmarks by hand:
//
//	go run ./schema/policygen/cmd/policygen -dir /tmp/policy-100k
//	go run ./schema/policygen/cmd/policygen -dir /tmp/policy-min -documents 10000 -per-file 10000 -minified
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/charter-policy/charter/schema/policygen"
)

func main() {
	dir := flag.String("dir", "", "directory to write the repository into (created)")
	var o policygen.Options
	flag.IntVar(&o.Documents, "documents", 100_000, "owner records, one per document")
	flag.IntVar(&o.Users, "users", 10_000, "distinct users")
	flag.IntVar(&o.PerFile, "per-file", 1000, "records per data file")
	flag.StringVar(&o.Format, "format", "json", "json or cue")
	flag.BoolVar(&o.Minified, "minified", false, "write each file on one line, as json.Marshal does")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "policygen: -dir is required")
		os.Exit(2)
	}
	n, err := policygen.Write(*dir, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "policygen:", err)
		os.Exit(1)
	}
	fmt.Printf("wrote %d records to %s\n", n, *dir)
}
