package integration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// smallDirectory writes n users named user0000.. and returns them.
func smallDirectory(e *env, n int) []store.User {
	var users []store.User
	e.tx(func(tx *store.Tx) error {
		for i := 0; i < n; i++ {
			u, err := tx.CreateUser(e.ctx, store.User{Username: fmt.Sprintf("user%04d", i),
				Name: fmt.Sprintf("Given%d Family%d", i, i), Email: fmt.Sprintf("user%04d@example.test", i), IsActive: true})
			if err != nil {
				return err
			}
			users = append(users, u)
		}
		return nil
	})
	return users
}

func checkUsers(t *testing.T, target *scimtest.Server, users []store.User) {
	t.Helper()
	got := remoteUsers(target)
	if len(got) != len(users) {
		t.Errorf("remote has %d users, want %d", len(got), len(users))
	}
	for _, u := range users {
		if diff := diffJSON(got[u.Username], expectedUser(u)); diff != "" {
			t.Errorf("remote user %s:\n%s", u.Username, diff)
			return
		}
	}
}

func TestConflictOnCreateLinksTheExistingUser(t *testing.T) {
	e := newEnv(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	users := smallDirectory(e, 5)
	existing := e.target.AddUser(map[string]any{"userName": "user0002", "active": false})
	p := e.provider("conflict", nil)
	if _, _, err := e.fullSync("conflict", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	checkUsers(t, e.target, users)
	if n := e.target.Count("POST /Users"); n != 5 {
		t.Errorf("POST /Users = %d, want 5 (one answered 409)", n)
	}
	links, _ := e.store.Links(e.ctx, p.ID, object.User, []string{users[2].ID})
	if got := links[users[2].ID].Remote(); got != existing {
		t.Errorf("user0002 linked to %q, want the existing remote user %q", got, existing)
	}
}

func TestUpdateOfAUserDeletedRemotelyRecreatesIt(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	users := smallDirectory(e, 3)
	p := e.provider("recreate", nil)
	if _, _, err := e.fullSync("recreate", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	links, _ := e.store.Links(e.ctx, p.ID, object.User, []string{users[1].ID})
	old := links[users[1].ID].Remote()
	c, err := scim.New(scim.Options{BaseURL: e.target.URL, Token: targetToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(e.ctx, scim.Users, old); err != nil {
		t.Fatal(err)
	}
	users[1].Name = "Changed Name"
	e.tx(func(tx *store.Tx) (err error) { users[1], err = tx.UpdateUser(e.ctx, users[1]); return err })
	e.signal("recreate", object.User, users[1].ID)
	e.waitFor(15*time.Second, func() string { return diffJSON(remoteUser(e.target, "user0001"), expectedUser(users[1])) })
	checkUsers(t, e.target, users)
	e.waitLink(p.ID, object.User, users[1].ID, func(l store.Link, _ bool) string {
		if now := l.Remote(); now == old || now == "" {
			return fmt.Sprintf("link after recreate = %q (was %q), want the new remote id", now, old)
		}
		return ""
	})
}

func TestRateLimitedTargetIsWaitedFor(t *testing.T) {
	e := newSequentialEnv(t, scimtest.Options{Config: scimtest.Config{NoBulk: true}})
	users := smallDirectory(e, 4)
	e.target.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 429, RetryAfter: "1", Times: 2})
	e.provider("limited", nil)
	if _, _, err := e.fullSync("limited", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	checkUsers(t, e.target, users)
	if e.target.FaultsFired() != 2 {
		t.Errorf("faults fired = %d, want 2", e.target.FaultsFired())
	}
	// Every request after a 429 came at least its Retry-After later: the provider paused.
	var throttledAt time.Time
	for _, r := range e.target.Requests() {
		if !throttledAt.IsZero() && r.Time.Sub(throttledAt) < time.Second {
			t.Errorf("%s %s %s after a 429 with Retry-After 1", r.Method, r.Path, r.Time.Sub(throttledAt))
		}
		if r.Status == 429 {
			throttledAt = r.Time
		}
	}
}

func TestUnauthorizedStopsTheSyncWithAProviderError(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	smallDirectory(e, 2)
	t.Setenv("IT_WRONG_TOKEN", "not-the-token-0000")
	e.provider("locked", func(p *store.Provider) { p.Token = "env:IT_WRONG_TOKEN" })
	_, _, err := e.fullSync("locked", workflows.FullSyncInput{})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeProvider {
		t.Fatalf("full sync error = %v, want a %s", err, activities.ErrTypeProvider)
	}
	if msg := appErr.Error(); !strings.Contains(msg, "provider locked") || !strings.Contains(msg, "401") {
		t.Errorf("error %q should name the provider and the status", msg)
	}
	if strings.Contains(err.Error(), "not-the-token") {
		t.Errorf("the error leaks the token: %v", err)
	}
	if e.target.Mutations() != 0 {
		t.Errorf("%d mutating requests were accepted", e.target.Mutations())
	}
}

func TestSchemaInvalidPayloadStopsTheSyncNamingObjectAndField(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	users := smallDirectory(e, 2)
	p := e.provider("strict", nil)
	e.tx(func(tx *store.Tx) error {
		m, err := tx.SaveMapping(e.ctx, store.PropertyMapping{Name: "broken-active", Kind: "user",
			Expression: `return {"active": "False"} if user.username == "user0001" else None`})
		if err != nil {
			return err
		}
		def, err := e.store.Mapping(e.ctx, store.DefaultUserMappingName)
		if err != nil {
			return err
		}
		return tx.SetProviderMappings(e.ctx, p.ID, []string{def.ID, m.ID})
	})
	_, _, err := e.fullSync("strict", workflows.FullSyncInput{})
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrTypeSchema {
		t.Fatalf("full sync error = %v, want a %s", err, activities.ErrTypeSchema)
	}
	msg := appErr.Error()
	for _, want := range []string{users[1].ID, "active", "broken-active"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q should name %q", msg, want)
		}
	}
}

func TestSkipObjectSkipsOnlyThatObject(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	users := smallDirectory(e, 4)
	p := e.provider("skipping", nil)
	e.tx(func(tx *store.Tx) error {
		m, err := tx.SaveMapping(e.ctx, store.PropertyMapping{Name: "skip-odd", Kind: "user",
			Expression: "if user.username in (\"user0001\", \"user0003\"):\n    skip_object()\nreturn None"})
		if err != nil {
			return err
		}
		def, _ := e.store.Mapping(e.ctx, store.DefaultUserMappingName)
		return tx.SetProviderMappings(e.ctx, p.ID, []string{def.ID, m.ID})
	})
	progress, _, err := e.fullSync("skipping", workflows.FullSyncInput{})
	if err != nil {
		t.Fatal(err)
	}
	checkUsers(t, e.target, []store.User{users[0], users[2]})
	if progress.Users.Skipped != 2 || progress.Users.Created != 2 {
		t.Errorf("progress = %+v, want 2 created, 2 skipped", progress.Users)
	}
}

func TestDryRunSendsNothingAndShowsWhatItWouldSend(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	users := smallDirectory(e, 3)
	p := e.provider("rehearsal", func(p *store.Provider) { p.DryRun = true })
	if _, _, err := e.fullSync("rehearsal", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	if m := e.target.Mutations(); m != 0 {
		t.Fatalf("dry run sent %d mutating requests", m)
	}
	if n, _ := e.target.Len(); n != 0 {
		t.Fatalf("dry run created %d users", n)
	}
	if c, _ := e.store.CountLinks(e.ctx, p.ID); c.Users != 0 {
		t.Fatalf("dry run recorded %d links", c.Users)
	}
	// The per-object sync's history shows the request it would have sent.
	e.signal("rehearsal", object.User, users[0].ID)
	id := workflows.ObjectSyncID(e.inst, "rehearsal", object.User, users[0].ID)
	var shown string
	e.waitFor(15*time.Second, func() string {
		shown = historyText(t, e, id)
		if !strings.Contains(shown, `"method":"POST","path":"/Users"`) {
			return "history does not show the POST /Users it would have sent"
		}
		return ""
	})
	if !strings.Contains(shown, `\"userName\":\"user0000\"`) {
		t.Errorf("the recorded request does not carry the payload")
	}
	if m := e.target.Mutations(); m != 0 {
		t.Fatalf("dry run sent %d mutating requests", m)
	}
}

// historyText returns the payloads of a workflow's completed activities, as text.
func historyText(t *testing.T, e *env, workflowID string) string {
	t.Helper()
	iter := e.temporal.GetWorkflowHistory(context.Background(), workflowID, "", false, enums.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	var b strings.Builder
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			return ""
		}
		if a := ev.GetActivityTaskCompletedEventAttributes(); a != nil {
			for _, p := range a.GetResult().GetPayloads() {
				b.Write(p.GetData())
			}
		}
	}
	return b.String()
}

func TestLinkExistingMatchesRemoteUsersByUserNameOrEmailBeforeCreating(t *testing.T) {
	e := newEnv(t, scimtest.Options{})
	users := smallDirectory(e, 3)
	byName := e.target.AddUser(map[string]any{"userName": "user0000", "active": true})
	byEmail := e.target.AddUser(map[string]any{"userName": "legacy-login", "active": true,
		"emails": []any{map[string]any{"value": "user0001@example.test", "primary": true}}})
	p := e.provider("adopt", func(p *store.Provider) { p.LinkExisting = true })
	if _, _, err := e.fullSync("adopt", workflows.FullSyncInput{}); err != nil {
		t.Fatal(err)
	}
	checkUsers(t, e.target, users) // three users: the two that existed were linked, not created again
	links, _ := e.store.Links(e.ctx, p.ID, object.User, []string{users[0].ID, users[1].ID})
	if links[users[0].ID].Remote() != byName || links[users[1].ID].Remote() != byEmail {
		t.Errorf("links = %s, %s; want %s (by userName), %s (by email)",
			links[users[0].ID].Remote(), links[users[1].ID].Remote(), byName, byEmail)
	}
}
