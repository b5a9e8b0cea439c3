package pacing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/lib/pq"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// Backend keeps the shared pacing state of every provider: *store.Store.
type Backend interface {
	UpdatePacing(ctx context.Context, providerID string, withSlots bool, fn store.PacingFunc) error
}

// Registry holds the Limiters of one process, one per provider. Create one per process
// with NewRegistry, and Close it when done.
type Registry struct {
	backend Backend
	holder  string
	logger  *slog.Logger

	mu       sync.Mutex
	limiters map[string]*Limiter // provider id → limiter

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

// NewRegistry returns a Registry keeping its shared state in b. logger receives the rare
// lines about the shared state being unreachable; nil means slog.Default().
func NewRegistry(b Backend, logger *slog.Logger) *Registry {
	if logger == nil {
		logger = slog.Default()
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	return &Registry{backend: b, holder: hex.EncodeToString(id[:]), logger: logger,
		limiters: map[string]*Limiter{}, closed: make(chan struct{})}
}

// LimitsOf returns the limits that pace p: its own rate_limit when it has one, else the
// compatibility mode's published limit, with its max_in_flight either way.
func LimitsOf(p store.Provider) Limits {
	lim := Limits{MaxInFlight: p.MaxInFlight}
	switch c, err := scim.CompatFor(scim.Mode(p.CompatibilityMode)); {
	case p.RateLimitPerMinute > 0:
		lim.PerMinute, lim.Burst, lim.Source = p.RateLimitPerMinute, p.RateLimitBurst, "config"
	case err == nil && c.RequestsPerMinute > 0:
		lim.PerMinute, lim.Burst, lim.Source = c.RequestsPerMinute, c.Burst, string(c.Mode)+" published limit"
	}
	return lim
}

// For returns the provider's Limiter, with p's current limits.
func (r *Registry) For(p store.Provider) *Limiter {
	lim := LimitsOf(p)
	r.mu.Lock()
	l, ok := r.limiters[p.ID]
	if !ok {
		l = newLimiter(r, p, lim)
		r.limiters[p.ID] = l
	}
	r.mu.Unlock()
	if ok {
		l.setLimits(lim)
	}
	return l
}

// Stats returns the figures of every provider this process has paced, by name.
func (r *Registry) Stats() []Stats {
	r.mu.Lock()
	ls := make([]*Limiter, 0, len(r.limiters))
	for _, l := range r.limiters {
		ls = append(ls, l)
	}
	r.mu.Unlock()
	out := make([]Stats, 0, len(ls))
	for _, l := range ls {
		out = append(out, l.Stats())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	return out
}

// Listen relays the shared state's notifications (store.PacingChannel) to the limiters
// until ctx ends, so that a pause begun by another worker stops this one within
// milliseconds rather than at its next exchange. dsn is the database's connection string.
func (r *Registry) Listen(ctx context.Context, dsn string) {
	l := pq.NewListener(dsn, 100*time.Millisecond, 10*time.Second, func(ev pq.ListenerEventType, err error) {
		if err != nil && ev == pq.ListenerEventConnectionAttemptFailed {
			r.logf("pacing: cannot listen for pauses of other workers (they reach this one within a second anyway): %v", err)
		}
	})
	defer l.Close()
	if err := l.Listen(store.PacingChannel); err != nil {
		r.logf("pacing: listen: %v", err)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case n := <-l.Notify:
			if n == nil {
				// Reconnected: notifications may have been missed; everyone looks again.
				r.pokeAll()
				continue
			}
			r.mu.Lock()
			lim := r.limiters[n.Extra]
			r.mu.Unlock()
			if lim != nil {
				lim.poke()
			}
		}
	}
}

func (r *Registry) pokeAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range r.limiters {
		l.poke()
	}
}

// Close stops the limiters' exchangers. Requests waiting then wait for their contexts.
func (r *Registry) Close() {
	r.closeOnce.Do(func() { close(r.closed) })
	r.wg.Wait()
}

func (r *Registry) logf(format string, args ...any) {
	r.logger.Warn(fmt.Sprintf(format, args...))
}
