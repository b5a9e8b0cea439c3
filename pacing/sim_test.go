package pacing

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/scimsync/scimsync/store"
)

// A simulation, in virtual time, of workers pacing themselves through the shared state
// (apply, as the Limiter calls it) against a target with a token bucket: it checks the
// dynamics of the rules (convergence, the share of 429s, what a target that throttles for
// ever gets), which real-time tests cannot pin down. The Limiter itself is tested apart.

type simTarget struct {
	rate, burst float64
	retryAfter  time.Duration
	randomShare float64 // throttle this share of requests whatever the rate (0: none)
	forever     bool    // throttle every request

	tokens float64
	at     time.Duration
	rng    *rand.Rand
}

func (t *simTarget) admit(now time.Duration) (ok bool) {
	switch {
	case t.forever:
		return false
	case t.randomShare > 0:
		return t.rng.Float64() >= t.randomShare
	case t.rate == 0:
		return true
	}
	t.tokens = math.Min(t.burst, t.tokens+t.rate*(now-t.at).Seconds())
	t.at = now
	if t.tokens < 1 {
		return false
	}
	t.tokens--
	return true
}

type simRequest struct {
	arrive, done time.Duration
	seq          int64
	probe        bool
	ok           bool
}

type simWorker struct {
	name        string
	inFlight    []*simRequest
	tokens      int
	tokensUntil time.Duration
	probeToken  bool
	rate        float64
	probing     bool
	known       bool
	seq         int64
	pausedUntil time.Duration
	retryAt     time.Duration
	lastEx      time.Duration
	ex          exchange
}

type simResult struct {
	wall                 time.Duration
	sent, ok, throttled  int
	maxInWindow          int // most requests arriving within one RetryAfter after a throttle
	requestTimes         []time.Duration
	finalRate            float64
	exchangesPerWorkerPS float64
}

// simulate runs workers until want requests were accepted (or until limit), each worker
// keeping up to concurrency requests in flight; requests reach the target after a
// latency with jitter and are answered after latency more.
func simulate(lim Limits, target *simTarget, workers, concurrency, want int, limit time.Duration, seed uint64) simResult {
	const tick = time.Millisecond
	const latency = 5 * time.Millisecond
	rng := rand.New(rand.NewPCG(seed, 1))
	target.rng = rand.New(rand.NewPCG(seed, 2))
	target.tokens = target.burst
	row := &store.Pacing{ProviderID: "p", RefilledAt: t0, WindowAt: t0}
	ws := make([]*simWorker, workers)
	for i := range ws {
		ws[i] = &simWorker{name: string(rune('a' + i))}
	}
	var res simResult
	exchanges := 0
	exchange := func(now time.Duration, w *simWorker, wantTokens int) {
		ex := w.ex
		ex.holder, ex.wantTokens = w.name, wantTokens
		a, _ := apply(t0.Add(now), lim, row, nil, ex)
		exchanges++
		w.ex = exchange{}
		w.lastEx = now
		w.rate, w.seq, w.probing, w.known = a.rate, a.seq, a.probing, true
		w.pausedUntil = max(w.pausedUntil, now+a.pausedFor)
		if a.pausedFor > 0 {
			w.tokens = 0
		}
		if a.tokens > 0 {
			w.tokens += a.tokens
			w.tokensUntil = now + leaseTTL
			w.probeToken = a.probe
		}
		w.retryAt = now + max(a.retryIn, 5*time.Millisecond)
		if a.retryIn == 0 {
			w.retryAt = now
		}
	}
	var now time.Duration
	for ; now < limit && res.ok < want; now += tick {
		for _, w := range ws {
			// Answers.
			kept := w.inFlight[:0]
			urgent := false
			for _, r := range w.inFlight {
				if r.done > now {
					kept = append(kept, r)
					continue
				}
				w.ex.sent++
				if r.ok {
					w.ex.ok++
					if r.probe {
						w.ex.probeOK, urgent = true, true
					}
					continue
				}
				w.ex.throttled++
				t := Throttle{RetryAfter: target.retryAfter, Seq: r.seq, Status: 429}
				if w.ex.throttle != nil {
					t.Seq = max(t.Seq, w.ex.throttle.Seq)
				}
				w.ex.throttle = &t
				d := target.retryAfter
				if d == 0 {
					d = basePause
				}
				w.pausedUntil = max(w.pausedUntil, now+d)
				w.tokens, w.probing, urgent = 0, true, true
			}
			w.inFlight = kept
			if urgent || !w.known || (now-w.lastEx >= reportEvery && w.ex.sent > 0) {
				exchange(now, w, 0)
			}
			// Admissions.
			for len(w.inFlight) < concurrency && now >= w.pausedUntil {
				limited := w.rate > 0 || w.probing
				if limited && (w.tokens == 0 || now >= w.tokensUntil) {
					w.tokens = 0
					if now < w.retryAt {
						break
					}
					exchange(now, w, concurrency-len(w.inFlight))
					if w.tokens == 0 || now < w.pausedUntil {
						break
					}
				}
				r := &simRequest{seq: w.seq, arrive: now + latency + time.Duration(rng.Int64N(int64(20*time.Millisecond)))}
				if limited {
					w.tokens--
					r.probe, w.probeToken = w.probeToken, false
				}
				r.done = r.arrive + latency
				r.ok = target.admit(r.arrive)
				res.requestTimes = append(res.requestTimes, r.arrive)
				res.sent++
				if r.ok {
					res.ok++
				} else {
					res.throttled++
				}
				w.inFlight = append(w.inFlight, r)
			}
		}
	}
	res.wall = now
	res.finalRate = allowed(lim, row)
	res.exchangesPerWorkerPS = float64(exchanges) / float64(workers) / now.Seconds()
	return res
}

