package starter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/schemas"
	"github.com/scimsync/scimsync/secretref"
)

const mappingHelp = `
mapping test evaluates a provider's property mappings for one user or group, exactly as a
sync would (in order of their names, deep-merged, externalId defaulted, members left to the
membership sync), validates the payload against the SCIM schema, and prints it as JSON on
standard output: the payload of a create, with the attributes of apply: on_create mappings,
which a note names (updates send the payload without them). Nothing is written, nothing is
sent.

A mapping that does not compile or fails is reported with its line:column; an invalid
payload with the offending fields. Notes (the mappings that ran, the scope) go to standard
error, so the output can be piped to jq.

Users are mapped with the installation secret (SCIMSYNC_INSTALLATION_SECRET), which derives
their externalId; without it, externalId is left out and a note says so.

Exit code 1 when a mapping or the schema rejects the object.
`

// mappingCommand declares `starter mapping`.
func mappingCommand(cl *cmdLine) runFunc {
	cl.describe("mapping test [--provider P] user|group NAME", mappingHelp, 1, 3)
	cl.completeArgs([]string{"test"}, kindNames)
	var provider string
	cl.providerFlag(&provider, "the provider whose mappings run")
	return func(ctx context.Context, d *Deps, pos []string, stdout, stderr io.Writer) int {
		return Mapping(ctx, d, cl, provider, pos, stdout, stderr)
	}
}

