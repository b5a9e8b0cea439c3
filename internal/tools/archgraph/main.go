// Command archgraph keeps the package picture of docs/architecture.md true. It reads the
// module's packages and their imports with `go list -json ./...` (non-test files only),
// checks them against the layers declared below, and writes the layer table and a Mermaid
// picture of the imports between the markers
//
//	<!-- packages:begin -->
//	<!-- packages:end -->
//
// of docs/architecture.md.
//
//	go run ./internal/tools/archgraph           # rewrite the picture (make arch)
//	go run ./internal/tools/archgraph --check   # fail when it is stale (make check, make test)
//
// Both fail, writing nothing, when an import runs up a layer, when a package belongs to no
// layer, or when an import the design forbids appears. It uses the standard library only.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// layer is one layer of the architecture. A package may import packages of lower layers;
// packages of one layer import one another only when peers is set.
type layer struct {
	name string
	// what says what the layer is for, in the generated table.
	what string
	// pkgs are import paths relative to the module; "x/..." is x and everything under it.
	pkgs  []string
	peers bool
}

// layers, bottom first. Every package of the module (but test-only ones) is in exactly one.
var layers = []layer{
	{name: "words", what: "the domain words every layer shares: object kinds, object references, provider names",
		pkgs: []string{"object"}},
	{name: "libraries", what: "self-contained: the standard library, third-party modules and the domain words only, never one another",
		pkgs: []string{"codec", "internal/cli", "mapping", "schemas", "scim", "scimtest", "sealed", "secretref"}},
	{name: "store", what: "PostgreSQL: migrations, directory, configuration, sync state, outbox",
		pkgs: []string{"store"}},
	{name: "pacing", what: "one rate limit per provider, shared through the store",
		pkgs: []string{"pacing"}},
	{name: "activities", what: "all I/O of a sync: store, mappings, schemas, SCIM client, pacing",
		pkgs: []string{"activities"}},
	{name: "workflows", what: "deterministic orchestration and the Temporal contract (IDs, signals, queries, inputs)",
		pkgs: []string{"workflows"}},
	{name: "change feed", what: "outbox → Temporal",
		pkgs: []string{"changefeed"}},
	{name: "worker", what: "the worker process: registration, relay, schedules, metrics, codec server",
		pkgs: []string{"worker"}},
	{name: "starter", what: "the operator CLI",
		pkgs: []string{"starter"}},
	{name: "test support", what: "real services for tests and the benchmark; never imported by the layers below",
		pkgs: []string{"internal/testenv", "internal/scimmy"}, peers: true},
	{name: "commands", what: "main packages",
		pkgs: []string{"cmd/...", "bench/...", "internal/tools/..."}},
}

// forbidden are direct imports that the layers alone allow but the design does not.
var forbidden = map[string][]string{
	// Workflows are deterministic orchestration: every piece of I/O is an activity's.
	"workflows": {"store", "scim", "pacing"},
}

const (
	beginMarker = "<!-- packages:begin -->"
	endMarker   = "<!-- packages:end -->"
)

func main() {
	check := flag.Bool("check", false, "do not write: exit 1 when the picture in the doc is stale")
	doc := flag.String("doc", "docs/architecture.md", "the document holding the markers, relative to the module root")
	flag.Parse()
	if err := run(*check, *doc, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "archgraph:", err)
		os.Exit(1)
	}
}

// pkg is what `go list -json` says of a package that archgraph needs.
type pkg struct {
	ImportPath string
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
}

func run(check bool, docPath string, out io.Writer) error {
	module, root, err := mainModule()
	if err != nil {
		return err
	}
	pkgs, err := listPackages(root, module)
	if err != nil {
		return err
	}
	if problems := checkLayers(pkgs); len(problems) > 0 {
		return fmt.Errorf("the imports break the layers (declared in internal/tools/archgraph/main.go, "+
			"explained in docs/architecture.md):\n  %s", strings.Join(problems, "\n  "))
	}
	block := render(pkgs)

	path := filepath.Join(root, docPath)
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	updated, err := replaceBlock(string(old), block)
	if err != nil {
		return fmt.Errorf("%s: %w", docPath, err)
	}
	if updated == string(old) {
		if !check {
			fmt.Fprintf(out, "%s: package picture up to date\n", docPath)
		}
		return nil
	}
	if check {
		return fmt.Errorf("%s: the package picture is stale (the imports changed):\n%s"+
			"run `make arch` (go run ./internal/tools/archgraph) and commit %s",
			docPath, lineDiff(currentBlock(string(old)), block), docPath)
	}
	if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: package picture rewritten\n", docPath)
	return nil
}

// mainModule returns the main module's path and directory.
func mainModule() (path, dir string, err error) {
	b, err := goCmd("", "list", "-m", "-f", "{{.Path}}\t{{.Dir}}")
	if err != nil {
		return "", "", err
	}
	path, dir, ok := strings.Cut(strings.TrimSpace(string(b)), "\t")
	if !ok || strings.Contains(dir, "\n") {
		return "", "", fmt.Errorf("go list -m: want one main module, got %q", b)
	}
	return path, dir, nil
}

