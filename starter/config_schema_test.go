package starter

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/xeipuuv/gojsonschema"
	"gopkg.in/yaml.v3"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/schemas"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// compileDraft07 compiles a schema the way the starter does, checking it against the
// draft-07 metaschema.
func compileDraft07(src []byte) error {
	sl := gojsonschema.NewSchemaLoader()
	sl.Draft = gojsonschema.Draft7
	sl.AutoDetect = false
	sl.Validate = true
	_, err := sl.Compile(gojsonschema.NewBytesLoader(src))
	return err
}

func TestStarterConfigSchemaIsAValidDraft07Schema(t *testing.T) {
	src := schemas.ConfigSchema()
	if err := compileDraft07(src); err != nil {
		t.Fatalf("config.schema.json: %v", err)
	}
	// The check is real: the same schema with a type draft-07 does not know is refused.
	broken := bytes.Replace(src, []byte(`"type": "integer"`), []byte(`"type": "whole"`), 1)
	if bytes.Equal(broken, src) {
		t.Fatal("the schema has no integer field to break")
	}
	if err := compileDraft07(broken); err == nil {
		t.Error("a schema with type \"whole\" compiled: the metaschema is not checked")
	}
	// The file in the repository is the one the starter embeds.
	onDisk, err := os.ReadFile("../schemas/config.schema.json")
	if err != nil || !bytes.Equal(onDisk, src) {
		t.Errorf("schemas/config.schema.json differs from the embedded schema (%v)", err)
	}
}

