package starter

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/store"
)

const applyHelp = `
Applies a configuration file: providers, property mappings, applications and their
bindings, as code. The whole file is validated first (unknown or misspelt fields, types,
URLs, modes, secrets, mapping syntax, references to groups, users, applications and
mappings); every problem is reported with file:line:column and the field, and then nothing
is written (exit code 2). Otherwise everything is written in one transaction. Applying
the same file again changes nothing.

A field left out takes its default, so the file states the whole configuration of each
object it lists. Objects the file does not list are kept, unless --prune deletes them
(built-in mappings are never deleted). Secrets (auth.token, auth.client_secret, secret
auth.params) should be references: env:NAME or file:/path, resolved by the workers;
literal secrets are accepted with a warning.

Example:

  applications:
    - name: portal
      policy_engine_mode: any        # any (default) or all
  bindings:
    - application: portal
      group: staff                   # or user: alice; negate: false; enabled: true
  mappings:
    - name: department
      kind: user
      expression: |
        dept = user.attributes.get("department")
        if not dept:
            return None
        urn = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        return {"schemas": [urn], urn: {"department": dept}}
    - name: initial-password
      kind: user
      apply: on_create               # always (default), or on_create: sent only in the
      expression: |                  # create, never updated, removed or compared
        return {"password": user.attributes.get("initial_password")}
  providers:
    - name: demo                     # lower-case; appears in workflow IDs
      base_url: https://app.example.com/scim/v2
      auth:
        mode: token                  # token (default), oauth2 with token_url, client_id,
        token: env:DEMO_SCIM_TOKEN   # client_secret and params, or basic with username, password
      compatibility_mode: default    # default, aws, slack, salesforce, webex, vcenter, gitlab
      discovery: auto                # or off: never ask for the ServiceProviderConfig
      service_provider_config:       # what the target supports, over what discovery says
        patch: true                  # bulk: false, or {max_operations, max_payload_size}
      exclude_service_accounts: true
      application: portal            # sync only the users portal admits
      dry_run: false
      verify_tls: true
      page_size: 100
      deprovision: {action: delete, threshold: 0}   # delete, deactivate, none, or
                                     # deactivate_then_delete with delete_after: 720h
      flatten_groups: false
      link_existing: false
      full_sync_interval: 1h
      enabled: true
      group_filters: [staff]         # sync only these groups (default: all)
      mappings: [00-default-user, 00-default-group, department]
`

// change is what apply does (or would do) to one object.
type change struct {
	Kind   string   `json:"kind"` // application, mapping, provider or binding
	Name   string   `json:"name"`
	Action string   `json:"action"`           // created, updated, unchanged or deleted
	Fields []string `json:"fields,omitempty"` // the fields an update changes

	stage int                                              // execution order
	exec  func(context.Context, *store.Tx, *idIndex) error // nil when unchanged
}

// Change actions.
const (
	actionCreated   = "created"
	actionUpdated   = "updated"
	actionUnchanged = "unchanged"
	actionDeleted   = "deleted"
)

// idIndex resolves names to ids while a plan executes: what exists, plus what it created.
type idIndex struct {
	apps     map[string]string
	mappings map[string]string
	groups   map[string]string
	users    map[string]string
}

// applyResult is the outcome of apply, also its --json output.
type applyResult struct {
	File     string         `json:"file"`
	DryRun   bool           `json:"dryRun"`
	Changes  []change       `json:"changes"`
	Summary  map[string]int `json:"summary"`
	Errors   []Diagnostic   `json:"errors"`
	Warnings []Diagnostic   `json:"warnings"`
}

var errInvalidConfig = errors.New("invalid configuration")
var errDryRun = errors.New("dry run")

// applyFlags are the flags of starter apply.
type applyFlags struct {
	file                  string
	prune, dryRun, asJSON bool
}

