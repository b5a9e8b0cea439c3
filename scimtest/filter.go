package scimtest

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
)

// Filter is a parsed SCIM filter (RFC 7644 §3.4.2.2). It is exported so
// tests can check what a client sent; ParseFilter builds it.
type Filter struct {
	// Op is "and", "or", "not", "[]" (value path) or a comparison
	// operator: eq, ne, co, sw, ew, gt, ge, lt, le, pr.
	Op string
	// Attr is the attribute path of a comparison or value path.
	Attr string
	// Value is the comparison value: string, float64, bool or nil.
	Value any
	// Left and Right are the operands of and/or; Left alone of not and of
	// a value path.
	Left, Right *Filter
}

// String formats f back into filter syntax (values JSON-quoted).
func (f *Filter) String() string {
	switch f.Op {
	case "and", "or":
		return "(" + f.Left.String() + " " + f.Op + " " + f.Right.String() + ")"
	case "not":
		return "not (" + f.Left.String() + ")"
	case "[]":
		return f.Attr + "[" + f.Left.String() + "]"
	case "pr":
		return f.Attr + " pr"
	}
	b, _ := json.Marshal(f.Value)
	return f.Attr + " " + f.Op + " " + string(b)
}

// ParseFilter parses a SCIM filter. Errors describe the position, never
// the values.
func ParseFilter(s string) (*Filter, error) {
	toks, err := lexFilter(s)
	if err != nil {
		return nil, err
	}
	p := &filterParser{toks: toks}
	f, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("unexpected token at %d", p.toks[p.pos].pos)
	}
	return f, nil
}

type tokKind int

const (
	tokWord tokKind = iota // attribute path, operator, keyword, number, true/false/null
	tokString
	tokLParen
	tokRParen
	tokLBracket
	tokRBracket
)

type token struct {
	kind tokKind
	text string // word text, or decoded string
	pos  int
}

func lexFilter(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tokLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tokRParen, ")", i})
			i++
		case c == '[':
			toks = append(toks, token{tokLBracket, "[", i})
			i++
		case c == ']':
			toks = append(toks, token{tokRBracket, "]", i})
			i++
		case c == '"':
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == '"' {
					break
				}
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return nil, fmt.Errorf("invalid string at %d", i)
			}
			toks = append(toks, token{tokString, v, i})
			i = j + 1
		default:
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			if j == i {
				return nil, fmt.Errorf("unexpected character at %d", i)
			}
			toks = append(toks, token{tokWord, s[i:j], i})
			i = j
		}
	}
	return toks, nil
}

func isWordByte(c byte) bool {
	return c < 0x80 && (unicode.IsLetter(rune(c)) || unicode.IsDigit(rune(c)) || strings.IndexByte("_-$.:+", c) >= 0)
}

type filterParser struct {
	toks []token
	pos  int
}

func (p *filterParser) peekWord(words ...string) bool {
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != tokWord {
		return false
	}
	for _, w := range words {
		if strings.EqualFold(p.toks[p.pos].text, w) {
			return true
		}
	}
	return false
}

func (p *filterParser) errorf(format string) error {
	at := -1
	if p.pos < len(p.toks) {
		at = p.toks[p.pos].pos
	}
	if at < 0 {
		return fmt.Errorf("%s at end of filter", format)
	}
	return fmt.Errorf("%s at %d", format, at)
}

// parseOr and parseAnd give and precedence over or, as RFC 7644 section 3.4.2.2 says;
// both group to the left.
func (p *filterParser) parseOr() (*Filter, error) { return p.parseChain("or", p.parseAnd) }

func (p *filterParser) parseAnd() (*Filter, error) { return p.parseChain("and", p.parseUnary) }

// parseChain parses one or more operands joined by the logical operator op.
func (p *filterParser) parseChain(op string, operand func() (*Filter, error)) (*Filter, error) {
	left, err := operand()
	if err != nil {
		return nil, err
	}
	for p.peekWord(op) {
		p.pos++
		right, err := operand()
		if err != nil {
			return nil, err
		}
		left = &Filter{Op: op, Left: left, Right: right}
	}
	return left, nil
}

