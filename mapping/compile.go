package mapping

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/scimsync/scimsync/object"
	"go.starlark.net/resolve"
	"go.starlark.net/starlark"
	"go.starlark.net/syntax"
)

// entryName is the name of the function a mapping body is compiled into. Names
// the body binds are local to that function, so they cannot clash with it.
const entryName = "__mapping__"

// fileOptions are the Starlark dialect of mappings: while loops and set() are
// allowed because mapping authors write Python; recursion stays forbidden.
var fileOptions = &syntax.FileOptions{While: true, Set: true}

// predeclared holds the names a mapping sees besides its parameters and the
// Starlark universe (len, str, fail, ...).
var predeclared = starlark.StringDict{
	"skip_object": starlark.NewBuiltin("skip_object", skipObject),
}

// A Program is a compiled mapping. It is immutable and safe for concurrent use
// by many goroutines; each evaluation runs on its own Starlark thread.
type Program struct {
	name  string
	kind  object.Kind
	apply Apply
	fn    *starlark.Function
}

// Name returns the name the mapping was compiled with; programs run in order
// of their names.
func (p *Program) Name() string { return p.name }

// Kind returns the kind of object the mapping maps.
func (p *Program) Kind() object.Kind { return p.kind }

// Apply returns when the mapping's attributes are written: ApplyAlways (what
// Compile returns) or ApplyOnCreate.
func (p *Program) Apply() Apply {
	if p.apply == "" {
		return ApplyAlways
	}
	return p.apply
}

// WithApply returns a copy of p applied as a says (see Apply); the compiled
// code is shared. It panics on an unknown value: check it with ParseApply.
func (p *Program) WithApply(a Apply) *Program {
	if _, err := ParseApply(string(a)); err != nil {
		panic(err)
	}
	q := *p
	q.apply = a
	return &q
}

// A CompileError reports a mapping that does not compile. Line and Column are
// 1-based positions in the mapping's source, 0 when the error has no position
// (an empty name or an unknown kind).
type CompileError struct {
	Mapping string
	Line    int
	Column  int
	// Msg is the compiler's message. For Python constructs Starlark lacks it
	// says so, e.g. "try/except is not supported in Starlark".
	Msg string
}

func (e *CompileError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("mapping %q: %s", e.Mapping, e.Msg)
	}
	return fmt.Sprintf("mapping %q: line %d:%d: %s", e.Mapping, e.Line, e.Column, e.Msg)
}

// Compile compiles the source of a mapping named name for objects of the given
// kind. The source is a function body that sees user (or group) and provider
// and returns a dict or None. Every error is a *CompileError: syntax errors,
// undefined names and Python-only constructs are reported here, when the
// mapping is saved, rather than at sync time. An empty source (or one with
// only comments) is an error.
func Compile(name string, kind object.Kind, source string) (*Program, error) {
	if name == "" {
		return nil, &CompileError{Mapping: name, Msg: "a mapping needs a name"}
	}
	var param string
	switch kind {
	case object.User:
		param = "user"
	case object.Group:
		param = "group"
	default:
		return nil, &CompileError{Mapping: name, Msg: fmt.Sprintf("unknown kind %q (want %q or %q)", kind, object.User, object.Group)}
	}

	// Parse the body as a file so that positions are those of the source as
	// written, then wrap its statements into "def __mapping__(user, provider)".
	f, err := fileOptions.Parse(name, source, 0)
	if err != nil {
		return nil, newCompileError(name, source, err)
	}
	if len(f.Stmts) == 0 {
		return nil, &CompileError{Mapping: name, Line: 1, Column: 1, Msg: "the mapping is empty; it must return a dict or None"}
	}
	at := syntax.Start(f.Stmts[0])
	f.Stmts = []syntax.Stmt{&syntax.DefStmt{
		Def:    at,
		Name:   &syntax.Ident{NamePos: at, Name: entryName},
		Lparen: at,
		Params: []syntax.Expr{
			&syntax.Ident{NamePos: at, Name: param},
			&syntax.Ident{NamePos: at, Name: "provider"},
		},
		Rparen: at,
		Body:   f.Stmts,
	}}
	prog, err := starlark.FileProgram(f, predeclared.Has)
	if err != nil {
		return nil, newCompileError(name, source, err)
	}

	// Executing the top level only defines the function; freezing its globals
	// makes the function safe to call from many threads at once.
	thread := &starlark.Thread{Name: "compile " + name, Print: discardPrint}
	globals, err := prog.Init(thread, predeclared)
	if err != nil {
		return nil, &CompileError{Mapping: name, Msg: err.Error()}
	}
	globals.Freeze()
	fn, ok := globals[entryName].(*starlark.Function)
	if !ok {
		return nil, &CompileError{Mapping: name, Msg: "internal error: mapping function not defined"}
	}
	return &Program{name: name, kind: kind, fn: fn}, nil
}

