package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/charter-policy/charter/engine"
	policiesexample "github.com/charter-policy/charter/policies-example"
	"github.com/charter-policy/charter/schema"
)

// readmeRevision is the revision the README's examples are served at; the
// README shows it, wherever it appears, as "…".
const readmeRevision = "3f2a9c1e5b7d4a6f8e0c2b4d6a8f0e1c3b5d7f9a"

// readmeBase is the address the README's curl commands name.
const readmeBase = "http://127.0.0.1:8181"

// readmeBlock is a fenced block of README.md.
type readmeBlock struct {
	lang, body string
	line       int // of the opening fence
}

func readmeBlocks(t *testing.T) []readmeBlock {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []readmeBlock
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		lang, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		start := i + 1
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		blocks = append(blocks, readmeBlock{lang: lang, body: strings.Join(body, "\n"), line: start})
	}
	return blocks
}

// curlRequest is what a curl command line of the README asks.
type curlRequest struct {
	method, url string
	header      http.Header
	body        string
	hasBody     bool
	include     bool // -i: the answer block shows the status line and headers
}

// parseCurl parses the curl command lines the README uses: curl [-s] [-i]
// [-X METHOD] [-H 'Name: value']... [-d DATA] URL, with shell quoting.
// Anything else is an error, so that every example can be run.
func parseCurl(line string) (*curlRequest, error) {
	words, err := shellWords(line)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 || words[0] != "curl" {
		return nil, fmt.Errorf("not a curl command")
	}
	r := &curlRequest{header: http.Header{}}
	for i := 1; i < len(words); i++ {
		w := words[i]
		next := func() (string, error) {
			if i+1 >= len(words) {
				return "", fmt.Errorf("%s needs a value", w)
			}
			i++
			return words[i], nil
		}
		switch {
		case w == "-s":
		case w == "-i" || w == "-si" || w == "-is":
			r.include = true
		case w == "-X":
			if r.method, err = next(); err != nil {
				return nil, err
			}
		case w == "-H":
			h, err := next()
			if err != nil {
				return nil, err
			}
			name, value, ok := strings.Cut(h, ":")
			if !ok {
				return nil, fmt.Errorf("header %q has no colon", h)
			}
			r.header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
		case w == "-d" || w == "--data" || w == "--data-binary":
			if r.body, err = next(); err != nil {
				return nil, err
			}
			r.hasBody = true
		case strings.HasPrefix(w, "-"):
			return nil, fmt.Errorf("curl option %s is not supported by this test", w)
		default:
			if r.url != "" {
				return nil, fmt.Errorf("two URLs: %s and %s", r.url, w)
			}
			r.url = w
		}
	}
	if r.url == "" {
		return nil, fmt.Errorf("no URL")
	}
	if r.method == "" {
		r.method = http.MethodGet
		if r.hasBody {
			r.method = http.MethodPost // as curl does with -d
		}
	}
	if r.hasBody && r.header.Get("Content-Type") == "" {
		r.header.Set("Content-Type", "application/x-www-form-urlencoded") // as curl does with -d
	}
	return r, nil
}

// shellWords splits a command line as sh does for the quoting the README
// uses: single quotes, double quotes with backslash escapes, and bare words.
func shellWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, fmt.Errorf("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte(`"\$`+"`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated double quote")
			}
			inWord = true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case strings.IndexByte("|&;<>()$`*?[#~", c) >= 0 && !inWord:
			return nil, fmt.Errorf("shell syntax %q is not supported by this test", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// expectedAnswer is the answer block after a curl command: the JSON body
// and, after curl -i, the status and the headers shown.
type expectedAnswer struct {
	status int // 0: not shown
	header http.Header
	body   string
}

func parseAnswer(b readmeBlock, include bool) (*expectedAnswer, error) {
	if !include {
		if b.lang != "json" {
			return nil, fmt.Errorf("the answer of curl without -i is a json block, not %q", b.lang)
		}
		return &expectedAnswer{body: b.body}, nil
	}
	if b.lang != "http" {
		return nil, fmt.Errorf("the answer of curl -i is an http block, not %q", b.lang)
	}
	head, body, ok := strings.Cut(b.body, "\n\n")
	if !ok {
		return nil, fmt.Errorf("no blank line between the headers and the body")
	}
	lines := strings.Split(head, "\n")
	proto, rest, _ := strings.Cut(lines[0], " ")
	code, _, _ := strings.Cut(rest, " ")
	status, err := strconv.Atoi(code)
	if proto != "HTTP/1.1" || err != nil {
		return nil, fmt.Errorf("status line %q", lines[0])
	}
	a := &expectedAnswer{status: status, header: http.Header{}, body: body}
	for _, l := range lines[1:] {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			return nil, fmt.Errorf("header line %q", l)
		}
		a.header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return a, nil
}

// readmeServer serves the embedded example policies at readmeRevision,
// the way charter serve does without --source (status included), on a
// real listener.
func readmeServer(t *testing.T) *httptest.Server {
	t.Helper()
	p, err := schema.NewLoader().Load(t.Context(), policiesexample.FS())
	if err != nil {
		t.Fatal(err)
	}
	s, err := engine.Build(p, readmeRevision)
	if err != nil {
		t.Fatal(err)
	}
	b := newBackend(s)
	c := s.Counts()
	b.status = Status{
		LoadedAt:        time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC),
		Source:          "embedded:policies-example",
		FetchedRevision: readmeRevision,
		LastFetch:       time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC),
		Signature:       &Signature{Status: "none"},
		Counts:          map[string]int{"roles": c.Roles, "groups": c.Groups, "records": c.Records, "resourceServers": c.ResourceServers},
	}
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(NewHandler(b, Options{Registerer: reg, Gatherer: reg, Branch: func() string { return "main" }}))
	t.Cleanup(srv.Close)
	return srv
}

