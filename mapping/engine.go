package mapping

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/scimsync/scimsync/object"
	"go.starlark.net/starlark"
)

// Default limits of one mapping evaluation.
const (
	// DefaultMaxSteps is far above what a mapping needs (the default user
	// mapping takes about 130 steps) and stops an endless loop within tens of
	// milliseconds.
	DefaultMaxSteps = 1_000_000
	DefaultTimeout  = time.Second
)

var (
	// ErrSkipObject is matched (errors.Is) by the error MapUser and MapGroup
	// return when a mapping called skip_object(): the object is not synced to
	// the provider and the sync goes on.
	ErrSkipObject = errors.New("object skipped by skip_object()")
	// ErrNoMappings is returned when a provider has no mapping for the kind of
	// object: there is nothing to send.
	ErrNoMappings = errors.New("mapping: no mappings")
	// ErrNoSecret is returned by MapUser when Engine.Secret is empty: the
	// hashed user id would be guessable.
	ErrNoSecret = errors.New("mapping: installation secret is not set")
	// ErrTooManySteps is the cause (errors.Is) of an *EvalError when a mapping
	// exceeded Engine.MaxSteps.
	ErrTooManySteps = errors.New("too many execution steps")
	// ErrTimeout is the cause (errors.Is) of an *EvalError when a mapping ran
	// longer than Engine.Timeout.
	ErrTimeout = errors.New("mapping timed out")
)

// An Engine runs compiled mappings. Its fields must not change once it is in
// use; an Engine is then safe for concurrent use by many goroutines.
type Engine struct {
	// Secret is the installation secret used to derive hashed user ids
	// (HashedUserID). It never appears in results or errors.
	Secret string
	// MaxSteps bounds the Starlark execution steps of one mapping evaluation;
	// zero means DefaultMaxSteps.
	MaxSteps uint64
	// Timeout bounds the wall time of one mapping evaluation; zero means
	// DefaultTimeout.
	Timeout time.Duration
}

// An EvalError reports a mapping that failed at sync time: a runtime error,
// fail(), a result that is not a dict or None, or a limit. It is a
// configuration error of the provider, except when Err is the context's error.
// Msg never holds the installation secret; personal values of the object
// (username, name, email, avatar, string attributes) are replaced by
// "<redacted>".
type EvalError struct {
	Mapping  string
	Kind     object.Kind
	ObjectID string
	// Line and Column locate the error in the mapping's source; 0 when the
	// error concerns the mapping's result rather than a statement.
	Line, Column int
	Msg          string
	// Err is the cause when there is one to test for: ErrTooManySteps,
	// ErrTimeout, or the caller's context.Canceled / DeadlineExceeded.
	Err error
}

func (e *EvalError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("mapping %q: %s %s: %s", e.Mapping, e.Kind, e.ObjectID, e.Msg)
	}
	return fmt.Sprintf("mapping %q: %s %s: line %d:%d: %s", e.Mapping, e.Kind, e.ObjectID, e.Line, e.Column, e.Msg)
}

func (e *EvalError) Unwrap() error { return e.Err }

// MapUser runs the user mappings programs (in order of their names) for u and
// returns the merged SCIM payload of a create (Payloads.Create of MapUserPayloads):
// the attributes of the ApplyOnCreate mappings included, externalId defaulting to
// u's hashed id. It does not validate the payload against the SCIM schema.
//
// Errors: ErrNoSecret, ErrNoMappings, an error matching ErrSkipObject when a
// mapping skipped the user, *EvalError when a mapping failed, and a plain
// error when a program is not a user mapping.
func (e *Engine) MapUser(ctx context.Context, programs []*Program, u User, p Provider) (map[string]any, error) {
	out, err := e.MapUserPayloads(ctx, programs, u, p)
	if err != nil {
		return nil, err
	}
	return out.Create(), nil
}

// MapUserPayloads is MapUser split by when the attributes are written: Always from the
// ApplyAlways mappings (merged in order of their names, externalId defaulting to u's
// hashed id), OnCreate from the ApplyOnCreate ones (merged likewise). An attribute that
// both kinds of mapping set, or an externalId set only on create, is an *EvalError
// naming the on_create mapping: an attribute is written either always or only on create.
func (e *Engine) MapUserPayloads(ctx context.Context, programs []*Program, u User, p Provider) (Payloads, error) {
	if e.Secret == "" {
		return Payloads{}, ErrNoSecret
	}
	uid := HashedUserID(u.ID, e.Secret)
	obj := &userValue{u: &u, uid: uid}
	return e.run(ctx, object.User, u.ID, programs, obj, &p, uid, func() []string { return userSecrets(&u) })
}

