package schemas_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/schemas"
)

func load(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return parse(t, string(b))
}

func parse(t testing.TB, doc string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(doc), &m); err != nil {
		t.Fatalf("bad JSON in test: %v\n%s", err, doc)
	}
	return m
}

func TestRFC7643Examples(t *testing.T) {
	tests := []struct {
		file     string
		validate func(map[string]any) error
	}{
		{"rfc7643-8.1-user-minimal.json", schemas.ValidateUser},
		{"rfc7643-8.2-user-full.json", schemas.ValidateUser},
		{"rfc7643-8.3-enterprise-user.json", schemas.ValidateUser},
		{"rfc7643-8.4-group.json", schemas.ValidateGroup},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if err := tt.validate(load(t, tt.file)); err != nil {
				t.Errorf("valid example refused: %v", err)
			}
		})
	}
}

const (
	minimalUser  = `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"}`
	minimalGroup = `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Tour Guides"}`
	customURN    = "urn:example:params:scim:schemas:extension:acme:2.0:User"
)

func TestValidateUser(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []schemas.FieldError // nil: valid
	}{
		{name: "minimal", doc: minimalUser},
		{
			name: "active as the string False",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b", "active": "False"}`,
			want: []schemas.FieldError{{Path: "active", Msg: "Invalid type. Expected: boolean, given: string"}},
		},
		{
			name: "emails not a list",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b", "emails": {"value": "b@example.com"}}`,
			want: []schemas.FieldError{{Path: "emails", Msg: "Invalid type. Expected: array, given: object"}},
		},
		{
			name: "missing userName",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "displayName": "Babs"}`,
			want: []schemas.FieldError{{Path: "userName", Msg: "is required"}},
		},
		{
			name: "empty userName",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": ""}`,
			want: []schemas.FieldError{{Path: "userName", Msg: "must not be empty"}},
		},
		{
			name: "nested and indexed paths",
			doc: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b",
				"name": {"givenName": 7},
				"emails": [{"value": "b@example.com"}, {"value": "c@example.com", "primary": "true"}],
				"photos": [{"value": "not a url"}]}`,
			want: []schemas.FieldError{
				{Path: "emails.1.primary", Msg: "Invalid type. Expected: boolean, given: string"},
				{Path: "name.givenName", Msg: "Invalid type. Expected: string, given: integer"},
				{Path: "photos.0.value", Msg: "Does not match format 'uri'"},
			},
		},
		{
			name: "several errors are all reported, sorted by path",
			doc:  `{"userName": 5, "active": 1}`,
			want: []schemas.FieldError{
				{Path: "active", Msg: "Invalid type. Expected: boolean, given: integer"},
				{Path: "schemas", Msg: "is required"},
				{Path: "userName", Msg: "Invalid type. Expected: string, given: integer"},
			},
		},
		{
			name: "attribute names are case-sensitive and unknown ones refused",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b", "username": "b", "name": {"first": "B"}}`,
			want: []schemas.FieldError{
				{Path: "name.first", Msg: "is not an attribute of the schema (custom attributes go in an extension listed in schemas)"},
				{Path: "username", Msg: "is not an attribute of the schema (custom attributes go in an extension listed in schemas)"},
			},
		},
		{
			name: "schemas without the core URN",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "b"}`,
			want: []schemas.FieldError{{Path: "schemas", Msg: "must list the resource's core schema URN"}},
		},
		{
			name: "schemas listed twice",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b"}`,
			want: []schemas.FieldError{{Path: "schemas", Msg: "array items[0,1] must be unique"}},
		},
		{
			name: "two primary emails",
			doc: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b",
				"emails": [{"value": "b@example.com", "primary": true}, {"value": "c@example.com", "primary": true}]}`,
			want: []schemas.FieldError{{Path: "emails", Msg: "2 values are primary; at most one may be"}},
		},
		{
			name: "enterprise extension listed",
			doc: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
				"userName": "b", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops", "manager": {"value": "m-1"}}}`,
		},
		{
			name: "enterprise extension not listed",
			doc: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
				"userName": "b", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}}`,
			want: []schemas.FieldError{{Path: schemas.EnterpriseUserURN, Msg: "extension is not listed in schemas"}},
		},
		{
			name: "enterprise extension with a wrong type",
			doc: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
				"userName": "b", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": 5, "floor": "3"}}`,
			want: []schemas.FieldError{
				{Path: schemas.EnterpriseUserURN + ".department", Msg: "Invalid type. Expected: string, given: integer"},
				{Path: schemas.EnterpriseUserURN + ".floor", Msg: "is not an attribute of the schema (custom attributes go in an extension listed in schemas)"},
			},
		},
		{
			name: "custom extension listed",
			doc: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + customURN + `"],
				"userName": "b", "` + customURN + `": {"badge": 42, "tags": ["x"]}}`,
		},
		{
			name: "custom extension not listed",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b", "` + customURN + `": {"badge": 42}}`,
			want: []schemas.FieldError{{Path: customURN, Msg: "extension is not listed in schemas"}},
		},
		{
			name: "custom extension that is not an object",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "` + customURN + `"], "userName": "b", "` + customURN + `": "x"}`,
			want: []schemas.FieldError{{Path: customURN, Msg: "Invalid type. Expected: object, given: string"}},
		},
		{
			name: "meta with a bad date",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "b", "meta": {"created": "yesterday"}}`,
			want: []schemas.FieldError{{Path: "meta.created", Msg: "Does not match format 'date-time'"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, "User", schemas.ValidateUser(parse(t, tt.doc)), tt.want)
		})
	}
}

