package scimtest

import (
	"net/http"
	"strings"
	"time"
)

// Fault makes matching requests fail or slow down. Faults are checked in
// the order they were added, before authentication; the first that fires
// decides. Add them with Server.AddFault.
type Fault struct {
	// Method matches the request method; "" matches any.
	Method string
	// Route matches the route template relative to the base path, e.g.
	// "/Users", "/Groups/{id}", "/Bulk", "/ServiceProviderConfig", or
	// "/oauth/token" for the token endpoint; "" matches any.
	Route string

	// Status, when not 0, is answered with a SCIM error body carrying
	// ScimType and Detail (or with Body when set).
	Status   int
	ScimType string
	Detail   string
	// RetryAfter, when set, is sent as the Retry-After header
	// ("120" or an HTTP date).
	RetryAfter string
	// Header holds extra response headers.
	Header http.Header
	// Body, when set, is sent verbatim with ContentType (default
	// "text/html") and Status (default 200): HTML pages, garbage, huge bodies.
	Body        string
	ContentType string

	// Rate is the probability that a matching request fires the fault;
	// 0 means 1 (always). The draw uses Options.Seed.
	Rate float64
	// Times limits how many requests the fault fires for; 0 means no limit.
	Times int
	// After lets the first After matching requests through before the fault
	// starts firing (a 429 in the middle of a sync, say).
	After int

	// Latency delays the request before it is answered (by the fault or,
	// when the fault only adds latency, normally).
	Latency time.Duration
	// Hang never answers: the request waits until the client gives up
	// or the server is closed.
	Hang bool
	// AfterServing serves the request first, its effect kept, and then
	// answers as the fault says instead, or, when the fault sets neither
	// Status nor Body nor Hang, closes the connection without an answer: an
	// answer lost on its way back, after which the client cannot know that
	// its create went through.
	AfterServing bool
}

type faultState struct {
	Fault
	fired   int
	matched int
}

// AddFault installs f. It is safe to call while serving.
func (s *Server) AddFault(f Fault) {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	s.faults = append(s.faults, &faultState{Fault: f})
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	s.faults = nil
}

// FaultsFired returns how many requests fired a fault since the last
// ClearFaults or Reset.
func (s *Server) FaultsFired() int {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	n := 0
	for _, f := range s.faults {
		n += f.fired
	}
	return n
}

// pickFault returns the fault that fires for this request, if any.
func (s *Server) pickFault(route string) (Fault, bool) {
	method, path, _ := strings.Cut(route, " ")
	s.statMu.Lock()
	defer s.statMu.Unlock()
	for _, f := range s.faults {
		if f.Method != "" && !strings.EqualFold(f.Method, method) {
			continue
		}
		if f.Route != "" && f.Route != path {
			continue
		}
		if f.Times > 0 && f.fired >= f.Times {
			continue
		}
		if f.matched++; f.matched <= f.After {
			continue
		}
		if f.Rate > 0 && f.Rate < 1 && s.rng.Float64() >= f.Rate {
			continue
		}
		f.fired++
		return f.Fault, true
	}
	return Fault{}, false
}

// injectFault applies a firing fault; true when it answered the request. serve serves the
// request with its answer discarded, for AfterServing.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request, route string, serve func()) bool {
	f, ok := s.pickFault(route)
	if !ok {
		return false
	}
	if f.AfterServing {
		serve()
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		case <-s.closing:
			return true
		}
	}
	if f.Hang {
		select {
		case <-r.Context().Done():
		case <-s.closing:
		}
		return true
	}
	for k, vs := range f.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	switch {
	case f.Body != "":
		ct := f.ContentType
		if ct == "" {
			ct = "text/html; charset=utf-8"
		}
		status := f.Status
		if status == 0 {
			status = http.StatusOK
		}
		w.Header().Set("Content-Type", ct)
		w.WriteHeader(status)
		_, _ = w.Write([]byte(f.Body))
		return true
	case f.Status != 0:
		detail := f.Detail
		if detail == "" {
			detail = "injected fault"
		}
		writeError(w, &apiError{status: f.Status, scimType: f.ScimType, detail: detail})
		return true
	case f.AfterServing:
		// The server drops the connection without writing anything.
		panic(http.ErrAbortHandler)
	}
	return false
}
