package store_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/store"
)

func repeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}

// TestQuarantineWindow: a provider is quarantined when more than 90% of its last 100 write
// outcomes failed, at least 20 known, with the most frequent error; failed and mixed write
// calls keep it there; the first call that succeeds without a failure ends it.
func TestQuarantineWindow(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("quarantine"))
	record := func(succeeded int, failures []string) store.Quarantine {
		t.Helper()
		q, err := s.RecordWriteOutcomes(ctx, p.ID, succeeded, failures)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	state := func(q store.Quarantine) string {
		return fmt.Sprintf("quarantined %v, change %d, error %q", q.Since != nil, q.Change, q.Error)
	}
	const a, b = "POST /Users answered 400 (invalidValue)", "POST /Users answered 409 (uniqueness)"
	steps := []struct {
		succeeded int
		failures  []string
		want      string
	}{
		{0, repeat(a, 19), `quarantined false, change 0, error ""`},        // too few outcomes
		{0, repeat(b, 1), `quarantined true, change 1, error "` + a + `"`}, // 20 of 20 failed, a the most frequent
		{1, repeat(b, 30), `quarantined true, change 0, error "` + b + `"`},
		{3, nil, `quarantined false, change 2, error ""`},                  // succeeded without a failure
		{7, repeat(a, 90), `quarantined false, change 0, error ""`},        // 90 of 100: not more than 90%
		{0, repeat(b, 1), `quarantined true, change 1, error "` + a + `"`}, // 91 of 100
		{0, nil, `quarantined false, change 0, error ""`},                  // nothing written: nothing recorded
	}
	for i, st := range steps {
		if got := state(record(st.succeeded, st.failures)); got != st.want {
			t.Fatalf("step %d (%d succeeded, %d failed): %s\nwant %s", i, st.succeeded, len(st.failures), got, st.want)
		}
	}
	health, _, err := s.TargetHealthOf(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if health.QuarantinedSince == nil || health.QuarantineError != a || health.FailingSince != nil {
		t.Fatalf("target health = %+v, want quarantined with %q and not failing", health, a)
	}
	ids, err := s.QuarantinedProviders(ctx)
	if err != nil || len(ids) != 1 || !ids[p.ID] {
		t.Fatalf("QuarantinedProviders = %v, %v", ids, err)
	}
	var window []string
	if err := s.DB().SelectContext(ctx, &window, `SELECT unnest(write_outcomes) FROM target_health WHERE provider_id = $1`, p.ID); err != nil {
		t.Fatal(err)
	}
	if len(window) != store.QuarantineWindow || strings.Join(window[:10], "|") != "|||||||||"+a || window[99] != b {
		t.Fatalf("window holds %d outcomes, first %q, last %q", len(window), window[:10], window[len(window)-1])
	}
	// A write that succeeds for one object ends it; the window starts again from it.
	if got := state(record(1, nil)); got != `quarantined false, change 2, error ""` {
		t.Fatalf("after one success: %s", got)
	}
	if got := state(record(0, repeat(a, 18))); got != `quarantined false, change 0, error ""` {
		t.Fatalf("18 failures after a success (19 outcomes): %s", got)
	}
	if got := state(record(0, repeat(a, 1))); got != `quarantined true, change 1, error "`+a+`"` {
		t.Fatalf("19 failures after a success (95%% of 20): %s", got)
	}
}