// applyCommand declares `starter apply`.
func applyCommand(cl *cmdLine) runFunc {
	cl.describe("apply -f FILE [--prune] [--dry-run] [--json]", applyHelp, 0, 0)
	var f applyFlags
	cl.flags.StringVarP(&f.file, "f", "f", "", "the configuration file (YAML)")
	_ = cl.cmd.MarkFlagFilename("f", "yaml", "yml")
	cl.flags.BoolVar(&f.prune, "prune", false, "delete providers, mappings, applications and bindings the file does not list")
	cl.flags.BoolVar(&f.dryRun, "dry-run", false, "validate and show what would change, writing nothing")
	cl.flags.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	return func(ctx context.Context, d *Deps, _ []string, stdout, stderr io.Writer) int {
		return Apply(ctx, d, cl, f, stdout, stderr)
	}
}

// Apply is `starter apply`.
func Apply(ctx context.Context, d *Deps, cl *cmdLine, f applyFlags, stdout, stderr io.Writer) int {
	file, prune, dryRun, asJSON := f.file, f.prune, f.dryRun, f.asJSON
	if file == "" {
		return cl.usageError(stderr, "-f FILE is required")
	}
	src, err := os.ReadFile(file)
	if err != nil {
		return exitCode(stderr, "apply", usageErrorf("read %s: %v", file, unwrapPathError(err)))
	}
	cfg, errs, warns := parseConfig(file, src)
	res := applyResult{File: file, DryRun: dryRun, Changes: []change{}, Errors: errs, Warnings: warns}

	sess := newSession(d, cl.cfg, stderr)
	defer sess.close()
	st, err := sess.store(ctx)
	if err == nil {
		err = st.InTx(ctx, func(tx *store.Tx) error {
			if err := tx.LockConfig(ctx); err != nil {
				return err
			}
			snap, err := loadSnapshot(ctx, tx, cfg)
			if err != nil {
				return err
			}
			res.Errors = append(res.Errors, checkReferences(file, cfg, snap, prune)...)
			res.Errors = append(res.Errors, sealLiterals(file, cfg, snap, cl.cfg.InstallationSecret)...)
			sortDiagnostics(res.Errors)
			if len(res.Errors) > 0 {
				return errInvalidConfig
			}
			res.Changes = plan(cfg, snap, prune)
			if dryRun {
				return errDryRun // roll back: nothing is written
			}
			return execute(ctx, tx, snap, res.Changes)
		})
	}
	res.Summary = summarize(res.Changes)
	switch {
	case errors.Is(err, errDryRun):
		err = nil
	case errors.Is(err, errInvalidConfig):
		err = nil
	case err != nil:
		res.Changes = []change{}
		res.Summary = summarize(nil)
	}
	if asJSON {
		writeJSON(stdout, res)
	} else {
		printApply(stdout, stderr, res)
	}
	if len(res.Errors) > 0 {
		if err != nil { // the database could not be asked about references
			fmt.Fprintf(stderr, "starter apply: %v\n", err)
		}
		return ExitUsage
	}
	if err != nil {
		return exitCode(stderr, "apply", err)
	}
	return ExitOK
}

func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func summarize(cs []change) map[string]int {
	sum := map[string]int{actionCreated: 0, actionUpdated: 0, actionUnchanged: 0, actionDeleted: 0}
	for _, c := range cs {
		sum[c.Action]++
	}
	return sum
}

