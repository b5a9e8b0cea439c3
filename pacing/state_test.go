package pacing

import (
	"math"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/store"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func freshRow() *store.Pacing {
	return &store.Pacing{ProviderID: "p", RefilledAt: t0, WindowAt: t0}
}

func secs(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func TestConfiguredLimitIsOneBucketWithLeases(t *testing.T) {
	lim := Limits{PerMinute: 1200, Burst: 40} // 20/s: aimed at 19/s, bucket 36
	p := freshRow()
	a, _ := apply(at(0), lim, p, nil, exchange{holder: "a", wantTokens: 100})
	if a.rate != 19 || a.tokens != 5 || !near(*p.Tokens, 31) {
		t.Fatalf("first lease: rate %v, %d tokens, %v left; want 19, 5 (a quarter second's worth), 31", a.rate, a.tokens, *p.Tokens)
	}
	// Empty the bucket: 31 more in leases of 5 and a last one of 1.
	granted := 0
	for range 7 {
		a, _ = apply(at(0), lim, p, nil, exchange{holder: "b", wantTokens: 100})
		granted += a.tokens
	}
	if granted != 31 || a.tokens != 1 || a.retryIn != secs(4.0/19) {
		t.Fatalf("granted %d, last %d, retry in %s; want 31, 1, the rest of a lease's refill (210ms)", granted, a.tokens, a.retryIn)
	}
	a, _ = apply(at(0), lim, p, nil, exchange{holder: "a", wantTokens: 100})
	if a.tokens != 0 || a.retryIn != secs(5.0/19) {
		t.Fatalf("empty bucket: %d granted, retry in %s; want 0, a lease's refill (263ms)", a.tokens, a.retryIn)
	}
	// One waiter asks for one token: it is told to come back when one has refilled.
	a, _ = apply(at(0), lim, p, nil, exchange{holder: "b", wantTokens: 1})
	if a.tokens != 0 || a.retryIn != secs(1.0/19) {
		t.Fatalf("one token wanted from an empty bucket: %d granted, retry in %s", a.tokens, a.retryIn)
	}
	// A second later 19 tokens are back, never more than the bucket holds.
	a, _ = apply(at(time.Second), lim, p, nil, exchange{holder: "a"})
	if !near(*p.Tokens, 19) || a.tokens != 0 {
		t.Fatalf("after 1s: %v tokens, %d granted to a report; want 19, 0", *p.Tokens, a.tokens)
	}
	apply(at(time.Hour), lim, p, nil, exchange{holder: "a"})
	if !near(*p.Tokens, 36) {
		t.Fatalf("after an hour: %v tokens, want the bucket's 36", *p.Tokens)
	}
}

func TestNoLimitGrantsEverythingAndCounts(t *testing.T) {
	p := freshRow()
	a, up := apply(at(0), Limits{}, p, nil, exchange{holder: "a", wantTokens: 500, sent: 40, ok: 40})
	if a.rate != 0 || a.tokens != 500 || p.Tokens != nil || up.Notify {
		t.Fatalf("no limit: %+v, tokens %v, notify %v", a, p.Tokens, up.Notify)
	}
	if p.WindowSent != 40 || p.SentTotal != 40 {
		t.Fatalf("counts: window %d, total %d; want 40, 40", p.WindowSent, p.SentTotal)
	}
	apply(at(6*time.Second), Limits{}, p, nil, exchange{holder: "a", sent: 10, ok: 10})
	if p.PrevSent != 40 || p.WindowSent != 10 || p.PrevSeconds != 6 {
		t.Fatalf("window roll: prev %d over %vs, current %d", p.PrevSent, p.PrevSeconds, p.WindowSent)
	}
	if sent, ok, share := rates(at(6*time.Second), p); !near(sent, 50.0/6) || !near(ok, 50.0/6) || share != 0 {
		t.Fatalf("rates: %v sent/s, %v ok/s, share %v", sent, ok, share)
	}
}

func TestThrottlePausesEveryoneThenOneProbe(t *testing.T) {
	lim := Limits{PerMinute: 1200, Burst: 40}
	p := freshRow()
	apply(at(0), lim, p, nil, exchange{holder: "a", wantTokens: 5, sent: 100, ok: 100})
	// One 429 with Retry-After 5s among 100 requests: a pause, not a cut (1% of requests).
	a, up := apply(at(time.Second), lim, p, nil, exchange{holder: "a", sent: 1, throttled: 1,
		throttle: &Throttle{RetryAfter: 5 * time.Second, Seq: 0, Status: 429}})
	if !up.Notify || a.pausedFor != 5*time.Second || !a.probing || p.LearnedRate != nil || p.Throttles != 1 {
		t.Fatalf("after the 429: %+v notify %v learned %v throttles %d", a, up.Notify, p.LearnedRate, p.Throttles)
	}
	if a.cause != "429 with Retry-After 5s" {
		t.Errorf("cause %q", a.cause)
	}
	// Another worker during the pause gets nothing and knows until when.
	a, _ = apply(at(3*time.Second), lim, p, nil, exchange{holder: "b", wantTokens: 8})
	if a.tokens != 0 || a.pausedFor != 3*time.Second {
		t.Fatalf("during the pause: %+v", a)
	}
	// After it: one probe for the first to ask, nothing for the others until it is answered.
	a, _ = apply(at(6*time.Second), lim, p, nil, exchange{holder: "b", wantTokens: 8})
	if a.tokens != 1 || !a.probe {
		t.Fatalf("after the pause: %+v, want the single probe", a)
	}
	a, _ = apply(at(6*time.Second+time.Millisecond), lim, p, nil, exchange{holder: "a", wantTokens: 8})
	if a.tokens != 0 || a.retryIn <= 0 {
		t.Fatalf("while the probe is out: %+v", a)
	}
	a, up = apply(at(6*time.Second+2*time.Millisecond), lim, p, nil, exchange{holder: "b", sent: 1, ok: 1, probeOK: true})
	if a.probing || !up.Notify {
		t.Fatalf("after the probe: %+v notify %v, want the others told", a, up.Notify)
	}
	// The bucket did not fill during the pause: requests resume at the allowed rate.
	a, _ = apply(at(6*time.Second+300*time.Millisecond), lim, p, nil, exchange{holder: "a", wantTokens: 8})
	if a.tokens != 5 || !near(*p.Tokens, 19*0.3-5) {
		t.Fatalf("300ms after the pause: %d tokens granted, %v left; want 5 and %v", a.tokens, *p.Tokens, 19*0.3-5)
	}
}

func TestAProbeThatIsNeverAnsweredExpires(t *testing.T) {
	p := freshRow()
	apply(at(0), Limits{}, p, nil, exchange{holder: "a", sent: 1, throttled: 1, throttle: &Throttle{RetryAfter: time.Second, Status: 429}})
	a, _ := apply(at(2*time.Second), Limits{}, p, nil, exchange{holder: "a", wantTokens: 3})
	if !a.probe || a.tokens != 1 {
		t.Fatalf("probe: %+v", a)
	}
	a, _ = apply(at(2*time.Second+probeTimeout-time.Millisecond), Limits{}, p, nil, exchange{holder: "b", wantTokens: 3})
	if a.tokens != 0 {
		t.Fatalf("before the probe timeout: %+v", a)
	}
	a, _ = apply(at(2*time.Second+probeTimeout), Limits{}, p, nil, exchange{holder: "b", wantTokens: 3})
	if !a.probe || a.tokens != 1 {
		t.Fatalf("after the probe timeout: %+v, want another probe", a)
	}
}

func TestFrequentThrottlesCutTheRateOnceAndItGrowsBack(t *testing.T) {
	lim := Limits{PerMinute: 2400, Burst: 40} // aimed at 38/s; the target takes only 20/s
	p := freshRow()
	apply(at(0), lim, p, nil, exchange{holder: "a", sent: 60, ok: 50})
	// 10 throttled of the 70 sent (14%) cut the rate, but never below what the target was
	// seen to accept: 50 in the first second, more than 38, so the rate stays at 38.
	a, _ := apply(at(time.Second), lim, p, nil, exchange{holder: "a", sent: 10, throttled: 10,
		throttle: &Throttle{RetryAfter: time.Second, Seq: 0, Status: 429}})
	if p.Epoch != 1 || a.rate != 38 {
		t.Fatalf("cut: seq %d rate %v", p.Epoch, a.rate)
	}
	// Throttles of requests admitted before the cut do not cut again.
	apply(at(time.Second+10*time.Millisecond), lim, p, nil, exchange{holder: "b", sent: 5, throttled: 5,
		throttle: &Throttle{RetryAfter: time.Second, Seq: 0, Status: 429}})
	if p.Epoch != 1 {
		t.Fatalf("a throttle from before the cut cut again: seq %d", p.Epoch)
	}
	// Now slower acceptance: 20/s over 10 s, and throttles of requests admitted after the cut.
	q := freshRow()
	apply(at(0), lim, q, nil, exchange{holder: "a", sent: 100, ok: 100})
	apply(at(5*time.Second), lim, q, nil, exchange{holder: "a", sent: 100, ok: 100})
	a, _ = apply(at(10*time.Second), lim, q, nil, exchange{holder: "a", sent: 30, throttled: 30,
		throttle: &Throttle{RetryAfter: time.Second, Seq: 0, Status: 429}})
	// Sent 230 over 10s, accepted 200 (20/s), throttled 13%: cut to max(19, 19) = 19.
	if !near(a.rate, 19) || q.Epoch != 1 {
		t.Fatalf("cut to %v (seq %d), want 19", a.rate, q.Epoch)
	}
	// No throttle for a while and the workers use the rate: it grows 5% a second.
	apply(at(11*time.Second), lim, q, nil, exchange{holder: "a"}) // pause over
	apply(at(12*time.Second), lim, q, nil, exchange{holder: "a", sent: 40, ok: 40})
	if r := *q.LearnedRate; !(r > 19 && r <= 19*math.Pow(growFactor, 2)+1e-9) {
		t.Fatalf("after 2 quiet seconds the rate is %v", r)
	}
	// At the ceiling the learned rate is forgotten.
	for i := range 40 {
		apply(at(time.Duration(13+i)*time.Second), lim, q, nil, exchange{holder: "a", sent: 40, ok: 40})
	}
	if q.LearnedRate != nil {
		t.Fatalf("after 40 quiet seconds the learned rate is %v, want none (back at the ceiling)", *q.LearnedRate)
	}
}

func TestThrottlesWithoutRetryAfterPauseLongerEachTime(t *testing.T) {
	p := freshRow()
	var pauses []time.Duration
	now := at(0)
	for range 4 {
		a, _ := apply(now, Limits{}, p, nil, exchange{holder: "a", sent: 1, throttled: 1, throttle: &Throttle{Status: 429, Seq: p.Epoch}})
		pauses = append(pauses, a.pausedFor)
		now = now.Add(a.pausedFor)
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
	for i := range want {
		if pauses[i] != want[i] {
			t.Fatalf("pauses %v, want %v", pauses, want)
		}
	}
	// A request answered otherwise ends the series.
	apply(now.Add(time.Millisecond), Limits{}, p, nil, exchange{holder: "a", sent: 1, ok: 1, probeOK: true})
	a, _ := apply(now.Add(2*time.Millisecond), Limits{}, p, nil, exchange{holder: "a", sent: 1, throttled: 1, throttle: &Throttle{Status: 429}})
	if a.pausedFor != time.Second {
		t.Fatalf("after a success the pause is %s, want 1s again", a.pausedFor)
	}
}

func TestRetryAfterIsCappedAtAnHour(t *testing.T) {
	p := freshRow()
	a, _ := apply(at(0), Limits{}, p, nil, exchange{holder: "a", sent: 1, throttled: 1,
		throttle: &Throttle{RetryAfter: 30 * 24 * time.Hour, Status: 503}})
	if a.pausedFor != scim.MaxRetryAfter {
		t.Fatalf("paused for %s, want %s", a.pausedFor, scim.MaxRetryAfter)
	}
}

func TestTheTargetsQuotaIsHonoured(t *testing.T) {
	p := freshRow()
	a, up := apply(at(0), Limits{}, p, nil, exchange{holder: "a", sent: 1, ok: 1, quota: &scim.Quota{Remaining: 0, Reset: 30 * time.Second}})
	if a.pausedFor != 30*time.Second || !up.Notify || a.probing {
		t.Fatalf("quota spent: %+v notify %v, want a 30s pause without probe", a, up.Notify)
	}
	q := freshRow()
	a, _ = apply(at(0), Limits{PerMinute: 6000}, q, nil, exchange{holder: "a", sent: 1, ok: 1, quota: &scim.Quota{Remaining: 600, Reset: time.Minute}})
	if !near(a.rate, 10) {
		t.Fatalf("600 left for a minute: rate %v, want 10/s", a.rate)
	}
}

func TestSlotsAreSharedFairly(t *testing.T) {
	now := at(0)
	// a alone wants 10 of 8.
	n, s := claim(now, 8, nil, exchange{holder: "a", wantSlots: 10})
	if n != 8 || s.Wanted != 10 {
		t.Fatalf("alone: %d slots (%+v)", n, s)
	}
	// b arrives: a holds all 8, so b gets none but says it wants 5.
	slots := []store.PacingSlot{{Holder: "a", Slots: 8, Wanted: 10}}
	n, s = claim(now, 8, slots, exchange{holder: "b", wantSlots: 5})
	if n != 0 || s.Wanted != 5 {
		t.Fatalf("b while a holds everything: %d", n)
	}
	// a's next exchange shrinks to its fair share, but never below what it has in flight.
	slots = []store.PacingSlot{{Holder: "b", Slots: 0, Wanted: 5}}
	if n, _ = claim(now, 8, slots, exchange{holder: "a", wantSlots: 10, inFlight: 6}); n != 6 {
		t.Fatalf("a with 6 in flight: %d slots, want 6", n)
	}
	if n, _ = claim(now, 8, slots, exchange{holder: "a", wantSlots: 10, inFlight: 2}); n != 4 {
		t.Fatalf("a with 2 in flight: %d slots, want its fair 4", n)
	}
	slots = []store.PacingSlot{{Holder: "a", Slots: 4, Wanted: 10}}
	if n, _ = claim(now, 8, slots, exchange{holder: "b", wantSlots: 5}); n != 4 {
		t.Fatalf("b after a shrank: %d, want 4", n)
	}
	// Nothing wanted, nothing in flight: the claim is dropped.
	if n, s = claim(now, 8, slots, exchange{holder: "b"}); n != 0 || s.Slots != 0 || s.Wanted != 0 {
		t.Fatalf("release: %d %+v", n, s)
	}
}
