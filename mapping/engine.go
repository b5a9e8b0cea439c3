package mapping

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

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
	Kind     Kind
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
// returns the merged SCIM payload, with externalId defaulting to u's hashed
// id. It does not validate the payload against the SCIM schema.
//
// Errors: ErrNoSecret, ErrNoMappings, an error matching ErrSkipObject when a
// mapping skipped the user, *EvalError when a mapping failed, and a plain
// error when a program is not a user mapping.
func (e *Engine) MapUser(ctx context.Context, programs []*Program, u User, p Provider) (map[string]any, error) {
	if e.Secret == "" {
		return nil, ErrNoSecret
	}
	uid := HashedUserID(u.ID, e.Secret)
	obj := &userValue{u: &u, uid: uid}
	payload, err := e.run(ctx, KindUser, u.ID, programs, obj, &p, func() []string { return userSecrets(&u) })
	if err != nil {
		return nil, err
	}
	if _, ok := payload["externalId"]; !ok {
		payload["externalId"] = uid
	}
	return payload, nil
}

// MapGroup runs the group mappings programs (in order of their names) for g
// and returns the merged SCIM payload, with externalId defaulting to g's id.
// It does not validate the payload and does not add members. Errors are those
// of MapUser, except ErrNoSecret.
func (e *Engine) MapGroup(ctx context.Context, programs []*Program, g Group, p Provider) (map[string]any, error) {
	obj := &groupValue{g: &g}
	payload, err := e.run(ctx, KindGroup, g.ID, programs, obj, &p, func() []string { return stringLeaves(g.Attributes, nil, 0) })
	if err != nil {
		return nil, err
	}
	if _, ok := payload["externalId"]; !ok {
		payload["externalId"] = g.ID
	}
	return payload, nil
}

// run evaluates programs in order of their names and merges their results.
// personal lists the values to redact from error messages; it is called only
// when there is an error.
func (e *Engine) run(ctx context.Context, kind Kind, id string, programs []*Program, obj starlark.Value, p *Provider, personal func() []string) (map[string]any, error) {
	if len(programs) == 0 {
		return nil, fmt.Errorf("%w for %s %s", ErrNoMappings, kind, id)
	}
	byName := func(a, b *Program) int { return cmp.Compare(a.name, b.name) }
	if !slices.IsSortedFunc(programs, byName) {
		programs = slices.Clone(programs)
		slices.SortStableFunc(programs, byName)
	}
	args := starlark.Tuple{obj, providerValue{p}}
	var payload map[string]any
	for _, prog := range programs {
		if prog.kind != kind {
			return nil, fmt.Errorf("mapping: %q is a %s mapping, not a %s mapping", prog.name, prog.kind, kind)
		}
		result, err := e.eval(ctx, prog, args)
		if err != nil {
			if errors.Is(err, ErrSkipObject) {
				return nil, fmt.Errorf("mapping %q: %s %s: %w", prog.name, kind, id, ErrSkipObject)
			}
			return nil, newEvalError(prog, kind, id, err, personal())
		}
		var m map[string]any
		switch r := result.(type) {
		case starlark.NoneType:
			continue
		case *starlark.Dict:
			if m, err = dictToGo(r, 0); err != nil {
				return nil, newEvalError(prog, kind, id, fmt.Errorf("result%w", err), personal())
			}
		default:
			err := fmt.Errorf("a mapping must return a dict or None, not a %s", result.Type())
			return nil, newEvalError(prog, kind, id, err, personal())
		}
		if payload == nil {
			payload = m
		} else {
			deepMerge(payload, m)
		}
	}
	if payload == nil {
		payload = map[string]any{}
	}
	removeNone(payload)
	dedupeSchemas(payload)
	return payload, nil
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

func newEvalError(prog *Program, kind Kind, id string, err error, personal []string) *EvalError {
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