func printApply(stdout, stderr io.Writer, res applyResult) {
	for _, w := range res.Warnings {
		fmt.Fprintf(stderr, "%s (warning)\n", w)
	}
	if len(res.Errors) > 0 {
		for _, e := range res.Errors {
			fmt.Fprintln(stderr, e)
		}
		plural := "s"
		if len(res.Errors) == 1 {
			plural = ""
		}
		fmt.Fprintf(stderr, "starter apply: %s has %d error%s; nothing was written\n", res.File, len(res.Errors), plural)
		return
	}
	for _, c := range res.Changes {
		line := fmt.Sprintf("%s %s: %s", c.Kind, c.Name, c.Action)
		if len(c.Fields) > 0 {
			line += " (" + strings.Join(c.Fields, ", ") + ")"
		}
		fmt.Fprintln(stdout, line)
	}
	s := res.Summary
	changed := s[actionCreated] + s[actionUpdated] + s[actionDeleted]
	suffix := ""
	if res.DryRun {
		suffix = " (dry run: nothing was written)"
	}
	if changed == 0 {
		fmt.Fprintf(stdout, "apply %s: no changes, %d unchanged%s\n", res.File, s[actionUnchanged], suffix)
		return
	}
	fmt.Fprintf(stdout, "apply %s: %d created, %d updated, %d deleted, %d unchanged%s\n", res.File,
		s[actionCreated], s[actionUpdated], s[actionDeleted], s[actionUnchanged], suffix)
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// snapshot is the configuration in the database, read inside apply's transaction.
type snapshot struct {
	apps       map[string]store.Application
	appNames   map[string]string // id → name
	mappings   map[string]store.PropertyMapping
	providers  map[string]store.Provider
	selections map[string]store.ProviderSelection // by provider id
	bindings   []store.NamedBinding
	groups     map[string]store.Group // the groups the file refers to
	users      map[string]store.User  // the users the file refers to
}

func loadSnapshot(ctx context.Context, tx *store.Tx, cfg *configFile) (*snapshot, error) {
	s := &snapshot{apps: map[string]store.Application{}, appNames: map[string]string{},
		mappings: map[string]store.PropertyMapping{}, providers: map[string]store.Provider{}}
	apps, err := tx.Applications(ctx)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		s.apps[a.Name], s.appNames[a.ID] = a, a.Name
	}
	ms, err := tx.Mappings(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range ms {
		s.mappings[m.Name] = m
	}
	ps, err := tx.Providers(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ps {
		s.providers[p.Name] = p
	}
	if s.selections, err = tx.ProviderSelections(ctx); err != nil {
		return nil, err
	}
	if s.bindings, err = tx.Bindings(ctx); err != nil {
		return nil, err
	}
	var groups, users []string
	for _, p := range cfg.Providers {
		for _, g := range p.groupFilters {
			groups = append(groups, g.name)
		}
	}
	for _, b := range cfg.Bindings {
		if b.group.name != "" {
			groups = append(groups, b.group.name)
		}
		if b.user.name != "" {
			users = append(users, b.user.name)
		}
	}
	if s.groups, err = tx.GroupsByName(ctx, groups); err != nil {
		return nil, err
	}
	if s.users, err = tx.UsersByUsername(ctx, users); err != nil {
		return nil, err
	}
	return s, nil
}

func isBuiltinMapping(name string) bool {
	return name == store.DefaultUserMappingName || name == store.DefaultGroupMappingName
}

// checkReferences reports names that refer to nothing. Applications and mappings may be
// defined in the file or already exist (unless --prune, which would delete them); groups
// and users come from the directory.
func checkReferences(file string, cfg *configFile, snap *snapshot, prune bool) []Diagnostic {
	var errs []Diagnostic
	add := func(r ref, format string, args ...any) {
		errs = append(errs, Diagnostic{File: file, Line: r.node.Line, Column: r.node.Column, Field: r.path,
			Message: fmt.Sprintf(format, args...)})
	}
	fileApps := map[string]bool{}
	for _, a := range cfg.Applications {
		fileApps[a.app.Name] = true
	}
	fileMappings := map[string]bool{}
	for _, m := range cfg.Mappings {
		fileMappings[m.m.Name] = true
	}
	pruneNote := ""
	if prune {
		pruneNote = " (with --prune, what the file does not define is deleted)"
	}
	checkApp := func(r ref) {
		if r.name == "" || fileApps[r.name] {
			return
		}
		if _, ok := snap.apps[r.name]; ok && !prune {
			return
		}
		add(r, "unknown application %q: define it under applications%s", r.name, pruneNote)
	}
	for _, p := range cfg.Providers {
		checkApp(p.application)
		for _, g := range p.groupFilters {
			if _, ok := snap.groups[g.name]; !ok {
				add(g, "unknown group %q: no group of that name in the directory", g.name)
			}
		}
		for _, m := range p.mappings {
			if fileMappings[m.name] || isBuiltinMapping(m.name) {
				continue
			}
			if _, ok := snap.mappings[m.name]; ok && !prune {
				continue
			}
			add(m, "unknown mapping %q: define it under mappings, or use a built-in one (%s, %s)%s",
				m.name, store.DefaultUserMappingName, store.DefaultGroupMappingName, pruneNote)
		}
	}
	for _, b := range cfg.Bindings {
		checkApp(b.application)
		if b.group.name != "" {
			if _, ok := snap.groups[b.group.name]; !ok {
				add(b.group, "unknown group %q: no group of that name in the directory", b.group.name)
			}
		}
		if b.user.name != "" {
			if _, ok := snap.users[b.user.name]; !ok {
				add(b.user, "unknown user %q: no user of that username in the directory", b.user.name)
			}
		}
	}
	return errs
}

// Execution stages: creates and updates in dependency order, then deletions in reverse.
const (
	stageApps = iota
	stageMappings
	stageProviders
	stageBindings
	stageDeleteBindings
	stageDeleteProviders
	stageDeleteMappings
	stageDeleteApps
)

var kindOrder = map[string]int{"application": 0, "mapping": 1, "provider": 2, "binding": 3}

// plan compares the file with the snapshot and returns a change per namedObject, in display
// order (kind, then name).
func plan(cfg *configFile, snap *snapshot, prune bool) []change {
	var cs []change

	inFile := map[string]bool{}
	for _, a := range cfg.Applications {
		a := a.app
		inFile[a.Name] = true
		cur, ok := snap.apps[a.Name]
		switch {
		case !ok:
			cs = append(cs, change{Kind: "application", Name: a.Name, Action: actionCreated, stage: stageApps,
				exec: func(ctx context.Context, tx *store.Tx, ids *idIndex) error {
					out, err := tx.CreateApplication(ctx, a)
					ids.apps[a.Name] = out.ID
					return err
				}})
		case cur.PolicyEngineMode != a.PolicyEngineMode:
			a.ID = cur.ID
			cs = append(cs, change{Kind: "application", Name: a.Name, Action: actionUpdated, Fields: []string{"policy_engine_mode"},
				stage: stageApps, exec: func(ctx context.Context, tx *store.Tx, _ *idIndex) error { return tx.UpdateApplication(ctx, a) }})
		default:
			cs = append(cs, change{Kind: "application", Name: a.Name, Action: actionUnchanged})
		}
	}
	if prune {
		for name := range snap.apps {
			if !inFile[name] {
				cs = append(cs, change{Kind: "application", Name: name, Action: actionDeleted, stage: stageDeleteApps,
					exec: func(ctx context.Context, tx *store.Tx, _ *idIndex) error { return tx.DeleteApplication(ctx, name) }})
			}
		}
	}

	clear(inFile)
	for _, m := range cfg.Mappings {
		m := m.m
		inFile[m.Name] = true
		cur, ok := snap.mappings[m.Name]
		var fields []string
		if ok && cur.Kind != m.Kind {
			fields = append(fields, "kind")
		}
		if ok && cur.Expression != m.Expression {
			fields = append(fields, "expression")
		}
		if ok && cmp.Or(cur.Apply, string(mapping.ApplyAlways)) != m.Apply {
			fields = append(fields, "apply")
		}
		save := func(ctx context.Context, tx *store.Tx, ids *idIndex) error {
			out, err := tx.SaveMapping(ctx, m)
			ids.mappings[m.Name] = out.ID
			return err
		}
		switch {
		case !ok:
			cs = append(cs, change{Kind: "mapping", Name: m.Name, Action: actionCreated, stage: stageMappings, exec: save})
		case len(fields) > 0:
			cs = append(cs, change{Kind: "mapping", Name: m.Name, Action: actionUpdated, Fields: fields, stage: stageMappings, exec: save})
		default:
			cs = append(cs, change{Kind: "mapping", Name: m.Name, Action: actionUnchanged})
		}
	}
	if prune {
		for name := range snap.mappings {
			if !inFile[name] && !isBuiltinMapping(name) {
				cs = append(cs, change{Kind: "mapping", Name: name, Action: actionDeleted, stage: stageDeleteMappings,
					exec: func(ctx context.Context, tx *store.Tx, _ *idIndex) error { return tx.DeleteMapping(ctx, name) }})
			}
		}
	}

	clear(inFile)
	for _, ps := range cfg.Providers {
		ps := ps
		inFile[ps.p.Name] = true
		cur, ok := snap.providers[ps.p.Name]
		exec := func(ctx context.Context, tx *store.Tx, ids *idIndex) error { return saveProvider(ctx, tx, ids, ps) }
		if !ok {
			cs = append(cs, change{Kind: "provider", Name: ps.p.Name, Action: actionCreated, stage: stageProviders, exec: exec})
			continue
		}
		if fields := providerDiff(cur, snap.selections[cur.ID], snap.appNames, ps); len(fields) > 0 {
			cs = append(cs, change{Kind: "provider", Name: ps.p.Name, Action: actionUpdated, Fields: fields, stage: stageProviders, exec: exec})
		} else {
			cs = append(cs, change{Kind: "provider", Name: ps.p.Name, Action: actionUnchanged})
		}
	}
	if prune {
		for name := range snap.providers {
			if !inFile[name] {
				cs = append(cs, change{Kind: "provider", Name: name, Action: actionDeleted, stage: stageDeleteProviders,
					exec: func(ctx context.Context, tx *store.Tx, _ *idIndex) error { return tx.DeleteProvider(ctx, name) }})
			}
		}
	}

	matched := map[string]bool{} // binding ids the file keeps
	for _, b := range cfg.Bindings {
		b := b
		var cur *store.NamedBinding
		for i := range snap.bindings {
			e := &snap.bindings[i]
			if e.Application == b.application.name && !matched[e.ID] &&
				((b.group.name != "" && e.GroupName == b.group.name) || (b.user.name != "" && e.Username == b.user.name)) {
				cur = e
				break
			}
		}
		name := b.describe()
		if cur == nil {
			cs = append(cs, change{Kind: "binding", Name: name, Action: actionCreated, stage: stageBindings,
				exec: func(ctx context.Context, tx *store.Tx, ids *idIndex) error {
					nb := store.Binding{ApplicationID: ids.apps[b.application.name], Negate: b.negate, Enabled: b.enabled}
					if b.group.name != "" {
						id := ids.groups[b.group.name]
						nb.GroupID = &id
					} else {
						id := ids.users[b.user.name]
						nb.UserID = &id
					}
					_, err := tx.CreateBinding(ctx, nb)
					return err
				}})
			continue
		}
		matched[cur.ID] = true
		var fields []string
		if cur.Negate != b.negate {
			fields = append(fields, "negate")
		}
		if cur.Enabled != b.enabled {
			fields = append(fields, "enabled")
		}
		if len(fields) == 0 {
			cs = append(cs, change{Kind: "binding", Name: name, Action: actionUnchanged})
			continue
		}
		id := cur.ID
		cs = append(cs, change{Kind: "binding", Name: name, Action: actionUpdated, Fields: fields, stage: stageBindings,
			exec: func(ctx context.Context, tx *store.Tx, _ *idIndex) error {
				return tx.UpdateBinding(ctx, store.Binding{ID: id, Negate: b.negate, Enabled: b.enabled})
			}})
	}
	if prune {
		for _, e := range snap.bindings {
			if matched[e.ID] {
				continue
			}
			name := e.Application + " → user " + e.Username
			if e.GroupID != nil {
				name = e.Application + " → group " + e.GroupName
			}
			id := e.ID
			cs = append(cs, change{Kind: "binding", Name: name, Action: actionDeleted, stage: stageDeleteBindings,
				exec: func(ctx context.Context, tx *store.Tx, _ *idIndex) error { return tx.DeleteBinding(ctx, id) }})
		}
	}

	sort.SliceStable(cs, func(i, j int) bool {
		if kindOrder[cs[i].Kind] != kindOrder[cs[j].Kind] {
			return kindOrder[cs[i].Kind] < kindOrder[cs[j].Kind]
		}
		return cs[i].Name < cs[j].Name
	})
	return cs
}

// providerDiff lists the fields in which the provider in the file differs from cur.
func providerDiff(cur store.Provider, sel store.ProviderSelection, appNames map[string]string, ps providerSpec) []string {
	want := ps.p
	var fields []string
	diff := func(name string, differs bool) {
		if differs {
			fields = append(fields, name)
		}
	}
	curApp := ""
	if cur.ApplicationID != nil {
		curApp = appNames[*cur.ApplicationID]
	}
	diff("base_url", cur.BaseURL != want.BaseURL)
	diff("auth.mode", cur.AuthMode != want.AuthMode)
	diff("auth.token", cur.Token != want.Token)
	diff("auth.token_url", cur.OAuthTokenURL != want.OAuthTokenURL)
	diff("auth.client_id", cur.OAuthClientID != want.OAuthClientID)
	diff("auth.client_secret", cur.OAuthClientSecret != want.OAuthClientSecret)
	diff("auth.params", !maps.Equal(cur.OAuthParams, want.OAuthParams))
	diff("auth.username", cur.BasicUsername != want.BasicUsername)
	diff("auth.password", cur.BasicPassword != want.BasicPassword)
	diff("compatibility_mode", cur.CompatibilityMode != want.CompatibilityMode)
	diff("discovery", cur.Discovery != want.Discovery)
	diff("service_provider_config", !cur.ServiceConfig.Equal(want.ServiceConfig))
	diff("exclude_service_accounts", cur.ExcludeServiceAccounts != want.ExcludeServiceAccounts)
	diff("application", curApp != ps.application.name)
	diff("dry_run", cur.DryRun != want.DryRun)
	diff("verify_tls", cur.VerifyTLS != want.VerifyTLS)
	diff("page_size", cur.PageSize != want.PageSize)
	diff("deprovision.action", cur.DeprovisionAction != want.DeprovisionAction)
	diff("deprovision.threshold", cur.DeprovisionThreshold != want.DeprovisionThreshold)
	diff("deprovision.delete_after", cur.DeprovisionDeleteAfter != want.DeprovisionDeleteAfter)
	diff("flatten_groups", cur.FlattenGroups != want.FlattenGroups)
	diff("link_existing", cur.LinkExisting != want.LinkExisting)
	diff("full_sync_interval", cur.FullSyncInterval != want.FullSyncInterval)
	diff("rate_limit", cur.RateLimitPerMinute != want.RateLimitPerMinute || cur.RateLimitBurst != want.RateLimitBurst ||
		cur.MaxInFlight != want.MaxInFlight)
	diff("reconcile_interval", cur.ReconcileInterval != want.ReconcileInterval)
	diff("orphans", cur.Orphans != want.Orphans)
	diff("enabled", cur.Enabled != want.Enabled)
	diff("group_filters", !slices.Equal(sortedNames(ps.groupFilters), sel.GroupFilters))
	diff("mappings", !slices.Equal(sortedNames(ps.mappings), sel.Mappings))
	return fields
}

// sortedNames returns the names of refs sorted bytewise (as the store sorts selections).
func sortedNames(rs []ref) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.name)
	}
	sort.Strings(out)
	return out
}

