package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/scimsync/scimsync/workflows"
)

// Result is one run of one scenario.
type Result struct {
	Scenario    string `json:"scenario"`
	Round       int    `json:"round"`
	Description string `json:"description"`
	Users       int    `json:"users"`
	Groups      int    `json:"groups"`
	Memberships int    `json:"memberships"`
	// Objects is what the scenario handles: users + groups for a full sync, the changes
	// for S4.
	Objects          int     `json:"objects"`
	WallSeconds      float64 `json:"wallSeconds"`
	ObjectsPerSecond float64 `json:"objectsPerSecond"`
	// Requests counts the HTTP requests the target received, by method; Routes by route.
	Requests      map[string]int `json:"requests"`
	Routes        map[string]int `json:"routes"`
	RequestsTotal int            `json:"requestsTotal"`
	Mutations     int            `json:"mutations"`
	// Workflows and activities the worker ran (continue-as-new runs count as workflows;
	// retried activity attempts count as activities).
	Workflows        int            `json:"workflows"`
	WorkflowsByType  map[string]int `json:"workflowsByType"`
	Activities       int            `json:"activities"`
	ActivitiesByType map[string]int `json:"activitiesByType"`
	// LocalActivities counts the local activities (run inside workflow tasks), which
	// Activities leaves out.
	LocalActivities       int            `json:"localActivities"`
	LocalActivitiesByType map[string]int `json:"localActivitiesByType,omitempty"`
	// TemporalRequests counts the worker's gRPC calls to the Temporal server.
	TemporalRequests int `json:"temporalRequests"`
	// WorkerPeakRSSMB is the worker process's peak resident set during the scenario.
	WorkerPeakRSSMB float64 `json:"workerPeakRssMB"`
	// CPU used during the scenario by the worker, the PostgreSQL backends of the world's
	// database (a local server only), the Temporal dev server, and the bench process (which
	// serves the SCIM target); MachineCPUBusy is the share of all CPUs busy.
	WorkerCPUSeconds   float64 `json:"workerCpuSeconds"`
	PostgresCPUSeconds float64 `json:"postgresCpuSeconds"`
	TemporalCPUSeconds float64 `json:"temporalCpuSeconds"`
	// TemporalPostgresCPUSeconds is the CPU of the cluster's own PostgreSQL backends
	// (persistence and visibility; 0 on the dev server, which keeps its state in memory).
	TemporalPostgresCPUSeconds float64                     `json:"temporalPostgresCpuSeconds,omitempty"`
	BenchCPUSeconds            float64                     `json:"benchCpuSeconds"`
	MachineCPUBusy             float64                     `json:"machineCpuBusyPercent"`
	Progress                   *workflows.FullSyncProgress `json:"progress,omitempty"`
	History                    *HistoryStats               `json:"history,omitempty"`
	// BreakdownSeconds says where a full sync's time went, summed over the FullSync runs
	// and their SyncBatch children (see fullSyncBreakdown).
	BreakdownSeconds map[string]float64 `json:"breakdownSeconds,omitempty"`
	// DispatchedTasks counts the workflow and activity tasks of a full sync (the FullSync
	// runs and their children); DispatchPerTaskMs is their mean wait from scheduled to
	// started: the server's dispatch latency per task.
	DispatchedTasks   int           `json:"dispatchedTasks,omitempty"`
	DispatchPerTaskMs float64       `json:"dispatchPerTaskMs,omitempty"`
	Latency           *LatencyStats `json:"latency,omitempty"`
	Remote            RemoteState   `json:"remote"`
	// Pacing holds the figures of the pacing scenarios (S7...).
	Pacing *PacingResult `json:"pacing,omitempty"`
	// Reconcile holds the figures of the reconciliation scenario (S8).
	Reconcile *ReconcileResult `json:"reconcile,omitempty"`
	Limit     *LimitResult     `json:"limit,omitempty"`
	// Ratio is ObjectsPerSecond / Limit.ObjectsPerSecond.
	Ratio float64 `json:"pipelineToLimit,omitempty"`
	// Checks lists the structural checks that failed (none is success).
	Checks []string `json:"failedChecks,omitempty"`
}

