package starter

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/store"
)

func diagStrings(ds []Diagnostic) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

func TestStarterParseConfigReportsEveryErrorWithPositionAndField(t *testing.T) {
	src := `providers:
  - name: demo
    bse_url: https://x.example.com/scim
    base_url: "ftp//nope"
    compatibility_mode: azure
    page_size: many
    enabled: "yes"
    auth:
      mode: token
    deprovision: {action: erase}
    full_sync_interval: 10s
    mappings: [a, a]
  - name: Demo!
    base_url: https://ok.example.com
    auth: {mode: oauth2, token: env:X}
mappings:
  - name: broken
    kind: user
    expression: |
      x = 1
      return {"userName": x +}
  - name: 00-default-user
    kind: group
    expression: return None
applications:
  - name: portal
    policy_engine_mode: some
bindings:
  - application: portal
    group: staff
    user: ada
`
	_, errs, warns := parseConfig("bad.yaml", []byte(src))
	want := []string{
		`bad.yaml:3:5: providers[0].bse_url: unknown field (did you mean base_url?)`,
		`bad.yaml:4:15: providers[0].base_url: invalid URL "ftp//nope": the scheme must be http or https`,
		`bad.yaml:5:25: providers[0].compatibility_mode: unknown value "azure": use default, aws, slack, salesforce, webex, vcenter or gitlab`,
		`bad.yaml:6:16: providers[0].page_size: expected a whole number, got the string "many"`,
		`bad.yaml:7:14: providers[0].enabled: expected true or false, got the string "yes"`,
		`bad.yaml:9:13: providers[0].auth.token: required with auth mode token: a secret reference such as env:SCIM_TOKEN or file:/run/secrets/scim-token`,
		`bad.yaml:10:27: providers[0].deprovision.action: unknown value "erase": use delete, deactivate, deactivate_then_delete or none`,
		`bad.yaml:11:25: providers[0].full_sync_interval: must be at least 1m, got 10s`,
		`bad.yaml:12:19: providers[0].mappings[1]: "a" is listed twice`,
		`bad.yaml:13:11: providers[1].name: "Demo!" is not a valid provider name: lower-case letters, digits, '.', '_' and '-', starting with a letter or digit, at most 63 characters`,
		`bad.yaml:15:18: providers[1].auth.token_url: required with auth mode oauth2`,
		`bad.yaml:15:18: providers[1].auth.client_id: required with auth mode oauth2`,
		`bad.yaml:15:33: providers[1].auth.token: only used with auth mode token`,
		`bad.yaml:21:30: mappings[0].expression: line 2:24 of mapping "broken": got '}', want primary expression`,
		`bad.yaml:22:11: mappings[1].name: "00-default-user" is the built-in default mapping; give your mapping another name and list both in the provider's mappings`,
		`bad.yaml:27:25: applications[0].policy_engine_mode: unknown value "some": use any or all`,
		`bad.yaml:29:5: bindings[0]: a binding binds exactly one of group and user`,
	}
	if got := diagStrings(errs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(warns) != 0 {
		t.Errorf("warnings = %v", diagStrings(warns))
	}
}

func TestStarterParseConfigDefaultsAndLiteralSecretWarning(t *testing.T) {
	src := `providers:
  - name: minimal
    base_url: https://app.example.com/scim/v2/
    auth:
      token: s3cr3t-literal
  - name: oauth
    base_url: http://127.0.0.1:9000/scim
    auth:
      mode: oauth2
      token_url: https://login.example.com/token
      client_id: scimsync
      client_secret: file:/run/secrets/client
      params: {grant_type: client_credentials, password: hunter2}
    application: portal
    group_filters: [staff]
    mappings: [00-default-user, dept]
`
	cfg, errs, warns := parseConfig("c.yaml", []byte(src))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", diagStrings(errs))
	}
	wantWarn := []string{
		`c.yaml:5:14: providers[0].auth.token: a literal secret is stored sealed under the installation secret; a reference such as env:NAME or file:/path keeps it out of the database`,
		`c.yaml:13:58: providers[1].auth.params.password: a literal secret is stored sealed under the installation secret; a reference such as env:NAME or file:/path keeps it out of the database`,
	}
	if got := diagStrings(warns); strings.Join(got, "\n") != strings.Join(wantWarn, "\n") {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantWarn, "\n"))
	}
	want := store.ProviderDefaults()
	want.Name, want.BaseURL, want.Token = "minimal", "https://app.example.com/scim/v2/", "s3cr3t-literal"
	if got := cfg.Providers[0].p; got.Name != want.Name || got.BaseURL != want.BaseURL || got.Token != want.Token ||
		got.AuthMode != "token" || got.CompatibilityMode != "default" || !got.ExcludeServiceAccounts || !got.VerifyTLS ||
		got.PageSize != 100 || got.DeprovisionAction != "delete" || got.FullSyncInterval != time.Hour || !got.Enabled {
		t.Errorf("defaults: got %+v", got)
	}
	o := cfg.Providers[1]
	if o.p.AuthMode != "oauth2" || o.p.OAuthParams["grant_type"] != "client_credentials" || o.application.name != "portal" ||
		len(o.groupFilters) != 1 || len(o.mappings) != 2 || o.mappings[1].name != "dept" || o.mappings[1].node.Line != 16 {
		t.Errorf("oauth provider: %+v", o)
	}
}

