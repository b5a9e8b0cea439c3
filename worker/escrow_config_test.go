package worker

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseEscrowDelays: a schedule is positive durations, none shorter than the one
// before it, or "none"; anything else is refused, saying what to write.
func TestParseEscrowDelays(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []time.Duration
		err  string
	}{
		{in: "1m,10m,1h", want: []time.Duration{time.Minute, 10 * time.Minute, time.Hour}},
		{in: " 2s, 2s ,5s", want: []time.Duration{2 * time.Second, 2 * time.Second, 5 * time.Second}},
		{in: "none", want: []time.Duration{}},
		{in: "10m,1m", err: "1m0s is shorter than 10m0s before it"},
		{in: "1m,soon", err: `"soon" is not a positive duration`},
		{in: "0s", err: `"0s" is not a positive duration`},
		{in: "", err: `"" is not a positive duration`},
		{in: strings.Repeat("1s,", 20) + "1s", err: "at most 20 delays"},
	} {
		got, err := ParseEscrowDelays(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseEscrowDelays(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) || got == nil {
			t.Errorf("ParseEscrowDelays(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	env := map[string]string{"DATABASE_URL": "postgres://x", "SCIMSYNC_INSTALLATION_SECRET": "s",
		"SCIMSYNC_ESCROW_DELAYS": "1h,1m"}
	if _, err := ParseConfig(nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "shorter than") {
		t.Errorf("a worker with a shrinking escrow schedule starts: %v", err)
	}
	env["SCIMSYNC_ESCROW_DELAYS"], env["SCIMSYNC_ESCROW_INTERVAL"] = "", "500ms"
	cfg, err := ParseConfig(nil, func(k string) string { return env[k] })
	if err != nil || !slices.Equal(cfg.EscrowDelays, []time.Duration{time.Minute, 10 * time.Minute, time.Hour}) || cfg.EscrowInterval != 500*time.Millisecond {
		t.Errorf("defaults and interval: %+v, %v", cfg.EscrowDelays, err)
	}
}
