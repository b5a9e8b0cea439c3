package scimtest

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// RateLimit makes the server throttle like a SaaS target: a token bucket over every
// authenticated SCIM request (the token endpoint and injected faults are not counted).
// A request that finds the bucket empty is answered 429 with Retry-After and is not
// executed, as real targets do.
type RateLimit struct {
	// PerSecond is the bucket's refill rate in requests per second. Required (> 0).
	PerSecond float64
	// Burst is the bucket's size, full at Start; 0 means max(1, PerSecond).
	Burst int
	// RetryAfter is the Retry-After sent with every 429, e.g. "1" or "5"; "" sends none.
	RetryAfter string
	// Headers sends X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset (seconds
	// until a token is back) with every answer, as GitHub and others do.
	Headers bool
}

func (l RateLimit) burst() float64 {
	if l.Burst > 0 {
		return float64(l.Burst)
	}
	return math.Max(1, l.PerSecond)
}

// bucket is the state of a RateLimit.
type bucket struct {
	mu        sync.Mutex
	limit     *RateLimit
	tokens    float64
	at        time.Time
	throttled int
}

// SetRateLimit replaces the server's rate limit (nil removes it); the new bucket starts
// full. It is safe to call while serving.
func (s *Server) SetRateLimit(l *RateLimit) {
	s.limiter.mu.Lock()
	defer s.limiter.mu.Unlock()
	if l != nil {
		c := *l
		l = &c
	}
	s.limiter.limit = l
	if l != nil {
		s.limiter.tokens, s.limiter.at = l.burst(), time.Now()
	}
}

// Throttled returns how many requests were answered 429 by the rate limit (injected faults
// not included) since the server started or the last Reset.
func (s *Server) Throttled() int {
	s.limiter.mu.Lock()
	defer s.limiter.mu.Unlock()
	return s.limiter.throttled
}

// throttle takes a token for one request. It answers 429 and returns true when the bucket
// is empty; otherwise it only sets the rate-limit headers (when asked for) and returns false.
func (s *Server) throttle(w http.ResponseWriter) bool {
	b := &s.limiter
	b.mu.Lock()
	l := b.limit
	if l == nil || l.PerSecond <= 0 {
		b.mu.Unlock()
		return false
	}
	now := time.Now()
	b.tokens = math.Min(l.burst(), b.tokens+now.Sub(b.at).Seconds()*l.PerSecond)
	b.at = now
	refused := b.tokens < 1
	if refused {
		b.throttled++
	} else {
		b.tokens--
	}
	remaining := int(math.Floor(b.tokens))
	reset := 0.0
	if b.tokens < 1 {
		reset = (1 - b.tokens) / l.PerSecond
	}
	b.mu.Unlock()

	if l.Headers {
		w.Header().Set("X-RateLimit-Limit", strconv.Itoa(int(l.burst())))
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
		w.Header().Set("X-RateLimit-Reset", strconv.Itoa(int(math.Ceil(reset))))
	}
	if !refused {
		return false
	}
	if l.RetryAfter != "" {
		w.Header().Set("Retry-After", l.RetryAfter)
	}
	writeError(w, errorf(http.StatusTooManyRequests, "", "rate limit exceeded"))
	return true
}