// TestStarterExampleConfigValidatesAgainstTheSchema validates examples/config.yaml with
// gojsonschema alone, as an editor would, and checks that its modeline names the schema.
func TestStarterExampleConfigValidatesAgainstTheSchema(t *testing.T) {
	src, err := os.ReadFile("../examples/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const modeline = "# yaml-language-server: $schema=../schemas/config.schema.json\n"
	if !bytes.HasPrefix(src, []byte(modeline)) {
		t.Errorf("examples/config.yaml does not start with %q", modeline)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	tree := documentTree(doc.Content[0], rootLoc, "", nil, positions{}, func(k *yaml.Node, _ string, _ int) {
		t.Errorf("line %d: repeated key %s", k.Line, k.Value)
	})
	res, err := configSchema().compiled.Validate(gojsonschema.NewGoLoader(tree))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range res.Errors() {
		t.Errorf("examples/config.yaml: %s", e)
	}
	// The check is real: the example with a misspelt field is refused.
	tree.(map[string]any)["provider"] = []any{}
	if res, _ := configSchema().compiled.Validate(gojsonschema.NewGoLoader(tree)); res.Valid() {
		t.Error("the example with a field \"provider\" validated")
	}
}

// TestStarterConfigSchemaAndFileStructsHaveTheSameFields: every property of the schema
// is a field of the file structs that yaml.v3 decodes into, and every field a property, at
// the same place; a field added to one and not the other fails here.
func TestStarterConfigSchemaAndFileStructsHaveTheSameFields(t *testing.T) {
	s := configSchema()
	var fromStructs, fromSchema []string
	var walkType func(path string, t reflect.Type)
	walkType = func(path string, typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
			path += "[]"
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		for i := range typ.NumField() {
			f := typ.Field(i)
			tag := f.Tag.Get("yaml")
			if tag == ",inline" {
				walkType(path, f.Type)
				continue
			}
			if tag == "" {
				continue
			}
			fromStructs = append(fromStructs, join(path, tag))
			walkType(join(path, tag), f.Type)
		}
	}
	walkType("", reflect.TypeOf(fileConfig{}))

	var walkSchema func(path string, node any)
	walkSchema = func(path string, node any) {
		for _, n := range s.expand(node, nil, nil) {
			if items, ok := n["items"]; ok {
				walkSchema(path+"[]", items)
			}
			props, _ := n["properties"].(map[string]any)
			for k, v := range props {
				if p := join(path, k); !slices.Contains(fromSchema, p) {
					fromSchema = append(fromSchema, p)
					walkSchema(p, v)
				}
			}
		}
	}
	walkSchema("", s.root)
	sort.Strings(fromStructs)
	sort.Strings(fromSchema)
	if strings.Join(fromStructs, "\n") != strings.Join(fromSchema, "\n") {
		t.Errorf("file structs:\n%s\n\nschema:\n%s", strings.Join(fromStructs, "\n"), strings.Join(fromSchema, "\n"))
	}
	if len(fromStructs) < 50 {
		t.Errorf("only %d fields found", len(fromStructs))
	}
}

// TestStarterConfigSchemaAllowsWhatTheCodeKnows: the schema's lists of values and the
// provider name's pattern are the ones the packages that use them define.
func TestStarterConfigSchemaAllowsWhatTheCodeKnows(t *testing.T) {
	s := configSchema()
	doc := map[string]any{}
	at := func(path ...string) map[string]any {
		return firstWith(s.applied(doc, rootLoc+locSep+strings.Join(path, locSep)), "enum", "pattern")
	}
	var modes []string
	for _, m := range scim.Modes() {
		modes = append(modes, string(m))
	}
	for _, tc := range []struct {
		path []string
		want []string
	}{
		{[]string{"providers", "0", "compatibility_mode"}, modes},
		{[]string{"providers", "0", "discovery"}, []string{store.DiscoveryAuto, store.DiscoveryOff}},
		{[]string{"providers", "0", "deprovision", "action"}, []string{store.DeprovisionDelete, store.DeprovisionDeactivate, store.DeprovisionDeactivateThenDelete, store.DeprovisionNone}},
		{[]string{"providers", "0", "orphans"}, []string{store.OrphansReport, store.OrphansAdopt, store.OrphansDelete}},
		{[]string{"providers", "0", "auth", "mode"}, []string{"token", "oauth2", "basic"}},
		{[]string{"mappings", "0", "kind"}, []string{string(object.User), string(object.Group)}},
		{[]string{"mappings", "0", "apply"}, []string{string(mapping.ApplyAlways), string(mapping.ApplyOnCreate)}},
		{[]string{"applications", "0", "policy_engine_mode"}, []string{"any", "all"}},
	} {
		if got := enumValues(at(tc.path...)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: schema allows %v, the code %v", strings.Join(tc.path, "."), got, tc.want)
		}
	}
	if got := at("providers", "0", "name")["pattern"]; got != object.ProviderNamePattern {
		t.Errorf("provider name pattern %v, want %s", got, object.ProviderNamePattern)
	}
	reserved := firstWith(s.applied(doc, rootLoc+locSep+"mappings"+locSep+"0"+locSep+"name"), "not")["not"]
	if b, _ := json.Marshal(reserved); string(b) != `{"enum":["`+store.DefaultUserMappingName+`","`+store.DefaultGroupMappingName+`"]}` {
		t.Errorf("reserved mapping names %s", b)
	}
}

// TestStarterParseConfigSchemaMessages pins the wording of what the schema finds beyond
// the older tests: every kind of error, at its position.
func TestStarterParseConfigSchemaMessages(t *testing.T) {
	src := `providers:
  - name: a
    name: b
    base_url: https://x.example.com
    mappings: ["", x, x, x]
    page_size: 0
    deprovision: {threshold: -1, action: [delete]}
    auth: {mode: oauth2, token_url: "ftp://u:pw@h", client_id: 12345, params: [x]}
    unknownthing: 1
    dry_run: ~
    full_sync_interval: 5
    reconcile_interval: 0
  - base_url: https://x.example.com
  - name: c
    base_url: https://x.example.com
    auth: {client_id: x, username: "a:b"}
  - name: d
    base_url: https://x.example.com
    auth: {mode: basic, username: "a:b", password: env:1BAD, params: {x: y}}
applications:
  - 5
  - {}
bindings:
  - group: ""
mappings:
  - {name: o, kind: group, expression: [1]}
extra: 1
`
	_, errs, warns := parseConfig("s.yaml", []byte(src))
	want := []string{
		`s.yaml:3:5: providers[0].name: repeated field (first set on line 2)`,
		`s.yaml:5:16: providers[0].mappings[0]: must not be empty`,
		`s.yaml:5:23: providers[0].mappings[2]: "x" is listed twice`,
		`s.yaml:5:26: providers[0].mappings[3]: "x" is listed twice`,
		`s.yaml:6:16: providers[0].page_size: must be between 1 and 1000 (objects in one batch), got 0`,
		`s.yaml:7:30: providers[0].deprovision.threshold: must be 0 or more (0: no limit), got -1`,
		`s.yaml:7:42: providers[0].deprovision.action: expected delete, deactivate, deactivate_then_delete or none, got a list`,
		`s.yaml:8:37: providers[0].auth.token_url: invalid URL "ftp://u:xxxxx@h": the scheme must be http or https`,
		`s.yaml:8:79: providers[0].auth.params: expected a mapping of parameter names to values, got a list`,
		`s.yaml:9:5: providers[0].unknownthing: unknown field (known fields: application, auth, base_url, compatibility_mode, deprovision, discovery, dry_run, enabled, exclude_service_accounts, flatten_groups, full_sync_interval, group_filters, link_existing, mappings, name, orphans, page_size, rate_limit, reconcile_interval, service_provider_config, verify_tls)`,
		`s.yaml:11:25: providers[0].full_sync_interval: expected a duration such as 1h or 30m, got "5"`,
		`s.yaml:13:5: providers[1].name: required`,
		`s.yaml:13:5: providers[1].auth: required: the target's credentials, e.g. auth: {token: env:SCIM_TOKEN}`,
		`s.yaml:16:11: providers[2].auth.token: required with auth mode token: a secret reference such as env:SCIM_TOKEN or file:/run/secrets/scim-token`,
		`s.yaml:16:23: providers[2].auth.client_id: only used with auth mode oauth2`,
		`s.yaml:16:36: providers[2].auth.username: only used with auth mode basic`,
		`s.yaml:16:36: providers[2].auth.username: a Basic username cannot contain ':' (RFC 7617)`,
		`s.yaml:19:35: providers[3].auth.username: a Basic username cannot contain ':' (RFC 7617)`,
		`s.yaml:19:52: providers[3].auth.password: env: must be followed by an environment variable name, e.g. env:SCIM_TOKEN`,
		`s.yaml:19:70: providers[3].auth.params: only used with auth mode oauth2`,
		`s.yaml:21:5: applications[0]: expected a mapping of fields, got a number`,
		`s.yaml:22:5: applications[1].name: required`,
		`s.yaml:24:5: bindings[0].application: required`,
		`s.yaml:24:12: bindings[0].group: must not be empty`,
		`s.yaml:26:40: mappings[0].expression: expected a string, got a list`,
		`s.yaml:27:1: extra: unknown field (known fields: applications, bindings, mappings, providers)`,
	}
	if got := diagStrings(errs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if len(warns) != 0 {
		t.Errorf("warnings = %v", diagStrings(warns))
	}
}

// TestStarterParseConfigNullTakesTheDefault: a field written without a value (null) is as
// if left out.
func TestStarterParseConfigNullTakesTheDefault(t *testing.T) {
	cfg, errs, _ := parseConfig("n.yaml", []byte(`providers:
  - name: a
    base_url: https://a.example.com/scim
    auth: {token: env:A, mode: ~}
    page_size:
    enabled: ~
    reconcile_interval: 0
    deprovision: ~
`))
	if len(errs) != 0 {
		t.Fatalf("errors: %v", diagStrings(errs))
	}
	def := store.ProviderDefaults()
	if p := cfg.Providers[0].p; p.PageSize != def.PageSize || p.Enabled != def.Enabled || p.AuthMode != "token" ||
		p.DeprovisionAction != def.DeprovisionAction || p.ReconcileInterval != 0 {
		t.Errorf("provider %+v, want the defaults (reconcile_interval 0)", p)
	}
}
