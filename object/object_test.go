package object_test

import (
	"encoding/json"
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
	if got := r.String(); got != "slack/user/0b6c3e4e-8f7a-4d1e-9a55-3f1f2a9e7c10" {
		t.Errorf("String() = %q", got)
	}
}

func TestValidProviderName(t *testing.T) {
	for name, want := range map[string]bool{
		"slack": true, "aws-prod": true, "a.b_c-1": true, "0x": true,
		"": false, "Slack": false, "-slack": false, "sla ck": false, "a/b": false,
		"a23456789012345678901234567890123456789012345678901234567890123":  true,
		"a234567890123456789012345678901234567890123456789012345678901234": false,
	} {
		if got := object.ValidProviderName(name); got != want {
			t.Errorf("ValidProviderName(%q) = %v, want %v", name, got, want)
		}
	}
}
