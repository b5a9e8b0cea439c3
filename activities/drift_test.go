package activities

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/scimsync/scimsync/scim"
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

// TestObservedViewOfAnExtensionLeavesOutWhatScimsyncDoesNotWrite: an extension object is
// viewed attribute by attribute, so that repairing one attribute of it never removes
// another that scimsync does not write (an on_create mapping's, the application's own).
func TestObservedViewOfAnExtensionLeavesOutWhatScimsyncDoesNotWrite(t *testing.T) {
	const ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	payload := jsonMap(t, `{"schemas":["s"],"userName":"ada","`+ent+`":{"department":"Maths","division":"Science"}}`)
	written := jsonMap(t, `{"schemas":["s"],"userName":"ada","`+ent+`":{"department":"Maths","division":"Science","costCenter":"C1"}}`)
	remote := jsonMap(t, `{"userName":"ada","password":"Initial-ada","`+ent+`":{"department":"Edited","Division":"science",
		"costCenter":"C1","employeeNumber":"E-1"}}`)
	got := observedView(remote, payload, written)
	// department as the target has it; division held (case-insensitively): as written;
	// costCenter, which scimsync stopped writing, as it is there; employeeNumber (set on
	// create) and password: out of the view.
	want := jsonMap(t, `{"schemas":["s"],"userName":"ada","`+ent+`":{"department":"Edited","division":"Science","costCenter":"C1"}}`)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("observedView = %v\nwant %v", got, want)
	}
}

// TestTargetObjectKeepsNoPassword: what a read-back keeps of a remote user never holds a
// password, even from a target that returns one (an on_create mapping may have set it).
func TestTargetObjectKeepsNoPassword(t *testing.T) {
	o := targetObject("user", scim.Resource{ID: "r1", Attributes: map[string]any{"id": "r1", "userName": "ada",
		"Password": "Initial-ada", "title": "Boss"}}, false)
	if got, want := string(o.Body), `{"title":"Boss","userName":"ada"}`; got != want || o.Name != "ada" {
		t.Errorf("body %s (name %q), want %s", got, o.Name, want)
	}
}
