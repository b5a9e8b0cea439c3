package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

// The pacing scenarios: an initial full sync against a target that throttles like a SaaS
// application (a token bucket of S7Rate requests a second and S7Burst, answering 429 with
// Retry-After: 1 beyond it), with the provider configured with that limit.
//
//	S7     no Bulk, 1 worker          S7w2   no Bulk, 2 workers
//	S7b    Bulk (maxOperations 100)   S7bw2  Bulk, 2 workers
//	S7L    no Bulk, 1 worker, nothing configured: the limit is learned from the 429s
//
// Their figures come from the target's request log: achieved request rate over the limit,
// the share of 429s, requests per user created, and wall time over the ideal (the
// requests the target accepted, sent at the limit).

// PacingResult is what a pacing scenario measured.
type PacingResult struct {
	Workers          int     `json:"workers"`
	AllowedPerSecond float64 `json:"allowedPerSecond"`
	Burst            int     `json:"burst"`
	Configured       bool    `json:"configured"`
	Requests         int     `json:"requests"`
	Throttled        int     `json:"throttled"`
	// AchievedPerSecond is every request the target received over the wall time.
	AchievedPerSecond float64 `json:"achievedPerSecond"`
	AchievedToAllowed float64 `json:"achievedToAllowed"`
	ThrottledShare    float64 `json:"throttledShare"`
	// UserRequestsPerUser counts every request on /Users (creates, lookups, throttled
	// ones) per user created.
	UserRequestsPerUser float64 `json:"userRequestsPerUser"`
	// IdealSeconds is the accepted requests at the allowed rate; WallToIdeal the ratio.
	IdealSeconds float64 `json:"idealSeconds"`
	WallToIdeal  float64 `json:"wallToIdeal"`
}

type pacingScenario struct {
	name    string
	bulk    bool
	workers int
	learn   bool
}

var pacingScenarios = []pacingScenario{
	{"S7", false, 1, false}, {"S7w2", false, 2, false},
	{"S7b", true, 1, false}, {"S7bw2", true, 2, false},
	{"S7L", false, 1, true},
}

func (c Config) pacingWorld(sc pacingScenario) worldOptions {
	cfg := scimtest.Config{NoBulk: !sc.bulk}
	if sc.bulk {
		cfg.BulkMaxOperations = c.BulkMaxOperations
	}
	opts := worldOptions{users: c.S7Users, groups: c.S7Groups, workers: sc.workers,
		target: scimtest.Options{Config: cfg, MaxLogEntries: 8 * logSize(c.S7Users, c.S7Groups),
			RateLimit: &scimtest.RateLimit{PerSecond: c.S7Rate, Burst: c.S7Burst, RetryAfter: "1"}}}
	if !sc.learn {
		opts.provider = func(p *store.Provider) {
			p.RateLimitPerMinute, p.RateLimitBurst = c.S7Rate*60, c.S7Burst
		}
	}
	return opts
}

// runPacing runs the selected pacing scenarios, each in a world of its own.
func (h *harness) runPacing(ctx context.Context, rep *Report, round int) error {
	for _, sc := range pacingScenarios {
		if !h.cfg.has(sc.name) {
			continue
		}
		err := h.inWorld(ctx, fmt.Sprintf("%s-r%d", strings.ToLower(sc.name), round), h.cfg.pacingWorld(sc), func(w *world) error {
			res, err := w.fullSyncScenario(ctx, sc.name, round, true)
			if err != nil {
				return err
			}
			res.Pacing = w.pacingFigures(sc, res)
			p := res.Pacing
			h.cfg.logf("%s-r%d: %d requests, %d answered 429 (%.2f%%), %.2f requests/s = %.3f of the limit, %.3f requests per user, wall/ideal %.2f",
				sc.name, round, p.Requests, p.Throttled, 100*p.ThrottledShare, p.AchievedPerSecond, p.AchievedToAllowed,
				p.UserRequestsPerUser, p.WallToIdeal)
			rep.add(res)
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *world) pacingFigures(sc pacingScenario, res *Result) *PacingResult {
	cfg := w.h.cfg
	p := &PacingResult{Workers: sc.workers, AllowedPerSecond: cfg.S7Rate, Burst: cfg.S7Burst, Configured: !sc.learn}
	userRequests := 0
	for _, r := range w.target.Requests() {
		p.Requests++
		if r.Status == http.StatusTooManyRequests {
			p.Throttled++
		}
		if _, path, _ := strings.Cut(r.Route, " "); strings.HasPrefix(path, "/Users") {
			userRequests++
		}
	}
	if p.Requests != res.RequestsTotal {
		res.fail("the target logged %d of %d requests", p.Requests, res.RequestsTotal)
	}
	if res.WallSeconds > 0 {
		p.AchievedPerSecond = float64(p.Requests) / res.WallSeconds
		p.AchievedToAllowed = p.AchievedPerSecond / cfg.S7Rate
	}
	if p.Requests > 0 {
		p.ThrottledShare = float64(p.Throttled) / float64(p.Requests)
	}
	if res.Progress != nil && res.Progress.Users.Created > 0 {
		p.UserRequestsPerUser = float64(userRequests) / float64(res.Progress.Users.Created)
	}
	p.IdealSeconds = float64(p.Requests-p.Throttled) / cfg.S7Rate
	if p.IdealSeconds > 0 {
		p.WallToIdeal = res.WallSeconds / p.IdealSeconds
	}
	return p
}
