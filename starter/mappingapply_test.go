package starter

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

// TestStarterApplyMappingApply: apply of a configuration file stores a mapping's apply,
// reports a change of it alone as an update of that field, and refuses an unknown value
// with its position; mapping test and mappings show it.
func TestStarterApplyMappingApply(t *testing.T) {
	e := newOutboxEnv(t)
	dir := t.TempDir()
	write := func(apply string) string {
		t.Helper()
		src := `mappings:
  - name: initial-password
    kind: user
` + apply + `    expression: |
      return {"password": "Initial-" + user.username}
providers:
  - name: solo
    base_url: https://app.example.com/scim/v2
    auth: {token: env:SOLO_TOKEN}
    mappings: [00-default-user, initial-password]
`
		path := filepath.Join(dir, "config.yaml")
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	if code, stdout, _ := e.run("apply", "-f", write("")); code != ExitOK || !strings.Contains(stdout, "mapping initial-password: created\n") {
		t.Fatalf("first apply: exit %d\n%s", code, stdout)
	}
	if m, err := e.store.Mapping(e.ctx, "initial-password"); err != nil || m.Apply != "always" {
		t.Fatalf("mapping %+v, %v; want apply always", m, err)
	}
	path := write("    apply: on_create\n")
	if code, stdout, _ := e.run("apply", "-f", path); code != ExitOK || !strings.Contains(stdout, "mapping initial-password: updated (apply)\n") {
		t.Fatalf("apply on_create: exit %d\n%s", code, stdout)
	}
	if m, err := e.store.Mapping(e.ctx, "initial-password"); err != nil || m.Apply != "on_create" {
		t.Fatalf("mapping %+v, %v; want apply on_create", m, err)
	}
	if code, stdout, _ := e.run("apply", "-f", path); code != ExitOK || !strings.Contains(stdout, "mapping initial-password: unchanged\n") {
		t.Errorf("apply again: exit %d\n%s", code, stdout)
	}
	code, _, stderr := e.run("apply", "-f", write("    apply: once\n"))
	if want := path + ":4:12: mappings[0].apply: unknown value \"once\": use always or on_create\n"; code != ExitUsage || !strings.Contains(stderr, want) {
		t.Errorf("apply once: exit %d, stderr %q; want %q", code, stderr, want)
	}
	if m, _ := e.store.Mapping(e.ctx, "initial-password"); m.Apply != "on_create" {
		t.Errorf("a refused file changed the mapping: %+v", m)
	}

	code, stdout, _ := e.run("mappings")
	lines := strings.Split(stdout, "\n")
	if code != ExitOK || strings.Join(strings.Fields(lines[0]), " ") != "NAME KIND PROVIDERS LINES APPLY" ||
		strings.Join(strings.Fields(lines[3]), " ") != "initial-password user solo 1 on_create" {
		t.Errorf("mappings: exit %d\n%s", code, stdout)
	}
	if err := e.store.InTx(e.ctx, func(tx *store.Tx) error {
		_, err := tx.CreateUser(e.ctx, store.User{Username: "ada", Name: "Ada", IsActive: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = e.run("mapping", "test", "--provider", "solo", "user", "ada")
	var payload map[string]any
	if err := json.Unmarshal([]byte(stdout), &payload); code != ExitOK || err != nil || payload["password"] != "Initial-ada" || payload["userName"] != "ada" ||
		!strings.Contains(stderr, "# note: password only in the create (apply: on_create): never updated, removed or compared\n") {
		t.Errorf("mapping test: exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}

	// A user mapping that fails is reported as such (it once fell through to validation).
	if err := e.store.InTx(e.ctx, func(tx *store.Tx) error {
		clash, err := tx.SaveMapping(e.ctx, store.PropertyMapping{Name: "clash", Kind: object.User, Apply: "on_create",
			Expression: `return {"displayName": "First"}`})
		if err != nil {
			return err
		}
		solo, err := e.store.Provider(e.ctx, "solo")
		if err != nil {
			return err
		}
		def, err := e.store.Mapping(e.ctx, store.DefaultUserMappingName)
		if err != nil {
			return err
		}
		return tx.SetProviderMappings(e.ctx, solo.ID, []string{def.ID, clash.ID})
	}); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = e.run("mapping", "test", "--provider", "solo", "user", "ada")
	if want := `mapping failed: mapping "clash": user `; code != ExitFailure || stdout != "" || !strings.Contains(stderr, want) ||
		!strings.Contains(stderr, `sets displayName, which mapping "00-default-user" (apply: always) sets too`) {
		t.Errorf("mapping test of a conflict: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}
