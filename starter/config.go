package starter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/sealed"
	"github.com/scimsync/scimsync/store"
)

// The configuration file of `starter apply`: YAML with four lists.
//
//	applications: [{name, policy_engine_mode}]
//	mappings:     [{name, kind, expression, apply}]
//	providers:    [{name, base_url, auth: {mode, token, token_url, client_id, client_secret,
//	                params, username, password}, compatibility_mode, discovery,
//	                service_provider_config: {patch, bulk, filter}, exclude_service_accounts,
//	                application, dry_run,
//	                verify_tls, page_size, deprovision: {action, threshold, delete_after},
//	                rate_limit: {requests_per_minute, burst, max_in_flight}, reconcile_interval,
//	                orphans, flatten_groups, link_existing, full_sync_interval, enabled,
//	                group_filters, mappings}]
//	bindings:     [{application, group | user, negate, enabled}]
//
// A field left out (or null) takes its default, so the file states the whole configuration
// of every object it lists. It is decoded from yaml.v3 nodes rather than into structs so
// that every problem is reported with its line, column and field path, all at once.

// Diagnostic is one problem (or warning) found in a file.
type Diagnostic struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// String formats the diagnostic as file:line:column: field: message, the way compilers do,
// leaving out what is unknown.
func (d Diagnostic) String() string {
	pos := d.File
	if d.Line > 0 {
		pos += ":" + strconv.Itoa(d.Line)
		if d.Column > 0 {
			pos += ":" + strconv.Itoa(d.Column)
		}
	}
	if d.Field == "" {
		return pos + ": " + d.Message
	}
	return pos + ": " + d.Field + ": " + d.Message
}

// configFile is a decoded configuration file.
type configFile struct {
	Applications []appSpec
	Mappings     []mappingSpec
	Providers    []providerSpec
	Bindings     []bindingSpec
}

// ref is a name that refers to another namedObject, with where it was written.
type ref struct {
	name string
	node *yaml.Node
	path string
}

type appSpec struct {
	node *yaml.Node
	path string
	app  store.Application
}

type mappingSpec struct {
	node  *yaml.Node
	path  string
	m     store.PropertyMapping
	nodes map[string]*yaml.Node
}

type providerSpec struct {
	node         *yaml.Node
	path         string
	p            store.Provider
	application  ref
	groupFilters []ref
	mappings     []ref
	nodes        map[string]*yaml.Node // by field path relative to the provider, e.g. "auth.token"
}

type bindingSpec struct {
	node        *yaml.Node
	path        string
	application ref
	group, user ref
	negate      bool
	enabled     bool
}

// key identifies a binding: its application and what it binds.
func (b bindingSpec) key() string {
	if b.group.name != "" {
		return b.application.name + "\x00group\x00" + b.group.name
	}
	return b.application.name + "\x00user\x00" + b.user.name
}

func (b bindingSpec) describe() string {
	if b.group.name != "" {
		return fmt.Sprintf("%s → group %s", b.application.name, b.group.name)
	}
	return fmt.Sprintf("%s → user %s", b.application.name, b.user.name)
}

// decoder turns yaml nodes into a configFile, collecting diagnostics.
type decoder struct {
	file  string
	lines []string
	errs  []Diagnostic
	warns []Diagnostic
}

func (d *decoder) at(n *yaml.Node, field, format string, args ...any) Diagnostic {
	diag := Diagnostic{File: d.file, Field: field, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		diag.Line, diag.Column = n.Line, n.Column
	}
	return diag
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	d.errs = append(d.errs, d.at(n, field, format, args...))
}

func (d *decoder) warnf(n *yaml.Node, field, format string, args ...any) {
	d.warns = append(d.warns, d.at(n, field, format, args...))
}

