package starter

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/sealed"
	"github.com/scimsync/scimsync/store"
)

// migrateCommand declares `starter migrate`.
func migrateCommand(cl *cmdLine) runFunc {
	cl.describe("migrate [--json]", `
Applies the embedded database migrations that the database lacks (several processes may
migrate at once: they take turns) and keeps the built-in mappings current. Prints the
versions applied.`, 0, 0)
	var asJSON bool
	cl.flags.BoolVar(&asJSON, "json", false, "print the result as JSON")
	return func(ctx context.Context, d *Deps, _ []string, stdout, stderr io.Writer) int {
		return Migrate(ctx, d, cl, asJSON, stdout, stderr)
	}
}

// Migrate is `starter migrate`.
func Migrate(ctx context.Context, d *Deps, cl *cmdLine, asJSON bool, stdout, stderr io.Writer) int {
	sess, st, code := cl.openStore(ctx, d, stderr)
	if code >= 0 {
		return code
	}
	defer sess.close()
	applied, err := st.Migrate(ctx)
	if err != nil {
		return exitCode(stderr, "migrate", err)
	}
	if asJSON {
		writeJSON(stdout, map[string]any{"applied": append([]int64{}, applied...)})
		return ExitOK
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "migrate: the database schema is up to date; nothing applied")
		return ExitOK
	}
	vs := make([]string, len(applied))
	for i, v := range applied {
		vs[i] = fmt.Sprint(v)
	}
	fmt.Fprintf(stdout, "migrate: applied %s\n", strings.Join(vs, ", "))
	return ExitOK
}

// providerView is a provider as listed: its settings with names instead of ids, and its
// secrets as the references they are stored as (a literal is never shown).
type providerView struct {
	Name              string            `json:"name"`
	Enabled           bool              `json:"enabled"`
	BaseURL           string            `json:"baseUrl"`
	AuthMode          string            `json:"authMode"`
	Token             string            `json:"token,omitempty"`
	OAuthTokenURL     string            `json:"oauthTokenUrl,omitempty"`
	OAuthClientID     string            `json:"oauthClientId,omitempty"`
	OAuthClientSecret string            `json:"oauthClientSecret,omitempty"`
	OAuthParams       map[string]string `json:"oauthParams,omitempty"`
	BasicUsername     string            `json:"basicUsername,omitempty"`
	BasicPassword     string            `json:"basicPassword,omitempty"`
	CompatibilityMode string            `json:"compatibilityMode"`
	Discovery         string            `json:"discovery"`
	// ServiceProviderConfig is the provider's override of the target's capabilities.
	ServiceProviderConfig  *store.ServiceConfigOverride `json:"serviceProviderConfig,omitempty"`
	ExcludeServiceAccounts bool                         `json:"excludeServiceAccounts"`
	Application            string                       `json:"application,omitempty"`
	DryRun                 bool                         `json:"dryRun"`
	VerifyTLS              bool                         `json:"verifyTls"`
	PageSize               int                          `json:"pageSize"`
	DeprovisionAction      string                       `json:"deprovisionAction"`
	DeprovisionThreshold   int                          `json:"deprovisionThreshold"`
	DeprovisionDeleteAfter string                       `json:"deprovisionDeleteAfter,omitempty"`
	FlattenGroups          bool                         `json:"flattenGroups"`
	LinkExisting           bool                         `json:"linkExisting"`
	FullSyncInterval       string                       `json:"fullSyncInterval"`
	RateLimit              *rateLimitView               `json:"rateLimit,omitempty"`
	ReconcileInterval      string                       `json:"reconcileInterval"`
	Orphans                string                       `json:"orphans"`
	GroupFilters           []string                     `json:"groupFilters"`
	Mappings               []string                     `json:"mappings"`
}

// rateLimitView is a provider's rate_limit as configured.
type rateLimitView struct {
	RequestsPerMinute float64 `json:"requestsPerMinute,omitempty"`
	Burst             int     `json:"burst,omitempty"`
	MaxInFlight       int     `json:"maxInFlight,omitempty"`
}

// secretView shows a secret reference as it is, a sealed literal as "<sealed>", and a
// literal stored in clear (by a version before sealing; apply the file again to seal it)
// as "<literal>".
func secretView(v string) string {
	switch {
	case v == "" || isReference(v):
		return v
	case sealed.IsSealed(v):
		return "<sealed>"
	}
	return "<literal>"
}

