package pacing

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// memBackend is the shared state in memory, on the wall clock, for several registries in
// one test (each standing for a worker process); notify stands for LISTEN/NOTIFY.
type memBackend struct {
	mu     sync.Mutex
	rows   map[string]*store.Pacing
	slots  map[string][]store.PacingSlot
	fail   error
	regs   []*Registry
	ex     atomic.Int64
	noNote bool // drop notifications, as a worker without LISTEN sees it
}

func newMemBackend() *memBackend {
	return &memBackend{rows: map[string]*store.Pacing{}, slots: map[string][]store.PacingSlot{}}
}

func (m *memBackend) UpdatePacing(ctx context.Context, id string, withSlots bool, fn store.PacingFunc) error {
	m.mu.Lock()
	if m.fail != nil {
		m.mu.Unlock()
		return m.fail
	}
	now := time.Now()
	row, ok := m.rows[id]
	if !ok {
		row = &store.Pacing{ProviderID: id, RefilledAt: now, WindowAt: now}
		m.rows[id] = row
	}
	var live []store.PacingSlot
	for _, s := range m.slots[id] {
		if s.ExpiresAt.After(now) {
			live = append(live, s)
		}
	}
	cp := *row
	up, err := fn(now, &cp, live)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	*row = cp
	if s := up.Slot; s != nil {
		kept := live[:0:0]
		for _, o := range live {
			if o.Holder != s.Holder {
				kept = append(kept, o)
			}
		}
		if s.Slots > 0 || s.Wanted > 0 {
			kept = append(kept, *s)
		}
		m.slots[id] = kept
	}
	regs := m.regs
	m.ex.Add(1)
	m.mu.Unlock()
	if up.Notify && !m.noNote {
		for _, r := range regs {
			r.mu.Lock()
			l := r.limiters[id]
			r.mu.Unlock()
			if l != nil {
				l.poke()
			}
		}
	}
	return nil
}

func (m *memBackend) row(id string) store.Pacing {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.rows[id]; r != nil {
		return *r
	}
	return store.Pacing{}
}

func (m *memBackend) registry(t *testing.T) *Registry {
	r := NewRegistry(m, nil)
	m.mu.Lock()
	m.regs = append(m.regs, r)
	m.mu.Unlock()
	t.Cleanup(r.Close)
	return r
}

