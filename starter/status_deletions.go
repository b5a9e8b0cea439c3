package starter

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/scimsync/scimsync/store"
)

// pendingDeletionsShown is how many of the next deletions status lists.
const pendingDeletionsShown = 5

// pendingDeletions are a provider's deactivated users waiting for their deletion after the
// grace period (deprovision action deactivate_then_delete).
type pendingDeletions struct {
	GracePeriod string `json:"gracePeriod"`
	Count       int    `json:"count"`
	// Due have passed their deadline: the next full sync deletes them (within the
	// deprovision threshold).
	Due  int               `json:"due"`
	Next []pendingDeletion `json:"next"`
}

type pendingDeletion struct {
	ID       string    `json:"id"`
	Name     string    `json:"name,omitempty"` // "" when the user is deleted from the directory
	RemoteID string    `json:"remoteId"`
	At       time.Time `json:"deleteAfter"`
}

// providerPendingDeletions reads the provider's pending deletions; nil unless its action
// deletes after a grace period.
func providerPendingDeletions(ctx context.Context, st *store.Store, p store.Provider) (*pendingDeletions, error) {
	if p.DeprovisionAction != store.DeprovisionDeactivateThenDelete {
		return nil, nil
	}
	total, due, next, err := st.ScheduledDeletions(ctx, p.ID, pendingDeletionsShown)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(next))
	for i, d := range next {
		ids[i] = d.ObjectID
	}
	users, err := st.UsersByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, u := range users {
		names[u.ID] = u.Username
	}
	pd := &pendingDeletions{GracePeriod: p.DeprovisionDeleteAfter.String(), Count: total, Due: due, Next: []pendingDeletion{}}
	for _, d := range next {
		pd.Next = append(pd.Next, pendingDeletion{ID: d.ObjectID, Name: names[d.ObjectID], RemoteID: d.RemoteID, At: d.DeleteAfter})
	}
	return pd, nil
}

// pendingDeletionsLine is the status line of pending deletions.
func pendingDeletionsLine(pd pendingDeletions, now time.Time) string {
	if pd.Count == 0 {
		return fmt.Sprintf("none (deactivated users are deleted %s after they leave scope)", pd.GracePeriod)
	}
	line := fmt.Sprintf("%d deactivated %s to delete %s after they left scope", pd.Count,
		plural(pd.Count, "user", "users"), pd.GracePeriod)
	if pd.Due > 0 {
		line += fmt.Sprintf(", %d due (the next full sync deletes them)", pd.Due)
	}
	var next []string
	for _, d := range pd.Next {
		name := d.Name
		if name == "" {
			name = d.ID + " (deleted)"
		}
		next = append(next, name+" at "+when(d.At, now))
	}
	line += "; next: " + strings.Join(next, ", ")
	if more := pd.Count - len(pd.Next); more > 0 {
		line += fmt.Sprintf(", … and %d more", more)
	}
	return line
}