func saveProvider(ctx context.Context, tx *store.Tx, ids *idIndex, ps providerSpec) error {
	p := ps.p
	if ps.application.name != "" {
		id := ids.apps[ps.application.name]
		p.ApplicationID = &id
	}
	saved, err := tx.UpsertProvider(ctx, p)
	if err != nil {
		return err
	}
	groupIDs := []string{}
	for _, g := range ps.groupFilters {
		groupIDs = append(groupIDs, ids.groups[g.name])
	}
	if err := tx.SetGroupFilters(ctx, saved.ID, groupIDs); err != nil {
		return err
	}
	mappingIDs := []string{}
	for _, m := range ps.mappings {
		mappingIDs = append(mappingIDs, ids.mappings[m.name])
	}
	return tx.SetProviderMappings(ctx, saved.ID, mappingIDs)
}

// execute runs the plan's changes in dependency order inside tx.
func execute(ctx context.Context, tx *store.Tx, snap *snapshot, cs []change) error {
	ids := &idIndex{apps: map[string]string{}, mappings: map[string]string{}, groups: map[string]string{}, users: map[string]string{}}
	for name, a := range snap.apps {
		ids.apps[name] = a.ID
	}
	for name, m := range snap.mappings {
		ids.mappings[name] = m.ID
	}
	for name, g := range snap.groups {
		ids.groups[name] = g.ID
	}
	for name, u := range snap.users {
		ids.users[name] = u.ID
	}
	order := slices.Clone(cs)
	sort.SliceStable(order, func(i, j int) bool { return order[i].stage < order[j].stage })
	for _, c := range order {
		if c.exec == nil {
			continue
		}
		if err := c.exec(ctx, tx, ids); err != nil {
			return fmt.Errorf("%s %s: %w", c.Kind, c.Name, err)
		}
	}
	return nil
}
