package scimtest_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/scimsync/scimsync/scimtest"
)

func TestRateLimitRefusesBeyondTheBucketWithoutExecuting(t *testing.T) {
	// A refill of one token per 1,000 s: within the test the bucket only empties.
	srv := scimtest.NewServer(scimtest.Options{RateLimit: &scimtest.RateLimit{PerSecond: 0.001, Burst: 3, RetryAfter: "7", Headers: true}})
	defer srv.Close()
	var remaining []string
	for i := range 4 {
		req, _ := http.NewRequest("POST", srv.URL+"/Users", strings.NewReader(`{"schemas":["`+userSchema+`"],"userName":"u`+string(rune('a'+i))+`"}`))
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		remaining = append(remaining, resp.Header.Get("X-RateLimit-Remaining"))
		want := http.StatusCreated
		if i == 3 {
			want = http.StatusTooManyRequests
			if ra := resp.Header.Get("Retry-After"); ra != "7" {
				t.Errorf("Retry-After = %q, want 7", ra)
			}
			if reset := resp.Header.Get("X-RateLimit-Reset"); reset == "" || reset == "0" {
				t.Errorf("X-RateLimit-Reset = %q on a refusal, want the seconds until a token is back", reset)
			}
		}
		if resp.StatusCode != want {
			t.Fatalf("request %d: status %d, want %d", i+1, resp.StatusCode, want)
		}
	}
	if got := strings.Join(remaining, ","); got != "2,1,0,0" {
		t.Errorf("X-RateLimit-Remaining = %s, want 2,1,0,0", got)
	}
	if users, _ := srv.Len(); users != 3 {
		t.Errorf("the target holds %d users, want 3: a refused create must not be executed", users)
	}
	if srv.Throttled() != 1 || srv.Count("POST /Users") != 4 {
		t.Errorf("throttled %d of %d requests, want 1 of 4", srv.Throttled(), srv.Count("POST /Users"))
	}

	srv.SetRateLimit(nil)
	if code, _ := call(t, srv, "GET", "/Users", nil); code != http.StatusOK {
		t.Errorf("after SetRateLimit(nil): status %d, want 200", code)
	}
	srv.SetRateLimit(&scimtest.RateLimit{PerSecond: 0.001, Burst: 1})
	if code, _ := call(t, srv, "GET", "/Users", nil); code != http.StatusOK {
		t.Errorf("a new limit starts with a full bucket: status %d, want 200", code)
	}
	if code, _ := call(t, srv, "GET", "/Users", nil); code != http.StatusTooManyRequests {
		t.Errorf("second request with burst 1: status %d, want 429", code)
	}
	srv.Reset()
	if srv.Throttled() != 0 {
		t.Errorf("Reset left Throttled at %d", srv.Throttled())
	}
	if code, _ := call(t, srv, "GET", "/Users", nil); code != http.StatusOK {
		t.Errorf("Reset refills the bucket: status %d, want 200", code)
	}
}

func TestFaultAfterLetsTheFirstRequestsThrough(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{})
	defer srv.Close()
	srv.AddFault(scimtest.Fault{Method: "GET", Route: "/Users", Status: 429, RetryAfter: "5", After: 2, Times: 1})
	var got []int
	for range 4 {
		code, _ := call(t, srv, "GET", "/Users", nil)
		got = append(got, code)
	}
	want := []int{200, 200, 429, 200}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
}

func TestCursorPagingAndNoListing(t *testing.T) {
	srv := scimtest.NewServer(scimtest.Options{Quirks: scimtest.Profile("aws")})
	defer srv.Close()
	for i := range 250 {
		srv.AddUser(map[string]any{"userName": "u" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + strings.Repeat("0", i/26)})
	}
	seen, cursor, pages := map[string]bool{}, "", 0
	for {
		path := "/Users?count=500&cursor=" + cursor
		code, body := call(t, srv, "GET", path, nil)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d %v", path, code, body)
		}
		pages++
		res, _ := body["Resources"].([]any)
		if len(res) > 100 {
			t.Fatalf("a page of %d, want at most aws's 100", len(res))
		}
		for _, r := range res {
			seen[r.(map[string]any)["id"].(string)] = true
		}
		next, _ := body["nextCursor"].(string)
		if _, has := body["startIndex"]; has {
			t.Error("a cursor page carries startIndex")
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 250 || pages != 3 {
		t.Errorf("read %d users in %d pages, want 250 in 3", len(seen), pages)
	}
	if code, _ := call(t, srv, "GET", "/Users?cursor=bogus", nil); code != http.StatusBadRequest {
		t.Errorf("a bad cursor: %d, want 400", code)
	}

	plain := scimtest.NewServer(scimtest.Options{Config: scimtest.Config{NoListing: true}})
	defer plain.Close()
	id := plain.AddUser(map[string]any{"userName": "ann"})
	if code, body := call(t, plain, "GET", "/Users", nil); code != http.StatusBadRequest || body["scimType"] != "tooMany" {
		t.Errorf("listing with NoListing: %d %v, want 400 tooMany", code, body)
	}
	if code, _ := call(t, plain, "GET", "/Users/"+id, nil); code != http.StatusOK {
		t.Errorf("GET by id with NoListing: %d", code)
	}
	if code, _ := call(t, plain, "GET", `/Users?filter=userName%20eq%20%22ann%22`, nil); code != http.StatusOK {
		t.Errorf("a filtered search with NoListing: %d", code)
	}
}
