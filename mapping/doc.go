// Package mapping turns directory users and groups into SCIM payloads by
// running property mappings written in Starlark (docs/architecture.md,
// "Mappings and validation").
//
// A mapping is the body of a function that sees the object being synced
// (user or group) and the provider, and returns a dict or None:
//
//	if user.type == "service_account":
//	    skip_object()
//	return {"title": user.attributes.get("title")}
//
// Compile checks a mapping when it is saved; it reports syntax and name errors
// as a *CompileError with the line and column in the mapping's own source.
// An Engine runs the compiled programs of a provider for one object: the
// programs run in order of their name (byte order), their dict results are deep-merged
// (dicts recursively, lists appended, scalars overridden), None results are
// ignored, None values are removed, and externalId defaults to the user's
// hashed id or the group's id. The result is a JSON-ready map that the caller
// validates with package schemas and fingerprints with Hash.
//
// # When a mapping is applied
//
// A program is applied always (Compile's default) or only on create
// (Program.WithApply(ApplyOnCreate)), as Entra's "apply this mapping" does.
// MapUserPayloads and MapGroupPayloads keep the two apart: Payloads.Always merges
// the always programs and is what every write sends and what Hash fingerprints;
// Payloads.OnCreate merges the on_create programs and is added to it only in the
// create (Payloads.Create), so an initial password or a value the application
// owns afterwards is never updated, removed or compared. The split is by
// attribute: a top-level attribute, or one attribute of an extension object
// ("urn:...:User": {"employeeNumber": ...}); "schemas" lists are joined. An
// attribute both kinds set, and an externalId set only on create, are an
// *EvalError naming the on_create mapping. MapUser and MapGroup return the
// payload of a create.
//
// What a mapping sees
//
//	user.id           string  directory id of the user
//	user.uid          string  HashedUserID(id, installation secret)
//	user.username     string
//	user.name         string  full name, "" when unknown
//	user.email        string  "" when unknown
//	user.is_active    bool
//	user.type         string  e.g. "internal", "external", "service_account"
//	user.locale       string  "" when unknown
//	user.avatar       string  URL (or data URI) of the avatar, "" when none
//	user.attributes   dict    free-form attributes, read-only
//	user.groups       list    names of the user's groups, sorted, read-only
//
//	group.id, group.name, group.parent_name ("" for a top-level group),
//	group.attributes (dict, read-only)
//
//	provider.name, provider.compatibility_mode
//
//	skip_object()     skips the object: MapUser/MapGroup return an error
//	                  matching ErrSkipObject and the sync goes on.
//	fail(msg)         stops the mapping with an error (Starlark built-in).
//
// Plus the Starlark built-ins (len, str, sorted, dict, ...); while loops and
// set() are allowed; recursion, load() and all I/O are not. print() output is
// discarded.
//
// What this package must not do: it does no I/O and imports neither the store
// nor the SCIM client. Mappings cannot see the installation secret, so errors
// cannot hold it; the object's personal values (username, name, email, avatar,
// string attributes) are replaced by "<redacted>" in error messages. That is
// best effort: a mapping that transforms a value (upper(), slicing) and
// passes it to fail() can still reveal it.
//
// Limits: each mapping evaluation runs on a fresh Starlark thread bounded by
// Engine.MaxSteps execution steps and Engine.Timeout of wall time. The
// interpreter checks both between steps, so a single built-in call (for
// example sorted() of a huge range) is not interrupted, and memory is not
// bounded; mappings are written by administrators, not end users.
package mapping