func (r *Result) fail(format string, args ...any) {
	r.Checks = append(r.Checks, fmt.Sprintf(format, args...))
}

// HistoryStats describes a FullSync's continue-as-new chain.
type HistoryStats struct {
	Runs        int `json:"runs"`
	MaxEvents   int `json:"maxEventsPerRun"`
	TotalEvents int `json:"totalEvents"`
}

// LatencyStats are change-to-remote latencies (S4).
type LatencyStats struct {
	P50Ms   float64 `json:"p50Ms"`
	P95Ms   float64 `json:"p95Ms"`
	MaxMs   float64 `json:"maxMs"`
	MinMs   float64 `json:"minMs"`
	Arrived int     `json:"arrived"`
	// BreakdownMs splits the latency into its parts (medians over the changes), from the
	// ObjectSync histories: feed, workflowTasks, queued, activities, "activity <type>", rest.
	BreakdownMs map[string]float64 `json:"breakdownMs,omitempty"`
}

// RemoteState is what the target holds.
type RemoteState struct {
	Users   int `json:"users"`
	Groups  int `json:"groups"`
	Members int `json:"members"`
}

// LimitResult is the replay of a scenario's requests without the pipeline.
type LimitResult struct {
	Concurrency       int     `json:"concurrency"`
	Requests          int     `json:"requests"`
	WallSeconds       float64 `json:"wallSeconds"`
	ObjectsPerSecond  float64 `json:"objectsPerSecond"`
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	// Replays holds the wall time of every replay; the fastest is the limit.
	Replays []float64 `json:"replaySeconds"`
}

// Spread is the median, minimum and maximum of a figure over the runs of a scenario.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func spreadOf(vs []float64) Spread {
	if len(vs) == 0 {
		return Spread{}
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[len(s)-1]}
}

// Summary aggregates the runs of one scenario.
type Summary struct {
	Scenario         string  `json:"scenario"`
	Description      string  `json:"description"`
	Runs             int     `json:"runs"`
	WallSeconds      Spread  `json:"wallSeconds"`
	ObjectsPerSecond Spread  `json:"objectsPerSecond"`
	PeakRSSMB        Spread  `json:"workerPeakRssMB"`
	LimitObjects     *Spread `json:"limitObjectsPerSecond,omitempty"`
	Ratio            *Spread `json:"pipelineToLimit,omitempty"`
	P50Ms            *Spread `json:"p50Ms,omitempty"`
	P95Ms            *Spread `json:"p95Ms,omitempty"`
	MaxMs            *Spread `json:"maxMs,omitempty"`
	MaxMutations     int     `json:"maxMutations"`
	// The pacing scenarios' figures (see PacingResult).
	AchievedToAllowed   *Spread `json:"achievedToAllowed,omitempty"`
	ThrottledShare      *Spread `json:"throttledShare,omitempty"`
	UserRequestsPerUser *Spread `json:"userRequestsPerUser,omitempty"`
	WallToIdeal         *Spread `json:"wallToIdeal,omitempty"`
	MaxHistoryEvents    int     `json:"maxHistoryEventsPerRun,omitempty"`
	FailedChecks        int     `json:"failedChecks"`
}

