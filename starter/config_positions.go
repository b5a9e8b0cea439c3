package starter

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// The YAML document is kept as nodes only to say where things are: documentTree turns it
// into the plain values the schema validates, and records for every value the nodes it came
// from under the value's location, so that an error about a location is reported at the
// line and column where it was written.

// located is where one value of the file was written.
type located struct {
	field string     // the field path a person reads, e.g. providers[0].auth.token
	key   *yaml.Node // the key of a mapping's value; nil for a list item and the root
	value *yaml.Node
}

// positions maps a location, its segments joined by locSep from "(root)" on (the form
// gojsonschema's contexts take), to where it was written.
type positions map[string]located

// locSep joins location segments; it cannot occur in a YAML key that means anything here.
const locSep = "\x00"

const rootLoc = "(root)"

// child is the location of a mapping's key or a list's index under loc.
func child(loc, seg string) string { return loc + locSep + seg }

// documentTree converts a YAML node to the values encoding/json would decode from the same
// document (maps, lists, strings, numbers, booleans), recording each one's position. A
// mapping value that is null is left out, as the file format says null means "the
// default"; a repeated key is reported to dup and removed from the node, its first value
// kept.
func documentTree(n *yaml.Node, loc, field string, key *yaml.Node, pos positions, dup func(k *yaml.Node, field string, first int)) any {
	n = resolve(n)
	pos[loc] = located{field: field, key: key, value: n}
	switch n.Kind {
	case yaml.MappingNode:
		out := map[string]any{}
		firstLine := map[string]int{}
		kept := make([]*yaml.Node, 0, len(n.Content))
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], resolve(n.Content[i+1])
			f := join(field, k.Value)
			if line, seen := firstLine[k.Value]; seen {
				dup(k, f, line)
				continue
			}
			firstLine[k.Value] = k.Line
			kept = append(kept, n.Content[i], n.Content[i+1])
			if isNull(v) {
				continue
			}
			out[k.Value] = documentTree(v, child(loc, k.Value), f, k, pos, dup)
		}
		n.Content = kept // yaml.v3 refuses a whole mapping with a repeated key; the rest decodes
		return out
	case yaml.SequenceNode:
		out := make([]any, len(n.Content))
		for i, item := range n.Content {
			out[i] = documentTree(item, child(loc, strconv.Itoa(i)), fmt.Sprintf("%s[%d]", field, i), nil, pos, dup)
		}
		return out
	}
	return scalarValue(n)
}

// scalarValue is a scalar's value as JSON has it: YAML's timestamps, binary and
// non-finite numbers, which JSON has not, stay the text that was written.
func scalarValue(n *yaml.Node) any {
	var v any
	if n.Decode(&v) != nil {
		return n.Value
	}
	switch x := v.(type) {
	case nil, bool, string, int, int64, uint64:
		return x
	case float64:
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return n.Value
		}
		return x
	case time.Time, []byte:
		return n.Value
	}
	return n.Value
}

func resolve(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// kindName says what a value is, in the words of the error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.Tag {
		case "!!bool":
			return "a boolean"
		case "!!int", "!!float":
			return "a number"
		case "!!null":
			return "null"
		}
		return fmt.Sprintf("the string %q", truncate(n.Value, 40))
	}
	return "something else"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml parse error into a diagnostic. The line yaml.v3 names is that
// of the construct being parsed, sometimes off by one; the first line at which a prefix of
// the file fails with the same message is where the problem shows, so that one is used.
func syntaxError(file string, src []byte, err error) Diagnostic {
	strip := func(msg string) (string, int) {
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return m[2], line
		}
		return strings.TrimPrefix(msg, "yaml: "), 0
	}
	msg, line := strip(err.Error())
	lines := strings.SplitAfter(string(src), "\n")
	for k := 1; k <= len(lines); k++ {
		var n yaml.Node
		if e := yaml.Unmarshal([]byte(strings.Join(lines[:k], "")), &n); e != nil {
			if m, _ := strip(e.Error()); m == msg {
				line = k
				break
			}
		}
	}
	return Diagnostic{File: file, Line: max(line, 1), Message: "invalid YAML: " + msg}
}

// expressionPosition maps a line:column inside a mapping's source to the file. Block
// scalars (| and >) start on the line after their indicator, indented; plain and quoted
// scalars start at the node (exact on their first line).
func expressionPosition(lines []string, n *yaml.Node, line, col int) (int, int) {
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		indent := 0
		for i := n.Line; i < len(lines); i++ { // lines[n.Line] is the line after the indicator
			if s := lines[i]; strings.TrimSpace(s) != "" {
				indent = len(s) - len(strings.TrimLeft(s, " "))
				break
			}
		}
		return n.Line + line, indent + col
	case yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle:
		if line == 1 {
			return n.Line, n.Column + col
		}
	default:
		if line == 1 {
			return n.Line, n.Column + col - 1
		}
	}
	return n.Line + line - 1, col
}
