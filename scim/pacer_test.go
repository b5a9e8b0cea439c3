package scim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

// recordingPacer admits every request at once and records the outcomes it is told.
type recordingPacer struct {
	mu       sync.Mutex
	waits    int
	outcomes []scim.Outcome
	refuse   error // returned by Wait when set
}

func (p *recordingPacer) Wait(ctx context.Context) (scim.Permit, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waits++
	if p.refuse != nil {
		return nil, p.refuse
	}
	return permitFunc(func(o scim.Outcome) {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.outcomes = append(p.outcomes, o)
	}), nil
}

type permitFunc func(scim.Outcome)

func (f permitFunc) Done(o scim.Outcome) { f(o) }

func TestPacedClientSendsAThrottledRequestAgain(t *testing.T) {
	pacer := &recordingPacer{}
	srv, c := newPair(t, scimtest.Options{}, scim.Options{Pacer: pacer})
	srv.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 429, RetryAfter: "3", Times: 2})
	srv.AddFault(scimtest.Fault{Method: "GET", Route: "/Users", Status: 503, Times: 1})

	r, err := c.Create(context.Background(), scim.Users, map[string]any{"userName": "a"})
	if err != nil {
		t.Fatalf("create through two 429s: %v", err)
	}
	if r.ID == "" || srv.Count("POST /Users") != 3 {
		t.Fatalf("id %q after %d POSTs, want an id after 3", r.ID, srv.Count("POST /Users"))
	}
	// A 503 without Retry-After is an outage, not a throttle: the caller decides.
	if _, err := c.Search(context.Background(), scim.Users, scim.Eq("userName", "a")); scim.StatusOf(err) != 503 {
		t.Fatalf("search answered 503: err = %v, want the 503 returned", err)
	}
	want := []scim.Outcome{
		{Status: 429, Sent: true, Throttled: true, RetryAfter: 3 * time.Second},
		{Status: 429, Sent: true, Throttled: true, RetryAfter: 3 * time.Second},
		{Status: 201, Sent: true},
		{Status: 503, Sent: true},
	}
	if pacer.waits != 4 || !reflect.DeepEqual(pacer.outcomes, want) {
		t.Errorf("pacer saw %d waits and outcomes %+v, want 4 and %+v", pacer.waits, pacer.outcomes, want)
	}
}

func TestUnpacedClientReturnsTheThrottle(t *testing.T) {
	srv, c := newPair(t, scimtest.Options{}, scim.Options{})
	srv.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 429, RetryAfter: "3", Times: 1})
	_, err := c.Create(context.Background(), scim.Users, map[string]any{"userName": "a"})
	if !scim.IsRateLimited(err) || scim.RetryAfterOf(err) != 3*time.Second || !scim.IsRefused(err) {
		t.Fatalf("err = %v, want a refused 429 with Retry-After 3s", err)
	}
}

func TestPacerWaitEndingIsARefusal(t *testing.T) {
	pacer := &recordingPacer{refuse: context.DeadlineExceeded}
	srv, c := newPair(t, scimtest.Options{}, scim.Options{Pacer: pacer})
	_, err := c.Create(context.Background(), scim.Users, map[string]any{"userName": "a"})
	var se *scim.Error
	if !errors.As(err, &se) || !se.Unsent || !errors.Is(err, scim.ErrTimeout) || !scim.IsRefused(err) {
		t.Fatalf("err = %#v, want an unsent timeout", err)
	}
	if n := len(srv.Requests()); n != 0 {
		t.Errorf("the target got %d requests", n)
	}
}

func TestRefusedOrUncertain(t *testing.T) {
	ctx := context.Background()
	t.Run("connection refused: never sent", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		pacer := &recordingPacer{}
		c, _ := scim.New(scim.Options{BaseURL: url, Token: testToken, Pacer: pacer})
		_, err := c.Create(ctx, scim.Users, map[string]any{"userName": "a"})
		if !scim.IsRefused(err) || !errors.Is(err, scim.ErrNetwork) {
			t.Fatalf("err = %v, want a refused network error", err)
		}
		if len(pacer.outcomes) != 1 || pacer.outcomes[0].Sent {
			t.Errorf("outcomes %+v, want one not sent", pacer.outcomes)
		}
	})
	t.Run("timeout after the request was written: uncertain", func(t *testing.T) {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{Timeout: 200 * time.Millisecond})
		srv.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Hang: true})
		_, err := c.Create(ctx, scim.Users, map[string]any{"userName": "a"})
		if !errors.Is(err, scim.ErrTimeout) || scim.IsRefused(err) {
			t.Fatalf("err = %v, want an uncertain timeout", err)
		}
	})
	for status, refused := range map[int]bool{400: true, 404: true, 408: true, 409: true, 429: true, 500: false, 502: false, 503: false} {
		srv, c := newPair(t, scimtest.Options{}, scim.Options{})
		srv.AddFault(scimtest.Fault{Method: "POST", Route: "/Users", Status: status})
		_, err := c.Create(ctx, scim.Users, map[string]any{"userName": "a"})
		if scim.IsRefused(err) != refused {
			t.Errorf("%d: IsRefused = %v, want %v", status, !refused, refused)
		}
	}
}

func TestParseQuota(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name string
		h    http.Header
		want *scim.Quota
	}{
		{"none", h(), nil},
		{"X-RateLimit with delay-seconds", h("X-RateLimit-Remaining", "17", "X-RateLimit-Reset", "30"), &scim.Quota{Remaining: 17, Reset: 30 * time.Second}},
		{"X-RateLimit with a Unix time (GitHub)", h("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1900000090"), &scim.Quota{Remaining: 0, Reset: 90 * time.Second}},
		{"RateLimit- fields", h("RateLimit-Remaining", "5", "RateLimit-Reset", "2"), &scim.Quota{Remaining: 5, Reset: 2 * time.Second}},
		{"RateLimit draft 7", h("RateLimit", "limit=100, remaining=50, reset=5"), &scim.Quota{Remaining: 50, Reset: 5 * time.Second}},
		{"RateLimit structured", h("RateLimit", `"default";r=0;t=12`), &scim.Quota{Remaining: 0, Reset: 12 * time.Second}},
		{"reset without remaining says nothing", h("X-RateLimit-Reset", "30"), nil},
		{"garbage", h("X-RateLimit-Remaining", "lots", "X-RateLimit-Reset", "soon"), nil},
		{"reset capped", h("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "999999"), &scim.Quota{Remaining: 0, Reset: scim.MaxRetryAfter}},
		{"reset in the past", h("X-RateLimit-Remaining", "3", "X-RateLimit-Reset", "1800000000"), &scim.Quota{Remaining: 3}},
	}
	for _, tt := range tests {
		if got := scim.ParseQuota(tt.h, now); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: ParseQuota = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestAWSSearchPagesByCursor(t *testing.T) {
	srv, c := newPair(t, scimtest.Options{Quirks: scimtest.Profile("aws")}, scim.Options{Mode: scim.ModeAWS, PageSize: 500})
	for i := range 230 {
		srv.AddUser(map[string]any{"userName": fmt.Sprintf("user%03d", i)})
	}
	all, err := c.Search(context.Background(), scim.Users, "")
	if err != nil || len(all) != 230 {
		t.Fatalf("Search: %d users, %v; want 230", len(all), err)
	}
	for _, r := range srv.Requests() {
		if !r.Query.Has("cursor") || r.Query.Get("count") != "100" {
			t.Errorf("request %s?%s: want cursor paging, 100 a page", r.Path, r.Query.Encode())
		}
	}
}
