package scim

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Pacer paces the requests of a Client (Options.Pacer): it decides when each request may
// be sent and learns from what the target answers. Package pacing implements one per
// provider, shared by every worker of an installation.
//
// With a Pacer, a request the target refuses with 429 (or 503 with Retry-After) is sent
// again by the Client once the Pacer lets it, until it is answered otherwise or the
// context ends: a refused request was not executed, so sending it again is always safe,
// and waiting is the Pacer's job, not the caller's.
type Pacer interface {
	// Wait blocks until one more request may be sent, or until ctx ends, whose error it
	// then returns. Every Permit it returns must be finished with Done.
	Wait(ctx context.Context) (Permit, error)
}

// Permit admits one request. Done reports what happened to it, exactly once.
type Permit interface {
	Done(Outcome)
}

// Outcome is what became of one paced request.
type Outcome struct {
	// Status is the HTTP status; 0 when no answer came.
	Status int
	// Sent is false when the request never reached the target (the connection failed
	// before it was written, or the context ended first).
	Sent bool
	// Throttled is true for a 429, and for a 503 with Retry-After: slow down.
	Throttled bool
	// RetryAfter is the target's Retry-After, capped at MaxRetryAfter; 0 when absent.
	RetryAfter time.Duration
	// Quota is what the target's rate-limit headers said; nil when it sent none.
	Quota *Quota
}

// Quota is a target's own account of its rate limit, from the RateLimit header fields
// (IETF httpapi drafts: "RateLimit: limit=100, remaining=50, reset=5" or
// `"default";r=50;t=5`, and RateLimit-Remaining / RateLimit-Reset) or the older
// X-RateLimit-Remaining / X-RateLimit-Reset that GitHub, Slack and others send.
type Quota struct {
	// Remaining is how many requests the target still accepts in its current window.
	Remaining int
	// Reset is how long until the window resets (or a request is accepted again when
	// Remaining is 0); 0 when the target did not say.
	Reset time.Duration
}

// ParseQuota reads the rate-limit headers of an answer; nil when there are none or they
// say nothing usable. A reset above 10^9 is a Unix time (GitHub's X-RateLimit-Reset),
// else delay-seconds; both are capped at MaxRetryAfter.
func ParseQuota(h http.Header, now time.Time) *Quota {
	remaining, reset := -1, ""
	if v := h.Get("RateLimit"); v != "" {
		remaining, reset = parseRateLimitField(v)
	}
	for _, prefix := range []string{"RateLimit-", "X-RateLimit-"} {
		if remaining < 0 {
			if n, err := strconv.Atoi(strings.TrimSpace(h.Get(prefix + "Remaining"))); err == nil && n >= 0 {
				remaining = n
			}
		}
		if reset == "" {
			reset = strings.TrimSpace(h.Get(prefix + "Reset"))
		}
	}
	if remaining < 0 {
		return nil
	}
	return &Quota{Remaining: remaining, Reset: parseReset(reset, now)}
}

// parseRateLimitField reads remaining and reset from a RateLimit field in either draft
// syntax: "limit=100, remaining=50, reset=5" or `"default";q=100;r=50;t=5`.
func parseRateLimitField(v string) (remaining int, reset string) {
	remaining = -1
	for _, item := range strings.Split(v, ",") {
		for _, param := range strings.Split(item, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(param), "=")
			if !ok {
				continue
			}
			val = strings.Trim(strings.TrimSpace(val), `"`)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "remaining", "r":
				if n, err := strconv.Atoi(val); err == nil && n >= 0 && remaining < 0 {
					remaining = n
				}
			case "reset", "t":
				if reset == "" {
					reset = val
				}
			}
		}
	}
	return remaining, reset
}

func parseReset(v string, now time.Time) time.Duration {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	var d time.Duration
	if f > 1e9 {
		d = time.Unix(int64(f), 0).Sub(now)
	} else {
		d = time.Duration(math.Min(f, MaxRetryAfter.Seconds()) * float64(time.Second))
	}
	return min(max(d, 0), MaxRetryAfter)
}