// MapGroup runs the group mappings programs (in order of their names) for g
// and returns the merged SCIM payload of a create, with externalId defaulting
// to g's id. It does not validate the payload and does not add members. Errors
// are those of MapUser, except ErrNoSecret.
func (e *Engine) MapGroup(ctx context.Context, programs []*Program, g Group, p Provider) (map[string]any, error) {
	out, err := e.MapGroupPayloads(ctx, programs, g, p)
	if err != nil {
		return nil, err
	}
	return out.Create(), nil
}

// MapGroupPayloads is MapGroup split by when the attributes are written, like
// MapUserPayloads.
func (e *Engine) MapGroupPayloads(ctx context.Context, programs []*Program, g Group, p Provider) (Payloads, error) {
	obj := &groupValue{g: &g}
	return e.run(ctx, object.Group, g.ID, programs, obj, &p, g.ID, func() []string { return stringLeaves(g.Attributes, nil, 0) })
}

// run evaluates programs in order of their names and merges their results: those of
// ApplyAlways programs into Always, externalId defaulting to externalID, and those of
// ApplyOnCreate programs into OnCreate. personal lists the values to redact from error
// messages; it is called only when there is an error.
func (e *Engine) run(ctx context.Context, kind object.Kind, id string, programs []*Program, obj starlark.Value, p *Provider, externalID string, personal func() []string) (Payloads, error) {
	if len(programs) == 0 {
		return Payloads{}, fmt.Errorf("%w for %s %s", ErrNoMappings, kind, id)
	}
	byName := func(a, b *Program) int { return cmp.Compare(a.name, b.name) }
	if !slices.IsSortedFunc(programs, byName) {
		programs = slices.Clone(programs)
		slices.SortStableFunc(programs, byName)
	}
	args := starlark.Tuple{obj, providerValue{p}}
	var always, onCreate map[string]any
	// With on_create programs, set records the attributes each program set, to name them
	// in a conflict.
	split := hasOnCreate(programs)
	var set []programPaths
	for _, prog := range programs {
		if prog.kind != kind {
			return Payloads{}, fmt.Errorf("mapping: %q is a %s mapping, not a %s mapping", prog.name, prog.kind, kind)
		}
		result, err := e.eval(ctx, prog, args)
		if err != nil {
			if errors.Is(err, ErrSkipObject) {
				return Payloads{}, fmt.Errorf("mapping %q: %s %s: %w", prog.name, kind, id, ErrSkipObject)
			}
			return Payloads{}, newEvalError(prog, kind, id, err, personal())
		}
		var m map[string]any
		switch r := result.(type) {
		case starlark.NoneType:
			continue
		case *starlark.Dict:
			if m, err = dictToGo(r, 0); err != nil {
				return Payloads{}, newEvalError(prog, kind, id, fmt.Errorf("result%w", err), personal())
			}
		default:
			err := fmt.Errorf("a mapping must return a dict or None, not a %s", result.Type())
			return Payloads{}, newEvalError(prog, kind, id, err, personal())
		}
		dst := &always
		if prog.Apply() == ApplyOnCreate {
			dst = &onCreate
		}
		if split {
			set = append(set, programPaths{prog, attributePaths(m)})
		}
		if *dst == nil {
			*dst = m
		} else {
			deepMerge(*dst, m)
		}
	}
	if always == nil {
		always = map[string]any{}
	}
	removeNone(always)
	dedupeSchemas(always)
	if onCreate != nil {
		removeNone(onCreate)
		dedupeSchemas(onCreate)
		if err := checkOnCreate(kind, id, always, onCreate, set); err != nil {
			return Payloads{}, err
		}
		if len(onCreate) == 0 {
			onCreate = nil
		}
	}
	if _, ok := always["externalId"]; !ok {
		always["externalId"] = externalID
	}
	return Payloads{Always: always, OnCreate: onCreate}, nil
}

// programPaths are the attributes one program's result set (attributePaths).
type programPaths struct {
	prog  *Program
	paths []string
}

func hasOnCreate(programs []*Program) bool {
	return slices.ContainsFunc(programs, func(p *Program) bool { return p.Apply() == ApplyOnCreate })
}

