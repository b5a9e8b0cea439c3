package starter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/store"
)

// The configuration file of `starter apply`: YAML with four lists, applications, mappings,
// providers and bindings, whose shape is schemas/config.schema.json (editors validate the
// file with it as it is typed). A field left out (or null) takes its default, so the file
// states the whole configuration of every object it lists.
//
// parseConfig reads it in three steps: the schema checks the document (types, allowed
// values, bounds, required and unknown fields, what each auth mode takes); yaml.v3 decodes
// it into the file structs below; the checks of config_checks.go do what a schema cannot
// (names defined twice, URLs, durations, Starlark, the Bulk limits a target without
// discovery needs). Every problem of the whole file is reported at once, at its
// file:line:column, with its field path.
//
// A new field goes into two places that a test keeps equal: its file struct below (with
// what it becomes in the spec, in toSpecs), and its property in config.schema.json.

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

// The file as written: one struct per mapping of the schema, one field per property.
type (
	fileConfig struct {
		Applications []fileApplication `yaml:"applications"`
		Mappings     []fileMapping     `yaml:"mappings"`
		Providers    []fileProvider    `yaml:"providers"`
		Bindings     []fileBinding     `yaml:"bindings"`
	}
	fileApplication struct {
		Name             string  `yaml:"name"`
		PolicyEngineMode *string `yaml:"policy_engine_mode"`
	}
	fileMapping struct {
		Name       string  `yaml:"name"`
		Kind       *string `yaml:"kind"`
		Expression *string `yaml:"expression"`
		Apply      *string `yaml:"apply"`
	}
	fileProvider struct {
		Name                   string            `yaml:"name"`
		BaseURL                string            `yaml:"base_url"`
		Auth                   fileAuth          `yaml:"auth"`
		CompatibilityMode      *string           `yaml:"compatibility_mode"`
		Discovery              *string           `yaml:"discovery"`
		ServiceProviderConfig  fileServiceConfig `yaml:"service_provider_config"`
		ExcludeServiceAccounts *bool             `yaml:"exclude_service_accounts"`
		Application            string            `yaml:"application"`
		DryRun                 *bool             `yaml:"dry_run"`
		VerifyTLS              *bool             `yaml:"verify_tls"`
		PageSize               *int              `yaml:"page_size"`
		Deprovision            fileDeprovision   `yaml:"deprovision"`
		RateLimit              fileRateLimit     `yaml:"rate_limit"`
		ReconcileInterval      *string           `yaml:"reconcile_interval"`
		Orphans                *string           `yaml:"orphans"`
		FlattenGroups          *bool             `yaml:"flatten_groups"`
		LinkExisting           *bool             `yaml:"link_existing"`
		FullSyncInterval       *string           `yaml:"full_sync_interval"`
		Enabled                *bool             `yaml:"enabled"`
		GroupFilters           []string          `yaml:"group_filters"`
		Mappings               []string          `yaml:"mappings"`
	}
	fileAuth struct {
		Mode         *string           `yaml:"mode"`
		Token        string            `yaml:"token"`
		TokenURL     string            `yaml:"token_url"`
		ClientID     string            `yaml:"client_id"`
		ClientSecret string            `yaml:"client_secret"`
		Params       map[string]string `yaml:"params"`
		Username     string            `yaml:"username"`
		Password     string            `yaml:"password"`
	}
	fileServiceConfig struct {
		Patch  *bool    `yaml:"patch"`
		Filter *bool    `yaml:"filter"`
		Bulk   fileBulk `yaml:"bulk"`
	}
	// fileBulk is false (the target has no Bulk) or the limits of its Bulk.
	fileBulk struct {
		fileBulkLimits `yaml:",inline"`
		override       *store.BulkOverride // nil: not given (or not valid)
	}
	fileBulkLimits struct {
		MaxOperations  int `yaml:"max_operations"`
		MaxPayloadSize int `yaml:"max_payload_size"`
	}
	fileDeprovision struct {
		Action      *string `yaml:"action"`
		Threshold   *int    `yaml:"threshold"`
		DeleteAfter *string `yaml:"delete_after"`
	}
	fileRateLimit struct {
		RequestsPerMinute *float64 `yaml:"requests_per_minute"`
		Burst             *int     `yaml:"burst"`
		MaxInFlight       *int     `yaml:"max_in_flight"`
	}
	fileBinding struct {
		Application string `yaml:"application"`
		Group       string `yaml:"group"`
		User        string `yaml:"user"`
		Negate      *bool  `yaml:"negate"`
		Enabled     *bool  `yaml:"enabled"`
	}
)

