package pacing

import (
	"context"
	"sync"
	"time"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// How a Limiter talks to the shared state.
const (
	// reportEvery is how often a worker that sends requests reports its counts (and so
	// learns of pauses even when no notification reaches it).
	reportEvery = time.Second
	// renewEvery renews a claim on slots well before slotTTL.
	renewEvery = 10 * time.Second
	// releaseAfter gives slots back once nothing is in flight or waiting for this long.
	releaseAfter = time.Second
	// backoff is the wait after the shared state could not be reached; exchangeTimeout
	// bounds one exchange.
	backoff         = time.Second
	exchangeTimeout = 10 * time.Second
)

// Limiter paces the requests of one provider in this process, within the shared state of
// every worker. It implements scim.Pacer. Get one from Registry.For.
//
// Requests take their tokens from a lease the Limiter holds; when none is left it asks
// the shared state for more (one exchange for all the requests waiting here), and reports
// what became of the requests sent since the last exchange. A throttle pauses this
// process at once and the others through the shared state.
type Limiter struct {
	reg  *Registry
	id   string // provider id
	name string // provider name

	mu     sync.Mutex
	limits Limits
	// The shared state as of the last exchange.
	rate        float64
	seq         int64
	probing     bool
	pausedUntil time.Time
	pauseCause  string
	tokens      int
	probeToken  bool
	tokensUntil time.Time
	slots       int
	retryAt     time.Time
	// This process's requests.
	inFlight     int
	waiters      int
	lastActive   time.Time
	sent, ok, th int64
	probeOK      bool
	throttle     *Throttle
	quota        *scim.Quota
	stale        bool // a notification said the shared state changed
	known        bool // an exchange has told this process the shared state
	lastExchange time.Time
	err          error // the last exchange's error, nil when it worked

	running bool
	kick    chan struct{}
	wake    chan struct{}

	waited    time.Duration
	throttles int64
}

func newLimiter(reg *Registry, p store.Provider, lim Limits) *Limiter {
	return &Limiter{reg: reg, id: p.ID, name: p.Name, limits: lim,
		kick: make(chan struct{}, 1), wake: make(chan struct{})}
}

// permit is one admitted request.
type permit struct {
	l     *Limiter
	seq   int64
	probe bool
	once  sync.Once
}

// Wait implements scim.Pacer: it blocks until the provider is not paused, a slot is free
// (when requests in flight are capped) and a token is at hand (when the rate is limited).
func (l *Limiter) Wait(ctx context.Context) (scim.Permit, error) {
	start := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		now := time.Now()
		if p := l.admit(now); p != nil {
			l.waited += now.Sub(start)
			return p, nil
		}
		l.waiters++
		l.kickLocked()
		wake := l.wake
		var timer *time.Timer
		var timeout <-chan time.Time
		if d := l.pausedUntil.Sub(now); d > 0 {
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		l.mu.Unlock()
		var err error
		select {
		case <-wake:
		case <-timeout:
		case <-ctx.Done():
			err = ctx.Err()
		}
		if timer != nil {
			timer.Stop()
		}
		l.mu.Lock()
		l.waiters--
		if err != nil {
			l.waited += time.Since(start)
			return nil, err
		}
	}
}

// admit takes what one request needs, if it is there.
func (l *Limiter) admit(now time.Time) *permit {
	if !l.known || now.Before(l.pausedUntil) {
		return nil
	}
	if l.limits.MaxInFlight > 0 && l.inFlight >= l.slots {
		return nil
	}
	p := &permit{l: l, seq: l.seq}
	if l.rate > 0 || l.probing {
		if l.tokens == 0 || !now.Before(l.tokensUntil) {
			l.tokens = 0
			return nil
		}
		l.tokens--
		p.probe, l.probeToken = l.probeToken, false
	}
	l.inFlight++
	l.lastActive = now
	return p
}

// Done implements scim.Permit.
func (p *permit) Done(o scim.Outcome) { p.once.Do(func() { p.l.done(p, o) }) }

func (l *Limiter) done(p *permit, o scim.Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	l.inFlight--
	l.lastActive = now
	if o.Sent {
		l.sent++
	}
	switch {
	case o.Throttled:
		l.th++
		l.throttles++
		t := Throttle{RetryAfter: o.RetryAfter, Seq: p.seq, Status: o.Status}
		if l.throttle != nil {
			t.RetryAfter = max(t.RetryAfter, l.throttle.RetryAfter)
			t.Seq = max(t.Seq, l.throttle.Seq)
		}
		l.throttle = &t
		// Stop this process at once; the exchange tells the others.
		d := o.RetryAfter
		if d <= 0 {
			d = basePause
		}
		l.pauseLocked(now.Add(d), pauseCause(t))
		l.probing = true
		l.kickLocked()
	case o.Status > 0:
		l.ok++
		if p.probe {
			l.probeOK = true
			l.kickLocked()
		}
	}
	if q := o.Quota; q != nil {
		l.quota = q
		if q.Remaining == 0 && q.Reset > 0 {
			l.pauseLocked(now.Add(q.Reset), "the target's quota is spent (RateLimit-Remaining 0)")
			l.kickLocked()
		}
	}
	if !l.running || now.Sub(l.lastExchange) >= reportEvery {
		l.kickLocked() // the counts must reach the shared state
	}
	l.broadcastLocked() // a slot is free
}

func (l *Limiter) pauseLocked(until time.Time, cause string) {
	if until.After(l.pausedUntil) {
		l.pausedUntil, l.pauseCause = until, cause
	}
	l.tokens = 0
}

// poke is called when a notification says the shared state changed.
func (l *Limiter) poke() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stale = true
	l.tokens = 0 // a pause may have begun: do not spend a lease from before it
	l.kickLocked()
}

