package integration

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
	"github.com/scimsync/scimsync/workflows"
)

// TestCompatibilityModesAgainstQuirkProfiles syncs one directory into a target imitating
// each vendor, in the matching compatibility mode, and checks the exact remote state, then
// changes memberships and checks again.
func TestCompatibilityModesAgainstQuirkProfiles(t *testing.T) {
	for _, mode := range []string{"aws", "slack", "salesforce", "webex"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, scimtest.Options{Quirks: scimtest.Profile(mode)})
			d := buildDirectory(e, 290) // 250 in scope; g00..g16 get ~15 members each
			big := d.groups[19]         // g19: give it 250 members, more than aws takes in one PATCH
			e.tx(func(tx *store.Tx) error {
				for _, u := range d.users {
					if d.inScope[u.Username] && !contains(d.members["g19"], u.Username) {
						if err := tx.AddMember(e.ctx, big.ID, u.ID); err != nil {
							return err
						}
						d.members["g19"] = append(d.members["g19"], u.Username)
					}
				}
				return nil
			})
			app, _ := e.store.ApplicationByName(e.ctx, d.application)
			e.provider(mode, func(p *store.Provider) { p.ApplicationID = &app.ID; p.CompatibilityMode = mode })

			if _, _, err := e.fullSync(mode, workflows.FullSyncInput{}); err != nil {
				t.Fatalf("full sync: %v", err)
			}
			checkRemoteState(t, e.target, d, false)
			checkMembershipRequests(t, e.target, mode)

			// Remove 120 members of g19 and one of g01: the change is computed from the
			// members last written (aws answers GET /Groups/{id} without members).
			e.target.ResetLog()
			e.tx(func(tx *store.Tx) error {
				removed := 0
				var keep []string
				for _, u := range d.users {
					if contains(d.members["g19"], u.Username) && removed < 120 {
						if err := tx.RemoveMember(e.ctx, big.ID, u.ID); err != nil {
							return err
						}
						removed++
						continue
					}
					if contains(d.members["g19"], u.Username) {
						keep = append(keep, u.Username)
					}
				}
				d.members["g19"] = keep
				return nil
			})
			if _, _, err := e.fullSync(mode, workflows.FullSyncInput{}); err != nil {
				t.Fatalf("second full sync: %v", err)
			}
			checkRemoteState(t, e.target, d, false)
			checkMembershipRequests(t, e.target, mode)
			if n := e.target.Count("GET /Groups/{id}"); n != 0 {
				t.Errorf("membership sync read %d groups back; it must work from the members last written", n)
			}
		})
	}
}

// checkMembershipRequests checks the shape of every group write the target received, as a
// request or as an operation of a Bulk request: at most 100 membership operations for aws,
// and member references typed "user" for webex.
func checkMembershipRequests(t *testing.T, target *scimtest.Server, mode string) {
	t.Helper()
	type groupWrite struct {
		route  string
		status int
		body   map[string]any
	}
	var writes []groupWrite
	for _, r := range target.Requests() {
		var body map[string]any
		switch r.Route {
		case "PATCH /Groups/{id}", "POST /Groups", "PUT /Groups/{id}":
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatalf("%s body: %v", r.Route, err)
			}
			writes = append(writes, groupWrite{r.Route, r.Status, body})
		case "POST /Bulk":
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatalf("%s body: %v", r.Route, err)
			}
			for _, op := range asList(body["Operations"]) {
				m, _ := op.(map[string]any)
				if path, _ := m["path"].(string); strings.HasPrefix(path, "/Groups") {
					data, _ := m["data"].(map[string]any)
					writes = append(writes, groupWrite{"BULK " + fmt.Sprint(m["method"]) + " " + path, r.Status, data})
				}
			}
		}
	}
	for _, w := range writes {
		changes := 0
		for _, op := range asList(w.body["Operations"]) {
			m := op.(map[string]any)
			path, _ := m["path"].(string)
			if strings.HasPrefix(path, "members") {
				if vals := asList(m["value"]); len(vals) > 0 {
					changes += len(vals)
					for _, v := range vals {
						checkMemberRef(t, mode, v)
					}
				} else {
					changes++
				}
			}
		}
		for _, v := range asList(w.body["members"]) {
			checkMemberRef(t, mode, v)
		}
		if mode == "aws" && changes > 100 {
			t.Errorf("aws: a PATCH carried %d membership changes, want at most 100", changes)
		}
		if w.status >= 400 {
			t.Errorf("%s answered %d", w.route, w.status)
		}
	}
	if len(writes) == 0 {
		t.Errorf("no group writes were logged")
	}
}

func checkMemberRef(t *testing.T, mode string, v any) {
	t.Helper()
	m, _ := v.(map[string]any)
	if mode == "webex" && m["type"] != "user" {
		t.Errorf("webex: member reference %v lacks \"type\": \"user\"", m)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

var _ = fmt.Sprint
