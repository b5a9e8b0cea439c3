package starter

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/pacing"
	"github.com/scimsync/scimsync/store"
)

// pacingStatus is what status shows of a provider's pacing: its limits and the shared
// state every worker paces by.
type pacingStatus struct {
	activities.PacingInfo
	Burst       int `json:"burst,omitempty"`
	MaxInFlight int `json:"maxInFlight,omitempty"`
}

// providerPacing reads the provider's shared pacing state.
func providerPacing(ctx context.Context, st *store.Store, p store.Provider) (pacingStatus, error) {
	row, now, _, err := st.PacingState(ctx, p.ID)
	if err != nil {
		return pacingStatus{}, err
	}
	lim := pacing.LimitsOf(p)
	return pacingStatus{PacingInfo: activities.NewPacingInfo(pacing.Describe(lim, row, now)),
		Burst: lim.Burst, MaxInFlight: lim.MaxInFlight}, nil
}

// pacingLine says in one line how the provider is paced and whether it is paused now.
func pacingLine(p pacingStatus, now time.Time) string {
	var parts []string
	switch {
	case p.LimitPerMinute > 0:
		limit := "limit " + perMinute(p.LimitPerMinute)
		if p.Burst > 0 {
			limit += fmt.Sprintf(", burst %d", p.Burst)
		}
		parts = append(parts, limit+" ("+p.LimitSource+")")
	default:
		parts = append(parts, "no limit configured")
	}
	if p.MaxInFlight > 0 {
		parts = append(parts, fmt.Sprintf("at most %d in flight", p.MaxInFlight))
	}
	switch {
	case p.Learned:
		parts = append(parts, "paced at "+perMinute(p.AllowedPerMinute)+", learned from the target's 429s")
	case p.AllowedPerMinute > 0:
		parts = append(parts, "paced at "+perMinute(p.AllowedPerMinute))
	}
	if p.SentPerMinute > 0 {
		parts = append(parts, "sending "+perMinute(p.SentPerMinute))
	}
	if p.Throttles > 0 {
		parts = append(parts, fmt.Sprintf("%d throttled (429) so far", p.Throttles))
	}
	line := strings.Join(parts, "; ")
	if p.PausedUntil != nil {
		line = fmt.Sprintf("PAUSED until %s by the target: %s; %s", when(*p.PausedUntil, now), p.PauseCause, line)
	}
	return line
}

func perMinute(v float64) string {
	return strconv.FormatFloat(v, 'f', -1, 64) + "/min"
}