func TestValidateGroup(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []schemas.FieldError
	}{
		{name: "minimal", doc: minimalGroup},
		{
			name: "members with type and an empty list",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": "u-1", "type": "user"}]}`,
		},
		{name: "no members", doc: `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": []}`},
		{
			name: "member without value",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": "u-1"}, {"display": "Babs"}]}`,
			want: []schemas.FieldError{{Path: "members.1.value", Msg: "is required"}},
		},
		{
			name: "member with an empty value",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": [{"value": ""}]}`,
			want: []schemas.FieldError{{Path: "members.0.value", Msg: "must not be empty"}},
		},
		{
			name: "missing displayName",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}`,
			want: []schemas.FieldError{{Path: "displayName", Msg: "is required"}},
		},
		{
			name: "members not a list",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "members": "u-1"}`,
			want: []schemas.FieldError{{Path: "members", Msg: "Invalid type. Expected: array, given: string"}},
		},
		{
			name: "a user is not a group",
			doc:  minimalUser,
			want: []schemas.FieldError{
				{Path: "displayName", Msg: "is required"},
				{Path: "schemas", Msg: "must list the resource's core schema URN"},
				{Path: "userName", Msg: "is not an attribute of the schema (custom attributes go in an extension listed in schemas)"},
			},
		},
		{
			name: "custom extension listed",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "urn:example:group"], "displayName": "G", "urn:example:group": {"code": "G1"}}`,
		},
		{
			name: "custom extension not listed",
			doc:  `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G", "urn:example:group": {"code": "G1"}}`,
			want: []schemas.FieldError{{Path: "urn:example:group", Msg: "extension is not listed in schemas"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkErrors(t, "Group", schemas.ValidateGroup(parse(t, tt.doc)), tt.want)
		})
	}
}

func checkErrors(t *testing.T, resource string, err error, want []schemas.FieldError) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("valid payload refused: %v", err)
		}
		return
	}
	var ve *schemas.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error = %v, want a *ValidationError", err)
	}
	if ve.Resource != resource {
		t.Errorf("Resource = %q, want %q", ve.Resource, resource)
	}
	if !slices.Equal(ve.Errors, want) {
		t.Errorf("errors\n got %q\nwant %q", ve.Errors, want)
	}
	if !strings.HasPrefix(err.Error(), "schemas: invalid SCIM "+resource+": "+want[0].Path+": ") {
		t.Errorf("Error() = %q", err)
	}
}

