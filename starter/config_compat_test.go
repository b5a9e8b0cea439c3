package starter

import (
	"strings"
	"testing"

	"github.com/scimsync/scimsync/sealed"
	"github.com/scimsync/scimsync/store"
)

func TestStarterParseConfigBasicAuth(t *testing.T) {
	src := `providers:
  - name: vc
    base_url: https://vcenter.example.com/scim/v2
    compatibility_mode: vcenter
    auth: {mode: basic, username: scim-admin, password: env:VC_PASSWORD}
  - name: lit
    base_url: https://lit.example.com/scim/v2
    auth:
      mode: basic
      username: env:LIT_USER
      password: hunter2-literal
`
	cfg, errs, warns := parseConfig("c.yaml", []byte(src))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", diagStrings(errs))
	}
	wantWarn := `c.yaml:11:17: providers[1].auth.password: a literal secret is stored sealed under the installation secret; a reference such as env:NAME or file:/path keeps it out of the database`
	if got := strings.Join(diagStrings(warns), "\n"); got != wantWarn {
		t.Errorf("warnings:\n%s\nwant:\n%s", got, wantWarn)
	}
	if p := cfg.Providers[0].p; p.AuthMode != "basic" || p.BasicUsername != "scim-admin" || p.BasicPassword != "env:VC_PASSWORD" ||
		p.Token != "" || p.CompatibilityMode != "vcenter" {
		t.Errorf("vc: %+v", p)
	}

	// The literal password is sealed, never kept in clear; applying it again keeps the
	// sealed value.
	snap := &snapshot{providers: map[string]store.Provider{}}
	if errs := sealLiterals("c.yaml", cfg, snap, "it-installation-secret"); len(errs) != 0 {
		t.Fatalf("seal: %v", diagStrings(errs))
	}
	stored := cfg.Providers[1].p.BasicPassword
	box, _ := sealed.New("it-installation-secret")
	if opened, err := box.Open(stored); !sealed.IsSealed(stored) || strings.Contains(stored, "hunter2") || err != nil || opened != "hunter2-literal" {
		t.Errorf("stored password %q (opens to %q, %v), want it sealed", stored, opened, err)
	}
	if cfg.Providers[1].p.BasicUsername != "env:LIT_USER" || cfg.Providers[0].p.BasicPassword != "env:VC_PASSWORD" {
		t.Errorf("references were sealed: %q, %q", cfg.Providers[1].p.BasicUsername, cfg.Providers[0].p.BasicPassword)
	}
	again, _, _ := parseConfig("c.yaml", []byte(src))
	snap.providers["lit"] = cfg.Providers[1].p
	sealLiterals("c.yaml", again, snap, "it-installation-secret")
	if again.Providers[1].p.BasicPassword != stored {
		t.Error("applying the same literal again sealed it anew (the provider would count as changed)")
	}

	bad := `providers:
  - name: a
    base_url: https://a.example.com/scim
    auth: {mode: basic}
  - name: b
    base_url: https://b.example.com/scim
    auth: {mode: basic, username: "ad:min", password: "file:relative/path"}
  - name: c
    base_url: https://c.example.com/scim
    auth: {mode: token, token: env:C, username: u, password: env:P}
  - name: d
    base_url: https://d.example.com/scim
    auth: {mode: oauth2, token_url: https://login.example.com/token, client_id: x, password: env:P}
  - name: e
    base_url: https://e.example.com/scim
    auth: {mode: basic, username: env:U, password: env:P, token: env:T, client_secret: env:S}
  - name: f
    base_url: https://f.example.com/scim
    auth: {mode: digest}
`
	_, errs, _ = parseConfig("bad.yaml", []byte(bad))
	want := []string{
		`bad.yaml:4:18: providers[0].auth.username: required with auth mode basic: the username, or a reference such as env:SCIM_USERNAME`,
		`bad.yaml:4:18: providers[0].auth.password: required with auth mode basic: a secret reference such as env:SCIM_PASSWORD or file:/run/secrets/scim-password`,
		`bad.yaml:7:35: providers[1].auth.username: a Basic username cannot contain ':' (RFC 7617)`,
		`bad.yaml:7:55: providers[1].auth.password: file: must be followed by an absolute path, e.g. file:/run/secrets/scim-token`,
		`bad.yaml:10:49: providers[2].auth.username: only used with auth mode basic`,
		`bad.yaml:10:62: providers[2].auth.password: only used with auth mode basic`,
		`bad.yaml:13:94: providers[3].auth.password: only used with auth mode basic (the OAuth2 password grant takes username and password in auth.params)`,
		`bad.yaml:16:66: providers[4].auth.token: only used with auth mode token`,
		`bad.yaml:16:88: providers[4].auth.client_secret: only used with auth mode oauth2`,
		`bad.yaml:19:18: providers[5].auth.mode: unknown value "digest": use token, oauth2 or basic`,
	}
	if got := diagStrings(errs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestStarterParseConfigDiscoveryAndOverride(t *testing.T) {
	src := `providers:
  - name: off
    base_url: https://a.example.com/scim
    auth: {token: env:A}
    discovery: "off"
    service_provider_config:
      patch: true
      filter: true
      bulk: {max_operations: 50, max_payload_size: 1048576}
  - name: auto
    base_url: https://b.example.com/scim
    auth: {token: env:B}
    service_provider_config: {bulk: false}
  - name: partial
    base_url: https://c.example.com/scim
    auth: {token: env:C}
    discovery: auto
    service_provider_config: {bulk: {max_payload_size: 65536}}
  - name: gl
    base_url: https://gitlab.example.com/api/scim/v2/groups/acme
    auth: {token: env:GL}
    compatibility_mode: gitlab
`
	cfg, errs, warns := parseConfig("c.yaml", []byte(src))
	if len(errs)+len(warns) != 0 {
		t.Fatalf("errors %v warnings %v", diagStrings(errs), diagStrings(warns))
	}
	off := cfg.Providers[0].p
	if off.Discovery != "off" || off.ServiceConfig.Patch == nil || !*off.ServiceConfig.Patch || off.ServiceConfig.Filter == nil ||
		!*off.ServiceConfig.Filter || *off.ServiceConfig.Bulk != (store.BulkOverride{Supported: true, MaxOperations: 50, MaxPayloadSize: 1 << 20}) {
		t.Errorf("off: discovery %q, override %+v", off.Discovery, off.ServiceConfig)
	}
	auto := cfg.Providers[1].p
	if auto.Discovery != "auto" || auto.ServiceConfig.Patch != nil || auto.ServiceConfig.Filter != nil || *auto.ServiceConfig.Bulk != (store.BulkOverride{}) {
		t.Errorf("auto: discovery %q, override %+v", auto.Discovery, auto.ServiceConfig)
	}
	if b := cfg.Providers[2].p.ServiceConfig.Bulk; *b != (store.BulkOverride{Supported: true, MaxPayloadSize: 65536}) {
		t.Errorf("partial: bulk %+v, want the payload limit only (the rest discovered)", b)
	}
	if gl := cfg.Providers[3].p; gl.CompatibilityMode != "gitlab" || gl.Discovery != "auto" || !gl.ServiceConfig.IsZero() {
		t.Errorf("gitlab: %+v", gl)
	}

	bad := `providers:
  - name: a
    base_url: https://a.example.com/scim
    auth: {token: env:A}
    discovery: never
    service_provider_config: {patch: yes-please, bulk: true, filter: 1, sort: true}
  - name: b
    base_url: https://b.example.com/scim
    auth: {token: env:B}
    discovery: "off"
    service_provider_config:
      bulk: {max_operations: 0, max_payload_size: 10, max_ops: 3}
  - name: c
    base_url: https://c.example.com/scim
    auth: {token: env:C}
    discovery: "off"
    service_provider_config: {bulk: {max_operations: 10}}
  - name: d
    base_url: https://d.example.com/scim
    auth: {token: env:D}
    compatibility_mode: vcenter
    service_provider_config: {bulk: {}}
  - name: e
    base_url: https://e.example.com/scim
    auth: {token: env:E}
    service_provider_config: {bulk: [1]}
  - name: f
    base_url: https://f.example.com/scim
    auth: {token: env:F}
    service_provider_config: true
`
	_, errs, warns = parseConfig("bad.yaml", []byte(bad))
	want := []string{
		`bad.yaml:5:16: providers[0].discovery: unknown value "never": use auto or off`,
		`bad.yaml:6:38: providers[0].service_provider_config.patch: expected true or false, got the string "yes-please"`,
		`bad.yaml:6:56: providers[0].service_provider_config.bulk: expected false (the target has no Bulk) or a mapping {max_operations, max_payload_size} (it has Bulk, within these limits), got true: give the limits`,
		`bad.yaml:6:70: providers[0].service_provider_config.filter: expected true or false, got a number`,
		`bad.yaml:6:73: providers[0].service_provider_config.sort: unknown field (known fields: bulk, filter, patch)`,
		`bad.yaml:12:30: providers[1].service_provider_config.bulk.max_operations: must be between 1 and 100000 (operations in one Bulk request), got 0`,
		`bad.yaml:12:51: providers[1].service_provider_config.bulk.max_payload_size: must be between 1024 and 1073741824 (bytes in one Bulk request), got 10`,
		`bad.yaml:12:55: providers[1].service_provider_config.bulk.max_ops: unknown field (known fields: max_operations, max_payload_size)`,
		`bad.yaml:17:37: providers[2].service_provider_config.bulk.max_payload_size: required with discovery off (nothing reads the target's limit): the most bytes it takes in one Bulk request`,
		`bad.yaml:22:37: providers[3].service_provider_config.bulk.max_operations: required with compatibility mode vcenter, which never discovers (nothing reads the target's limit): the most operations the target takes in one Bulk request`,
		`bad.yaml:22:37: providers[3].service_provider_config.bulk.max_payload_size: required with compatibility mode vcenter, which never discovers (nothing reads the target's limit): the most bytes it takes in one Bulk request`,
		`bad.yaml:26:37: providers[4].service_provider_config.bulk: expected false (the target has no Bulk) or a mapping {max_operations, max_payload_size} (it has Bulk, within these limits), got a list`,
		`bad.yaml:30:30: providers[5].service_provider_config: expected a mapping of fields, got a boolean`,
	}
	if got := diagStrings(errs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	_, errs, warns = parseConfig("w.yaml", []byte(`providers:
  - name: bare
    base_url: https://a.example.com/scim
    auth: {token: env:A}
    discovery: "off"
`))
	wantWarn := `w.yaml:5:16: providers[0].discovery: off without service_provider_config: the target is taken to support neither PATCH, Bulk nor filtering; say what it supports under service_provider_config`
	if len(errs) != 0 || strings.Join(diagStrings(warns), "\n") != wantWarn {
		t.Errorf("errors %v, warnings:\n%s\nwant:\n%s", diagStrings(errs), strings.Join(diagStrings(warns), "\n"), wantWarn)
	}
}
