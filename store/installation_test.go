package store_test

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/store"
)

// namedTB is tb under another name: databases are named after the test.
type namedTB struct {
	testing.TB
	name string
}

func (n namedTB) Name() string { return n.name }

var uuidForm = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// TestInstallationIsGeneratedOncePerDatabase: the migration gives each database an
// installation id of its own, which stays what it is; a database whose row was deleted
// (to tell a copy from its original) gets a new one, the same for every reader.
func TestInstallationIsGeneratedOncePerDatabase(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	open := func(tb testing.TB) *store.Store {
		s, err := store.Open(ctx, testenv.NewDatabase(tb, true))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b := open(t), open(namedTB{t, t.Name() + "_b"})
	first, err := a.Installation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !uuidForm.MatchString(first.ID) || first.CreatedAt.IsZero() {
		t.Fatalf("installation = %+v, want a uuid and its creation time", first)
	}
	if _, err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if again, err := a.Installation(ctx); err != nil || again != first {
		t.Fatalf("installation after a second migrate = %+v, %v; want %+v", again, err, first)
	}
	other, err := b.Installation(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if other.ID == first.ID {
		t.Fatalf("two databases have the installation %s", first.ID)
	}

	if _, err := a.DB().ExecContext(ctx, `DELETE FROM installation`); err != nil {
		t.Fatal(err)
	}
	ids := make(chan string, 4)
	for range cap(ids) {
		go func() {
			inst, err := a.Installation(ctx)
			if err != nil {
				t.Error(err)
			}
			ids <- inst.ID
		}()
	}
	renewed := <-ids
	for range cap(ids) - 1 {
		if id := <-ids; id != renewed {
			t.Errorf("concurrent readers got installations %s and %s", renewed, id)
		}
	}
	if renewed == first.ID || !uuidForm.MatchString(renewed) {
		t.Errorf("installation after its row was deleted = %s, want a new uuid (was %s)", renewed, first.ID)
	}
	var rows int
	if err := a.DB().GetContext(ctx, &rows, `SELECT count(*) FROM installation`); err != nil || rows != 1 {
		t.Errorf("installation rows = %d, %v; want 1", rows, err)
	}
}