// UnmarshalYAML decodes bulk: false, or a mapping of limits. A value of another form is
// left unset: the schema has reported it.
func (b *fileBulk) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var v bool
		if n.Tag == "!!bool" && n.Decode(&v) == nil && !v {
			b.override = &store.BulkOverride{}
		}
	case yaml.MappingNode:
		_ = n.Decode(&b.fileBulkLimits) // a limit of the wrong type stays 0: the schema has reported it
		b.override = &store.BulkOverride{Supported: true, MaxOperations: b.MaxOperations, MaxPayloadSize: b.MaxPayloadSize}
	}
	return nil
}

// configFile is a decoded configuration file, each object with where it was written.
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

// reader holds one file being read: where its values were written, which fields the schema
// found wrong, and the diagnostics so far.
type reader struct {
	file  string
	lines []string
	pos   positions
	bad   map[string]bool // field paths with a schema error: the checks in Go leave them alone
	errs  []Diagnostic
	warns []Diagnostic
}

func (r *reader) at(n *yaml.Node, field, format string, args ...any) Diagnostic {
	diag := Diagnostic{File: r.file, Field: field, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		diag.Line, diag.Column = n.Line, n.Column
	}
	return diag
}

func (r *reader) errorf(n *yaml.Node, field, format string, args ...any) {
	r.errs = append(r.errs, r.at(n, field, format, args...))
}

func (r *reader) warnf(n *yaml.Node, field, format string, args ...any) {
	r.warns = append(r.warns, r.at(n, field, format, args...))
}

// parseConfig decodes and statically validates a configuration file: everything but the
// references to objects in the database. It returns the errors and warnings sorted by
// position.
func parseConfig(file string, src []byte) (*configFile, []Diagnostic, []Diagnostic) {
	r := &reader{file: file, lines: strings.Split(string(src), "\n"), pos: positions{}}
	cfg := &configFile{}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return cfg, []Diagnostic{syntaxError(file, src, err)}, nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		r.errorf(&extra, "", "a configuration file holds one YAML document; found a second one")
	}
	if len(doc.Content) == 0 {
		return cfg, r.errs, r.warns // an empty file: an empty configuration
	}
	root := doc.Content[0]
	tree := documentTree(root, rootLoc, "", nil, r.pos, func(k *yaml.Node, field string, first int) {
		r.errorf(k, field, "repeated field (first set on line %d)", first)
	})
	schemaErrs, bad := configSchema().schemaErrors(file, tree, r.pos)
	r.errs, r.bad = append(r.errs, schemaErrs...), bad

	var f fileConfig
	_ = root.Decode(&f) // a value of the wrong type stays unset: the schema has reported it
	r.toSpecs(&f, cfg)
	r.check(cfg)
	sortDiagnostics(r.errs)
	sortDiagnostics(r.warns)
	return cfg, r.errs, r.warns
}

func sortDiagnostics(ds []Diagnostic) {
	sort.SliceStable(ds, func(i, j int) bool {
		if ds[i].Line != ds[j].Line {
			return ds[i].Line < ds[j].Line
		}
		return ds[i].Column < ds[j].Column
	})
}

// node is the value written at a field path (nil when it is not in the file).
func (r *reader) node(loc string) *yaml.Node { return r.pos[loc].value }

// take sets dst to a value the file gave and the schema accepted; else dst keeps its
// default.
func take[T any](r *reader, dst *T, v *T, field string) {
	if v != nil && !r.bad[field] {
		*dst = *v
	}
}

// ref is the name written at loc, unless it is empty or the schema refused it.
func (r *reader) ref(loc, name string) ref {
	at := r.pos[loc]
	if name == "" || at.value == nil || r.bad[at.field] {
		return ref{}
	}
	return ref{name: name, node: at.value, path: at.field}
}

func (r *reader) refs(loc string, names []string) []ref {
	var out []ref
	for i, name := range names {
		if x := r.ref(child(loc, strconv.Itoa(i)), name); x.name != "" {
			out = append(out, x)
		}
	}
	return out
}

// nodesUnder maps the field paths under a field to where their values were written,
// relative to it.
func (r *reader) nodesUnder(field string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	for _, at := range r.pos {
		if rel, ok := strings.CutPrefix(at.field, field+"."); ok {
			out[rel] = at.value
		}
	}
	return out
}

