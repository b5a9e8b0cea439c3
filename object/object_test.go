package object_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/object"
)

func TestParseKind(t *testing.T) {
	for _, s := range []string{"user", "group"} {
		if k, err := object.ParseKind(s); err != nil || k != s {
			t.Errorf("ParseKind(%q) = %q, %v", s, k, err)
		}
	}
	if _, err := object.ParseKind("users"); err == nil || err.Error() != `unknown object kind "users": use user or group` {
		t.Errorf("ParseKind(users) = %v", err)
	}
}

// TestRefWireFormat: a Ref is what ObjectSync inputs carry in recorded histories, so its
// JSON is fixed.
func TestRefWireFormat(t *testing.T) {
	r := object.Ref{Provider: "slack", Kind: object.User, ObjectID: "0b6c3e4e-8f7a-4d1e-9a55-3f1f2a9e7c10"}
	b, err := json.Marshal(r)
	if err != nil || string(b) != `{"provider":"slack","kind":"user","objectId":"0b6c3e4e-8f7a-4d1e-9a55-3f1f2a9e7c10"}` {
		t.Fatalf("Marshal = %s, %v", b, err)
	}
}

// TestProviderNamePatternIsTheDatabases: the providers table refuses what the pattern
// refuses, by the same regular expression (its check constraint, migration 00001).
func TestProviderNamePatternIsTheDatabases(t *testing.T) {
	sql, err := os.ReadFile("../store/migrations/00001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	if want := "CHECK (name ~ '" + object.ProviderNamePattern + "')"; !strings.Contains(string(sql), want) {
		t.Errorf("store/migrations/00001_init.sql has no %s", want)
	}
}
