package scim_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

// A client for one target: discover, create, look up by filter, change
// attributes with a minimal PATCH and membership in chunks.
func Example() {
	srv := scimtest.NewServer(scimtest.Options{Token: "t0ken"})
	defer srv.Close()
	ctx := context.Background()

	c, err := scim.New(scim.Options{BaseURL: srv.URL, Token: "t0ken", Mode: scim.ModeDefault})
	if err != nil {
		panic(err)
	}
	caps, err := c.Capabilities(ctx) // discovers once, then remembers
	if err != nil {
		panic(err)
	}
	last := map[string]any{"userName": "alice@example.com", "active": true}
	u, err := c.Create(ctx, scim.Users, last)
	if scim.IsConflict(err) && caps.Filter {
		found, _ := c.Search(ctx, scim.Users, scim.Eq("userName", "alice@example.com"))
		u = found[0]
	} else if err != nil {
		panic(err)
	}
	next := map[string]any{"userName": "alice@example.com", "active": false}
	if caps.UserUpdate == scim.UpdatePatch {
		_, err = c.Patch(ctx, scim.Users, u.ID, scim.DiffPatch(last, next))
	} else {
		_, err = c.Replace(ctx, scim.Users, u.ID, next)
	}
	if err != nil {
		panic(err)
	}
	g, _ := c.Create(ctx, scim.Groups, map[string]any{"displayName": "staff"})
	if err := c.UpdateMembers(ctx, g.ID, []string{u.ID}, nil); errors.Is(err, scim.ErrUnsupported) {
		_, err = c.Replace(ctx, scim.Groups, g.ID, map[string]any{"displayName": "staff", "members": scim.MemberRefs([]string{u.ID}, caps)})
	}
	fmt.Println(scim.DiffPatch(last, next)[0].Path, len(srv.GroupMembers(g.ID)))
	// Output: active 1
}
