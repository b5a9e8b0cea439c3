package scim_test

import (
	"testing"

	"github.com/scimsync/scimsync/internal/scimmy"
	"github.com/scimsync/scimsync/scimtest"
)

// peer is a SCIM server the contract suite runs against.
type peer struct {
	name  string
	url   string
	token string
	// bulk: the peer supports /Bulk.
	bulk bool
	// jsonFilterStrings: filter values are JSON strings as RFC 7644
	// requires (escaped quotes and backslashes). SCIMMY 1.3.5 refuses
	// `\"` with 400 invalidFilter and keeps `\\` as two characters.
	jsonFilterStrings bool
	// state returns the exact stored users and groups.
	state func(t *testing.T) (users, groups []map[string]any)
	// reset empties the peer.
	reset func(t *testing.T)
}

func scimtestPeer(t *testing.T) peer {
	t.Helper()
	srv := scimtest.NewServer(scimtest.Options{Token: "scimtest-token"})
	t.Cleanup(srv.Close)
	return peer{
		name: "scimtest", url: srv.URL, token: "scimtest-token", bulk: true, jsonFilterStrings: true,
		state: func(*testing.T) ([]map[string]any, []map[string]any) { return srv.Users(), srv.Groups() },
		reset: func(*testing.T) { srv.Reset() },
	}
}

// scimmyPeer starts SCIMMY on a free port. Without node or the npm packages it skips, or
// fails when CI=true.
func scimmyPeer(t *testing.T, env ...string) peer {
	t.Helper()
	srv := scimmy.Start(t, env...)
	return peer{
		name: "scimmy", url: srv.URL, token: scimmy.Token, bulk: true,
		state: func(t *testing.T) ([]map[string]any, []map[string]any) { return srv.State(t) },
		reset: func(t *testing.T) { srv.Reset(t) },
	}
}