// parseConfig decodes and statically validates a configuration file: everything but the
// references to objects in the database. It returns the errors and warnings sorted by
// position.
func parseConfig(file string, src []byte) (*configFile, []Diagnostic, []Diagnostic) {
	d := &decoder{file: file, lines: strings.Split(string(src), "\n")}
	cfg := &configFile{}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		d.errs = append(d.errs, d.syntaxError(src, err))
		return cfg, d.errs, nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		d.errorf(&extra, "", "a configuration file holds one YAML document; found a second one")
	}
	if len(doc.Content) == 0 {
		return cfg, d.errs, d.warns // an empty file: an empty configuration
	}
	root := doc.Content[0]
	d.fields(root, "", map[string]func(*yaml.Node, string){
		"applications": func(v *yaml.Node, path string) {
			d.each(v, path, func(n *yaml.Node, p string) { cfg.Applications = append(cfg.Applications, d.application(n, p)) })
		},
		"mappings": func(v *yaml.Node, path string) {
			d.each(v, path, func(n *yaml.Node, p string) { cfg.Mappings = append(cfg.Mappings, d.mapping(n, p)) })
		},
		"providers": func(v *yaml.Node, path string) {
			d.each(v, path, func(n *yaml.Node, p string) { cfg.Providers = append(cfg.Providers, d.provider(n, p)) })
		},
		"bindings": func(v *yaml.Node, path string) {
			d.each(v, path, func(n *yaml.Node, p string) { cfg.Bindings = append(cfg.Bindings, d.binding(n, p)) })
		},
	})
	d.checkUnique(cfg)
	sortDiagnostics(d.errs)
	sortDiagnostics(d.warns)
	return cfg, d.errs, d.warns
}

func sortDiagnostics(ds []Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Line != ds[j].Line {
			return ds[i].Line < ds[j].Line
		}
		return ds[i].Column < ds[j].Column
	})
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError turns a yaml parse error into a diagnostic. The line yaml.v3 names is that
// of the construct being parsed, sometimes off by one; the first line at which a prefix of
// the file fails with the same message is where the problem shows, so that one is used.
func (d *decoder) syntaxError(src []byte, err error) Diagnostic {
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
	return Diagnostic{File: d.file, Line: max(line, 1), Message: "invalid YAML: " + msg}
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

// fields walks a mapping node: each known key goes to its handler (null values are left
// out: they mean "default"); unknown and repeated keys are errors.
func (d *decoder) fields(n *yaml.Node, path string, handlers map[string]func(v *yaml.Node, path string)) bool {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		d.errorf(n, path, "expected a mapping of fields, got %s", kindName(n))
		return false
	}
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], resolve(n.Content[i+1])
		key := k.Value
		p := join(path, key)
		if prev, dup := seen[key]; dup {
			d.errorf(k, p, "repeated field (first set on line %d)", prev.Line)
			continue
		}
		seen[key] = k
		h, ok := handlers[key]
		if !ok {
			d.errorf(k, p, "unknown field%s", suggest(key, handlers))
			continue
		}
		if isNull(v) {
			continue
		}
		h(v, p)
	}
	return true
}

// suggest proposes the closest known key to a misspelt one.
func suggest(key string, handlers map[string]func(*yaml.Node, string)) string {
	best, bestDist := "", 3
	var known []string
	for k := range handlers {
		known = append(known, k)
	}
	sort.Strings(known)
	for _, k := range known {
		if dist := levenshtein(strings.ToLower(key), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %s?)", best)
	}
	return " (known fields: " + strings.Join(known, ", ") + ")"
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// each walks a list node.
func (d *decoder) each(n *yaml.Node, path string, fn func(item *yaml.Node, path string)) {
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, path, "expected a list, got %s", kindName(n))
		return
	}
	for i, item := range n.Content {
		fn(resolve(item), fmt.Sprintf("%s[%d]", path, i))
	}
}

func (d *decoder) str(n *yaml.Node, path string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!bool" || n.Tag == "!!null" {
		d.errorf(n, path, "expected a string, got %s", kindName(n))
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, path string) (bool, bool) {
	var b bool
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" || n.Decode(&b) != nil {
		d.errorf(n, path, "expected true or false, got %s", kindName(n))
		return false, false
	}
	return b, true
}

func (d *decoder) integer(n *yaml.Node, path string) (int, bool) {
	var i int
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" || n.Decode(&i) != nil {
		d.errorf(n, path, "expected a whole number, got %s", kindName(n))
		return 0, false
	}
	return i, true
}

// names decodes a list of names, refusing repeats.
func (d *decoder) number(n *yaml.Node, path string) (float64, bool) {
	var f float64
	if n.Kind != yaml.ScalarNode || (n.Tag != "!!int" && n.Tag != "!!float") || n.Decode(&f) != nil {
		d.errorf(n, path, "expected a number, got %s", kindName(n))
		return 0, false
	}
	return f, true
}

