// Package object holds the few words every layer of scimsync shares, declared once: the
// kinds of directory object it syncs, a reference to one object at one provider, and what
// a provider's name may be. It imports nothing of scimsync, so that every package may
// import it.
package object

import "fmt"

// Kind is the kind of a directory object, written the same way in workflow IDs, activity
// inputs, sync_links.kind, property mappings and the starter's arguments. It is a string
// (an alias) so that the many structs that carry a kind stay plain JSON.
type Kind = string

// The kinds of directory object.
const (
	User  Kind = "user"
	Group Kind = "group"
)

// ParseKind returns the kind s names, or an error that says which words are known.
func ParseKind(s string) (Kind, error) {
	switch s {
	case User, Group:
		return s, nil
	}
	return "", fmt.Errorf("unknown object kind %q: use %s or %s", s, User, Group)
}

// Ref names one directory object at one provider: what an ObjectSync workflow keeps in
// sync, and what its workflow ID is made of.
type Ref struct {
	// Provider is the provider's name (see ProviderNamePattern).
	Provider string `json:"provider"`
	Kind     Kind   `json:"kind"`
	// ObjectID is the directory object's id (a UUID), never a name: references end up in
	// workflow IDs and search attributes, where no personal data may go.
	ObjectID string `json:"objectId"`
}

// ProviderNamePattern is what a provider's name may be. The name is part of workflow IDs,
// schedule IDs, task queue metrics and URLs, so it is short, lower case and needs no
// escaping anywhere. schemas/config.schema.json states the same pattern (which checks the
// configuration file), kept equal by a test of the starter, and so does the providers
// table's check constraint.
const ProviderNamePattern = `^[a-z0-9][a-z0-9._-]{0,62}$`
