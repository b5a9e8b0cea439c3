package starter

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// TestStarterProviderMayBeLeftOutWhenThereIsOnlyOne: the commands that work on one
// provider take the only one when --provider is left out; with none or several they stop
// with a usage error that lists them, before anything is sent.
func TestStarterProviderMayBeLeftOutWhenThereIsOnlyOne(t *testing.T) {
	e := newOutboxEnv(t)
	t.Setenv("STARTER_TEST_TOKEN", "starter-test-token")
	e.deps.Getenv = func(k string) string {
		if k == "SCIMSYNC_INSTALLATION_SECRET" {
			return "starter-test-secret"
		}
		return ""
	}
	target := scimtest.NewServer(scimtest.Options{Token: "starter-test-token"})
	t.Cleanup(target.Close)
	var ada store.User
	if err := e.store.InTx(e.ctx, func(tx *store.Tx) (err error) {
		ada, err = tx.CreateUser(e.ctx, store.User{Username: "ada", Name: "Ada Lovelace", IsActive: true})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	commands := [][]string{{"mapping", "test", "user", "ada"}, {"sync", "user", "ada"}, {"plan"}, {"full-sync"}}

	// The name commands report errors under.
	name := func(args []string) string {
		if args[0] == "mapping" {
			return "mapping test"
		}
		return args[0]
	}

	for _, args := range commands {
		code, _, stderr := e.run(args...)
		want := "starter " + name(args) + ": --provider is required, and there are no providers: define one in a configuration file and run starter apply -f FILE\n"
		if code != ExitUsage || stderr != want {
			t.Errorf("starter %v without providers: exit %d, stderr %q; want %d, %q", args, code, stderr, ExitUsage, want)
		}
	}

	save := func(name string) {
		t.Helper()
		p := store.ProviderDefaults()
		p.Name, p.BaseURL, p.Token = name, target.URL, "env:STARTER_TEST_TOKEN"
		if err := e.store.InTx(e.ctx, func(tx *store.Tx) error { _, err := tx.UpsertProvider(e.ctx, p); return err }); err != nil {
			t.Fatal(err)
		}
	}
	save("solo")
	code, stdout, stderr := e.run("mapping", "test", "user", "ada")
	if code != ExitOK || !strings.HasPrefix(stderr, "# provider solo, user ada ("+ada.ID+"), mappings 00-default-user\n") {
		t.Errorf("mapping test with one provider: exit %d, stderr %q", code, stderr)
	}
	var payload map[string]any
	if err := json.Unmarshal([]byte(stdout), &payload); err != nil || payload["userName"] != "ada" {
		t.Errorf("mapping test printed %q (%v)", stdout, err)
	}
	code, stdout, _ = e.run("sync", "user", "ada")
	if code != ExitOK || !strings.Contains(stdout, "sync user ada to provider solo (in process)\n") || target.Count("POST /Users") != 1 {
		t.Errorf("sync with one provider: exit %d, %d POST /Users, stdout:\n%s", code, target.Count("POST /Users"), stdout)
	}

	save("alpha")
	target.ResetLog()
	for _, args := range commands {
		code, _, stderr := e.run(args...)
		want := "starter " + name(args) + ": --provider is required when there are several providers; there are 2: alpha, solo\n"
		if code != ExitUsage || stderr != want {
			t.Errorf("starter %v with two providers: exit %d, stderr %q; want %d, %q", args, code, stderr, ExitUsage, want)
		}
	}
	if n := len(target.Requests()); n != 0 {
		t.Errorf("%d requests sent by commands that refused to guess the provider", n)
	}
	// Named, it is used as before.
	if code, _, stderr := e.run("mapping", "test", "--provider", "alpha", "user", "ada"); code != ExitOK || !strings.HasPrefix(stderr, "# provider alpha,") {
		t.Errorf("mapping test --provider alpha: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := e.run("mapping", "test", "--provider", "nope", "user", "ada"); code != ExitFailure ||
		stderr != "starter mapping test: provider \"nope\" does not exist (see starter providers)\n" {
		t.Errorf("mapping test --provider nope: exit %d, stderr %q", code, stderr)
	}
}
