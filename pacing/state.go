package pacing

import (
	"fmt"
	"math"
	"time"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

// The rules of the shared state, in one place. Every number here is documented in
// docs/pacing.md; change both together.
const (
	// rateMargin and burstMargin: scimsync aims a little under a configured limit, so that
	// requests bunched up by network jitter still fit the target's own bucket.
	rateMargin  = 0.95
	burstMargin = 0.9

	// window is how long the counts of requests sent, accepted and throttled are gathered
	// before they become the previous window's rates.
	window = 5 * time.Second
	// The learned rate grows only while the workers use it: they send at least binding of it.
	binding = 0.8
	// cutShare: when throttles are at least this share of the requests sent in the last two
	// windows, the rate is cut by cutFactor, but never below what the target was seen to
	// accept (okMargin of the accepted rate). A rarer throttle only takes back the growth
	// since the last cut: sporadic 429s that slowing down would not stop (a target that
	// refuses a share of requests whatever the rate) must not wear the rate down.
	cutShare  = 0.10
	cutFactor = 0.5
	okMargin  = 0.9
	// minSample: a share of throttles among fewer requests than this says nothing, unless
	// the throttles come in a row (the probe after a pause throttled again).
	minSample = 20
	// growEvery and growFactor are the increase: while no throttle comes and the workers
	// use what they are allowed, the learned rate grows by 2% a second.
	growEvery  = time.Second
	growFactor = 1.02
	// forgetAfter: a learned rate with no configured limit above it is forgotten after this
	// long without a throttle.
	forgetAfter = 15 * time.Minute
	// minRate is the lowest learned rate (unless the configured limit is lower).
	minRate = 0.05

	// basePause is the pause after a throttle without Retry-After, doubled for each
	// throttle in a row up to maxBasePause.
	basePause    = time.Second
	maxBasePause = time.Minute
	// probeTimeout: a probe that is never answered (its worker died) stops blocking after
	// this long, and another probe goes.
	probeTimeout = 10 * time.Second

	// leaseShare bounds the tokens one exchange hands out, as seconds of the allowed rate,
	// so that workers share the bucket; leaseTTL is how long a worker may use them.
	leaseShare = 250 * time.Millisecond
	leaseTTL   = 500 * time.Millisecond
	// slotTTL is how long a claim on requests in flight lasts without renewal; slotRetry
	// is when a worker that got fewer slots than it wants asks again.
	slotTTL   = 30 * time.Second
	slotRetry = 100 * time.Millisecond
)

// Limits are a provider's configured limits (the operator's, or its compatibility mode's
// published ones).
type Limits struct {
	// PerMinute is the ceiling on requests per minute; 0: none.
	PerMinute float64
	// Burst is the bucket size; 0: one second's worth of the rate.
	Burst int
	// MaxInFlight caps the requests in flight across workers; 0: no cap.
	MaxInFlight int
	// Source says where the limits come from, for status lines: "config" or a vendor.
	Source string
}

// ceiling is the rate aimed at under the configured limit, per second; 0: none.
func (l Limits) ceiling() float64 { return l.PerMinute / 60 * rateMargin }

// burst is the bucket size at rate r.
func (l Limits) burst(r float64) float64 {
	if l.Burst > 0 {
		return math.Max(1, math.Min(float64(l.Burst)*burstMargin, float64(l.Burst)-1))
	}
	return math.Max(1, r)
}

func (l Limits) floor() float64 {
	if c := l.ceiling(); c > 0 {
		return math.Min(minRate, c)
	}
	return minRate
}

// Throttle is a 429 (or 503 with Retry-After) answered to one request.
type Throttle struct {
	RetryAfter time.Duration
	// Seq is the cut sequence the request was admitted under: a throttle of a request sent
	// before the last cut was already answered by it.
	Seq int64
	// Status is the HTTP status (429 or 503).
	Status int
}

// exchange is what one worker tells and asks the shared state in one transaction.
type exchange struct {
	holder string
	// wantTokens is how many requests wait for a token (0: only report).
	wantTokens int
	// wantSlots is how many slots the worker wants (in flight + waiting) when capped;
	// inFlight is how many it has in flight (its claim never drops below).
	wantSlots, inFlight int
	// Counts since the last exchange: requests sent, answered otherwise than by a throttle,
	// and throttled.
	sent, ok, throttled int64
	// probeOK is set when a probe of this worker was answered without a throttle.
	probeOK  bool
	throttle *Throttle
	quota    *scim.Quota
}

// answer is what the shared state grants.
type answer struct {
	tokens int
	// probe is set when the single token is the probe after a pause.
	probe bool
	slots int
	// pausedFor is how long the provider is paused from now; 0: not paused.
	pausedFor time.Duration
	// retryIn is when to ask again for the tokens not granted.
	retryIn time.Duration
	// rate is the allowed rate now, per second; 0: no limit.
	rate    float64
	seq     int64
	probing bool
	cause   string // why the provider is paused
}

// apply runs one exchange on the shared row at the database's time now. It returns the
// answer and what to save besides the row.
func apply(now time.Time, lim Limits, p *store.Pacing, slots []store.PacingSlot, ex exchange) (answer, store.PacingUpdate) {
	var up store.PacingUpdate
	account(now, p, ex)

	if ex.probeOK && p.Probing {
		p.Probing, p.ProbeUntil, p.Strikes = false, nil, 0
		up.Notify = true // workers waiting behind the probe may go
	}
	if ex.ok > 0 && ex.throttle == nil && !paused(now, p) {
		p.Strikes = 0
	}
	if t := ex.throttle; t != nil {
		throttled(now, lim, p, *t)
		up.Notify = true
	}
	if q := ex.quota; q != nil && quota(now, lim, p, *q) {
		up.Notify = true
	}
	grow(now, lim, p)

	r := allowed(lim, p)
	if r > 0 {
		// The bucket does not fill while the provider is paused: after a pause requests go
		// at the allowed rate, not in a burst the target has just refused.
		from := p.RefilledAt
		if p.PausedUntil != nil {
			from = maxTime(from, minTime(*p.PausedUntil, now))
		}
		b := lim.burst(r)
		tokens := b
		if p.Tokens != nil {
			tokens = math.Min(b, *p.Tokens+r*math.Max(0, now.Sub(from).Seconds()))
		}
		p.Tokens = &tokens
	} else {
		p.Tokens = nil
	}
	p.RefilledAt = now

	a := answer{rate: r, seq: p.Epoch, probing: p.Probing}
	switch {
	case paused(now, p):
		a.pausedFor, a.cause = p.PausedUntil.Sub(now), p.PauseCause
	case p.Probing:
		if ex.wantTokens > 0 && (p.ProbeUntil == nil || !now.Before(*p.ProbeUntil)) {
			until := now.Add(probeTimeout)
			p.ProbeUntil = &until
			a.tokens, a.probe = 1, true
			if p.Tokens != nil {
				*p.Tokens = math.Max(0, *p.Tokens-1)
			}
		} else if ex.wantTokens > 0 {
			a.retryIn = p.ProbeUntil.Sub(now)
		}
	case r == 0:
		a.tokens = ex.wantTokens
	default:
		lease := min(ex.wantTokens, max(1, int(math.Ceil(r*leaseShare.Seconds()))))
		a.tokens = min(lease, int(*p.Tokens))
		*p.Tokens -= float64(a.tokens)
		if a.tokens < ex.wantTokens {
			// Ask again when a whole lease (or the one token wanted) has refilled.
			need := float64(max(1, lease-a.tokens)) - *p.Tokens
			a.retryIn = time.Duration(math.Max(need, 0) / r * float64(time.Second))
		}
	}
	if p.PausedUntil != nil && !paused(now, p) {
		p.PausedUntil, p.PauseCause = nil, ""
	}
	if lim.MaxInFlight > 0 {
		a.slots, up.Slot = claim(now, lim.MaxInFlight, slots, ex)
		if a.slots < ex.wantSlots && a.retryIn == 0 {
			// The others hold the slots: they give some back at their next exchanges.
			a.retryIn = slotRetry
		}
	}
	return a, up
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func paused(now time.Time, p *store.Pacing) bool {
	return p.PausedUntil != nil && now.Before(*p.PausedUntil)
}

// allowed is the rate aimed at, per second: the learned rate under the configured
// ceiling; 0 when neither is set.
func allowed(lim Limits, p *store.Pacing) float64 {
	c := lim.ceiling()
	if p.LearnedRate != nil && (c == 0 || *p.LearnedRate < c) {
		return *p.LearnedRate
	}
	return c
}

// account adds the exchange's counts to the current window, rolling it when it is over.
func account(now time.Time, p *store.Pacing, ex exchange) {
	if elapsed := now.Sub(p.WindowAt); elapsed >= window {
		p.PrevSeconds = elapsed.Seconds()
		p.PrevSent, p.PrevOK, p.PrevThrottled = p.WindowSent, p.WindowOK, p.WindowThrottled
		if elapsed >= 2*window {
			// Nothing was reported for a while: the window before is old news.
			p.PrevSeconds, p.PrevSent, p.PrevOK, p.PrevThrottled = 0, 0, 0, 0
		}
		p.WindowAt, p.WindowSent, p.WindowOK, p.WindowThrottled = now, 0, 0, 0
	}
	p.WindowSent += ex.sent
	p.WindowOK += ex.ok
	p.WindowThrottled += ex.throttled
	p.SentTotal += ex.sent
}

// rates returns the sent and accepted rates, per second, over the last two windows, and
// the share of throttles among the requests sent.
func rates(now time.Time, p *store.Pacing) (sent, ok, share float64) {
	// At least a second: a rate from a handful of requests in a few milliseconds means
	// nothing.
	secs := math.Max(p.PrevSeconds+now.Sub(p.WindowAt).Seconds(), 1)
	n := float64(p.PrevSent + p.WindowSent)
	sent, ok = n/secs, float64(p.PrevOK+p.WindowOK)/secs
	if n > 0 {
		share = float64(p.PrevThrottled+p.WindowThrottled) / n
	}
	return sent, ok, share
}

// throttled answers a throttle. One of a request admitted before the last pause began
// (in flight when it came) only extends that pause. Any other begins a pause for its
// Retry-After (or the base pause, doubled for every throttle in a row), makes the next
// request a probe, and may lower the allowed rate: by cutFactor when throttles are
// frequent (or come in a row), back to the rate before the last growth when they are not.
func throttled(now time.Time, lim Limits, p *store.Pacing, t Throttle) {
	p.Throttles++
	p.LastThrottleAt = &now
	fresh := t.Seq >= p.Epoch
	d := t.RetryAfter
	if d <= 0 {
		d = min(basePause<<min(max(p.Strikes-1, 0), 10), maxBasePause)
		if fresh {
			d = min(basePause<<min(p.Strikes, 10), maxBasePause)
		}
	}
	d = min(d, scim.MaxRetryAfter)
	if until := now.Add(d); p.PausedUntil == nil || until.After(*p.PausedUntil) {
		p.PausedUntil = &until
		p.PauseCause = pauseCause(t)
	}
	if !fresh {
		return
	}
	p.Strikes++
	p.Epoch++
	p.Probing, p.ProbeUntil = true, nil
	if p.Tokens != nil {
		zero := 0.0
		p.Tokens = &zero // the target's bucket is empty, so is ours
	}

	sent, ok, share := rates(now, p)
	cur := allowed(lim, p)
	var next float64
	switch n := p.PrevSent + p.WindowSent; {
	case (share >= cutShare && n >= minSample) || p.Strikes >= 3:
		if cur == 0 {
			cur = math.Max(sent, 1)
		}
		next = math.Min(math.Max(cur*cutFactor, ok*okMargin), cur)
		next = math.Max(next, lim.floor())
		p.BaseRate = &next
	case p.LearnedRate != nil && p.BaseRate != nil && cur > *p.BaseRate:
		next = *p.BaseRate
	default:
		return
	}
	p.LearnedRate = &next
	p.LastCutAt, p.GrownAt = &now, &now
}

func pauseCause(t Throttle) string {
	if t.RetryAfter > 0 {
		return fmt.Sprintf("%d with Retry-After %s", t.Status, t.RetryAfter.Round(time.Second))
	}
	return fmt.Sprintf("%d without Retry-After", t.Status)
}

// quota applies what a target's rate-limit headers said: nothing left pauses until the
// reset; what is left, spread over the time to the reset, caps the learned rate. It
// reports whether the provider was paused.
func quota(now time.Time, lim Limits, p *store.Pacing, q scim.Quota) bool {
	if q.Reset <= 0 {
		return false
	}
	if q.Remaining == 0 {
		until := now.Add(q.Reset)
		if p.PausedUntil == nil || until.After(*p.PausedUntil) {
			p.PausedUntil = &until
			p.PauseCause = "the target's quota is spent (RateLimit-Remaining 0)"
			return true
		}
		return false
	}
	hint := math.Max(float64(q.Remaining)/q.Reset.Seconds(), lim.floor())
	if cur := allowed(lim, p); cur == 0 || hint < cur*0.9 {
		p.LearnedRate = &hint
		p.GrownAt = &now
	}
	if p.Tokens != nil && *p.Tokens > float64(q.Remaining) {
		*p.Tokens = float64(q.Remaining)
	}
	return false
}

// grow raises the learned rate by growFactor a second while no throttle comes and the
// workers send at least 80% of it, and forgets it at the ceiling or after forgetAfter.
func grow(now time.Time, lim Limits, p *store.Pacing) {
	if p.LearnedRate == nil {
		return
	}
	if p.GrownAt == nil {
		p.GrownAt = &now
		return
	}
	quietSince := *p.GrownAt
	if p.LastThrottleAt != nil && p.LastThrottleAt.After(quietSince) {
		quietSince = *p.LastThrottleAt
	}
	if lim.ceiling() == 0 && p.LastThrottleAt != nil && now.Sub(*p.LastThrottleAt) >= forgetAfter {
		p.LearnedRate, p.GrownAt = nil, nil
		return
	}
	elapsed := now.Sub(quietSince)
	if elapsed < growEvery || paused(now, p) {
		return
	}
	if sent, _, _ := rates(now, p); sent >= binding**p.LearnedRate {
		next := *p.LearnedRate * math.Pow(growFactor, math.Min(elapsed.Seconds(), 10))
		if c := lim.ceiling(); c > 0 && next >= c {
			p.LearnedRate = nil
		} else {
			p.LearnedRate = &next
		}
	}
	p.GrownAt = &now
}

// claim decides the holder's share of the requests in flight: what it wants, within what
// the others leave; its fair share when others want more than they hold; never less than
// it has in flight.
func claim(now time.Time, capacity int, slots []store.PacingSlot, ex exchange) (int, *store.PacingSlot) {
	held, hungry := 0, 0
	for _, s := range slots {
		if s.Holder == ex.holder {
			continue
		}
		held += s.Slots
		if s.Wanted > s.Slots {
			hungry++
		}
	}
	mine := min(ex.wantSlots, max(capacity-held, 0))
	if hungry > 0 {
		fair := (capacity + hungry) / (hungry + 1) // ceil(capacity / (hungry+1))
		mine = min(mine, fair)
	}
	mine = max(mine, ex.inFlight)
	return mine, &store.PacingSlot{Holder: ex.holder, Slots: mine, Wanted: ex.wantSlots, ExpiresAt: now.Add(slotTTL)}
}

// Snapshot is a provider's pacing as the shared state holds it, for status lines and the
// progress of a full sync.
type Snapshot struct {
	Limits Limits
	// Allowed is the rate requests are paced at, per second: learned under the limit, or
	// the limit; 0: none.
	Allowed float64
	// Learned is set when the allowed rate was learned from the target.
	Learned bool
	// Sent and Accepted are what every worker together sent and the target accepted, per
	// second, over the last few seconds.
	Sent, Accepted float64
	// Throttles counts the 429s (and 503s with Retry-After) since pacing began.
	Throttles      int64
	LastThrottleAt time.Time
	// PausedUntil is when the provider's pause ends; zero when it is not paused.
	PausedUntil time.Time
	PauseCause  string
	// Probing is set after a pause, until a request is answered without a throttle.
	Probing bool
	// At is the database's time of the reading.
	At time.Time
}

// Describe reads p (as of the database's time now) for display.
func Describe(lim Limits, p store.Pacing, now time.Time) Snapshot {
	s := Snapshot{Limits: lim, Allowed: allowed(lim, &p), Throttles: p.Throttles, Probing: p.Probing, At: now}
	s.Learned = p.LearnedRate != nil && s.Allowed == *p.LearnedRate
	if now.Sub(p.WindowAt) < 2*window {
		s.Sent, s.Accepted, _ = rates(now, &p)
	}
	if p.LastThrottleAt != nil {
		s.LastThrottleAt = *p.LastThrottleAt
	}
	if paused(now, &p) {
		s.PausedUntil, s.PauseCause = *p.PausedUntil, p.PauseCause
	}
	return s
}