func viewProviders(ctx context.Context, st *store.Store) ([]providerView, error) {
	ps, err := st.Providers(ctx)
	if err != nil {
		return nil, err
	}
	apps, err := st.Applications(ctx)
	if err != nil {
		return nil, err
	}
	appNames := map[string]string{}
	for _, a := range apps {
		appNames[a.ID] = a.Name
	}
	sels, err := st.ProviderSelections(ctx)
	if err != nil {
		return nil, err
	}
	out := []providerView{}
	for _, p := range ps {
		v := providerView{
			Name: p.Name, Enabled: p.Enabled, BaseURL: p.BaseURL, AuthMode: p.AuthMode, Token: secretView(p.Token),
			OAuthTokenURL: p.OAuthTokenURL, OAuthClientID: p.OAuthClientID, OAuthClientSecret: secretView(p.OAuthClientSecret),
			BasicUsername: p.BasicUsername, BasicPassword: secretView(p.BasicPassword), Discovery: p.Discovery,
			CompatibilityMode: p.CompatibilityMode, ExcludeServiceAccounts: p.ExcludeServiceAccounts, DryRun: p.DryRun,
			VerifyTLS: p.VerifyTLS, PageSize: p.PageSize, DeprovisionAction: p.DeprovisionAction,
			DeprovisionThreshold: p.DeprovisionThreshold, FlattenGroups: p.FlattenGroups, LinkExisting: p.LinkExisting,
			FullSyncInterval: p.FullSyncInterval.String(), GroupFilters: []string{}, Mappings: []string{},
			ReconcileInterval: p.ReconcileInterval.String(), Orphans: p.Orphans,
		}
		if p.DeprovisionDeleteAfter > 0 {
			v.DeprovisionDeleteAfter = p.DeprovisionDeleteAfter.String()
		}
		if !p.ServiceConfig.IsZero() {
			sc := p.ServiceConfig
			v.ServiceProviderConfig = &sc
		}
		if p.RateLimitPerMinute > 0 || p.MaxInFlight > 0 {
			v.RateLimit = &rateLimitView{RequestsPerMinute: p.RateLimitPerMinute, Burst: p.RateLimitBurst, MaxInFlight: p.MaxInFlight}
		}
		if len(p.OAuthParams) > 0 {
			v.OAuthParams = map[string]string{}
			for k, val := range p.OAuthParams {
				if secretParam(k) {
					val = secretView(val)
				}
				v.OAuthParams[k] = val
			}
		}
		if p.ApplicationID != nil {
			v.Application = appNames[*p.ApplicationID]
		}
		if sel, ok := sels[p.ID]; ok {
			v.GroupFilters = append(v.GroupFilters, sel.GroupFilters...)
			v.Mappings = append(v.Mappings, sel.Mappings...)
		}
		out = append(out, v)
	}
	return out, nil
}

// providersCommand declares `starter providers`.
func providersCommand(cl *cmdLine) runFunc {
	cl.describe("providers [--json]", `
Lists the providers: name, whether enabled, compatibility mode, application, full-sync
interval, mappings and base URL. Secrets are shown as their references.`, 0, 0)
	var asJSON bool
	cl.flags.BoolVar(&asJSON, "json", false, "print every setting as JSON")
	return func(ctx context.Context, d *Deps, _ []string, stdout, stderr io.Writer) int {
		return Providers(ctx, d, cl, asJSON, stdout, stderr)
	}
}

// Providers is `starter providers`.
func Providers(ctx context.Context, d *Deps, cl *cmdLine, asJSON bool, stdout, stderr io.Writer) int {
	sess, st, code := cl.openStore(ctx, d, stderr)
	if code >= 0 {
		return code
	}
	defer sess.close()
	views, err := viewProviders(ctx, st)
	if err != nil {
		return exitCode(stderr, "providers", err)
	}
	if asJSON {
		writeJSON(stdout, views)
		return ExitOK
	}
	if len(views) == 0 {
		fmt.Fprintln(stdout, "no providers; add them with starter apply -f FILE")
		return ExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tENABLED\tMODE\tAPPLICATION\tINTERVAL\tDRY RUN\tMAPPINGS\tBASE URL")
	for _, v := range views {
		mappings := "(defaults)"
		if len(v.Mappings) > 0 {
			mappings = strings.Join(v.Mappings, ",")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Name, yesNo(v.Enabled), v.CompatibilityMode,
			orDash(v.Application), v.FullSyncInterval, yesNo(v.DryRun), mappings, v.BaseURL)
	}
	tw.Flush()
	return ExitOK
}

// mappingsCommand declares `starter mappings`.
func mappingsCommand(cl *cmdLine) runFunc {
	cl.describe("mappings [--json]", `
Lists the property mappings: name, kind, the providers that select them, the length of
their source, and when they apply (always, or on_create: only in the create of an namedObject).
The built-in defaults (00-default-user, 00-default-group) run for providers that select no
mapping of their kind. --json includes the expressions.`, 0, 0)
	var asJSON bool
	cl.flags.BoolVar(&asJSON, "json", false, "print the mappings with their expressions as JSON")
	return func(ctx context.Context, d *Deps, _ []string, stdout, stderr io.Writer) int {
		return Mappings(ctx, d, cl, asJSON, stdout, stderr)
	}
}

// Mappings is `starter mappings`.
func Mappings(ctx context.Context, d *Deps, cl *cmdLine, asJSON bool, stdout, stderr io.Writer) int {
	sess, st, code := cl.openStore(ctx, d, stderr)
	if code >= 0 {
		return code
	}
	defer sess.close()
	ms, err := st.Mappings(ctx)
	if err != nil {
		return exitCode(stderr, "mappings", err)
	}
	views, err := viewProviders(ctx, st)
	if err != nil {
		return exitCode(stderr, "mappings", err)
	}
	usedBy := map[string][]string{}
	for _, v := range views {
		for _, m := range v.Mappings {
			usedBy[m] = append(usedBy[m], v.Name)
		}
	}
	type mappingView struct {
		Name       string   `json:"name"`
		Kind       string   `json:"kind"`
		Builtin    bool     `json:"builtin"`
		Providers  []string `json:"providers"`
		Apply      string   `json:"apply"`
		Expression string   `json:"expression"`
	}
	out := []mappingView{}
	for _, m := range ms {
		out = append(out, mappingView{Name: m.Name, Kind: m.Kind, Builtin: isBuiltinMapping(m.Name),
			Providers: append([]string{}, usedBy[m.Name]...), Apply: cmp.Or(m.Apply, string(mapping.ApplyAlways)), Expression: m.Expression})
	}
	if asJSON {
		writeJSON(stdout, out)
		return ExitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tPROVIDERS\tLINES\tAPPLY")
	for _, m := range out {
		providers := strings.Join(m.Providers, ",")
		if m.Builtin {
			providers = strings.TrimSpace(providers + " (built-in default)")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", m.Name, m.Kind, orDash(providers), strings.Count(strings.TrimRight(m.Expression, "\n"), "\n")+1, m.Apply)
	}
	tw.Flush()
	return ExitOK
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