func provider(limit float64, burst, inFlight int) store.Provider {
	return store.Provider{ID: "prov-1", Name: "p", CompatibilityMode: "default",
		RateLimitPerMinute: limit, RateLimitBurst: burst, MaxInFlight: inFlight}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not after %s: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ok200() scim.Outcome { return scim.Outcome{Status: 200, Sent: true} }

func TestNoLimitAdmitsAtOnceAndReports(t *testing.T) {
	b := newMemBackend()
	l := b.registry(t).For(provider(0, 0, 0))
	for range 100 {
		p, err := l.Wait(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		p.Done(ok200())
	}
	// Only the first request waited for an exchange; the counts reach the shared state
	// within the report interval.
	eventually(t, 5*time.Second, "100 requests reported", func() bool { return b.row("prov-1").SentTotal == 100 })
	if n := b.ex.Load(); n > 5 {
		t.Errorf("%d exchanges for 100 requests without a limit, want a handful", n)
	}
	if s := l.Stats(); s.Rate != 0 || !s.PausedUntil.IsZero() || s.InFlight != 0 {
		t.Errorf("stats %+v", s)
	}
}

func TestConfiguredRateIsNeverExceeded(t *testing.T) {
	b := newMemBackend()
	l := b.registry(t).For(provider(600, 5, 0)) // aimed at 9.5/s, bucket 4
	start := time.Now()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for admitted.Load() < 20 {
				p, err := l.Wait(ctx)
				if err != nil {
					return
				}
				admitted.Add(1)
				p.Done(ok200())
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	n := admitted.Load()
	if n < 20 {
		t.Fatalf("only %d requests admitted in 30s", n)
	}
	// The bucket's 4, then 9.5 a second: never more, however the goroutines run.
	if limit := 4 + 9.5*elapsed; float64(n) > limit+1e-9 {
		t.Fatalf("%d requests admitted in %.2fs, more than the %.1f the bucket allows", n, elapsed, limit)
	}
	if s := l.Stats(); s.Rate != 9.5 {
		t.Errorf("rate %v, want 9.5", s.Rate)
	}
}

func TestAThrottlePausesThisProcessAtOnce(t *testing.T) {
	b := newMemBackend()
	l := b.registry(t).For(provider(0, 0, 0))
	p, err := l.Wait(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p.Done(scim.Outcome{Status: 429, Sent: true, Throttled: true, RetryAfter: 3 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait during a 3s pause: %v, want the context's deadline", err)
	}
	s := l.Stats()
	if d := time.Until(s.PausedUntil); d < 2*time.Second || d > 3*time.Second || s.PauseCause != "429 with Retry-After 3s" || s.Throttles != 1 {
		t.Fatalf("stats %+v (paused for %s more)", s, d)
	}
	eventually(t, 5*time.Second, "the pause in the shared state", func() bool {
		r := b.row("prov-1")
		return r.PausedUntil != nil && r.Throttles == 1
	})
}

func TestAPauseReachesTheOtherWorkers(t *testing.T) {
	for _, notified := range []bool{true, false} {
		b := newMemBackend()
		b.noNote = !notified
		a, other := b.registry(t).For(provider(0, 0, 0)), b.registry(t).For(provider(0, 0, 0))
		for _, l := range []*Limiter{a, other} {
			p, err := l.Wait(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			p.Done(ok200())
		}
		p, _ := a.Wait(context.Background())
		p.Done(scim.Outcome{Status: 429, Sent: true, Throttled: true, RetryAfter: 4 * time.Second})
		// With notifications the other worker knows at once; without, at its next report.
		go func() {
			for i := 0; i < 20 && other.Stats().PausedUntil.IsZero(); i++ {
				if p, err := other.Wait(context.Background()); err == nil {
					p.Done(ok200())
				}
				time.Sleep(100 * time.Millisecond)
			}
		}()
		eventually(t, 3*time.Second, "the other worker paused", func() bool { return !other.Stats().PausedUntil.IsZero() })
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		if _, err := other.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("notified %v: the other worker was admitted during the pause: %v", notified, err)
		}
		cancel()
	}
}

func TestOnlyTheProbeGoesAfterAPause(t *testing.T) {
	b := newMemBackend()
	l := b.registry(t).For(provider(0, 0, 0))
	p, _ := l.Wait(context.Background())
	p.Done(scim.Outcome{Status: 429, Sent: true, Throttled: true, RetryAfter: time.Second})
	permits := make(chan scim.Permit, 3)
	for range 3 {
		go func() {
			if p, err := l.Wait(context.Background()); err == nil {
				permits <- p
			}
		}()
	}
	probe := <-permits
	if s := l.Stats(); s.InFlight != 1 {
		t.Fatalf("in flight after the pause: %d, want the probe alone", s.InFlight)
	}
	// Nothing else goes while the probe is out (until its answer, or 10s).
	eventually(t, 2*time.Second, "the two others waiting", func() bool { return l.Stats().Waiting == 2 })
	select {
	case <-permits:
		t.Fatal("a second request was admitted while the probe was out")
	case <-time.After(300 * time.Millisecond):
	}
	probe.Done(ok200())
	for range 2 {
		select {
		case p := <-permits:
			p.Done(ok200())
		case <-time.After(5 * time.Second):
			t.Fatal("the others were not admitted after the probe was answered")
		}
	}
}

func TestRequestsInFlightAreCappedAcrossWorkers(t *testing.T) {
	b := newMemBackend()
	ls := []*Limiter{b.registry(t).For(provider(0, 0, 3)), b.registry(t).For(provider(0, 0, 3))}
	var now, peak, done atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ls[i%2]
			for range 5 {
				p, err := l.Wait(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				n := now.Add(1)
				for {
					m := peak.Load()
					if n <= m || peak.CompareAndSwap(m, n) {
						break
					}
				}
				time.Sleep(10 * time.Millisecond)
				now.Add(-1)
				p.Done(ok200())
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 3 || done.Load() != 40 {
		t.Fatalf("peak %d in flight (want ≤ 3), %d of 40 done", peak.Load(), done.Load())
	}
}

func TestRequestsWaitWhileTheSharedStateIsUnreachable(t *testing.T) {
	b := newMemBackend()
	b.fail = errors.New("connection refused")
	l := b.registry(t).For(provider(600, 5, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := l.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait without the shared state: %v, want to wait", err)
	}
	b.mu.Lock()
	b.fail = nil
	b.mu.Unlock()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	p, err := l.Wait(ctx2)
	if err != nil {
		t.Fatalf("Wait once the shared state is back: %v", err)
	}
	p.Done(ok200())
}

func TestLimitsOfAProvider(t *testing.T) {
	tests := []struct {
		p    store.Provider
		want Limits
	}{
		{store.Provider{CompatibilityMode: "default"}, Limits{}},
		{store.Provider{CompatibilityMode: "slack"}, Limits{PerMinute: 180, Burst: 20, Source: "slack published limit"}},
		{store.Provider{CompatibilityMode: "slack", RateLimitPerMinute: 60, MaxInFlight: 2}, Limits{PerMinute: 60, MaxInFlight: 2, Source: "config"}},
		{store.Provider{CompatibilityMode: "aws", MaxInFlight: 4}, Limits{MaxInFlight: 4}},
	}
	for _, tt := range tests {
		if got := LimitsOf(tt.p); got != tt.want {
			t.Errorf("LimitsOf(%+v) = %+v, want %+v", tt.p, got, tt.want)
		}
	}
}