// toSpecs turns the decoded file into what apply works with: store objects with their
// defaults, and the names they refer to.
func (r *reader) toSpecs(f *fileConfig, cfg *configFile) {
	list := func(name string, i int) string { return child(child(rootLoc, name), strconv.Itoa(i)) }
	for i, fa := range f.Applications {
		loc := list("applications", i)
		a := appSpec{node: r.node(loc), path: r.pos[loc].field, app: store.Application{Name: fa.Name, PolicyEngineMode: "any"}}
		take(r, &a.app.PolicyEngineMode, fa.PolicyEngineMode, join(a.path, "policy_engine_mode"))
		cfg.Applications = append(cfg.Applications, a)
	}
	for i, fm := range f.Mappings {
		loc := list("mappings", i)
		m := mappingSpec{node: r.node(loc), path: r.pos[loc].field, nodes: r.nodesUnder(r.pos[loc].field),
			m: store.PropertyMapping{Name: fm.Name, Apply: string(mapping.ApplyAlways)}}
		take(r, &m.m.Kind, fm.Kind, join(m.path, "kind"))
		take(r, &m.m.Expression, fm.Expression, join(m.path, "expression"))
		take(r, &m.m.Apply, fm.Apply, join(m.path, "apply"))
		cfg.Mappings = append(cfg.Mappings, m)
	}
	for i, fp := range f.Providers {
		cfg.Providers = append(cfg.Providers, r.provider(list("providers", i), fp))
	}
	for i, fb := range f.Bindings {
		loc := list("bindings", i)
		b := bindingSpec{node: r.node(loc), path: r.pos[loc].field, enabled: true,
			application: r.ref(child(loc, "application"), fb.Application),
			group:       r.ref(child(loc, "group"), fb.Group),
			user:        r.ref(child(loc, "user"), fb.User)}
		take(r, &b.negate, fb.Negate, join(b.path, "negate"))
		take(r, &b.enabled, fb.Enabled, join(b.path, "enabled"))
		cfg.Bindings = append(cfg.Bindings, b)
	}
}

func (r *reader) provider(loc string, fp fileProvider) providerSpec {
	path := r.pos[loc].field
	ps := providerSpec{node: r.node(loc), path: path, p: store.ProviderDefaults(), nodes: r.nodesUnder(path),
		application:  r.ref(child(loc, "application"), fp.Application),
		groupFilters: r.refs(child(loc, "group_filters"), fp.GroupFilters),
		mappings:     r.refs(child(loc, "mappings"), fp.Mappings)}
	p, field := &ps.p, func(rel string) string { return join(path, rel) }
	p.Name, p.BaseURL = fp.Name, fp.BaseURL

	a := fp.Auth
	take(r, &p.AuthMode, a.Mode, field("auth.mode"))
	p.Token, p.OAuthTokenURL, p.OAuthClientID, p.OAuthClientSecret = a.Token, a.TokenURL, a.ClientID, a.ClientSecret
	p.BasicUsername, p.BasicPassword = a.Username, a.Password
	if a.Params != nil {
		p.OAuthParams = store.StringMap(a.Params)
	}

	take(r, &p.CompatibilityMode, fp.CompatibilityMode, field("compatibility_mode"))
	take(r, &p.Discovery, fp.Discovery, field("discovery"))
	sc := fp.ServiceProviderConfig
	if !r.bad[field("service_provider_config.patch")] {
		p.ServiceConfig.Patch = sc.Patch
	}
	if !r.bad[field("service_provider_config.filter")] {
		p.ServiceConfig.Filter = sc.Filter
	}
	p.ServiceConfig.Bulk = sc.Bulk.override
	take(r, &p.ExcludeServiceAccounts, fp.ExcludeServiceAccounts, field("exclude_service_accounts"))
	take(r, &p.DryRun, fp.DryRun, field("dry_run"))
	take(r, &p.VerifyTLS, fp.VerifyTLS, field("verify_tls"))
	take(r, &p.PageSize, fp.PageSize, field("page_size"))
	take(r, &p.DeprovisionAction, fp.Deprovision.Action, field("deprovision.action"))
	take(r, &p.DeprovisionThreshold, fp.Deprovision.Threshold, field("deprovision.threshold"))
	take(r, &p.RateLimitPerMinute, fp.RateLimit.RequestsPerMinute, field("rate_limit.requests_per_minute"))
	take(r, &p.RateLimitBurst, fp.RateLimit.Burst, field("rate_limit.burst"))
	take(r, &p.MaxInFlight, fp.RateLimit.MaxInFlight, field("rate_limit.max_in_flight"))
	take(r, &p.Orphans, fp.Orphans, field("orphans"))
	take(r, &p.FlattenGroups, fp.FlattenGroups, field("flatten_groups"))
	take(r, &p.LinkExisting, fp.LinkExisting, field("link_existing"))
	take(r, &p.Enabled, fp.Enabled, field("enabled"))
	if iv, ok := r.duration(ps.nodes["reconcile_interval"], field("reconcile_interval"), fp.ReconcileInterval, reconcileIntervalRule); ok {
		p.ReconcileInterval = iv
	}
	if iv, ok := r.duration(ps.nodes["full_sync_interval"], field("full_sync_interval"), fp.FullSyncInterval, fullSyncIntervalRule); ok {
		p.FullSyncInterval = iv
	}
	if iv, ok := r.duration(ps.nodes["deprovision.delete_after"], field("deprovision.delete_after"), fp.Deprovision.DeleteAfter, deleteAfterRule); ok {
		p.DeprovisionDeleteAfter = iv
	}
	return ps
}