// checkOnCreate refuses an on_create attribute that an always mapping sets too, and an
// externalId set only on create; the error names the last on_create mapping that set it.
func checkOnCreate(kind object.Kind, id string, always, onCreate map[string]any, set []programPaths) error {
	if k, ok := lookupFold(onCreate, "externalId"); ok {
		if _, inAlways := lookupFold(always, "externalId"); !inAlways {
			return &EvalError{Mapping: lastSetting(set, ApplyOnCreate, k), Kind: kind, ObjectID: id,
				Msg: fmt.Sprintf("%s cannot be applied on_create only: every write carries it, scimsync finds the objects it wrote by it; set it in an always mapping, or leave it to its default", k)}
		}
	}
	attr, ok := conflict(always, onCreate)
	if !ok {
		return nil
	}
	return &EvalError{Mapping: lastSetting(set, ApplyOnCreate, attr), Kind: kind, ObjectID: id,
		Msg: fmt.Sprintf("sets %s, which mapping %q (apply: always) sets too: an attribute is written either always or only on create; set it in one of them",
			attr, lastSetting(set, ApplyAlways, attr))}
}

// lastSetting returns the name of the last program applied as a whose result set attr (or
// an attribute of it, or the object it is an attribute of).
func lastSetting(set []programPaths, a Apply, attr string) string {
	attr = strings.ToLower(attr)
	name := ""
	for _, s := range set {
		if s.prog.Apply() != a {
			continue
		}
		for _, q := range s.paths {
			if q == attr || strings.HasPrefix(q, attr+":") || strings.HasPrefix(attr, q+":") {
				name = s.prog.name
				break
			}
		}
	}
	return name
}

// eval calls one program on a fresh thread bounded by the engine's limits.
func (e *Engine) eval(ctx context.Context, prog *Program, args starlark.Tuple) (starlark.Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, &causedError{err: err, cause: err}
	}
	maxSteps := cmp.Or(e.MaxSteps, DefaultMaxSteps)
	timeout := cmp.Or(e.Timeout, DefaultTimeout)

	var tooManySteps bool
	var timedOut atomic.Bool
	thread := &starlark.Thread{Name: prog.name, Print: discardPrint}
	thread.SetMaxExecutionSteps(maxSteps)
	thread.OnMaxSteps = func(t *starlark.Thread) {
		tooManySteps = true
		t.Cancel(fmt.Sprintf("more than %d execution steps", maxSteps))
	}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stop := context.AfterFunc(tctx, func() {
		timedOut.Store(true)
		thread.Cancel("timed out after " + timeout.String())
	})
	defer stop()

	v, err := starlark.Call(thread, prog.fn, args, nil)
	if err == nil {
		return v, nil
	}
	// Attach a testable cause to cancellations.
	var cause error
	switch {
	case tooManySteps:
		cause = ErrTooManySteps
	case ctx.Err() != nil:
		cause = ctx.Err()
	case timedOut.Load():
		cause = ErrTimeout
	}
	if cause != nil {
		return nil, &causedError{err: err, cause: cause}
	}
	return nil, err
}

// causedError keeps a Starlark error (for its message and position) and the
// reason it was cancelled.
type causedError struct {
	err   error
	cause error
}

func (e *causedError) Error() string   { return e.err.Error() }
func (e *causedError) Unwrap() []error { return []error{e.err, e.cause} }

func newEvalError(prog *Program, kind object.Kind, id string, err error, personal []string) *EvalError {
	ee := &EvalError{Mapping: prog.name, Kind: kind, ObjectID: id, Msg: err.Error()}
	var serr *starlark.EvalError
	if errors.As(err, &serr) {
		ee.Msg = serr.Msg
		// The innermost frame in the mapping's source (not a built-in).
		for i := len(serr.CallStack) - 1; i >= 0; i-- {
			if pos := serr.CallStack[i].Pos; pos.Filename() == prog.name && pos.Line > 0 {
				ee.Line, ee.Column = int(pos.Line), int(pos.Col)
				break
			}
		}
	}
	var ce *causedError
	if errors.As(err, &ce) {
		ee.Err = ce.cause
	}
	ee.Msg = redact(ee.Msg, personal)
	return ee
}

// skipObject implements skip_object().
func skipObject(_ *starlark.Thread, b *starlark.Builtin, args starlark.Tuple, kwargs []starlark.Tuple) (starlark.Value, error) {
	if err := starlark.UnpackArgs(b.Name(), args, kwargs); err != nil {
		return nil, err
	}
	return nil, ErrSkipObject
}
