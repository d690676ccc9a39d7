package main

import (
	"bytes"
	"cmp"
	"context"
	"flag"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/charter-policy/charter/schema/cueproc"
)

// cliReference is the CLI reference this test holds to the code.
const cliReference = "cmd/charter/README.md"

// docFlag is one row of a flag table in the CLI reference.
type docFlag struct {
	def  string // the literal default: the code span of the default cell, or "" for a description
	line int
}

// docCommand is the section "## charter NAME" of the CLI reference.
type docCommand struct {
	line  int
	flags map[string]docFlag
}

var (
	commandHeading = regexp.MustCompile(`^## charter ([a-z-]+)\s*$`)
	codeSpan       = regexp.MustCompile("^`([^`]*)`$")
)

// parseCLIReference returns the command sections of the CLI reference and
// the rows of their flag tables (rows whose first cell is `--NAME`).
func parseCLIReference(t *testing.T, text string) map[string]*docCommand {
	t.Helper()
	cmds := map[string]*docCommand{}
	var cur *docCommand
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if m := commandHeading.FindStringSubmatch(line); m != nil {
			if old, dup := cmds[m[1]]; dup {
				t.Errorf("%s:%d: a second section for charter %s (the first is at line %d)", cliReference, n, m[1], old.line)
			}
			cur = &docCommand{line: n, flags: map[string]docFlag{}}
			cmds[m[1]] = cur
			continue
		}
		if strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "###") {
			cur = nil // another section of the same or a higher level
			continue
		}
		if cur == nil || !strings.HasPrefix(line, "| `--") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 3 {
			t.Errorf("%s:%d: a flag row needs three cells (flag, default, meaning): %q", cliReference, n, line)
			continue
		}
		m := codeSpan.FindStringSubmatch(strings.TrimSpace(cells[0]))
		if m == nil || !strings.HasPrefix(m[1], "--") {
			t.Errorf("%s:%d: the first cell of a flag row must be `--NAME`: %q", cliReference, n, cells[0])
			continue
		}
		name := strings.TrimPrefix(m[1], "--")
		def := ""
		if d := codeSpan.FindStringSubmatch(strings.TrimSpace(cells[1])); d != nil {
			def = d[1]
		}
		if old, dup := cur.flags[name]; dup {
			t.Errorf("%s:%d: --%s is documented twice (also at line %d)", cliReference, n, name, old.line)
		}
		cur.flags[name] = docFlag{def: def, line: n}
	}
	return cmds
}

// defaultCell is how the CLI reference writes a literal default.
func defaultCell(def string) string {
	if def == "" {
		return ""
	}
	return "`" + def + "`"
}

// TestCLIReferenceFlags checks cmd/charter/README.md against the code: every
// command has a section "## charter NAME", every flag a command defines has a
// row in that section's table with the same default, and every row names a
// flag that exists. When a flag is added (say --interval to serve), the
// failure gives the row to add.
func TestCLIReferenceFlags(t *testing.T) {
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := parseCLIReference(t, string(data))
	cmds := commands()
	for name, cmd := range cmds {
		if cmd.hidden {
			if sec, ok := doc[name]; ok {
				t.Errorf("%s:%d: a section for charter %s, a hidden command that the binary runs itself", cliReference, sec.line, name)
			}
			continue
		}
		t.Run(name, func(t *testing.T) {
			sec, ok := doc[name]
			if !ok {
				t.Fatalf("%s has no section %q for the command charter %s: add one (with a flag table if it has flags)", cliReference, "## charter "+name, name)
			}
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			if cmd.flags != nil {
				cmd.flags(fs)
			}
			fs.VisitAll(func(f *flag.Flag) {
				d, ok := sec.flags[f.Name]
				switch {
				case !ok:
					t.Errorf("charter %s defines --%s, which %s does not document: add this row to the table under %q (line %d):\n| `--%s` | %s | %s |",
						name, f.Name, cliReference, "## charter "+name, sec.line, f.Name, defaultCell(f.DefValue), f.Usage)
				case d.def != f.DefValue:
					t.Errorf("%s:%d: --%s of charter %s: the default cell says %q, the code %q: write %s (a description, not in code, stands for an empty default)",
						cliReference, d.line, f.Name, name, d.def, f.DefValue, cmp.Or(defaultCell(f.DefValue), "an empty cell or a description"))
				}
			})
			var documented []string
			for flagName := range sec.flags {
				documented = append(documented, flagName)
			}
			sort.Strings(documented)
			for _, flagName := range documented {
				if fs.Lookup(flagName) == nil {
					t.Errorf("%s:%d: documents --%s, but charter %s has no such flag: remove the row or define the flag",
						cliReference, sec.flags[flagName].line, flagName, name)
				}
			}
		})
	}
	for name, sec := range doc {
		if _, ok := cmds[name]; !ok {
			t.Errorf("%s:%d: a section for charter %s, which is not a command (main.go's commands())", cliReference, sec.line, name)
		}
	}
}

// TestCommandTableFlagsAreTheOnesRunDefines checks that each command's flags
// function in the command table defines exactly the flags the command
// parses, by comparing the flag list of "charter NAME -h" with the one of
// a flag set defined by the table; otherwise TestCLIReferenceFlags would
// check the wrong list.
func TestCommandTableFlagsAreTheOnesRunDefines(t *testing.T) {
	for name, cmd := range commands() {
		if cmd.hidden {
			continue // it takes no flags from a user, and no -h
		}
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			env := &cliEnv{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, now: time.Now}
			if code := run(context.Background(), env, []string{name, "-h"}); code != exitOK {
				t.Fatalf("charter %s -h: exit %d\n%s", name, code, stderr.String())
			}
			_, got, ok := strings.Cut(stderr.String(), "\nFlags:\n")
			if !ok {
				t.Fatalf("charter %s -h printed no flag list:\n%s", name, stderr.String())
			}
			var want bytes.Buffer
			fs := flag.NewFlagSet(name, flag.ContinueOnError)
			fs.SetOutput(&want)
			if cmd.flags != nil {
				cmd.flags(fs)
			}
			fs.PrintDefaults()
			if got != want.String() {
				t.Errorf("charter %s -h lists other flags than the command table's flags function defines; define them all in that function\n-h:\n%s\ntable:\n%s",
					name, got, want.String())
			}
		})
	}
}

// TestHiddenCommands: the command that a cueproc.Runner starts is not
// listed by "charter help", nor documented; the others are listed.
func TestHiddenCommands(t *testing.T) {
	var stderr bytes.Buffer
	env := &cliEnv{stdout: &stderr, stderr: &stderr, getenv: func(string) string { return "" }, now: time.Now}
	if code := run(context.Background(), env, []string{"help"}); code != exitOK {
		t.Fatalf("charter help: exit %d", code)
	}
	hidden := 0
	for name, cmd := range commands() {
		listed := strings.Contains(stderr.String(), "\n  "+name+" ")
		switch {
		case cmd.hidden && listed:
			t.Errorf("charter help lists the hidden command %s:\n%s", name, stderr.String())
		case !cmd.hidden && !listed:
			t.Errorf("charter help does not list %s:\n%s", name, stderr.String())
		}
		if cmd.hidden {
			hidden++
		}
	}
	if hidden != 1 {
		t.Errorf("%d hidden commands, want 1 (%s)", hidden, cueproc.Subcommand)
	}
	if !commands()[cueproc.Subcommand].hidden {
		t.Errorf("%s is not a hidden command", cueproc.Subcommand)
	}
}
