package activities

import (
	"context"
	"math"

	"github.com/scimsync/scimsync/pacing"
)

// PacingState reads the provider's pacing shared by every worker: what a full sync shows
// in its progress while it runs. It sends no request.
func (a *Activities) PacingState(ctx context.Context, in ProviderInput) (PacingInfo, error) {
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return PacingInfo{}, err
	}
	row, now, _, err := a.Store.PacingState(ctx, p.ID)
	if err != nil {
		return PacingInfo{}, err
	}
	return NewPacingInfo(pacing.Describe(pacing.LimitsOf(p), row, now)), nil
}

// NewPacingInfo turns a pacing snapshot into its per-minute form.
func NewPacingInfo(s pacing.Snapshot) PacingInfo {
	perMinute := func(v float64) float64 { return math.Round(v*60*10) / 10 }
	info := PacingInfo{
		LimitPerMinute: s.Limits.PerMinute, LimitSource: s.Limits.Source,
		AllowedPerMinute: perMinute(s.Allowed), Learned: s.Learned,
		SentPerMinute: perMinute(s.Sent), AcceptedPerMinute: perMinute(s.Accepted),
		Throttles: s.Throttles, PauseCause: s.PauseCause, At: s.At,
	}
	if !s.PausedUntil.IsZero() {
		until := s.PausedUntil
		info.PausedUntil = &until
	}
	return info
}