// Mapping is `starter mapping`: its one subcommand is test.
func Mapping(ctx context.Context, d *Deps, cl *cmdLine, provider string, pos []string, stdout, stderr io.Writer) int {
	if pos[0] != "test" {
		return cl.usageError(stderr, fmt.Sprintf("unknown subcommand %q: use mapping test", pos[0]))
	}
	if len(pos) != 3 {
		return cl.usageError(stderr, "mapping test needs user|group NAME")
	}
	kind, name := pos[1], pos[2]
	if _, err := object.ParseKind(kind); err != nil {
		return cl.usageError(stderr, err.Error())
	}
	sess := newSession(d, cl.cfg, stderr)
	defer sess.close()
	st, p, err := sess.provider(ctx, provider)
	if err != nil {
		return exitCode(stderr, "mapping test", err)
	}
	obj, err := findObject(ctx, st, kind, name)
	if err == nil && !obj.exists {
		err = fmt.Errorf("no %s with id %s in the directory", kind, obj.id)
	}
	if err != nil {
		return exitCode(stderr, "mapping test", err)
	}
	secret, noSecret := "", false
	if cl.cfg.InstallationSecret != "" {
		if secret, err = secretref.Resolve(cl.cfg.InstallationSecret); err != nil {
			return exitCode(stderr, "mapping test", usageErrorf("installation secret: %v", err))
		}
	} else if kind == object.User {
		// Any value maps the user; externalId, derived from it, is removed below.
		secret, noSecret = "starter-mapping-test-without-secret", true
	}

	ms, err := st.ProviderMappings(ctx, p.ID, kind)
	if err != nil {
		return exitCode(stderr, "mapping test", err)
	}
	var programs []*mapping.Program
	var names []string
	failed := false
	for _, m := range ms {
		names = append(names, m.Name)
		prog, err := mapping.Compile(m.Name, object.Kind(m.Kind), m.Expression)
		if err != nil {
			fmt.Fprintf(stderr, "mapping %s does not compile: %v\n", m.Name, compileMessage(err))
			failed = true
			continue
		}
		apply, err := mapping.ParseApply(m.Apply)
		if err != nil {
			fmt.Fprintf(stderr, "mapping %s: %v\n", m.Name, err)
			failed = true
			continue
		}
		programs = append(programs, prog.WithApply(apply))
	}
	if failed {
		return ExitFailure
	}
	fmt.Fprintf(stderr, "# provider %s, %s %s (%s), mappings %s\n", p.Name, kind, obj.label, obj.id, strings.Join(names, ", "))
	if in, why, err := scopeDecision(ctx, st, p, obj); err == nil && !in {
		fmt.Fprintf(stderr, "# note: out of the provider's scope, so a sync would not send this payload: %s\n", why)
	}

	engine := &mapping.Engine{Secret: secret}
	mp := mapping.Provider{Name: p.Name, CompatibilityMode: p.CompatibilityMode}
	var payloads mapping.Payloads
	if kind == object.User {
		// Not := : the mapping's error below must reach the switch after this block.
		users, lerr := st.UsersByIDs(ctx, []string{obj.id})
		if lerr != nil || len(users) != 1 {
			return exitCode(stderr, "mapping test", fmt.Errorf("load user %s: %v", obj.id, lerr))
		}
		u := users[0]
		payloads, err = engine.MapUserPayloads(ctx, programs, mapping.User{ID: u.ID, Username: u.Username, Name: u.Name, Email: u.Email,
			IsActive: u.IsActive, Type: u.Type, Locale: u.Locale, Avatar: u.Avatar, Attributes: u.Attributes, Groups: u.Groups}, mp)
		if err == nil && noSecret {
			if ext, ok := payloads.Always["externalId"].(string); ok && ext == mapping.HashedUserID(u.ID, secret) {
				delete(payloads.Always, "externalId")
				fmt.Fprintln(stderr, "# note: externalId (the hashed user id) is left out: set SCIMSYNC_INSTALLATION_SECRET to see it")
			}
		}
	} else {
		payloads, err = engine.MapGroupPayloads(ctx, programs, mapping.Group{ID: obj.group.ID, Name: obj.group.Name,
			ParentName: obj.group.ParentName, Attributes: obj.group.Attributes}, mp)
		// Written by the membership sync, never from a mapping.
		delete(payloads.Always, "members")
		delete(payloads.OnCreate, "members")
	}
	switch {
	case errors.Is(err, mapping.ErrSkipObject):
		fmt.Fprintf(stderr, "skipped: a mapping called skip_object(); a sync would not send this %s\n", kind)
		return ExitOK
	case err != nil:
		fmt.Fprintf(stderr, "mapping failed: %v\n", err)
		return ExitFailure
	}
	validate := schemas.ValidateGroup
	if kind == object.User {
		validate = schemas.ValidateUser
	}
	// A sync validates what an update sends and, with on_create attributes, what a create
	// sends; the payload printed is the create's.
	payload := payloads.Create()
	verr := validate(payloads.Always)
	if verr != nil && len(payloads.OnCreate) > 0 {
		payload = payloads.Always
		fmt.Fprintln(stderr, "# without the on_create attributes (what an update sends):")
	} else if verr == nil {
		verr = validate(payload)
	}
	if len(payloads.OnCreate) > 0 {
		fmt.Fprintf(stderr, "# note: %s only in the create (apply: on_create): never updated, removed or compared\n",
			strings.Join(onCreateAttributes(payloads.OnCreate), ", "))
	}
	body, _ := json.MarshalIndent(payload, "", "  ")
	var ve *schemas.ValidationError
	if errors.As(verr, &ve) {
		fmt.Fprintf(stderr, "the payload is not a valid SCIM %s:\n", ve.Resource)
		for _, fe := range ve.Errors {
			field := fe.Path
			if field == "" {
				field = "(payload)"
			}
			fmt.Fprintf(stderr, "  %s: %s\n", field, fe.Msg)
		}
		fmt.Fprintf(stderr, "payload:\n%s\n", body)
		return ExitFailure
	}
	if verr != nil {
		fmt.Fprintf(stderr, "the payload is not valid SCIM: %v\n", verr)
		return ExitFailure
	}
	fmt.Fprintf(stdout, "%s\n", body)
	return ExitOK
}

// onCreateAttributes names the attributes of an on_create payload, sorted: top-level ones,
// and those of an extension object as urn:...:attribute.
func onCreateAttributes(onCreate map[string]any) []string {
	var out []string
	for k, v := range onCreate {
		if k == "schemas" {
			continue
		}
		if ext, ok := v.(map[string]any); ok && strings.HasPrefix(strings.ToLower(k), "urn:") {
			for sk := range ext {
				out = append(out, k+":"+sk)
			}
			continue
		}
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func compileMessage(err error) string {
	var ce *mapping.CompileError
	if errors.As(err, &ce) && ce.Line > 0 {
		return fmt.Sprintf("line %d:%d: %s", ce.Line, ce.Column, ce.Msg)
	}
	return err.Error()
}
