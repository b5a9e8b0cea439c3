package activities_test

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/scimsync/scimsync/activities"
	"github.com/scimsync/scimsync/internal/testenv"
	"github.com/scimsync/scimsync/mapping"
	"github.com/scimsync/scimsync/pacing"
	"github.com/scimsync/scimsync/scimtest"
	"github.com/scimsync/scimsync/store"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const targetToken = "activities-test-token"

// world is one test's provider in the package's database, pointing at a scimtest target,
// with activities called directly (no Temporal): what an activity returns and leaves in
// the store and at the target is what these tests check.
type world struct {
	t        *testing.T
	ctx      context.Context
	store    *store.Store
	acts     *activities.Activities
	target   *scimtest.Server
	provider store.Provider
}

var unsafeName = regexp.MustCompile(`[^a-z0-9]+`)

// newWorld starts the target and saves the provider; edit, when set, changes the provider
// before it is saved.
func newWorld(t *testing.T, opts scimtest.Options, edit func(target *scimtest.Server, p *store.Provider)) *world {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	// A database of its own: the users a test creates by name must not meet those of its
	// earlier runs (-count) or of other tests.
	s, err := store.Open(ctx, testenv.NewDatabase(t, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	opts.Token = targetToken
	target := scimtest.NewServer(opts)
	t.Cleanup(target.Close)
	p := store.ProviderDefaults()
	p.Name = providerName(t.Name())
	p.BaseURL = target.URL
	p.Token = targetToken
	if edit != nil {
		edit(target, &p)
	}
	if err := s.InTx(ctx, func(tx *store.Tx) (err error) {
		p, err = tx.UpsertProvider(ctx, p)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	pacers := pacing.NewRegistry(s, nil)
	t.Cleanup(pacers.Close) // before the store closes: cleanups run last first
	return &world{t: t, ctx: ctx, store: s, target: target, provider: p, acts: &activities.Activities{
		Store: s, Mapper: &mapping.Engine{Secret: "activities-test-secret"}, RequestTimeout: 5 * time.Second,
		Pacing: pacers,
	}}
}

// providerName is a valid provider name (at most 63 characters) unique to the test.
func providerName(test string) string {
	name := strings.Trim(unsafeName.ReplaceAllString(strings.ToLower(test), "-"), "-")
	if len(name) <= 63 {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("%s-%08x", strings.TrimRight(name[:54], "-"), h.Sum32())
}

// user is a mapped user as MapObjects hands it to WriteObjects, never written before.
func user(userName, externalID string) activities.MappedObject {
	return activities.MappedObject{ID: uuid.NewString(), Hash: "h-" + userName, New: true, Payload: map[string]any{
		"schemas":  []any{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName": userName, "externalId": externalID, "active": true,
	}}
}

func (w *world) write(kind string, objs ...activities.MappedObject) (activities.WriteResult, error) {
	w.t.Helper()
	return w.acts.WriteObjects(w.ctx, activities.WriteInput{Provider: w.provider.Name, Kind: kind, Objects: objs})
}

// link returns the object's link; ok false when it has none.
func (w *world) link(kind, id string) (store.Link, bool) {
	w.t.Helper()
	links, err := w.store.Links(w.ctx, w.provider.ID, kind, []string{id})
	if err != nil {
		w.t.Fatal(err)
	}
	l, ok := links[id]
	return l, ok
}

// bulkWithoutIDs serves target with one difference: its Bulk answers give neither location
// nor id for the operations of bulkIDs, as a target may answer a create it made. The
// provider's base URL must be the returned server's URL plus target's base path.
func bulkWithoutIDs(t *testing.T, target *scimtest.Server, bulkIDs ...string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		target.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/Bulk") && rec.Code == http.StatusOK {
			var resp struct {
				Schemas    []any            `json:"schemas"`
				Operations []map[string]any `json:"Operations"`
			}
			if err := json.Unmarshal(body, &resp); err != nil {
				t.Errorf("bulk answer: %v", err)
			}
			for _, op := range resp.Operations {
				if id, _ := op["bulkId"].(string); slices.Contains(bulkIDs, id) {
					delete(op, "location")
					if data, ok := op["response"].(map[string]any); ok {
						delete(data, "id")
					}
				}
			}
			body, _ = json.Marshal(resp)
		}
		for k, vs := range rec.Header() {
			if k != "Content-Length" {
				w.Header()[k] = vs
			}
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// basePath is the path of target's SCIM base URL.
func basePath(target *scimtest.Server) string {
	return strings.TrimPrefix(target.URL, target.RootURL())
}

// routes lists the routes of the requests the target received, in order.
func (w *world) routes() []string {
	var out []string
	for _, r := range w.target.Requests() {
		out = append(out, r.Route)
	}
	return out
}
