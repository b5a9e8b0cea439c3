package scim

import "context"

type observerKey struct{}

// WithRequestObserver returns a copy of ctx under which every request a Client sends, or
// records in dry run, is also reported to fn (after Options.OnRequest), with the same
// RequestInfo: no headers, bodies or query strings. It tells the requests of one piece of
// work (one object's write) from the others a shared client sends at the same time.
// Observers nest: a request is reported to every observer of its context, innermost first.
func WithRequestObserver(ctx context.Context, fn func(RequestInfo)) context.Context {
	if fn == nil {
		return ctx
	}
	if outer, ok := ctx.Value(observerKey{}).(func(RequestInfo)); ok {
		inner := fn
		fn = func(info RequestInfo) { inner(info); outer(info) }
	}
	return context.WithValue(ctx, observerKey{}, fn)
}

// observe reports info to the observers of ctx.
func observe(ctx context.Context, info RequestInfo) {
	if fn, ok := ctx.Value(observerKey{}).(func(RequestInfo)); ok {
		fn(info)
	}
}
