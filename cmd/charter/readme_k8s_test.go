package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestREADMEKubernetesManifests parses every YAML block of the README
// holding a charter container, runs the container's arguments through
// charter serve's own flag parser, and checks that each file a flag names
// (the *-file flags, --trusted-keys, --trusted-ssh-signers) lies in a
// volume mounted into that container, and --cache-dir in a writable one.
func TestREADMEKubernetesManifests(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var containers []k8sContainer
	for _, block := range fencedBlocks(string(data), "yaml") {
		dec := yaml.NewDecoder(strings.NewReader(block))
		for {
			var doc any
			if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("a yaml block of the README does not parse: %v\n%s", err, block)
			}
			collectContainers(doc, &containers)
		}
	}
	var gitSource bool
	for _, c := range containers {
		if len(c.Args) == 0 || c.Args[0] != "serve" {
			continue
		}
		var usage bytes.Buffer
		fs := newFlagSet("serve", "", &usage)
		config := serveFlags(fs)
		if _, err := parseFlags(fs, c.Args[1:], func(string) string { return "" }); err != nil {
			t.Errorf("container %s: charter %s: %v\n%s", c.Name, strings.Join(c.Args, " "), err, usage.String())
			continue
		}
		cfg := config()
		gitSource = gitSource || strings.Contains(cfg.source, "@") || strings.Contains(cfg.source, "://")
		for _, name := range []string{"git-ssh-key-file", "git-known-hosts-file", "git-token-file", "webhook-secret-file", "trusted-keys", "trusted-ssh-signers", "cache-dir"} {
			path := fs.Lookup(name).Value.String()
			if path == "" {
				continue
			}
			mount, ok := c.mountOf(path)
			switch {
			case !ok:
				t.Errorf("container %s: --%s %s lies in no volume mounted into it", c.Name, name, path)
			case name == "cache-dir" && mount.ReadOnly:
				t.Errorf("container %s: --cache-dir %s is mounted read-only", c.Name, path)
			}
		}
	}
	if !gitSource {
		t.Error("no manifest of the README runs charter serve on a git source")
	}
}

type k8sContainer struct {
	Name         string     `yaml:"name"`
	Args         []string   `yaml:"args"`
	VolumeMounts []k8sMount `yaml:"volumeMounts"`
}

type k8sMount struct {
	MountPath string `yaml:"mountPath"`
	ReadOnly  bool   `yaml:"readOnly"`
}

// mountOf returns the volume mount that holds path.
func (c k8sContainer) mountOf(path string) (k8sMount, bool) {
	for _, m := range c.VolumeMounts {
		if path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			return m, true
		}
	}
	return k8sMount{}, false
}

// collectContainers finds every "containers" list in a decoded YAML document.
func collectContainers(node any, out *[]k8sContainer) {
	switch n := node.(type) {
	case map[string]any:
		for k, v := range n {
			if k == "containers" {
				raw, _ := yaml.Marshal(v)
				var cs []k8sContainer
				if yaml.Unmarshal(raw, &cs) == nil {
					*out = append(*out, cs...)
				}
				continue
			}
			collectContainers(v, out)
		}
	case []any:
		for _, v := range n {
			collectContainers(v, out)
		}
	}
}

// fencedBlocks returns the bodies of the ```lang blocks of a Markdown text.
func fencedBlocks(md, lang string) []string {
	var out []string
	lines := strings.Split(md, "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```"+lang {
			continue
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		out = append(out, strings.Join(body, "\n"))
	}
	return out
}
