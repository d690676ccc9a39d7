package main

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
)

// question is one authorization question: may user do action on resource.
type question struct {
	User     string `json:"userId"`
	Resource string `json:"resourceUri"`
	Action   string `json:"action"`
}

// mix describes a generated question mix.
type mix struct {
	users, docs int
	userFormat  string // fmt verb for a user number, e.g. "user-%d"
	docFormat   string // fmt verb for a document number, e.g. "documents/d%d"
	actions     []string
	seed        uint64
	size        int // how many questions to generate; requests cycle through them
}

// generate draws m.size questions uniformly over users, documents and
// actions from an RNG seeded with m.seed, so equal flags give equal runs.
func (m mix) generate() []question {
	r := rand.New(rand.NewPCG(m.seed, m.seed^0x9e3779b97f4a7c15))
	qs := make([]question, m.size)
	for i := range qs {
		qs[i] = question{
			User:     fmt.Sprintf(m.userFormat, r.IntN(m.users)),
			Resource: fmt.Sprintf(m.docFormat, r.IntN(m.docs)),
			Action:   m.actions[r.IntN(len(m.actions))],
		}
	}
	return qs
}

// readQuestionsFile reads questions from a file, see parseQuestions.
func readQuestionsFile(path string) ([]question, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	qs, err := parseQuestions(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return qs, nil
}

// parseQuestions reads one "user resource action" per line, fields separated
// by blanks; empty lines and lines starting with # are skipped.
func parseQuestions(r io.Reader) ([]question, error) {
	var qs []question
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		f := strings.Fields(text)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want \"user resource action\", got %d fields", line, len(f))
		}
		qs = append(qs, question{User: f[0], Resource: f[1], Action: f[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(qs) == 0 {
		return nil, fmt.Errorf("no questions")
	}
	return qs, nil
}