func (p *filterParser) expect(kind tokKind, what string) error {
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != kind {
		return p.errorf("expected " + what)
	}
	p.pos++
	return nil
}

func (p *filterParser) parseUnary() (*Filter, error) {
	if p.pos >= len(p.toks) {
		return nil, p.errorf("expected expression")
	}
	if p.peekWord("not") && p.pos+1 < len(p.toks) && p.toks[p.pos+1].kind == tokLParen {
		p.pos++
		inner, err := p.parseGroup()
		if err != nil {
			return nil, err
		}
		return &Filter{Op: "not", Left: inner}, nil
	}
	if p.toks[p.pos].kind == tokLParen {
		return p.parseGroup()
	}
	if p.toks[p.pos].kind != tokWord {
		return nil, p.errorf("expected attribute")
	}
	attr := p.toks[p.pos].text
	p.pos++
	if p.pos < len(p.toks) && p.toks[p.pos].kind == tokLBracket {
		p.pos++
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tokRBracket, "]"); err != nil {
			return nil, err
		}
		return &Filter{Op: "[]", Attr: attr, Left: inner}, nil
	}
	if p.pos >= len(p.toks) || p.toks[p.pos].kind != tokWord {
		return nil, p.errorf("expected operator")
	}
	op := strings.ToLower(p.toks[p.pos].text)
	p.pos++
	switch op {
	case "pr":
		return &Filter{Op: "pr", Attr: attr}, nil
	case "eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le":
	default:
		p.pos--
		return nil, p.errorf("unknown operator")
	}
	if p.pos >= len(p.toks) {
		return nil, p.errorf("expected value")
	}
	t := p.toks[p.pos]
	p.pos++
	switch t.kind {
	case tokString:
		return &Filter{Op: op, Attr: attr, Value: t.text}, nil
	case tokWord:
		switch strings.ToLower(t.text) {
		case "true":
			return &Filter{Op: op, Attr: attr, Value: true}, nil
		case "false":
			return &Filter{Op: op, Attr: attr, Value: false}, nil
		case "null":
			return &Filter{Op: op, Attr: attr, Value: nil}, nil
		}
		var n float64
		if err := json.Unmarshal([]byte(t.text), &n); err == nil {
			return &Filter{Op: op, Attr: attr, Value: n}, nil
		}
	}
	p.pos--
	return nil, p.errorf("invalid value")
}

func (p *filterParser) parseGroup() (*Filter, error) {
	if err := p.expect(tokLParen, "("); err != nil {
		return nil, err
	}
	f, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if err := p.expect(tokRParen, ")"); err != nil {
		return nil, err
	}
	return f, nil
}

// eqOnly reports whether f uses only "eq" joined by "and" (aws quirk).
func (f *Filter) eqOnly() bool {
	switch f.Op {
	case "and":
		return f.Left.eqOnly() && f.Right.eqOnly()
	case "eq":
		return true
	}
	return false
}

// splitAttrPath splits an attribute path into schema URN (or ""),
// attribute and sub-attribute: "name.givenName" → ("", "name",
// "givenName"); "urn:...:User:manager.value" → (urn, "manager", "value").
// A fully qualified core attribute drops its URN.
func splitAttrPath(path string) (urn, attr, sub string) {
	rest := path
	if strings.HasPrefix(strings.ToLower(path), "urn:") {
		i := strings.LastIndex(path, ":")
		urn, rest = path[:i], path[i+1:]
		if isCoreSchema(urn) {
			urn = ""
		}
	}
	attr, sub, _ = strings.Cut(rest, ".")
	return urn, attr, sub
}

func isCoreSchema(urn string) bool {
	return strings.EqualFold(urn, schemaUser) || strings.EqualFold(urn, schemaGroup)
}