// Target is one figure the issue asks for, and whether the run reached it.
type Target struct {
	Scenario string `json:"scenario"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Met      bool   `json:"met"`
}

// Report is everything one bench run measured.
type Report struct {
	Command  string     `json:"command"`
	Started  time.Time  `json:"started"`
	Duration float64    `json:"durationSeconds"`
	Machine  Machine    `json:"machine"`
	Setup    Setup      `json:"setup"`
	Results  []*Result  `json:"results"`
	Summary  []*Summary `json:"summary"`
	Targets  []Target   `json:"targets"`
	cfg      Config
	byScen   map[string][]*Result
	finished bool
}

// Setup records how the pipeline and the limit were configured.
type Setup struct {
	Users              int    `json:"users"`
	Groups             int    `json:"groups"`
	MembershipsPerUser int    `json:"membershipsPerUser"`
	S6Users            int    `json:"s6Users,omitempty"`
	S6Groups           int    `json:"s6Groups,omitempty"`
	Workers            int    `json:"workers"`
	WriteConcurrency   int    `json:"writeConcurrency"`
	MaxActivities      int    `json:"maxActivities"`
	Parallelism        int    `json:"fullSyncParallelism"`
	LimitConcurrency   int    `json:"limitConcurrency"`
	Repeat             int    `json:"repeat"`
	Scenarios          string `json:"scenarios"`
	PageSize           int    `json:"pageSize"`
	ChangeFeed         string `json:"changeFeed"`
	// TemporalConfig is the dev server's dynamic config beyond its defaults.
	TemporalConfig []string `json:"temporalConfig,omitempty"`
	// Temporal says which server ran: the dev server, the cluster, or the address given.
	Temporal string `json:"temporal"`
}

func newReport(cfg Config) *Report {
	r := &Report{
		Command: strings.Join(append([]string{"go run ./bench"}, os.Args[1:]...), " "),
		Started: time.Now(),
		Machine: describeMachine(cfg.TemporalCLI),
		Setup: Setup{
			Users: cfg.Users, Groups: cfg.Groups, MembershipsPerUser: cfg.MembershipsPerUser,
			Workers: 1, WriteConcurrency: cfg.WriteConcurrency, MaxActivities: cfg.MaxActivities,
			Parallelism: cfg.parallelism(), LimitConcurrency: cfg.limitConcurrency(), Repeat: cfg.Repeat,
			Scenarios: strings.Join(cfg.Scenarios, ","), PageSize: 100,
			TemporalConfig: cfg.TemporalConfig,
			Temporal:       temporalSetup(cfg),
			ChangeFeed:     "on throughout; the directory is seeded with the outbox triggers disabled and the outbox empty",
		},
		cfg:    cfg,
		byScen: map[string][]*Result{},
	}
	if cfg.has("S6") {
		r.Setup.S6Users, r.Setup.S6Groups = cfg.S6Users, cfg.s6Groups()
	}
	return r
}

func temporalSetup(cfg Config) string {
	switch {
	case cfg.TemporalAddress != "":
		return "the server at " + cfg.TemporalAddress
	case cfg.Temporal == "cluster":
		return "cluster: temporal-server 1.29.1, PostgreSQL persistence and visibility, 4 history shards (deploy/temporal)"
	}
	return "dev server (temporal server start-dev, in memory, 1 history shard)"
}

func (r *Report) add(res *Result) {
	r.Results = append(r.Results, res)
	r.byScen[res.Scenario] = append(r.byScen[res.Scenario], res)
}

// finish computes the summaries and the targets.
func (r *Report) finish() {
	if r.finished {
		return
	}
	r.finished = true
	r.Duration = time.Since(r.Started).Seconds()
	r.Machine.LoadAfter = loadAvg()
	for _, id := range AllScenarios {
		runs := r.byScen[id]
		if len(runs) == 0 {
			continue
		}
		s := &Summary{Scenario: id, Description: runs[0].Description, Runs: len(runs)}
		pick := func(f func(*Result) float64) Spread {
			var vs []float64
			for _, res := range runs {
				vs = append(vs, f(res))
			}
			return spreadOf(vs)
		}
		s.WallSeconds = pick(func(x *Result) float64 { return x.WallSeconds })
		s.ObjectsPerSecond = pick(func(x *Result) float64 { return x.ObjectsPerSecond })
		s.PeakRSSMB = pick(func(x *Result) float64 { return x.WorkerPeakRSSMB })
		if runs[0].Limit != nil {
			l := pick(func(x *Result) float64 { return x.Limit.ObjectsPerSecond })
			ratio := pick(func(x *Result) float64 { return x.Ratio })
			s.LimitObjects, s.Ratio = &l, &ratio
		}
		if runs[0].Latency != nil {
			p50 := pick(func(x *Result) float64 { return x.Latency.P50Ms })
			p95 := pick(func(x *Result) float64 { return x.Latency.P95Ms })
			mx := pick(func(x *Result) float64 { return x.Latency.MaxMs })
			s.P50Ms, s.P95Ms, s.MaxMs = &p50, &p95, &mx
		}
		if runs[0].Pacing != nil {
			a := pick(func(x *Result) float64 { return x.Pacing.AchievedToAllowed })
			t := pick(func(x *Result) float64 { return x.Pacing.ThrottledShare })
			u := pick(func(x *Result) float64 { return x.Pacing.UserRequestsPerUser })
			w := pick(func(x *Result) float64 { return x.Pacing.WallToIdeal })
			s.AchievedToAllowed, s.ThrottledShare, s.UserRequestsPerUser, s.WallToIdeal = &a, &t, &u, &w
		}
		for _, res := range runs {
			s.MaxMutations = max(s.MaxMutations, res.Mutations)
			s.FailedChecks += len(res.Checks)
			if res.History != nil {
				s.MaxHistoryEvents = max(s.MaxHistoryEvents, res.History.MaxEvents)
			}
		}
		r.Summary = append(r.Summary, s)
	}
	r.Targets = r.targets()
}

func (r *Report) summary(id string) *Summary {
	for _, s := range r.Summary {
		if s.Scenario == id {
			return s
		}
	}
	return nil
}

// targets compares the medians of the runs with the figures (S6: the worst run).
func (r *Report) targets() []Target {
	var out []Target
	s1, s2, s3, s4, s6 := r.summary("S1"), r.summary("S2"), r.summary("S3"), r.summary("S4"), r.summary("S6")
	if s1 != nil && s1.Ratio != nil {
		out = append(out, Target{"S1", "objects/s ≥ 50% of the limit's",
			fmt.Sprintf("%.1f%% (%.0f of %.0f objects/s)", 100*s1.Ratio.Median, s1.ObjectsPerSecond.Median, s1.LimitObjects.Median),
			s1.Ratio.Median >= 0.5})
	}
	if s1 != nil && s2 != nil && s1.ObjectsPerSecond.Median > 0 {
		x := s2.ObjectsPerSecond.Median / s1.ObjectsPerSecond.Median
		out = append(out, Target{"S2", "objects/s ≥ 5× S1's",
			fmt.Sprintf("%.2f× (%.0f vs %.0f objects/s)", x, s2.ObjectsPerSecond.Median, s1.ObjectsPerSecond.Median), x >= 5})
	}
	if s3 != nil {
		out = append(out, Target{"S3", "zero mutating requests",
			fmt.Sprintf("%d (most in a run)", s3.MaxMutations), s3.MaxMutations == 0})
		most := 0
		for _, res := range r.byScen["S3"] {
			most = max(most, res.RequestsTotal)
		}
		out = append(out, Target{"S3", "zero requests (no read-back due)", fmt.Sprintf("%d (most in a run)", most), most == 0})
		if s1 != nil && s1.WallSeconds.Median > 0 {
			x := s3.WallSeconds.Median / s1.WallSeconds.Median
			out = append(out, Target{"S3", "wall time < 10% of S1's",
				fmt.Sprintf("%.1f%% (%.2f s vs %.2f s)", 100*x, s3.WallSeconds.Median, s1.WallSeconds.Median), x < 0.10})
		}
	}
	if s4 != nil && s4.P50Ms != nil {
		out = append(out,
			Target{"S4", "change-to-remote p50 ≤ 300 ms", fmt.Sprintf("%.0f ms", s4.P50Ms.Median), s4.P50Ms.Median <= 300},
			Target{"S4", "change-to-remote p95 ≤ 1 s", fmt.Sprintf("%.0f ms", s4.P95Ms.Median), s4.P95Ms.Median <= 1000})
	}
	for _, id := range []string{"S7", "S7w2"} {
		if s := r.summary(id); s != nil && s.AchievedToAllowed != nil {
			out = append(out,
				Target{id, "achieved / allowed ≥ 0.9", fmt.Sprintf("%.3f", s.AchievedToAllowed.Median), s.AchievedToAllowed.Median >= 0.9},
				Target{id, "429s ≤ 2% of requests", fmt.Sprintf("%.2f%%", 100*s.ThrottledShare.Median), s.ThrottledShare.Median <= 0.02},
				Target{id, "≤ 1.05 requests per user created", fmt.Sprintf("%.3f", s.UserRequestsPerUser.Median), s.UserRequestsPerUser.Median <= 1.05})
		}
	}
	for _, id := range []string{"S7b", "S7bw2"} {
		if s := r.summary(id); s != nil && s.WallToIdeal != nil {
			out = append(out, Target{id, "wall time ≤ 2× the ideal", fmt.Sprintf("%.2f×", s.WallToIdeal.Median), s.WallToIdeal.Median <= 2})
		}
	}
	if s8 := r.summary("S8"); s8 != nil {
		f := r.byScen["S8"][0].Reconcile
		out = append(out, Target{"S8", "every drift repaired in one full sync (exact remote state, exactly the repairing requests)",
			fmt.Sprintf("%d failed checks over %d runs", s8.FailedChecks, s8.Runs), s8.FailedChecks == 0})
		if f != nil {
			out = append(out, Target{"S8", "read-back ≤ 3% of S1's requests",
				fmt.Sprintf("%.2f%% (%d list requests for %d objects, S1 sent %d)", 100*f.ReadShareOfS1, f.ReadRequests,
					r.byScen["S8"][0].Objects, f.S1Requests), f.ReadShareOfS1 <= 0.03})
		}
	}
	if s6 != nil {
		out = append(out, Target{"S6", "completes with worker peak RSS ≤ 300 MB",
			fmt.Sprintf("%.0f MB (worst run), %d failed checks", s6.PeakRSSMB.Max, s6.FailedChecks),
			s6.PeakRSSMB.Max <= 300 && s6.FailedChecks == 0})
	}
	return out
}

// WriteJSON writes the report as indented JSON, creating the file's directory.
func (r *Report) WriteJSON(path string) error {
	r.finish()
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteTable prints the summary table, the runs, and the targets.
func (r *Report) WriteTable(w io.Writer) {
	r.finish()
	m, st := r.Machine, r.Setup
	fmt.Fprintf(w, "\nscimsync end-to-end benchmark, %s, %.0f s\n", r.Started.Format("2006-01-02 15:04 MST"), r.Duration)
	fmt.Fprintf(w, "machine: %s, %d CPUs, %.0f GB; %s; Go %s; %s; load %.2f before, %.2f after\n",
		m.CPU, m.CPUs, m.MemoryGB, m.Kernel, strings.TrimPrefix(m.Go, "go"), m.PostgreSQL, m.LoadBefore, m.LoadAfter)
	fmt.Fprintf(w, "temporal: %s; %s", st.Temporal, firstLine(m.Temporal))
	if len(st.TemporalConfig) > 0 {
		fmt.Fprintf(w, ", dynamic config %s", strings.Join(st.TemporalConfig, " "))
	} else {
		fmt.Fprintf(w, ", default dynamic config")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "directory: %d users, %d groups, %d memberships per user", st.Users, st.Groups, st.MembershipsPerUser)
	if st.S6Users > 0 {
		fmt.Fprintf(w, "; S6: %d users, %d groups", st.S6Users, st.S6Groups)
	}
	fmt.Fprintf(w, "\npipeline: %d worker process, %d activity slots, write concurrency %d, FullSync parallelism %d, page size %d\n",
		st.Workers, st.MaxActivities, st.WriteConcurrency, st.Parallelism, st.PageSize)
	fmt.Fprintf(w, "limit: the same requests from a plain net/http client, %d in flight (workers × min(parallelism, slots) × write concurrency)\n\n",
		st.LimitConcurrency)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\truns\twall s\tobjects/s\tlimit obj/s\tpipeline/limit\tGET\tPOST\tPUT\tPATCH\tDELETE\tworkflows\tactivities (+local)\tpeak RSS MB\t")
	for _, s := range r.Summary {
		first := r.byScen[s.Scenario][0]
		limit, ratio := "-", "-"
		if s.LimitObjects != nil {
			limit, ratio = fmtSpread(*s.LimitObjects, "%.0f"), fmtSpread(*s.Ratio, "%.2f")
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d (+%d)\t%s\t\n", s.Scenario, s.Runs,
			fmtSpread(s.WallSeconds, "%.2f"), fmtSpread(s.ObjectsPerSecond, "%.0f"), limit, ratio,
			first.Requests["GET"], first.Requests["POST"], first.Requests["PUT"], first.Requests["PATCH"], first.Requests["DELETE"],
			first.Workflows, first.Activities, first.LocalActivities, fmtSpread(s.PeakRSSMB, "%.0f"))
	}
	tw.Flush()
	fmt.Fprintln(w, "(median over the runs, min–max in brackets; requests, workflows and activities of the first run)")

	for _, s := range r.Summary {
		if s.P50Ms != nil {
			fmt.Fprintf(w, "\n%s change-to-remote latency: p50 %s ms, p95 %s ms, max %s ms\n", s.Scenario,
				fmtSpread(*s.P50Ms, "%.0f"), fmtSpread(*s.P95Ms, "%.0f"), fmtSpread(*s.MaxMs, "%.0f"))
			if b := r.byScen[s.Scenario][0].Latency.BreakdownMs; len(b) > 0 {
				fmt.Fprintf(w, "  where it goes (median ms, first run): %s\n", fmtParts(b, "%.0f"))
			}
		}
	}
	for _, s := range r.Summary {
		if b := r.byScen[s.Scenario][0].BreakdownSeconds; len(b) > 0 {
			first := r.byScen[s.Scenario][0]
			fmt.Fprintf(w, "%s where the time goes (seconds, summed over the batches of the first run): %s; dispatch per task %.1f ms (%d tasks)\n",
				s.Scenario, fmtParts(b, "%.1f"), first.DispatchPerTaskMs, first.DispatchedTasks)
		}
	}
	var paced []*Summary
	for _, s := range r.Summary {
		if s.AchievedToAllowed != nil {
			paced = append(paced, s)
		}
	}
	if len(paced) > 0 {
		fmt.Fprintln(w, "\npacing (the target's request log; medians, min–max in brackets):")
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "scenario\tworkers\tlimit/s\tconfigured\trequests\t429s\t429 share %\tachieved/s\tachieved/allowed\trequests per user\tideal s\twall/ideal\t")
		for _, s := range paced {
			p := r.byScen[s.Scenario][0].Pacing
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%d\t%d\t%s\t%.2f\t%s\t%s\t%.1f\t%s\t\n", s.Scenario, p.Workers, p.AllowedPerSecond,
				yesNo(p.Configured), p.Requests, p.Throttled, fmtSpread(scaled(*s.ThrottledShare, 100), "%.2f"), p.AchievedPerSecond,
				fmtSpread(*s.AchievedToAllowed, "%.3f"), fmtSpread(*s.UserRequestsPerUser, "%.3f"), p.IdealSeconds,
				fmtSpread(*s.WallToIdeal, "%.2f"))
		}
		tw.Flush()
	}
	for _, res := range r.byScen["S8"] {
		f := res.Reconcile
		if f == nil {
			continue
		}
		fmt.Fprintf(w, "\nS8 round %d: drift made at the target: %d users edited, %d deleted, %d memberships removed, %d strangers added to groups, %d orphan users (%d groups touched, %d with members changed)\n",
			res.Round, f.Edited, f.Deleted, f.MembersRemoved, f.StrangersAdded, f.Orphans, f.GroupsTouched, f.GroupsDrifted)
		fmt.Fprintf(w, "  one full sync with read-back: %.2f s (S3, without: %.2f s); requests %s\n",
			res.WallSeconds, f.S3WallSeconds, fmtRoutes(res.Routes))
		fmt.Fprintf(w, "  read back %d list requests = %.2f%% of S1's %d\n", f.ReadRequests, 100*f.ReadShareOfS1, f.S1Requests)
		if p := res.Progress; p != nil && f.Figures != nil {
			fb := f.Figures
			fmt.Fprintf(w, "  read %d users and %d groups; repaired %d users and %d groups; orphan users: %d ours, %d known, %d strangers (reported)\n",
				fb.UsersRead, fb.GroupsRead, p.Users.Repaired, p.Groups.Repaired, fb.UserOrphans.Ours, fb.UserOrphans.Known, fb.UserOrphans.Strangers)
		}
	}
	for _, s := range r.Summary {
		if s.MaxHistoryEvents > 0 && s.Scenario == "S6" {
			fmt.Fprintf(w, "\nS6 history: FullSync ran as %d runs (continue-as-new), at most %d events in one run\n",
				r.byScen["S6"][0].History.Runs, s.MaxHistoryEvents)
		}
	}

	fmt.Fprintln(w, "\nruns:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tround\twall s\tobjects/s\tratio\trequests\tmutations\tFullSync runs/max events\tworker CPU s\tpostgres CPU s\ttemporal CPU s (+its PG)\tbench+target CPU s\tmachine busy %\tpeak RSS MB\tchecks\t")
	for _, res := range r.Results {
		ratio, hist, checks := "-", "-", "ok"
		if res.Limit != nil {
			ratio = fmt.Sprintf("%.2f", res.Ratio)
		}
		if res.History != nil {
			hist = fmt.Sprintf("%d/%d", res.History.Runs, res.History.MaxEvents)
		}
		if len(res.Checks) > 0 {
			checks = "FAILED"
		}
		tcpu := fmt.Sprintf("%.1f", res.TemporalCPUSeconds)
		if res.TemporalPostgresCPUSeconds > 0 {
			tcpu += fmt.Sprintf(" (+%.1f)", res.TemporalPostgresCPUSeconds)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.0f\t%s\t%d\t%d\t%s\t%.1f\t%.1f\t%s\t%.1f\t%.0f\t%.0f\t%s\t\n", res.Scenario, res.Round,
			res.WallSeconds, res.ObjectsPerSecond, ratio, res.RequestsTotal, res.Mutations, hist,
			res.WorkerCPUSeconds, res.PostgresCPUSeconds, tcpu, res.BenchCPUSeconds, res.MachineCPUBusy, res.WorkerPeakRSSMB, checks)
	}
	tw.Flush()
	for _, res := range r.Results {
		for _, c := range res.Checks {
			fmt.Fprintf(w, "  %s round %d: %s\n", res.Scenario, res.Round, c)
		}
	}

	if len(r.Targets) > 0 {
		fmt.Fprintln(w, "\ntargets (median of the runs):")
		for _, t := range r.Targets {
			mark := "not met"
			if t.Met {
				mark = "met"
			}
			fmt.Fprintf(w, "  %-8s %s %s: %s\n", "["+mark+"]", t.Scenario, t.Goal, t.Measured)
		}
	}
}

func fmtSpread(s Spread, f string) string {
	v := fmt.Sprintf(f, s.Median)
	if s.Min != s.Max {
		v += " (" + fmt.Sprintf(f, s.Min) + "–" + fmt.Sprintf(f, s.Max) + ")"
	}
	return v
}

func fmtParts(m map[string]float64, f string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, k+" "+fmt.Sprintf(f, m[k]))
	}
	return strings.Join(parts, ", ")
}

// fmtRoutes prints request counts by route, in route order.
func fmtRoutes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func scaled(s Spread, k float64) Spread {
	return Spread{Median: s.Median * k, Min: s.Min * k, Max: s.Max * k}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
