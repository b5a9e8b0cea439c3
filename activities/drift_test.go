package activities

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
)

func jsonMap(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestDriftedAttributesComparesWhatThePayloadSets(t *testing.T) {
	payload := jsonMap(t, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada","externalId":"Ext-1",
		"displayName":"Ada L","active":true,"name":{"givenName":"Ada","familyName":"L"},
		"emails":[{"value":"ada@example.test","primary":true}],"password":"never-read-back"}`)
	tests := []struct {
		name   string
		remote string
		want   []string
	}{
		{"as written, with what the target adds", `{"id":"1","meta":{},"schemas":["x"],"UserName":"ADA","externalId":"Ext-1",
			"displayName":"ada l","active":true,"name":{"givenName":"ada","familyName":"L","formatted":"Ada L"},
			"emails":[{"value":"ADA@example.test","primary":true,"type":"work"}],"groups":[{"value":"g"}],"nickName":"set by an admin"}`, nil},
		{"externalId is case-exact", `{"userName":"ada","externalId":"ext-1","displayName":"Ada L","active":true,
			"name":{"givenName":"Ada","familyName":"L"},"emails":[{"value":"ada@example.test","primary":true}]}`, []string{"externalId"}},
		{"edited, deactivated, an email added, a name part removed", `{"userName":"ada","externalId":"Ext-1","displayName":"Edited",
			"active":false,"name":{"givenName":"Ada"},"emails":[{"value":"ada@example.test","primary":true},{"value":"x@example.test"}]}`,
			[]string{"active", "displayName", "emails", "name"}},
		{"attributes gone", `{"userName":"ada"}`, []string{"active", "displayName", "emails", "externalId", "name"}},
	}
	for _, tt := range tests {
		got := driftedAttributes(jsonMap(t, tt.remote), payload)
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("%s: drifted %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCoversNumbersAndTypes(t *testing.T) {
	for _, tt := range []struct {
		remote, want any
		ok           bool
	}{
		{float64(3), float64(3), true}, {json.Number("3"), float64(3), true}, {"3", float64(3), false},
		{true, true, true}, {"true", true, false}, {nil, nil, true}, {[]any{}, []any{}, true}, {nil, []any{}, true},
		{[]any{"a", "b"}, []any{"B", "a"}, true}, {[]any{"a", "a"}, []any{"a", "b"}, false},
	} {
		if got := covers(tt.remote, tt.want, false); got != tt.ok {
			t.Errorf("covers(%#v, %#v) = %v, want %v", tt.remote, tt.want, got, tt.ok)
		}
	}
}

func TestObservedViewPatchesOnlyWhatDiffers(t *testing.T) {
	payload := jsonMap(t, `{"schemas":["s"],"userName":"ada","displayName":"Ada","title":"Boss"}`)
	written := jsonMap(t, `{"schemas":["s"],"userName":"ada","displayName":"Ada","title":"Boss","locale":"fr"}`)
	remote := jsonMap(t, `{"userName":"ADA","displayName":"Edited","locale":"fr","nickName":"admin's own"}`)
	got := observedView(remote, payload, written)
	// userName held (case-insensitive): as written; displayName as the target has it;
	// title missing there: absent; locale, which scimsync stopped writing, as it is there;
	// nickName, never written: out of the view.
	want := map[string]any{"schemas": []any{"s"}, "userName": "ada", "displayName": "Edited", "locale": "fr"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("observedView = %v, want %v", got, want)
	}
	changes := attributeChanges(got, payload)
	var names []string
	for _, c := range changes {
		names = append(names, c.Attribute)
	}
	if !slices.Equal(names, []string{"displayName", "locale", "title"}) {
		t.Errorf("changes %+v, want displayName, locale (removed), title (added)", changes)
	}
}