// MustCompile is like Compile but panics on error. It is meant for mappings
// written in Go source, such as the defaults and tests.
func MustCompile(name string, kind object.Kind, source string) *Program {
	p, err := Compile(name, kind, source)
	if err != nil {
		panic(err)
	}
	return p
}

func discardPrint(*starlark.Thread, string) {}

// newCompileError turns a parser or resolver error into a *CompileError with a
// hint when the mapping uses Python that Starlark lacks.
func newCompileError(name, source string, err error) *CompileError {
	var pos syntax.Position
	var msg string
	var serr syntax.Error
	var rerrs resolve.ErrorList
	switch {
	case errors.As(err, &serr):
		pos, msg = serr.Pos, serr.Msg
	case errors.As(err, &rerrs) && len(rerrs) > 0:
		pos, msg = rerrs[0].Pos, rerrs[0].Msg
	default:
		return &CompileError{Mapping: name, Msg: err.Error()}
	}
	line, col := int(pos.Line), int(pos.Col)
	text := lineAt(source, line)
	// The parser reports most "got X, want Y" errors just past the token X;
	// point at the token instead when X is a word written in the source.
	if word, ok := gotWord(msg); ok {
		col = wordStart(text, col, word)
	}
	if hint := pythonHint(msg, text); hint != "" {
		msg = hint + " (" + msg + ")"
	}
	return &CompileError{Mapping: name, Line: line, Column: col, Msg: msg}
}

// gotWord returns X from a parser message "got X, want Y".
func gotWord(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "got ")
	if !ok {
		return "", false
	}
	word, _, ok := strings.Cut(rest, ",")
	return word, ok
}

// wordStart returns the 1-based column where word starts if it ends just
// before column col of line, else col.
func wordStart(line string, col int, word string) int {
	runes, w := []rune(line), []rune(word)
	end := col - 1
	if end <= len(runes) && end >= len(w) && string(runes[end-len(w):end]) == word {
		return col - len(w)
	}
	return col
}

// pythonKeywords maps the Python keywords that Starlark reserves but does not
// implement to an explanation and what to use instead.
var pythonKeywords = map[string]string{
	"try":      "try/except is not supported in Starlark; test values with if and dict.get instead of catching errors",
	"except":   "try/except is not supported in Starlark; test values with if and dict.get instead of catching errors",
	"finally":  "try/except is not supported in Starlark; test values with if and dict.get instead of catching errors",
	"raise":    "raise is not supported in Starlark; use fail(\"message\") to stop with an error or skip_object() to skip the object",
	"class":    "classes are not supported in Starlark; use dicts and functions",
	"import":   "import is not supported in Starlark; mappings cannot load modules",
	"from":     "import is not supported in Starlark; mappings cannot load modules",
	"with":     "with statements are not supported in Starlark",
	"is":       "the is operator is not supported in Starlark; use == (for example x == None)",
	"del":      "del is not supported in Starlark; use dict.pop(key)",
	"yield":    "generators (yield) are not supported in Starlark",
	"async":    "async/await is not supported in Starlark",
	"await":    "async/await is not supported in Starlark",
	"global":   "global and nonlocal are not supported in Starlark",
	"nonlocal": "global and nonlocal are not supported in Starlark",
}

// pythonBuiltins maps Python built-ins that Starlark lacks on purpose.
var pythonBuiltins = map[string]string{
	"isinstance": "isinstance is not supported in Starlark; compare type(x) == \"dict\" instead",
	"open":       "open is not available: mappings cannot do I/O",
	"input":      "input is not available: mappings cannot do I/O",
	"eval":       "eval is not available in mappings",
	"exec":       "exec is not available in mappings",
	"__import__": "import is not supported in Starlark; mappings cannot load modules",
}

var fString = regexp.MustCompile(`(^|[^A-Za-z0-9_])([fF][rR]?|[rR][fF])["']`)

func pythonHint(msg, line string) string {
	if word, ok := gotWord(msg); ok {
		if hint := pythonKeywords[word]; hint != "" {
			return hint
		}
	}
	if name, ok := strings.CutPrefix(msg, "undefined: "); ok {
		if hint := pythonBuiltins[name]; hint != "" {
			return hint
		}
	}
	if strings.Contains(msg, "string literal") && fString.MatchString(line) {
		return "f-strings are not supported in Starlark; use \"{}\".format(x) or \"%s\" % x"
	}
	if strings.HasPrefix(msg, "load statement") {
		return "load is not supported in mappings"
	}
	return ""
}

// lineAt returns the 1-based line n of source, or "".
func lineAt(source string, n int) string {
	for i := 1; n > 0; i++ {
		line, rest, found := strings.Cut(source, "\n")
		if i == n {
			return line
		}
		if !found {
			break
		}
		source = rest
	}
	return ""
}
