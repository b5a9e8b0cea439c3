package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/scimsync/scimsync/scimtest"
)

// The limit: what the target can take from a client that does nothing but send the
// scenario's requests. After a full sync, the requests the target logged (method, path,
// query, body) are replayed by a plain net/http client, at the pipeline's concurrency
// (Config.limitConcurrency), to a fresh target with the same options and latency, in the
// same process as the pipeline's target. No Temporal, no database, no mapping.
//
// The replay keeps the pipeline's dependencies, in three phases: writes of users (and
// discovery), then creates of groups, then the requests on existing groups (membership
// PATCHes). Remote ids differ on the fresh target, so ids in paths and bodies are
// translated by userName and displayName between phases; the translation is not timed.
// The replay runs limitReplays times, each to a fresh target; the fastest is the limit.

// logBodyLimit is how much of each request body the bench's targets keep in their logs
// (scimtest.Options.MaxLogBody): whole Bulk bodies, which the replay sends again.
const logBodyLimit = 32 << 20

var remoteIDPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// limitReplays is how many times the limit is measured; the fastest counts (the limit is
// what the target can take, and a replay of a second or less is easily disturbed).
const limitReplays = 3

// limit measures the limit of res's scenario and sets res.Limit and res.Ratio.
func (w *world) limit(ctx context.Context, res *Result) error {
	cfg := w.h.cfg
	logged := w.target.Requests()
	if len(logged) != res.RequestsTotal {
		return fmt.Errorf("limit: the target logged %d of %d requests", len(logged), res.RequestsTotal)
	}
	var phases [3][]scimtest.Request
	for _, r := range logged {
		if len(r.Body) >= logBodyLimit {
			return fmt.Errorf("limit: a %s body was truncated in the log", r.Route)
		}
		p, err := replayPhase(r)
		if err != nil {
			return err
		}
		phases[p] = append(phases[p], r)
	}
	var best *LimitResult
	var replays []float64
	for range limitReplays {
		l, err := w.replayOnce(ctx, res, phases)
		if err != nil {
			return err
		}
		if best == nil || l.WallSeconds < best.WallSeconds {
			best = l
		}
		replays = append(replays, l.WallSeconds)
	}
	best.Replays = replays
	res.Limit = best
	if best.ObjectsPerSecond > 0 {
		res.Ratio = res.ObjectsPerSecond / best.ObjectsPerSecond
	}
	cfg.logf("%s-r%d limit: %d requests at concurrency %d in %.2fs (best of %v), %.0f objects/s; pipeline/limit %.2f",
		res.Scenario, res.Round, best.Requests, best.Concurrency, best.WallSeconds, best.Replays, best.ObjectsPerSecond, res.Ratio)
	return nil
}

// replayOnce replays the phases to a fresh target.
func (w *world) replayOnce(ctx context.Context, res *Result, phases [3][]scimtest.Request) (*LimitResult, error) {
	opts := w.opts.target
	opts.Token = targetToken
	opts.MaxLogEntries = -1
	lt := scimtest.NewUnstartedServer(opts)
	if w.opts.latency > 0 {
		lt.AddFault(scimtest.Fault{Latency: w.opts.latency})
	}
	lt.Start()
	defer lt.Close()

	conc := w.h.cfg.limitConcurrency()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = conc
	hc := &http.Client{Transport: tr, Timeout: time.Minute}
	defer tr.CloseIdleConnections()

	ids := map[string]string{}
	var wall time.Duration
	sent := 0
	for i, reqs := range phases {
		switch i {
		case 1:
			translateIDs(ids, w.target.Users(), lt.Users(), "userName")
		case 2:
			translateIDs(ids, w.target.Groups(), lt.Groups(), "displayName")
		}
		prepared := make([]*replayRequest, len(reqs))
		for j, r := range reqs {
			prepared[j] = prepare(lt.RootURL(), r, ids)
		}
		start := time.Now()
		if err := replay(ctx, hc, prepared, conc); err != nil {
			return nil, fmt.Errorf("limit: %w", err)
		}
		wall += time.Since(start)
		sent += len(prepared)
	}
	l := &LimitResult{Concurrency: conc, Requests: sent, WallSeconds: wall.Seconds()}
	if wall > 0 {
		l.ObjectsPerSecond = float64(res.Objects) / wall.Seconds()
		l.RequestsPerSecond = float64(sent) / wall.Seconds()
	}
	if got := remoteState(lt); got != res.Remote {
		return nil, fmt.Errorf("limit: the replay left %+v at the target, the pipeline %+v", got, res.Remote)
	}
	return l, nil
}

// replayPhase sorts a logged request into its replay phase.
func replayPhase(r scimtest.Request) (int, error) {
	switch {
	case strings.HasSuffix(r.Route, " /Bulk"):
		var b struct {
			Operations []struct {
				Path string `json:"path"`
			} `json:"Operations"`
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			return 0, fmt.Errorf("limit: bulk body: %w", err)
		}
		phase := 0
		for _, op := range b.Operations {
			switch {
			case strings.HasPrefix(op.Path, "/Groups/"):
				phase = max(phase, 2)
			case strings.HasPrefix(op.Path, "/Groups"):
				phase = max(phase, 1)
			}
		}
		return phase, nil
	case r.Route == "POST /Groups":
		return 1, nil
	case strings.Contains(r.Route, " /Groups/"):
		return 2, nil
	}
	return 0, nil
}

// translateIDs adds old → new remote ids of resources matched by key.
func translateIDs(ids map[string]string, old, fresh []map[string]any, key string) {
	byKey := make(map[string]string, len(fresh))
	for _, r := range fresh {
		if k, ok := r[key].(string); ok {
			byKey[strings.ToLower(k)] = r["id"].(string)
		}
	}
	for _, r := range old {
		if k, ok := r[key].(string); ok {
			if id, ok := byKey[strings.ToLower(k)]; ok {
				ids[r["id"].(string)] = id
			}
		}
	}
}

type replayRequest struct {
	method, url string
	body        []byte
}

func prepare(root string, r scimtest.Request, ids map[string]string) *replayRequest {
	swap := func(b []byte) []byte {
		return remoteIDPattern.ReplaceAllFunc(b, func(id []byte) []byte {
			if n, ok := ids[string(id)]; ok {
				return []byte(n)
			}
			return id
		})
	}
	u := root + string(swap([]byte(r.Path)))
	if len(r.Query) > 0 {
		u += "?" + r.Query.Encode()
	}
	return &replayRequest{method: r.Method, url: u, body: swap(r.Body)}
}

// replay sends reqs with conc requests in flight; any answer but 2xx is an error.
func replay(ctx context.Context, hc *http.Client, reqs []*replayRequest, conc int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range min(conc, len(reqs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) || ctx.Err() != nil {
					return
				}
				if err := send(ctx, hc, reqs[i]); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr == nil {
		return ctx.Err()
	}
	return firstErr
}

func send(ctx context.Context, hc *http.Client, r *replayRequest) error {
	var body io.Reader
	if len(r.body) > 0 {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+targetToken)
	req.Header.Set("Accept", "application/scim+json")
	if len(r.body) > 0 {
		req.Header.Set("Content-Type", "application/scim+json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: %s %.200s", r.method, r.url, resp.Status, b)
	}
	return nil
}