// Go values as mappings produce them (int64, float64) and values of other Go
// types validate like their JSON.
func TestGoValues(t *testing.T) {
	type name struct {
		GivenName string `json:"givenName"`
	}
	tests := []struct {
		name    string
		payload map[string]any
		want    []schemas.FieldError
	}{
		{
			name: "int64 and float64 where numbers are wrong",
			payload: map[string]any{
				"schemas": []any{schemas.UserURN}, "userName": "b", "active": int64(1), "title": 1.5,
			},
			want: []schemas.FieldError{
				{Path: "active", Msg: "Invalid type. Expected: boolean, given: integer"},
				{Path: "title", Msg: "Invalid type. Expected: string, given: number"},
			},
		},
		{
			name: "numbers inside an extension",
			payload: map[string]any{
				"schemas": []any{schemas.UserURN, customURN}, "userName": "b",
				customURN: map[string]any{"badge": int64(42), "score": 0.5, "list": []any{int64(1)}},
			},
		},
		{
			name:    "typed Go values",
			payload: map[string]any{"schemas": []string{schemas.UserURN}, "userName": "b", "name": name{GivenName: "B"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := fmt.Sprintf("%#v", tt.payload)
			checkErrors(t, "User", schemas.ValidateUser(tt.payload), tt.want)
			if after := fmt.Sprintf("%#v", tt.payload); after != before {
				t.Errorf("ValidateUser changed its input:\n%s\n%s", before, after)
			}
		})
	}
}

// The default mappings produce payloads that validate.
func TestDefaultMappingsValidate(t *testing.T) {
	e := &mapping.Engine{Secret: "s"}
	p := mapping.Provider{Name: "acme"}
	users := []mapping.User{
		{ID: "1", Username: "alice", Name: "Alice Smith", Email: "a@example.com", IsActive: true, Locale: "en", Avatar: "https://a/x.png"},
		{ID: "2", Username: "bob"},
		{ID: "3", Username: "cher", Name: "Cher", Avatar: "data:image/png;base64,AAAA"},
	}
	for _, u := range users {
		payload, err := e.MapUser(context.Background(), mapping.Defaults(object.User), u, p)
		if err != nil {
			t.Fatalf("MapUser(%s): %v", u.ID, err)
		}
		if err := schemas.ValidateUser(payload); err != nil {
			t.Errorf("user %s: %v", u.ID, err)
		}
	}
	payload, err := e.MapGroup(context.Background(), mapping.Defaults(object.Group), mapping.Group{ID: "g", Name: "Staff"}, p)
	if err != nil {
		t.Fatal(err)
	}
	payload["members"] = []any{map[string]any{"value": "remote-1"}}
	if err := schemas.ValidateGroup(payload); err != nil {
		t.Errorf("group: %v", err)
	}

	// A user without a username maps, but does not validate.
	payload, err = e.MapUser(context.Background(), mapping.Defaults(object.User), mapping.User{ID: "4"}, p)
	if err != nil {
		t.Fatal(err)
	}
	checkErrors(t, "User", schemas.ValidateUser(payload), []schemas.FieldError{{Path: "userName", Msg: "must not be empty"}})
}

func TestConcurrentValidation(t *testing.T) {
	full := load(t, "rfc7643-8.3-enterprise-user.json")
	bad := parse(t, `{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "active": "False"}`)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := range 50 {
		wg.Go(func() {
			if err := schemas.ValidateUser(full); err != nil {
				errs <- fmt.Errorf("%d: valid refused: %v", i, err)
			}
			if err := schemas.ValidateUser(bad); err == nil {
				errs <- fmt.Errorf("%d: invalid accepted", i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func BenchmarkValidateUser(b *testing.B) {
	e := &mapping.Engine{Secret: "s"}
	payload, err := e.MapUser(context.Background(), mapping.Defaults(object.User),
		mapping.User{ID: "1", Username: "alice", Name: "Alice Smith", Email: "a@example.com", IsActive: true, Locale: "en", Avatar: "https://a/x.png"},
		mapping.Provider{Name: "acme"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := schemas.ValidateUser(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateUserRFCFull(b *testing.B) {
	payload := load(b, "rfc7643-8.3-enterprise-user.json")
	b.ReportAllocs()
	for b.Loop() {
		if err := schemas.ValidateUser(payload); err != nil {
			b.Fatal(err)
		}
	}
}