func (d *decoder) names(n *yaml.Node, path string) []ref {
	var out []ref
	seen := map[string]bool{}
	d.each(n, path, func(item *yaml.Node, p string) {
		s, ok := d.str(item, p)
		if !ok {
			return
		}
		if s == "" {
			d.errorf(item, p, "empty name")
			return
		}
		if seen[s] {
			d.errorf(item, p, "%q is listed twice", s)
			return
		}
		seen[s] = true
		out = append(out, ref{name: s, node: item, path: p})
	})
	return out
}

func (d *decoder) oneOf(n *yaml.Node, path string, allowed ...string) (string, bool) {
	s, ok := d.str(n, path)
	if !ok {
		return "", false
	}
	if !slices.Contains(allowed, s) {
		d.errorf(n, path, "unknown value %q: use %s", truncate(s, 40), orList(allowed))
		return "", false
	}
	return s, true
}

func orList(xs []string) string {
	if len(xs) == 1 {
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " or " + xs[len(xs)-1]
}

func (d *decoder) application(n *yaml.Node, path string) appSpec {
	a := appSpec{node: n, path: path, app: store.Application{PolicyEngineMode: "any"}}
	d.fields(n, path, map[string]func(*yaml.Node, string){
		"name": func(v *yaml.Node, p string) { a.app.Name, _ = d.str(v, p) },
		"policy_engine_mode": func(v *yaml.Node, p string) {
			if s, ok := d.oneOf(v, p, "any", "all"); ok {
				a.app.PolicyEngineMode = s
			}
		},
	})
	if a.app.Name == "" {
		d.errorf(n, join(path, "name"), "required")
	}
	return a
}

func (d *decoder) mapping(n *yaml.Node, path string) mappingSpec {
	m := mappingSpec{node: n, path: path, nodes: map[string]*yaml.Node{}}
	d.fields(n, path, map[string]func(*yaml.Node, string){
		"name": func(v *yaml.Node, p string) { m.m.Name, _ = d.str(v, p); m.nodes["name"] = v },
		"kind": func(v *yaml.Node, p string) { m.m.Kind, _ = d.oneOf(v, p, object.User, object.Group) },
		"expression": func(v *yaml.Node, p string) {
			m.m.Expression, _ = d.str(v, p)
			m.nodes["expression"] = v
		},
		"apply": func(v *yaml.Node, p string) {
			m.m.Apply, _ = d.oneOf(v, p, string(mapping.ApplyAlways), string(mapping.ApplyOnCreate))
		},
	})
	if m.m.Apply == "" {
		m.m.Apply = string(mapping.ApplyAlways)
	}
	switch m.m.Name {
	case "":
		d.errorf(n, join(path, "name"), "required")
	case store.DefaultUserMappingName, store.DefaultGroupMappingName:
		d.errorf(m.nodes["name"], join(path, "name"), "%q is the built-in default mapping; give your mapping another name and list both in the provider's mappings", m.m.Name)
	}
	if m.m.Kind == "" && !d.hasField(n, "kind") {
		d.errorf(n, join(path, "kind"), "required: user or group")
	}
	expr := m.nodes["expression"]
	switch {
	case expr == nil:
		d.errorf(n, join(path, "expression"), "required: the body of the mapping, returning a dict or None")
	case m.m.Name != "" && m.m.Kind != "":
		if _, err := mapping.Compile(m.m.Name, object.Kind(m.m.Kind), m.m.Expression); err != nil {
			d.compileError(expr, join(path, "expression"), err)
		}
	}
	return m
}

// compileError reports a mapping that does not compile at the position in the file of the
// offending character, with the position inside the mapping too.
func (d *decoder) compileError(expr *yaml.Node, path string, err error) {
	var ce *mapping.CompileError
	if !errors.As(err, &ce) || ce.Line == 0 {
		d.errorf(expr, path, "%v", err)
		return
	}
	diag := d.at(expr, path, "line %d:%d of mapping %q: %s", ce.Line, ce.Column, ce.Mapping, ce.Msg)
	diag.Line, diag.Column = d.expressionPosition(expr, ce.Line, ce.Column)
	d.errs = append(d.errs, diag)
}

// expressionPosition maps a line:column inside a mapping's source to the file. Block
// scalars (| and >) start on the line after their indicator, indented; plain and quoted
// scalars start at the node (exact on their first line).
func (d *decoder) expressionPosition(n *yaml.Node, line, col int) (int, int) {
	switch n.Style {
	case yaml.LiteralStyle, yaml.FoldedStyle:
		indent := 0
		for i := n.Line; i < len(d.lines); i++ { // d.lines[n.Line] is the line after the indicator
			if s := d.lines[i]; strings.TrimSpace(s) != "" {
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

func (d *decoder) hasField(n *yaml.Node, key string) bool {
	n = resolve(n)
	if n.Kind != yaml.MappingNode {
		return true // already reported
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

var providerName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

func (d *decoder) provider(n *yaml.Node, path string) providerSpec {
	ps := providerSpec{node: n, path: path, p: store.ProviderDefaults(), nodes: map[string]*yaml.Node{}}
	p := &ps.p
	set := func(key string, v *yaml.Node) { ps.nodes[key] = v }
	str := func(dst *string, key string) func(*yaml.Node, string) {
		return func(v *yaml.Node, fp string) {
			set(key, v)
			if s, ok := d.str(v, fp); ok {
				*dst = s
			}
		}
	}
	boolean := func(dst *bool, key string) func(*yaml.Node, string) {
		return func(v *yaml.Node, fp string) {
			set(key, v)
			if b, ok := d.boolean(v, fp); ok {
				*dst = b
			}
		}
	}
	modes := make([]string, 0, len(scim.Modes()))
	for _, m := range scim.Modes() {
		modes = append(modes, string(m))
	}
	d.fields(n, path, map[string]func(*yaml.Node, string){
		"name":     str(&p.Name, "name"),
		"base_url": str(&p.BaseURL, "base_url"),
		"auth": func(v *yaml.Node, ap string) {
			d.fields(v, ap, map[string]func(*yaml.Node, string){
				"mode": func(v *yaml.Node, fp string) {
					set("auth.mode", v)
					s, _ := d.oneOf(v, fp, "token", "oauth2", "basic")
					p.AuthMode = s // "" when unknown: no further auth errors follow from a guess
				},
				"username":      str(&p.BasicUsername, "auth.username"),
				"password":      str(&p.BasicPassword, "auth.password"),
				"token":         str(&p.Token, "auth.token"),
				"token_url":     str(&p.OAuthTokenURL, "auth.token_url"),
				"client_id":     str(&p.OAuthClientID, "auth.client_id"),
				"client_secret": str(&p.OAuthClientSecret, "auth.client_secret"),
				"params": func(v *yaml.Node, fp string) {
					set("auth.params", v)
					p.OAuthParams = store.StringMap{}
					if v.Kind != yaml.MappingNode {
						d.errorf(v, fp, "expected a mapping of parameter names to values, got %s", kindName(v))
						return
					}
					for i := 0; i+1 < len(v.Content); i += 2 {
						k, val := v.Content[i], resolve(v.Content[i+1])
						if s, ok := d.str(val, join(fp, k.Value)); ok {
							p.OAuthParams[k.Value] = s
							set("auth.params."+k.Value, val)
						}
					}
				},
			})
		},
		"compatibility_mode": func(v *yaml.Node, fp string) {
			set("compatibility_mode", v)
			if s, ok := d.oneOf(v, fp, modes...); ok {
				p.CompatibilityMode = s
			}
		},
		"discovery": func(v *yaml.Node, fp string) {
			set("discovery", v)
			if s, ok := d.oneOf(v, fp, store.DiscoveryAuto, store.DiscoveryOff); ok {
				p.Discovery = s
			}
		},
		"service_provider_config": func(v *yaml.Node, sp string) {
			set("service_provider_config", v)
			d.fields(v, sp, map[string]func(*yaml.Node, string){
				"patch": func(v *yaml.Node, fp string) {
					if b, ok := d.boolean(v, fp); ok {
						p.ServiceConfig.Patch = &b
					}
				},
				"filter": func(v *yaml.Node, fp string) {
					if b, ok := d.boolean(v, fp); ok {
						p.ServiceConfig.Filter = &b
					}
				},
				"bulk": func(v *yaml.Node, fp string) { p.ServiceConfig.Bulk = d.bulkOverride(v, fp, ps.nodes) },
			})
		},
		"exclude_service_accounts": boolean(&p.ExcludeServiceAccounts, "exclude_service_accounts"),
		"application": func(v *yaml.Node, fp string) {
			if s, ok := d.str(v, fp); ok && s != "" {
				ps.application = ref{name: s, node: v, path: fp}
			}
		},
		"dry_run":    boolean(&p.DryRun, "dry_run"),
		"verify_tls": boolean(&p.VerifyTLS, "verify_tls"),
		"page_size": func(v *yaml.Node, fp string) {
			if i, ok := d.integer(v, fp); ok {
				if i < 1 || i > 1000 {
					d.errorf(v, fp, "must be between 1 and 1000, got %d", i)
				}
				p.PageSize = i
			}
		},
		"deprovision": func(v *yaml.Node, dp string) {
			d.fields(v, dp, map[string]func(*yaml.Node, string){
				"action": func(v *yaml.Node, fp string) {
					set("deprovision.action", v)
					s, _ := d.oneOf(v, fp, store.DeprovisionDelete, store.DeprovisionDeactivate,
						store.DeprovisionDeactivateThenDelete, store.DeprovisionNone)
					p.DeprovisionAction = s // "" when unknown: no further errors follow from a guess
				},
				"delete_after": func(v *yaml.Node, fp string) {
					set("deprovision.delete_after", v)
					s, ok := d.str(v, fp)
					if !ok {
						return
					}
					iv, err := time.ParseDuration(s)
					switch {
					case err != nil:
						d.errorf(v, fp, "expected a duration such as 720h (30 days) or 168h, got %q", truncate(s, 40))
					case iv <= 0:
						d.errorf(v, fp, "must be more than 0 (the grace period before a deactivated user is deleted), got %s", iv)
					default:
						p.DeprovisionDeleteAfter = iv
					}
				},
				"threshold": func(v *yaml.Node, fp string) {
					if i, ok := d.integer(v, fp); ok {
						if i < 0 {
							d.errorf(v, fp, "must be 0 (no limit) or more, got %d", i)
						}
						p.DeprovisionThreshold = i
					}
				},
			})
		},
		"rate_limit": func(v *yaml.Node, rp string) {
			set("rate_limit", v)
			d.fields(v, rp, map[string]func(*yaml.Node, string){
				"requests_per_minute": func(v *yaml.Node, fp string) {
					set("rate_limit.requests_per_minute", v)
					if f, ok := d.number(v, fp); ok {
						if f <= 0 || f > 1_000_000 {
							d.errorf(v, fp, "must be more than 0 and at most 1000000 (requests a minute, every worker together), got %v", f)
						}
						p.RateLimitPerMinute = f
					}
				},
				"burst": func(v *yaml.Node, fp string) {
					set("rate_limit.burst", v)
					if i, ok := d.integer(v, fp); ok {
						if i < 1 || i > 100_000 {
							d.errorf(v, fp, "must be between 1 and 100000 (requests sent at once after a quiet spell), got %d", i)
						}
						p.RateLimitBurst = i
					}
				},
				"max_in_flight": func(v *yaml.Node, fp string) {
					if i, ok := d.integer(v, fp); ok {
						if i < 1 || i > 10_000 {
							d.errorf(v, fp, "must be between 1 and 10000 (requests in flight, every worker together), got %d", i)
						}
						p.MaxInFlight = i
					}
				},
			})
		},
		"reconcile_interval": func(v *yaml.Node, fp string) {
			s, ok := d.str(v, fp)
			if !ok {
				return
			}
			iv, err := time.ParseDuration(s)
			switch {
			case s == "0":
				p.ReconcileInterval = 0
			case err != nil:
				d.errorf(v, fp, "expected a duration such as 24h or 168h, or 0 to read the target back only when asked, got %q", truncate(s, 40))
			case iv < time.Minute:
				d.errorf(v, fp, "must be 0 (only when asked) or at least 1m, got %s", iv)
			default:
				p.ReconcileInterval = iv
			}
		},
		"orphans": func(v *yaml.Node, fp string) {
			if s, ok := d.oneOf(v, fp, store.OrphansReport, store.OrphansAdopt, store.OrphansDelete); ok {
				p.Orphans = s
			}
		},
		"flatten_groups": boolean(&p.FlattenGroups, "flatten_groups"),
		"link_existing":  boolean(&p.LinkExisting, "link_existing"),
		"full_sync_interval": func(v *yaml.Node, fp string) {
			s, ok := d.str(v, fp)
			if !ok {
				return
			}
			iv, err := time.ParseDuration(s)
			switch {
			case err != nil:
				d.errorf(v, fp, "expected a duration such as 1h or 30m, got %q", truncate(s, 40))
			case iv < time.Minute:
				d.errorf(v, fp, "must be at least 1m, got %s", iv)
			default:
				p.FullSyncInterval = iv
			}
		},
		"enabled":       boolean(&p.Enabled, "enabled"),
		"group_filters": func(v *yaml.Node, fp string) { ps.groupFilters = d.names(v, fp) },
		"mappings":      func(v *yaml.Node, fp string) { ps.mappings = d.names(v, fp) },
	})
	d.checkProvider(&ps)
	return ps
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkProvider checks what concerns several fields of a provider.
func (d *decoder) checkProvider(ps *providerSpec) {
	p, path := &ps.p, ps.path
	node := func(key string) *yaml.Node {
		if n := ps.nodes[key]; n != nil {
			return n
		}
		return ps.node
	}
	switch {
	case p.Name == "":
		d.errorf(ps.node, join(path, "name"), "required")
	case !providerName.MatchString(p.Name):
		d.errorf(node("name"), join(path, "name"), "%q is not a valid provider name: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters", truncate(p.Name, 70))
	}
	if p.BaseURL == "" {
		d.errorf(ps.node, join(path, "base_url"), "required: the SCIM base URL, e.g. https://api.example.com/scim/v2")
	} else if msg := checkURL(p.BaseURL); msg != "" {
		d.errorf(node("base_url"), join(path, "base_url"), "invalid URL %q: %s", truncate(redactURL(p.BaseURL), 80), msg)
	}
	switch p.AuthMode {
	case "token":
		if p.Token == "" {
			d.errorf(node("auth.mode"), join(path, "auth.token"), "required with auth mode token: a secret reference such as env:SCIM_TOKEN or file:/run/secrets/scim-token")
		}
	case "oauth2":
		if p.OAuthTokenURL == "" {
			d.errorf(node("auth.mode"), join(path, "auth.token_url"), "required with auth mode oauth2")
		} else if msg := checkURL(p.OAuthTokenURL); msg != "" {
			d.errorf(node("auth.token_url"), join(path, "auth.token_url"), "invalid URL %q: %s", truncate(redactURL(p.OAuthTokenURL), 80), msg)
		}
		if p.OAuthClientID == "" {
			d.errorf(node("auth.mode"), join(path, "auth.client_id"), "required with auth mode oauth2")
		}
	case "basic":
		switch {
		case p.BasicUsername == "":
			d.errorf(node("auth.mode"), join(path, "auth.username"), "required with auth mode basic: the username, or a reference such as env:SCIM_USERNAME")
		case !isReference(p.BasicUsername) && strings.Contains(p.BasicUsername, ":"):
			d.errorf(node("auth.username"), join(path, "auth.username"), "a Basic username cannot contain ':' (RFC 7617)")
		}
		if p.BasicPassword == "" {
			d.errorf(node("auth.mode"), join(path, "auth.password"), "required with auth mode basic: a secret reference such as env:SCIM_PASSWORD or file:/run/secrets/scim-password")
		}
	}
	// Each auth field belongs to one mode; given with another, it is a mistake.
	for _, f := range []struct{ key, mode, hint string }{
		{"auth.token", "token", ""},
		{"auth.token_url", "oauth2", ""}, {"auth.client_id", "oauth2", ""}, {"auth.client_secret", "oauth2", ""}, {"auth.params", "oauth2", ""},
		{"auth.username", "basic", " (the OAuth2 password grant takes username and password in auth.params)"},
		{"auth.password", "basic", " (the OAuth2 password grant takes username and password in auth.params)"},
	} {
		if n := ps.nodes[f.key]; n != nil && p.AuthMode != "" && p.AuthMode != f.mode {
			hint := ""
			if p.AuthMode == "oauth2" {
				hint = f.hint
			}
			d.errorf(n, join(path, f.key), "only used with auth mode %s%s", f.mode, hint)
		}
	}
	d.checkDiscovery(ps)
	// The grace period belongs to deactivate_then_delete, which needs one.
	switch after := ps.nodes["deprovision.delete_after"]; {
	case p.DeprovisionAction == store.DeprovisionDeactivateThenDelete && after == nil:
		d.errorf(node("deprovision.action"), join(path, "deprovision.delete_after"), "required with deprovision action "+
			"deactivate_then_delete: how long a deactivated user stays at the target before it is deleted, e.g. 720h (30 days)")
	case after != nil && p.DeprovisionAction != "" && p.DeprovisionAction != store.DeprovisionDeactivateThenDelete:
		d.errorf(after, join(path, "deprovision.delete_after"), "only used with deprovision action deactivate_then_delete "+
			"(this provider's is %s)", p.DeprovisionAction)
	}
	if n := ps.nodes["rate_limit.burst"]; n != nil && ps.nodes["rate_limit.requests_per_minute"] == nil {
		d.errorf(n, join(path, "rate_limit.burst"), "only used with rate_limit.requests_per_minute: a burst of what rate?")
	}
	d.checkSecret(ps.nodes["auth.token"], join(path, "auth.token"), p.Token, true)
	d.checkSecret(ps.nodes["auth.client_secret"], join(path, "auth.client_secret"), p.OAuthClientSecret, true)
	d.checkSecret(ps.nodes["auth.username"], join(path, "auth.username"), p.BasicUsername, false)
	d.checkSecret(ps.nodes["auth.password"], join(path, "auth.password"), p.BasicPassword, true)
	for k, v := range p.OAuthParams {
		d.checkSecret(ps.nodes["auth.params."+k], join(path, "auth.params."+k), v, secretParam(k))
	}
}

// Limits of a service_provider_config's bulk.
const (
	maxBulkOperations  = 100_000
	minBulkPayloadSize = 1 << 10
	maxBulkPayloadSize = 1 << 30
)

// bulkOverride decodes service_provider_config.bulk: false (no Bulk), or a mapping of the
// target's limits (Bulk supported).
func (d *decoder) bulkOverride(v *yaml.Node, fp string, nodes map[string]*yaml.Node) *store.BulkOverride {
	nodes["service_provider_config.bulk"] = v
	const want = "false (the target has no Bulk) or a mapping {max_operations, max_payload_size} (it has Bulk, within these limits)"
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!bool":
		if b, _ := d.boolean(v, fp); b {
			d.errorf(v, fp, "expected %s, got true: give the limits", want)
			return nil
		}
		return &store.BulkOverride{}
	case v.Kind != yaml.MappingNode:
		d.errorf(v, fp, "expected %s, got %s", want, kindName(v))
		return nil
	}
	b := &store.BulkOverride{Supported: true}
	d.fields(v, fp, map[string]func(*yaml.Node, string){
		"max_operations": func(v *yaml.Node, fp string) {
			nodes["service_provider_config.bulk.max_operations"] = v
			if i, ok := d.integer(v, fp); ok {
				if i < 1 || i > maxBulkOperations {
					d.errorf(v, fp, "must be between 1 and %d (operations in one Bulk request), got %d", maxBulkOperations, i)
				}
				b.MaxOperations = i
			}
		},
		"max_payload_size": func(v *yaml.Node, fp string) {
			nodes["service_provider_config.bulk.max_payload_size"] = v
			if i, ok := d.integer(v, fp); ok {
				if i < minBulkPayloadSize || i > maxBulkPayloadSize {
					d.errorf(v, fp, "must be between %d and %d (bytes in one Bulk request), got %d", minBulkPayloadSize, maxBulkPayloadSize, i)
				}
				b.MaxPayloadSize = i
			}
		},
	})
	return b
}

// checkDiscovery checks service_provider_config against discovery: where nothing is
// discovered (discovery off, or a mode that never discovers), the bulk limits cannot be
// read from the target and must be given.
func (d *decoder) checkDiscovery(ps *providerSpec) {
	p, path := &ps.p, ps.path
	compat, err := scim.CompatFor(scim.Mode(p.CompatibilityMode))
	if err != nil {
		return // reported with compatibility_mode
	}
	var why string
	switch {
	case p.Discovery == store.DiscoveryOff:
		why = "with discovery off"
	case compat.NoDiscovery:
		why = fmt.Sprintf("with compatibility mode %s, which never discovers", p.CompatibilityMode)
	default:
		return
	}
	if b := p.ServiceConfig.Bulk; b != nil && b.Supported {
		bulk := ps.nodes["service_provider_config.bulk"]
		for _, f := range []struct {
			key  string
			set  bool
			what string
		}{
			{"max_operations", b.MaxOperations != 0 || ps.nodes["service_provider_config.bulk.max_operations"] != nil, "the most operations the target takes in one Bulk request"},
			{"max_payload_size", b.MaxPayloadSize != 0 || ps.nodes["service_provider_config.bulk.max_payload_size"] != nil, "the most bytes it takes in one Bulk request"},
		} {
			if !f.set {
				d.errorf(bulk, join(path, "service_provider_config.bulk."+f.key), "required %s (nothing reads the target's limit): %s", why, f.what)
			}
		}
	}
	if p.Discovery == store.DiscoveryOff && !compat.NoDiscovery && p.ServiceConfig.IsZero() {
		d.warnf(ps.nodes["discovery"], join(path, "discovery"), "off without service_provider_config: the target is taken to support neither PATCH, Bulk nor filtering; say what it supports under service_provider_config")
	}
}

// secretParam tells which extra token-request parameters hold secrets (a grant_type does
// not; a password does).
func secretParam(name string) bool {
	name = strings.ToLower(name)
	for _, s := range []string{"password", "secret", "token", "key", "assertion"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// checkSecret checks a secret reference; a literal secret is accepted with a warning (it is
// stored sealed, see sealLiterals), and never echoed.
func (d *decoder) checkSecret(n *yaml.Node, path, v string, secret bool) {
	if n == nil || v == "" {
		return
	}
	switch {
	case strings.HasPrefix(v, "env:"):
		if !envName.MatchString(strings.TrimPrefix(v, "env:")) {
			d.errorf(n, path, "env: must be followed by an environment variable name, e.g. env:SCIM_TOKEN")
		}
	case strings.HasPrefix(v, "file:"):
		if !strings.HasPrefix(strings.TrimPrefix(v, "file:"), "/") {
			d.errorf(n, path, "file: must be followed by an absolute path, e.g. file:/run/secrets/scim-token")
		}
	case sealed.IsSealed(v):
		// Sealed by an earlier apply (copied from the database): the workers open it.
	case secret:
		d.warnf(n, path, "a literal secret is stored sealed under the installation secret; a reference such as env:NAME or file:/path keeps it out of the database")
	}
}

// redactURL hides a password written in a URL, so that an error never echoes it.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// checkURL returns why s is not a usable http(s) URL, or "".
func checkURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err.Error()
		}
		return err.Error()
	case u.Scheme != "http" && u.Scheme != "https":
		return "the scheme must be http or https"
	case u.Host == "":
		return "a host is required"
	case u.User != nil:
		return "credentials do not belong in the URL; use auth"
	case u.RawQuery != "" || u.Fragment != "":
		return "a query or fragment is not allowed"
	}
	return ""
}

func (d *decoder) binding(n *yaml.Node, path string) bindingSpec {
	b := bindingSpec{node: n, path: path, enabled: true}
	name := func(dst *ref) func(*yaml.Node, string) {
		return func(v *yaml.Node, fp string) {
			if s, ok := d.str(v, fp); ok && s != "" {
				*dst = ref{name: s, node: v, path: fp}
			}
		}
	}
	d.fields(n, path, map[string]func(*yaml.Node, string){
		"application": name(&b.application),
		"group":       name(&b.group),
		"user":        name(&b.user),
		"negate": func(v *yaml.Node, fp string) {
			if x, ok := d.boolean(v, fp); ok {
				b.negate = x
			}
		},
		"enabled": func(v *yaml.Node, fp string) {
			if x, ok := d.boolean(v, fp); ok {
				b.enabled = x
			}
		},
	})
	if b.application.name == "" {
		d.errorf(n, join(path, "application"), "required")
	}
	if (b.group.name == "") == (b.user.name == "") {
		d.errorf(n, path, "a binding binds exactly one of group and user")
	}
	return b
}

// checkUnique refuses two objects of one kind with the same name (bindings: the same
// application and target).
func (d *decoder) checkUnique(cfg *configFile) {
	type named struct {
		name string
		node *yaml.Node
		path string
	}
	check := func(what string, items []named) {
		first := map[string]int{}
		for _, it := range items {
			if it.name == "" {
				continue
			}
			if line, dup := first[it.name]; dup {
				d.errorf(it.node, it.path, "%s %q is defined twice (first on line %d)", what, it.name, line)
				continue
			}
			first[it.name] = it.node.Line
		}
	}
	var items []named
	for _, a := range cfg.Applications {
		items = append(items, named{a.app.Name, a.node, a.path})
	}
	check("application", items)
	items = nil
	for _, m := range cfg.Mappings {
		items = append(items, named{m.m.Name, m.node, m.path})
	}
	check("mapping", items)
	items = nil
	for _, p := range cfg.Providers {
		items = append(items, named{p.p.Name, p.node, p.path})
	}
	check("provider", items)
	first := map[string]int{}
	for _, b := range cfg.Bindings {
		if b.application.name == "" || (b.group.name == "") == (b.user.name == "") {
			continue
		}
		if line, dup := first[b.key()]; dup {
			d.errorf(b.node, b.path, "binding %s is defined twice (first on line %d)", b.describe(), line)
			continue
		}
		first[b.key()] = b.node.Line
	}
}