// TestREADMEExamples runs every curl command of README.md against a real
// server of the embedded example policies and compares the answer with the
// block that follows it: the JSON body and, after curl -i, the status and
// each header shown. The served revision reads "…" in the README.
func TestREADMEExamples(t *testing.T) {
	t.Parallel() // the 409 example waits 2 s
	blocks := readmeBlocks(t)
	srv := readmeServer(t)
	client := &http.Client{Timeout: 10 * time.Second}
	ran := 0
	for i, b := range blocks {
		if b.lang != "sh" || !strings.HasPrefix(b.body, "curl ") {
			continue
		}
		t.Run(fmt.Sprintf("line %d", b.line), func(t *testing.T) {
			if strings.Contains(b.body, "\n") {
				t.Fatalf("one curl command a block, please:\n%s", b.body)
			}
			req, err := parseCurl(b.body)
			if err != nil {
				t.Fatalf("%s: %v", b.body, err)
			}
			if i+1 >= len(blocks) {
				t.Fatalf("%s: no answer block follows", b.body)
			}
			want, err := parseAnswer(blocks[i+1], req.include)
			if err != nil {
				t.Fatalf("%s: answer at line %d: %v", b.body, blocks[i+1].line, err)
			}
			u, ok := strings.CutPrefix(req.url, readmeBase)
			if !ok {
				t.Fatalf("%s: the URL is not on %s", b.body, readmeBase)
			}
			var body io.Reader
			if req.hasBody {
				body = strings.NewReader(req.body)
			}
			hr, err := http.NewRequest(req.method, srv.URL+u, body)
			if err != nil {
				t.Fatal(err)
			}
			hr.Header = req.header
			resp, err := client.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			got = bytes.ReplaceAll(got, []byte(readmeRevision), []byte("…"))
			if want.status != 0 && resp.StatusCode != want.status {
				t.Errorf("%s: status %d, the README shows %d", b.body, resp.StatusCode, want.status)
			}
			for name, values := range want.header {
				g := strings.ReplaceAll(strings.Join(resp.Header.Values(name), ", "), readmeRevision, "…")
				if w := strings.Join(values, ", "); g != w {
					t.Errorf("%s: header %s: %q, the README shows %q", b.body, name, g, w)
				}
			}
			var gv, wv any
			if err := json.Unmarshal(got, &gv); err != nil {
				t.Fatalf("%s: the answer is not JSON: %q", b.body, got)
			}
			if err := json.Unmarshal([]byte(want.body), &wv); err != nil {
				t.Fatalf("%s: the README shows invalid JSON at line %d: %v", b.body, blocks[i+1].line, err)
			}
			if !reflect.DeepEqual(gv, wv) {
				t.Errorf("%s: the answer differs from the README (line %d)\ngot:  %s\nwant: %s", b.body, blocks[i+1].line, got, want.body)
			}
		})
		ran++
	}
	if ran < 20 {
		t.Errorf("found %d curl examples in README.md, want at least 20", ran)
	}
}

// TestREADMECoversTheAPI: README.md names every error code of errors.go,
// every route NewHandler registers and every route of its doc comment, the
// headers and the limits, so that the reference cannot fall behind.
func TestREADMECoversTheAPI(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	need := func(what, s string) {
		t.Helper()
		if !strings.Contains(text, s) {
			t.Errorf("README.md does not mention %s %q", what, s)
		}
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	codes := 0
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || !strings.HasPrefix(vs.Names[0].Name, "code") {
			return true
		}
		if lit, ok := vs.Values[0].(*ast.BasicLit); ok {
			code, _ := strconv.Unquote(lit.Value)
			need("the error code", "`"+code+"`")
			codes++
		}
		return true
	})
	if codes < 15 {
		t.Fatalf("found %d error codes in errors.go", codes)
	}
	handler, err := os.ReadFile("handler.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`h\.route\("([A-Z]+)", "([^"]+)"`).FindAllStringSubmatch(string(handler), -1)
	doc := regexp.MustCompile(`(?m)^//\t(GET|POST)  ?(/[^\s,]+)`).FindAllStringSubmatch(string(handler), -1)
	if len(routes) < 6 || len(doc) < 8 {
		t.Fatalf("found %d registered routes and %d documented in handler.go", len(routes), len(doc))
	}
	for _, r := range append(routes, doc...) {
		path, _, _ := strings.Cut(r[2], "?")
		need("the route", "## "+r[1]+" "+path)
	}
	for _, s := range []string{HeaderRevision, HeaderMinRevision, HeaderSignature, HeaderGiteaSignature, HeaderGitLabToken, "X-GitHub-Event", HeaderGiteaEvent, HeaderGitLabEvent, "Allow",
		"1 MiB", strconv.Itoa(MaxChecks), strconv.Itoa(engine.DefaultListLimit), strconv.Itoa(engine.MaxListLimit), "8 MiB"} {
		need("", s)
	}
}