func (l *Limiter) setLimits(lim Limits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits != lim {
		l.limits = lim
		l.stale = true
		l.kickLocked()
	}
}

// kickLocked makes sure the exchanger runs and looks at the state now.
func (l *Limiter) kickLocked() {
	if !l.running {
		l.running = true
		l.reg.wg.Add(1)
		go l.run()
	}
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

func (l *Limiter) broadcastLocked() {
	close(l.wake)
	l.wake = make(chan struct{})
}

// run is the exchanger: it exchanges with the shared state whenever this process needs
// tokens or slots, has a throttle or counts to report, or was told the state changed, and
// stops when there is nothing to do.
func (l *Limiter) run() {
	defer l.reg.wg.Done()
	for {
		l.mu.Lock()
		now := time.Now()
		ex, next, idle := l.due(now)
		if idle {
			l.running = false
			l.mu.Unlock()
			return
		}
		if ex == nil {
			l.mu.Unlock()
			t := time.NewTimer(max(next.Sub(now), time.Millisecond))
			select {
			case <-l.kick:
			case <-t.C:
			case <-l.reg.closed:
				t.Stop()
				l.mu.Lock()
				l.running = false
				l.mu.Unlock()
				return
			}
			t.Stop()
			continue
		}
		l.sent, l.ok, l.th, l.probeOK, l.throttle, l.quota, l.stale = 0, 0, 0, false, nil, nil, false
		lim := l.limits
		l.lastExchange = now
		l.mu.Unlock()

		var ans answer
		ctx, cancel := context.WithTimeout(context.Background(), exchangeTimeout)
		err := l.reg.backend.UpdatePacing(ctx, l.id, lim.MaxInFlight > 0,
			func(dbNow time.Time, p *store.Pacing, slots []store.PacingSlot) (store.PacingUpdate, error) {
				var up store.PacingUpdate
				ans, up = apply(dbNow, lim, p, slots, *ex)
				return up, nil
			})
		cancel()

		l.mu.Lock()
		now = time.Now()
		if err != nil {
			l.restoreLocked(ex)
			if l.err == nil {
				l.reg.logf("pacing of provider %s: the shared state cannot be read; requests wait: %v", l.name, err)
			}
			l.err = err
			l.retryAt = now.Add(backoff)
		} else {
			if l.err != nil {
				l.reg.logf("pacing of provider %s: the shared state answers again", l.name)
			}
			l.err = nil
			l.applyLocked(now, ex, ans)
		}
		l.broadcastLocked()
		l.mu.Unlock()
	}
}

// due decides the next exchange: ex when one is due now, else when to look again (next),
// or idle when the exchanger can stop.
func (l *Limiter) due(now time.Time) (ex *exchange, next time.Time, idle bool) {
	capped := l.limits.MaxInFlight > 0
	paused := now.Before(l.pausedUntil)
	needTokens := l.waiters > 0 && !paused && (l.rate > 0 || l.probing) &&
		(l.tokens == 0 || !now.Before(l.tokensUntil))
	needSlots := capped && l.waiters > 0 && !paused && l.inFlight >= l.slots
	pending := l.sent+l.ok+l.th > 0
	quiet := l.inFlight == 0 && l.waiters == 0 && now.Sub(l.lastActive) >= releaseAfter
	next = now.Add(time.Hour)
	if paused {
		next = l.pausedUntil
	}
	urgent := l.throttle != nil || l.probeOK || l.stale ||
		(l.quota != nil && l.quota.Remaining == 0) || (!l.known && l.waiters > 0)
	switch {
	case l.err != nil && now.Before(l.retryAt):
		return nil, l.retryAt, false
	case urgent:
	case (needTokens || needSlots) && !now.Before(l.retryAt):
	case pending && now.Sub(l.lastExchange) >= reportEvery:
	case capped && l.slots > 0 && (quiet || now.Sub(l.lastExchange) >= renewEvery):
	default:
		switch {
		case needTokens || needSlots:
			next = l.retryAt
		case pending:
			next = l.lastExchange.Add(reportEvery)
		case capped && l.slots > 0:
			next = minTime(l.lastActive.Add(releaseAfter), l.lastExchange.Add(renewEvery))
		case l.waiters > 0:
			// Waiting for the pause to end: the waiters' own timers do that, and they kick.
		default:
			return nil, time.Time{}, true
		}
		// Never sleep past a report: counts that come meanwhile do not kick.
		return nil, minTime(next, now.Add(reportEvery)), false
	}
	ex = &exchange{holder: l.reg.holder, sent: l.sent, ok: l.ok, throttled: l.th, probeOK: l.probeOK,
		throttle: l.throttle, quota: l.quota}
	if needTokens {
		ex.wantTokens = l.waiters
	}
	if capped {
		ex.inFlight = l.inFlight
		if !quiet {
			ex.wantSlots = l.inFlight + l.waiters
		}
	}
	return ex, next, false
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// restoreLocked puts back the counts of an exchange that failed, to report them next time.
func (l *Limiter) restoreLocked(ex *exchange) {
	l.sent += ex.sent
	l.ok += ex.ok
	l.th += ex.throttled
	l.probeOK = l.probeOK || ex.probeOK
	if ex.throttle != nil && l.throttle == nil {
		l.throttle = ex.throttle
	}
	if ex.quota != nil && l.quota == nil {
		l.quota = ex.quota
	}
}

func (l *Limiter) applyLocked(now time.Time, ex *exchange, a answer) {
	l.rate, l.seq, l.probing, l.known = a.rate, a.seq, a.probing, true
	until := now.Add(a.pausedFor)
	if l.throttle != nil || (l.quota != nil && l.quota.Remaining == 0) {
		// A throttle came after this exchange left: keep the longer of the two pauses.
		if until.After(l.pausedUntil) {
			l.pausedUntil = until
		}
	} else {
		// The shared state holds everything this process reported: its pause is the pause.
		l.pausedUntil, l.pauseCause = until, a.cause
	}
	if a.pausedFor > 0 {
		l.tokens = 0
	}
	if a.tokens > 0 {
		l.tokens += a.tokens
		l.tokensUntil = now.Add(leaseTTL)
		l.probeToken = a.probe
	}
	if l.limits.MaxInFlight > 0 {
		l.slots = a.slots
	}
	if a.retryIn > 0 {
		l.retryAt = now.Add(max(a.retryIn, 5*time.Millisecond))
	} else {
		l.retryAt = now
	}
}

// Stats is what a Limiter knows of its provider's pacing, for metrics and status lines.
type Stats struct {
	Provider string
	// Rate is the allowed rate in requests per second; 0: no limit.
	Rate float64
	// PausedUntil is when the pause this process knows of ends; zero: not paused.
	PausedUntil time.Time
	PauseCause  string
	// Waited is how long this process's requests waited for the pacer in all.
	Waited time.Duration
	// Throttles counts the 429s (and 503s with Retry-After) this process was answered.
	Throttles int64
	InFlight  int
	Waiting   int
	Limits    Limits
}

// Stats returns the limiter's figures.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{Provider: l.name, Rate: l.rate, Waited: l.waited, Throttles: l.throttles,
		InFlight: l.inFlight, Waiting: l.waiters, Limits: l.limits}
	if time.Now().Before(l.pausedUntil) {
		s.PausedUntil, s.PauseCause = l.pausedUntil, l.pauseCause
	}
	return s
}
