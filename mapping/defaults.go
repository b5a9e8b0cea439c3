package mapping

import (
	"sync"

	"github.com/scimsync/scimsync/object"
)

// Names of the default mappings. They start with "00-" so that they sort, and
// therefore run, before custom mappings with ordinary names: a custom mapping
// then overrides the defaults' scalars and appends to their lists.
const (
	DefaultUserMappingName  = "00-default-user"
	DefaultGroupMappingName = "00-default-group"
)

// DefaultUserMapping is the source of the default user mapping, after the
// reference implementation (shared/reference/anchors.md). What it leaves out
// when a value is empty:
//
//   - userName, active and schemas are always sent (userName may be empty,
//     which schema validation then refuses);
//   - name and displayName are sent only when the full name is not blank;
//     givenName is the full name up to the first space, familyName the rest,
//     and familyName is left out for a one-word name;
//   - emails holds one entry {value, type "other", primary} when the user has
//     an email, and is left out otherwise;
//   - photos holds one entry {value, type "photo", primary} when the avatar is
//     an http(s) URL, and is left out otherwise (no data: URIs);
//   - locale is left out when empty.
//
// externalId is not set here: the Engine defaults it to the hashed user id.
const DefaultUserMapping = `# scimsync default user mapping.
payload = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
    "userName": user.username,
    "active": user.is_active,
}
full_name = user.name.strip()
if full_name:
    given, _, family = full_name.partition(" ")
    payload["name"] = {
        "formatted": full_name,
        "givenName": given,
        "familyName": family.strip() or None,
    }
    payload["displayName"] = full_name
if user.email:
    payload["emails"] = [{"value": user.email, "type": "other", "primary": True}]
if user.avatar.startswith(("https://", "http://")):
    payload["photos"] = [{"value": user.avatar, "type": "photo", "primary": True}]
if user.locale:
    payload["locale"] = user.locale
return payload
`

// DefaultGroupMapping is the source of the default group mapping: the group's
// name as displayName. Members are not a mapping's business; externalId
// defaults to the group id.
const DefaultGroupMapping = `# scimsync default group mapping.
return {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "displayName": group.name,
}
`

var defaults = sync.OnceValue(func() map[object.Kind]*Program {
	return map[object.Kind]*Program{
		object.User:  MustCompile(DefaultUserMappingName, object.User, DefaultUserMapping),
		object.Group: MustCompile(DefaultGroupMappingName, object.Group, DefaultGroupMapping),
	}
})

// Defaults returns the default mappings of kind, compiled once per process,
// as a new slice the caller may append to. It returns nil for an unknown kind.
func Defaults(kind object.Kind) []*Program {
	p, ok := defaults()[kind]
	if !ok {
		return nil
	}
	return []*Program{p}
}