// caseExact reports whether comparisons on attribute path are
// case-sensitive (RFC 7643: id, externalId, member values and
// references); everything else compares case-insensitively.
func caseExact(urn, attr, sub string) bool {
	a, s := strings.ToLower(attr), strings.ToLower(sub)
	switch {
	case urn == "" && (a == "id" || a == "externalid"):
		return true
	case a == "members" && (s == "value" || s == "$ref"):
		return true
	case a == "$ref" || a == "password":
		return true
	}
	return false
}

// getCI returns m[key] with a case-insensitive key match.
func getCI(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// keyCI returns the key of m that matches key case-insensitively, or key.
func keyCI(m map[string]any, key string) string {
	if _, ok := m[key]; ok {
		return key
	}
	for k := range m {
		if strings.EqualFold(k, key) {
			return k
		}
	}
	return key
}

// values returns the values at attribute path in res, flattening
// multi-valued attributes ("emails" → each email's "value").
func values(res map[string]any, urn, attr, sub string) []any {
	container := res
	if urn != "" {
		ext, _ := getCI(res, urn)
		m, ok := ext.(map[string]any)
		if !ok {
			return nil
		}
		container = m
	}
	v, ok := getCI(container, attr)
	if !ok || v == nil {
		return nil
	}
	var out []any
	pick := func(e any) {
		if m, ok := e.(map[string]any); ok {
			key := sub
			if key == "" {
				key = "value"
			}
			if x, ok := getCI(m, key); ok && x != nil {
				out = append(out, x)
			}
			return
		}
		if sub == "" {
			out = append(out, e)
		}
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			pick(e)
		}
		return out
	}
	if m, ok := v.(map[string]any); ok && sub != "" {
		if x, ok := getCI(m, sub); ok && x != nil {
			out = append(out, x)
		}
		return out
	}
	pick(v)
	return out
}

// Match reports whether res satisfies f.
func (f *Filter) Match(res map[string]any) bool {
	switch f.Op {
	case "and":
		return f.Left.Match(res) && f.Right.Match(res)
	case "or":
		return f.Left.Match(res) || f.Right.Match(res)
	case "not":
		return !f.Left.Match(res)
	case "[]":
		urn, attr, _ := splitAttrPath(f.Attr)
		container := res
		if urn != "" {
			ext, _ := getCI(res, urn)
			container, _ = ext.(map[string]any)
		}
		v, _ := getCI(container, attr)
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if m, ok := e.(map[string]any); ok && f.Left.Match(m) {
					return true
				}
			}
		case map[string]any:
			return f.Left.Match(x)
		}
		return false
	}
	urn, attr, sub := splitAttrPath(f.Attr)
	vals := values(res, urn, attr, sub)
	if f.Op == "pr" {
		for _, v := range vals {
			if s, ok := v.(string); !ok || s != "" {
				return true
			}
		}
		return false
	}
	exact := caseExact(urn, attr, sub)
	if f.Op == "ne" {
		for _, v := range vals {
			if compareValue("eq", v, f.Value, exact) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if compareValue(f.Op, v, f.Value, exact) {
			return true
		}
	}
	return false
}

func compareValue(op string, actual, want any, exact bool) bool {
	switch a := actual.(type) {
	case string:
		w, ok := want.(string)
		if !ok {
			return false
		}
		if !exact {
			a, w = strings.ToLower(a), strings.ToLower(w)
		}
		switch op {
		case "eq":
			return a == w
		case "co":
			return strings.Contains(a, w)
		case "sw":
			return strings.HasPrefix(a, w)
		case "ew":
			return strings.HasSuffix(a, w)
		case "gt":
			return a > w
		case "ge":
			return a >= w
		case "lt":
			return a < w
		case "le":
			return a <= w
		}
	case bool:
		w, ok := want.(bool)
		return ok && op == "eq" && a == w
	case float64:
		w, ok := want.(float64)
		if !ok {
			return false
		}
		switch op {
		case "eq":
			return a == w
		case "gt":
			return a > w
		case "ge":
			return a >= w
		case "lt":
			return a < w
		case "le":
			return a <= w
		}
	case nil:
		return op == "eq" && want == nil
	}
	return false
}