// listPackages returns the module's packages that have non-test Go files, with their
// imports of the module's own packages, both relative to the module path.
func listPackages(root, module string) (map[string][]string, error) {
	b, err := goCmd(root, "list", "-json", "./...")
	if err != nil {
		return nil, err
	}
	rel := func(p string) (string, bool) {
		if p == module {
			return ".", true
		}
		r, ok := strings.CutPrefix(p, module+"/")
		return r, ok
	}
	pkgs := map[string][]string{}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list -json: %w", err)
		}
		name, ok := rel(p.ImportPath)
		if !ok || len(p.GoFiles)+len(p.CgoFiles) == 0 {
			continue // another module's, or tests only (integration/)
		}
		var imports []string
		for _, imp := range p.Imports {
			if r, ok := rel(imp); ok {
				imports = append(imports, r)
			}
		}
		slices.Sort(imports)
		pkgs[name] = imports
	}
	return pkgs, nil
}

func goCmd(dir string, args ...string) ([]byte, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return b, nil
}

// layerOf returns the index of the layer that holds p, or -1.
func layerOf(p string) int {
	for i, l := range layers {
		for _, pat := range l.pkgs {
			if matches(pat, p) {
				return i
			}
		}
	}
	return -1
}

func matches(pattern, p string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

// checkLayers returns every breach of the layers, sorted.
func checkLayers(pkgs map[string][]string) []string {
	var problems []string
	for _, l := range layers {
		for _, pat := range l.pkgs {
			if !slices.ContainsFunc(sortedKeys(pkgs), func(p string) bool { return matches(pat, p) }) {
				problems = append(problems, fmt.Sprintf("layer %q names %s, which matches no package: remove it", l.name, pat))
			}
		}
	}
	for _, p := range sortedKeys(pkgs) {
		from := layerOf(p)
		if from < 0 {
			problems = append(problems, fmt.Sprintf("%s is in no layer: add it to one in internal/tools/archgraph/main.go "+
				"(and say so in docs/architecture.md)", p))
			continue
		}
		for _, imp := range pkgs[p] {
			to := layerOf(imp)
			switch {
			case to < 0:
				// reported as its own package
			case to > from:
				problems = append(problems, fmt.Sprintf("%s (layer %d, %s) imports %s (layer %d, %s): an import up a layer",
					p, from+1, layers[from].name, imp, to+1, layers[to].name))
			case to == from && !layers[from].peers:
				problems = append(problems, fmt.Sprintf("%s imports %s: packages of layer %d (%s) do not import one another",
					p, imp, from+1, layers[from].name))
			}
			if slices.Contains(forbidden[p], imp) {
				problems = append(problems, fmt.Sprintf("%s imports %s, which the design forbids (see forbidden)", p, imp))
			}
		}
	}
	return problems
}

// render returns the generated block: the layer table and the Mermaid picture.
func render(pkgs map[string][]string) string {
	var b strings.Builder
	b.WriteString("<!-- Generated by `make arch` (go run ./internal/tools/archgraph) from `go list -json ./...`; ")
	b.WriteString("`make check` fails when it is stale. Do not edit by hand. -->\n\n")
	b.WriteString("| layer | packages | what it is |\n|---|---|---|\n")
	byLayer := make([][]string, len(layers))
	for _, p := range sortedKeys(pkgs) {
		i := layerOf(p)
		byLayer[i] = append(byLayer[i], p)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		names := make([]string, len(byLayer[i]))
		for j, p := range byLayer[i] {
			names[j] = "`" + p + "`"
		}
		what := l.what
		if l.peers {
			what += " (they may import one another)"
		}
		fmt.Fprintf(&b, "| %d %s | %s | %s |\n", i+1, l.name, strings.Join(names, ", "), what)
	}
	b.WriteString("\n```mermaid\nflowchart TB\n")
	for i := len(layers) - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "  subgraph layer%d [\"%d %s\"]\n", i+1, i+1, layers[i].name)
		for _, p := range byLayer[i] {
			fmt.Fprintf(&b, "    %s[\"%s\"]\n", nodeID(p), p)
		}
		b.WriteString("  end\n")
	}
	for _, p := range sortedKeys(pkgs) {
		for _, imp := range pkgs[p] {
			fmt.Fprintf(&b, "  %s --> %s\n", nodeID(p), nodeID(imp))
		}
	}
	b.WriteString("```\n")
	return b.String()
}

// nodeID is a Mermaid node id for package p.
func nodeID(p string) string {
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, p)
	return "pkg_" + id
}

// replaceBlock puts block between the markers of doc.
func replaceBlock(doc, block string) (string, error) {
	start := strings.Index(doc, beginMarker+"\n")
	if start < 0 {
		return "", fmt.Errorf("no %s line", beginMarker)
	}
	start += len(beginMarker) + 1
	end := strings.Index(doc[start:], endMarker)
	if end < 0 {
		return "", fmt.Errorf("no %s after %s", endMarker, beginMarker)
	}
	return doc[:start] + block + doc[start+end:], nil
}

// currentBlock is what stands between the markers of doc now.
func currentBlock(doc string) string {
	_, after, ok := strings.Cut(doc, beginMarker+"\n")
	if !ok {
		return ""
	}
	block, _, _ := strings.Cut(after, endMarker)
	return block
}

// lineDiff lists the lines of want missing from have (+) and those of have not in want (-).
func lineDiff(have, want string) string {
	h, w := strings.Split(have, "\n"), strings.Split(want, "\n")
	var b strings.Builder
	for _, l := range w {
		if l != "" && !slices.Contains(h, l) {
			fmt.Fprintf(&b, "  + %s\n", l)
		}
	}
	for _, l := range h {
		if l != "" && !slices.Contains(w, l) {
			fmt.Fprintf(&b, "  - %s\n", l)
		}
	}
	return b.String()
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