func TestStarterParseConfigSyntaxErrorsHaveALine(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"providers:\n  - name: a\n    base_url: [x\n", "c.yaml:3: invalid YAML: did not find expected ',' or ']'"},
		{"providers:\n  - name: a\n    base_url: b: c\n", "c.yaml:3: invalid YAML: mapping values are not allowed in this context"},
		{"a: 1\n---\nb: 2\n", "c.yaml:2:1: a configuration file holds one YAML document; found a second one"},
		{"providers: {name: x}\n", "c.yaml:1:12: providers: expected a list, got a mapping"},
	} {
		_, errs, _ := parseConfig("c.yaml", []byte(tc.src))
		if got := strings.Join(diagStrings(errs), "\n"); !strings.Contains(got, tc.want) {
			t.Errorf("%q:\ngot  %s\nwant %s", tc.src, got, tc.want)
		}
	}
}

func TestStarterExampleConfigIsValid(t *testing.T) {
	src, err := os.ReadFile("../examples/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, errs, warns := parseConfig("config.yaml", src)
	if len(errs)+len(warns) != 0 {
		t.Fatalf("errors %v warnings %v", diagStrings(errs), diagStrings(warns))
	}
	if len(cfg.Providers) != 1 || cfg.Providers[0].p.Token != "env:SCIMSYNC_DEMO_TOKEN" ||
		cfg.Providers[0].p.BaseURL != "http://127.0.0.1:8088/scim/v2" {
		t.Errorf("providers = %+v", cfg.Providers)
	}
}

func TestStarterExampleDirectoryIsValid(t *testing.T) {
	src, err := os.ReadFile("../examples/directory.json")
	if err != nil {
		t.Fatal(err)
	}
	df, errs := parseDirectoryJSON("directory.json", src)
	if len(errs) == 0 {
		errs = checkDirectory(df)
	}
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	service := 0
	for _, u := range df.users {
		if u.user.Type == store.UserServiceAccount {
			service++
		}
	}
	if len(df.users) < 45 || len(df.groups) != 8 || service != 1 {
		t.Errorf("%d users (%d service accounts), %d groups", len(df.users), service, len(df.groups))
	}
}

func TestStarterHelpAndUsageExitCodes(t *testing.T) {
	ctx := context.Background()
	deps := &Deps{Getenv: func(string) string { return "" }}
	for _, tc := range []struct {
		args []string
		code int
		out  string // in stdout for 0, stderr otherwise
	}{
		{[]string{"--help"}, ExitOK, "commands:"},
		{[]string{"help", "apply"}, ExitOK, "usage: starter apply -f FILE"},
		{[]string{}, ExitUsage, "usage: starter"},
		{[]string{"frobnicate"}, ExitUsage, `unknown command "frobnicate"`},
		{[]string{"apply"}, ExitUsage, "-f FILE is required"},
		{[]string{"apply", "--nope"}, ExitUsage, "flag provided but not defined: -nope"},
		{[]string{"sync", "user", "ada"}, ExitUsage, "DATABASE_URL (or --database-url) is required"},
		{[]string{"sync", "robot", "ada", "--provider", "x"}, ExitUsage, `unknown object kind "robot"`},
		{[]string{"mapping", "test", "--provider", "x", "user"}, ExitUsage, "mapping test needs user|group NAME"},
		{[]string{"full-sync"}, ExitUsage, "DATABASE_URL (or --database-url) is required"},
		{[]string{"status", "extra"}, ExitUsage, "unexpected arguments: extra"},
		{[]string{"providers"}, ExitUsage, "DATABASE_URL (or --database-url) is required"},
	} {
		for _, c := range commands {
			if len(tc.args) == 0 {
				break
			}
			if c.name == tc.args[0] {
				var out, errOut bytes.Buffer
				if code := c.run(ctx, deps, []string{"--help"}, &out, &errOut); code != ExitOK || !strings.Contains(out.String(), "usage: starter "+c.name) {
					t.Errorf("%s --help: exit %d, %q", c.name, code, out.String())
				}
			}
		}
		var out, errOut bytes.Buffer
		code := Main(ctx, deps, tc.args, &out, &errOut)
		text := errOut.String()
		if tc.code == ExitOK {
			text = out.String()
		}
		if code != tc.code || !strings.Contains(text, tc.out) {
			t.Errorf("starter %v: exit %d, stdout %q stderr %q; want exit %d with %q", tc.args, code, out.String(), errOut.String(), tc.code, tc.out)
		}
	}
}

func TestStarterParseConfigRateLimit(t *testing.T) {
	src := `providers:
  - name: slack
    base_url: https://api.slack.com/scim/v2
    auth: {token: env:SLACK}
    rate_limit: {requests_per_minute: 180, burst: 20, max_in_flight: 8}
  - name: slow
    base_url: https://slow.example.com/scim
    auth: {token: env:SLOW}
    rate_limit: {requests_per_minute: 0.5}
`
	cfg, errs, _ := parseConfig("c.yaml", []byte(src))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", diagStrings(errs))
	}
	if p := cfg.Providers[0].p; p.RateLimitPerMinute != 180 || p.RateLimitBurst != 20 || p.MaxInFlight != 8 {
		t.Errorf("slack: %v/min, burst %d, in flight %d", p.RateLimitPerMinute, p.RateLimitBurst, p.MaxInFlight)
	}
	if p := cfg.Providers[1].p; p.RateLimitPerMinute != 0.5 || p.RateLimitBurst != 0 || p.MaxInFlight != 0 {
		t.Errorf("slow: %v/min, burst %d, in flight %d", p.RateLimitPerMinute, p.RateLimitBurst, p.MaxInFlight)
	}

	bad := `providers:
  - name: a
    base_url: https://a.example.com/scim
    auth: {token: env:A}
    rate_limit: {requests_per_minute: fast, burst: 0, max_in_flight: 2.5, per_second: 3}
  - name: b
    base_url: https://b.example.com/scim
    auth: {token: env:B}
    rate_limit: {requests_per_minute: -1, max_in_flight: 0}
  - name: c
    base_url: https://c.example.com/scim
    auth: {token: env:C}
    rate_limit: {burst: 5}
`
	_, errs, _ = parseConfig("bad.yaml", []byte(bad))
	want := []string{
		`bad.yaml:5:39: providers[0].rate_limit.requests_per_minute: expected a number, got the string "fast"`,
		`bad.yaml:5:52: providers[0].rate_limit.burst: must be between 1 and 100000 (requests sent at once after a quiet spell), got 0`,
		`bad.yaml:5:70: providers[0].rate_limit.max_in_flight: expected a whole number, got a number`,
		`bad.yaml:5:75: providers[0].rate_limit.per_second: unknown field (known fields: burst, max_in_flight, requests_per_minute)`,
		`bad.yaml:9:39: providers[1].rate_limit.requests_per_minute: must be more than 0 and at most 1000000 (requests a minute, every worker together), got -1`,
		`bad.yaml:9:58: providers[1].rate_limit.max_in_flight: must be between 1 and 10000 (requests in flight, every worker together), got 0`,
		`bad.yaml:13:25: providers[2].rate_limit.burst: only used with rate_limit.requests_per_minute: a burst of what rate?`,
	}
	if got := diagStrings(errs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestStarterParseConfigReconciliation(t *testing.T) {
	src := `providers:
  - name: a
    base_url: https://a.example.com/scim
    auth: {token: env:A}
    reconcile_interval: 168h
    orphans: delete
  - name: b
    base_url: https://b.example.com/scim
    auth: {token: env:B}
    reconcile_interval: "0"
  - name: c
    base_url: https://c.example.com/scim
    auth: {token: env:C}
`
	cfg, errs, _ := parseConfig("c.yaml", []byte(src))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", diagStrings(errs))
	}
	got := []string{}
	for _, p := range cfg.Providers {
		got = append(got, p.p.ReconcileInterval.String()+" "+p.p.Orphans)
	}
	if strings.Join(got, ", ") != "168h0m0s delete, 0s report, 24h0m0s report" {
		t.Errorf("reconcile settings %v", got)
	}
	bad := `providers:
  - name: a
    base_url: https://a.example.com/scim
    auth: {token: env:A}
    reconcile_interval: daily
    orphans: purge
  - name: b
    base_url: https://b.example.com/scim
    auth: {token: env:B}
    reconcile_interval: 10s
`
	_, errs, _ = parseConfig("bad.yaml", []byte(bad))
	want := []string{
		`bad.yaml:5:25: providers[0].reconcile_interval: expected a duration such as 24h or 168h, or 0 to read the target back only when asked, got "daily"`,
		`bad.yaml:6:14: providers[0].orphans: unknown value "purge": use report, adopt or delete`,
		`bad.yaml:10:25: providers[1].reconcile_interval: must be 0 (only when asked) or at least 1m, got 10s`,
	}
	if got := diagStrings(errs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestStarterParseConfigDeactivateThenDelete(t *testing.T) {
	src := `providers:
  - name: a
    base_url: https://a.example.com/scim
    auth: {token: env:A}
    deprovision: {action: deactivate_then_delete, delete_after: 720h}
  - name: b
    base_url: https://b.example.com/scim
    auth: {token: env:B}
    deprovision: {action: deactivate_then_delete, delete_after: 2s, threshold: 3}
`
	cfg, errs, _ := parseConfig("c.yaml", []byte(src))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", diagStrings(errs))
	}
	got := []string{}
	for _, p := range cfg.Providers {
		got = append(got, p.p.DeprovisionAction+" "+p.p.DeprovisionDeleteAfter.String())
	}
	if want := "deactivate_then_delete 720h0m0s, deactivate_then_delete 2s"; strings.Join(got, ", ") != want {
		t.Errorf("deprovision settings %v, want %s", got, want)
	}
	bad := `providers:
  - name: a
    base_url: https://a.example.com/scim
    auth: {token: env:A}
    deprovision: {action: deactivate_then_delete}
  - name: b
    base_url: https://b.example.com/scim
    auth: {token: env:B}
    deprovision:
      action: deactivate
      delete_after: 720h
  - name: c
    base_url: https://c.example.com/scim
    auth: {token: env:C}
    deprovision: {delete_after: 24h}
  - name: d
    base_url: https://d.example.com/scim
    auth: {token: env:D}
    deprovision: {action: deactivate_then_delete, delete_after: 30d}
  - name: e
    base_url: https://e.example.com/scim
    auth: {token: env:E}
    deprovision: {action: deactivate_then_delete, delete_after: -1h}
  - name: f
    base_url: https://f.example.com/scim
    auth: {token: env:F}
    deprovision: {action: deactivate_then_delete, delete_after: "0"}
  - name: g
    base_url: https://g.example.com/scim
    auth: {token: env:G}
    deprovision: {action: purge, delete_after: 1h}
`
	_, errs, _ = parseConfig("bad.yaml", []byte(bad))
	want := []string{
		`bad.yaml:5:27: providers[0].deprovision.delete_after: required with deprovision action deactivate_then_delete: how long a deactivated user stays at the target before it is deleted, e.g. 720h (30 days)`,
		`bad.yaml:11:21: providers[1].deprovision.delete_after: only used with deprovision action deactivate_then_delete (this provider's is deactivate)`,
		`bad.yaml:15:33: providers[2].deprovision.delete_after: only used with deprovision action deactivate_then_delete (this provider's is delete)`,
		`bad.yaml:19:65: providers[3].deprovision.delete_after: expected a duration such as 720h (30 days) or 168h, got "30d"`,
		`bad.yaml:23:65: providers[4].deprovision.delete_after: must be more than 0 (the grace period before a deactivated user is deleted), got -1h0m0s`,
		`bad.yaml:27:65: providers[5].deprovision.delete_after: must be more than 0 (the grace period before a deactivated user is deleted), got 0s`,
		`bad.yaml:31:27: providers[6].deprovision.action: unknown value "purge": use delete, deactivate, deactivate_then_delete or none`,
	}
	if got := diagStrings(errs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
