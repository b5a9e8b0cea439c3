package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/scimsync/scimsync/object"
	"github.com/scimsync/scimsync/store"
)

func TestLinkSaverStoresEveryLinkBeforeReturning(t *testing.T) {
	s := freshStore(t)
	ctx := ctxT(t)
	p := createProvider(t, s, provider("saver"))
	ids := make([]string, 40)
	for i := range ids {
		ids[i] = createUser(t, s, store.User{Username: fmt.Sprintf("u%02d", i)}).ID
	}
	saver := s.NewLinkSaver()
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(ids))
	for i, id := range ids {
		for round := range 2 { // each object saved twice at once: no statement may hold both
			wg.Add(1)
			go func() {
				defer wg.Done()
				remote := fmt.Sprintf("r%d", i)
				err := saver.Save(ctx, store.Link{ProviderID: p.ID, Kind: object.User, ObjectID: id,
					RemoteID: &remote, PayloadHash: fmt.Sprintf("h%d-%d", i, round)})
				if err == nil {
					// Save returned: the link must be stored already.
					links, lerr := s.Links(ctx, p.ID, object.User, []string{id})
					if lerr != nil || links[id].Remote() != remote {
						err = fmt.Errorf("link of %s after Save = %+v, %v", id, links[id], lerr)
					}
				}
				errs <- err
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	links, err := s.Links(ctx, p.ID, object.User, ids)
	if err != nil || len(links) != len(ids) {
		t.Fatalf("%d links stored, want %d (%v)", len(links), len(ids), err)
	}

	// A statement that fails fails the saves it carried.
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	remote := "r"
	if err := saver.Save(canceled, store.Link{ProviderID: p.ID, Kind: object.User, ObjectID: ids[0], RemoteID: &remote}); err == nil {
		t.Error("Save with a canceled context succeeded")
	}
	// And the saver goes on working afterwards.
	if err := saver.Save(ctx, store.Link{ProviderID: p.ID, Kind: object.User, ObjectID: ids[0], RemoteID: &remote}); err != nil {
		t.Errorf("Save after a failed one: %v", err)
	}
}
