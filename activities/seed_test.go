package activities

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
)

// TestSeedMembersReadsAnySpelling: the members a matched remote group has are read whatever
// the target's spelling of "members" and "value", numeric values included (as the client
// decodes them: json.Number).
func TestSeedMembersReadsAnySpelling(t *testing.T) {
	w := &writer{kind: object.Group}
	found := &scim.Resource{ID: "g1", Attributes: map[string]any{"Members": []any{
		map[string]any{"Value": "u2", "display": "someone"},
		map[string]any{"VALUE": json.Number("9007199254740993")},
		map[string]any{"value": "u1"},
	}}}
	w.seedMembers(context.Background(), "group-1", found)
	if got, want := w.seeded["group-1"], []string{"9007199254740993", "u1", "u2"}; !slices.Equal(got, want) {
		t.Errorf("seeded %v, want %v", got, want)
	}
}