func TestSimulatedConfiguredLimitStaysUnderTheTarget(t *testing.T) {
	for _, workers := range []int{1, 2, 10} {
		target := &simTarget{rate: 20, burst: 40, retryAfter: time.Second}
		res := simulate(Limits{PerMinute: 1200, Burst: 40}, target, workers, 32, 2000, 10*time.Minute, 1)
		ideal := float64(res.sent) / 20
		achieved := float64(res.sent) / res.wall.Seconds() / 20
		share := float64(res.throttled) / float64(res.sent)
		t.Logf("%d workers: %d requests in %.1fs (ideal %.1fs): achieved/allowed %.3f, 429s %.2f%%, %.1f exchanges/s per worker",
			workers, res.sent, res.wall.Seconds(), ideal, achieved, 100*share, res.exchangesPerWorkerPS)
		if achieved < 0.9 || share > 0.02 {
			t.Errorf("%d workers: achieved/allowed %.3f (want ≥ 0.9), 429s %.2f%% (want ≤ 2%%)", workers, achieved, 100*share)
		}
	}
}

func TestSimulatedLearningFindsAnUnknownLimit(t *testing.T) {
	for _, workers := range []int{1, 2} {
		target := &simTarget{rate: 20, burst: 40, retryAfter: time.Second}
		res := simulate(Limits{}, target, workers, 32, 2000, 10*time.Minute, 2)
		accepted := float64(res.ok) / res.wall.Seconds() / 20
		share := float64(res.throttled) / float64(res.sent)
		t.Logf("%d workers, nothing configured: %d requests, accepted/allowed %.3f, 429s %.2f%%, learned %.1f/s", workers, res.sent, accepted, 100*share, res.finalRate)
		// Without a configured limit the pauses do the pacing: every throttle is waited for,
		// a few percent of the requests are throttled.
		if accepted < 0.9 || share > 0.06 {
			t.Errorf("%d workers: accepted/allowed %.3f (want ≥ 0.9), 429s %.2f%% (want ≤ 6%%)", workers, accepted, 100*share)
		}
	}
}

func TestSimulatedRandomThrottlesDoNotCollapseTheRate(t *testing.T) {
	// 5% of requests throttled whatever the rate (no limit at all): each throttle pauses
	// for its Retry-After, but the rate is not cut again and again.
	target := &simTarget{randomShare: 0.05, retryAfter: time.Second}
	res := simulate(Limits{}, target, 1, 32, 2000, 10*time.Minute, 3)
	perSecond := float64(res.ok) / res.wall.Seconds()
	t.Logf("random 5%%: %d accepted in %.1fs (%.1f/s), %d throttled, learned rate %.1f/s", res.ok, res.wall.Seconds(), perSecond, res.throttled, res.finalRate)
	// Pausing a second after every twentieth request bounds this near 20 accepted a second.
	if perSecond < 12 {
		t.Errorf("%.1f accepted a second, want at least 12", perSecond)
	}
}

func TestSimulatedTargetThatThrottlesForeverGetsOneRequestPerRetryAfter(t *testing.T) {
	target := &simTarget{forever: true, retryAfter: 5 * time.Second}
	res := simulate(Limits{}, target, 2, 32, 1, time.Minute, 4)
	// The first requests go out together before the first answer; after that, one probe
	// per Retry-After.
	var after []time.Duration
	first := res.requestTimes[0]
	for _, at := range res.requestTimes {
		if at > first+time.Second {
			after = append(after, at)
		}
	}
	for i := 1; i < len(after); i++ {
		if gap := after[i] - after[i-1]; gap < 5*time.Second {
			t.Fatalf("requests %s and %s are %s apart, want at least the Retry-After of 5s", after[i-1], after[i], gap)
		}
	}
	if len(after) > 12 || len(after) < 10 {
		t.Errorf("%d requests in the minute after the first, want about one per 5s", len(after))
	}
	t.Logf("%d requests in the first second, then %d in the next 59s", len(res.requestTimes)-len(after), len(after))
}
