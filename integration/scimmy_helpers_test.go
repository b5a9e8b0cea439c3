package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scimsync/scimsync/internal/scimmy"
)

// scimmyToken is the bearer token SCIMMY accepts; providers reference it as
// "env:" + scimmyTokenEnv.
const scimmyToken = scimmy.Token

// scimmyTokenEnv holds scimmyToken during a test.
const scimmyTokenEnv = "IT_SCIMMY_TOKEN"

// scimmyServer is SCIMMY (see package internal/scimmy) behind a counting reverse proxy.
// Providers point at URL, the proxy's SCIM base URL, so every request the pipeline sends is
// logged; the test reads the exact stored state from SCIMMY's /_state, past the proxy.
type scimmyServer struct {
	// URL is the proxy's SCIM base URL (…/scim/v2), without trailing slash.
	URL  string
	root string // SCIMMY itself, without the base path
	hc   *http.Client

	mu  sync.Mutex
	log []scimmyRequest
}

// scimmyRequest is one request the proxy passed to SCIMMY, or one operation of a Bulk
// request (Route prefixed "BULK ").
type scimmyRequest struct {
	Route    string // "PATCH /Groups/{id}", "BULK POST /Users"
	Status   int
	Body     string // request body (for a Bulk operation, its data)
	Response string // response body of requests answered >= 400, or the operation's response
}

// startScimmy starts SCIMMY and a counting proxy in front of it, both stopped when the
// test ends.
func startScimmy(t *testing.T) *scimmyServer {
	t.Helper()
	peer := scimmy.Start(t)
	s := &scimmyServer{root: peer.Root, hc: &http.Client{Timeout: 10 * time.Second}}
	target, err := url.Parse(s.root)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ModifyResponse = s.record
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r = r.WithContext(context.WithValue(r.Context(), scimmyBodyKey{}, body))
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/scim/v2"
	t.Setenv(scimmyTokenEnv, scimmyToken)
	return s
}

type scimmyBodyKey struct{}

var scimmyIDPath = regexp.MustCompile(`^/(Users|Groups)/[^/]+$`)

// scimmyRoute names a request by method and path with ids replaced: "PATCH /Users/{id}".
func scimmyRoute(method, path string) string {
	path = strings.TrimPrefix(path, "/scim/v2")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	if scimmyIDPath.MatchString(path) {
		path = path[:strings.LastIndexByte(path, '/')] + "/{id}"
	}
	return method + " " + path
}

// record logs a response passing the proxy, and each operation of a Bulk response.
func (s *scimmyServer) record(resp *http.Response) error {
	reqBody, _ := resp.Request.Context().Value(scimmyBodyKey{}).([]byte)
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	entries := []scimmyRequest{{Route: scimmyRoute(resp.Request.Method, resp.Request.URL.Path), Status: resp.StatusCode, Body: string(reqBody)}}
	if resp.StatusCode >= 400 {
		entries[0].Response = string(respBody)
	}
	if entries[0].Route == "POST /Bulk" && resp.StatusCode < 300 {
		entries = append(entries, scimmyBulkOperations(reqBody, respBody)...)
	}
	s.mu.Lock()
	s.log = append(s.log, entries...)
	s.mu.Unlock()
	return nil
}

// scimmyBulkOperations pairs the operations of a Bulk request with those of its response.
func scimmyBulkOperations(reqBody, respBody []byte) []scimmyRequest {
	var req struct {
		Operations []struct {
			Method string          `json:"method"`
			Path   string          `json:"path"`
			Data   json.RawMessage `json:"data"`
		}
	}
	var resp struct {
		Operations []json.RawMessage
	}
	_ = json.Unmarshal(reqBody, &req)
	_ = json.Unmarshal(respBody, &resp)
	var out []scimmyRequest
	for i, op := range req.Operations {
		e := scimmyRequest{Route: "BULK " + scimmyRoute(op.Method, op.Path), Body: string(op.Data)}
		if i < len(resp.Operations) {
			var r struct {
				Status json.RawMessage `json:"status"`
			}
			_ = json.Unmarshal(resp.Operations[i], &r)
			// RFC 7644 §3.7.3 gives status as a string; accept a number too.
			fmt.Sscan(strings.Trim(string(r.Status), `"`), &e.Status)
			e.Response = string(resp.Operations[i])
		}
		out = append(out, e)
	}
	return out
}

// Requests returns the requests logged since the last ResetLog.
func (s *scimmyServer) Requests() []scimmyRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]scimmyRequest(nil), s.log...)
}

// ResetLog forgets the requests logged so far.
func (s *scimmyServer) ResetLog() {
	s.mu.Lock()
	s.log = nil
	s.mu.Unlock()
}

// Counts returns the number of logged requests by route.
func (s *scimmyServer) Counts() map[string]int {
	out := map[string]int{}
	for _, r := range s.Requests() {
		out[r.Route]++
	}
	return out
}

// Count returns the number of logged requests of one route ("POST /Users"); a Bulk
// operation counts under its own route ("BULK POST /Users").
func (s *scimmyServer) Count(route string) int { return s.Counts()[route] }

// Mutations returns the number of logged requests that may change SCIMMY's state: POST,
// PUT, PATCH and DELETE (a Bulk request counts once).
func (s *scimmyServer) Mutations() int {
	n := 0
	for _, r := range s.Requests() {
		switch strings.SplitN(r.Route, " ", 2)[0] {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			n++
		}
	}
	return n
}

// Rejections describes the logged requests and Bulk operations SCIMMY answered with an
// error status, with what was sent and what SCIMMY said.
func (s *scimmyServer) Rejections() []string {
	var out []string
	for _, r := range s.Requests() {
		if r.Status >= 400 || r.Status == 0 {
			out = append(out, fmt.Sprintf("%s → %d\n  sent: %s\n  answer: %s", r.Route, r.Status, scimmyClip(r.Body), scimmyClip(r.Response)))
		}
	}
	return out
}

func scimmyClip(s string) string {
	if len(s) > 600 {
		return s[:600] + "…"
	}
	return s
}

// checkNoRejections fails the test when SCIMMY refused anything the pipeline sent.
func (s *scimmyServer) checkNoRejections(t *testing.T) {
	t.Helper()
	if rej := s.Rejections(); len(rej) > 0 {
		t.Errorf("SCIMMY refused %d requests or Bulk operations; the first:\n%s", len(rej), strings.Join(rej[:min(len(rej), 3)], "\n"))
	}
}

// Create stores a resource at SCIMMY directly (past the proxy, so it is not logged), as
// another client of the application would, and returns its id.
func (s *scimmyServer) Create(t *testing.T, kind string, body map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(body)
	req, err := http.NewRequest(http.MethodPost, s.root+"/scim/v2/"+kind, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+scimmyToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := s.hc.Do(req)
	if err != nil {
		t.Fatalf("SCIMMY create %s: %v", kind, err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("SCIMMY create %s: status %d, %v", kind, resp.StatusCode, err)
	}
	return out.ID
}

// scimmyState is SCIMMY's exact stored state, as GET /_state returns it.
type scimmyState struct {
	Users  []map[string]any
	Groups []map[string]any
}

// State reads SCIMMY's stored state directly (past the proxy, so it is not logged).
func (s *scimmyServer) State(t *testing.T) scimmyState {
	t.Helper()
	resp, err := s.hc.Get(s.root + "/_state")
	if err != nil {
		t.Fatalf("SCIMMY state: %v", err)
	}
	defer resp.Body.Close()
	var st scimmyState
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatalf("SCIMMY state: %v", err)
	}
	return st
}

// usersByName returns the stored users keyed by userName, without the attributes SCIMMY
// sets (id, meta), and with the ids of all users; a userName stored twice is reported.
func (st scimmyState) usersByName() (users map[string]map[string]any, ids map[string]string, dups []string) {
	users, ids = map[string]map[string]any{}, map[string]string{}
	for _, u := range st.Users {
		name, _ := u["userName"].(string)
		if _, ok := users[name]; ok {
			dups = append(dups, name)
		}
		users[name] = stripServerFields(u)
		ids[name], _ = u["id"].(string)
	}
	return users, ids, dups
}

// groupsByName returns the stored groups keyed by displayName: their attributes without
// id, meta and members, and their members as sorted userNames (a member id that is no
// stored user appears as "?<id>").
func (st scimmyState) groupsByName() map[string]remoteGroup {
	names := map[string]string{}
	for _, u := range st.Users {
		id, _ := u["id"].(string)
		names[id], _ = u["userName"].(string)
	}
	out := map[string]remoteGroup{}
	for _, g := range st.Groups {
		members := []string{}
		for _, m := range asList(g["members"]) {
			mm, _ := m.(map[string]any)
			id, _ := mm["value"].(string)
			if n, ok := names[id]; ok {
				members = append(members, n)
			} else {
				members = append(members, "?"+id)
			}
		}
		sort.Strings(members)
		name, _ := g["displayName"].(string)
		out[name] = remoteGroup{Body: stripServerFields(g), Members: members}
	}
	return out
}

// scimmyWant is the exact state a test expects at SCIMMY: users by userName, as stored
// (see scimmyStored), and groups by displayName with their members as userNames.
type scimmyWant struct {
	Users  map[string]map[string]any
	Groups map[string]remoteGroup
}

// diff returns "" when SCIMMY holds exactly w, else the first differences.
func (w scimmyWant) diff(st scimmyState) string {
	var problems []string
	users, _, dups := st.usersByName()
	for _, name := range dups {
		problems = append(problems, fmt.Sprintf("user %s is stored more than once", name))
	}
	for _, name := range slices.Sorted(maps.Keys(w.Users)) {
		got, ok := users[name]
		if !ok {
			problems = append(problems, fmt.Sprintf("user %s is missing", name))
		} else if d := diffJSON(got, w.Users[name]); d != "" {
			problems = append(problems, fmt.Sprintf("user %s:\n%s", name, d))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(users)) {
		if _, ok := w.Users[name]; !ok {
			problems = append(problems, fmt.Sprintf("user %s should not be there: %v", name, users[name]))
		}
	}
	groups := st.groupsByName()
	if len(groups) != len(st.Groups) {
		problems = append(problems, fmt.Sprintf("%d groups stored under %d displayNames", len(st.Groups), len(groups)))
	}
	for _, name := range slices.Sorted(maps.Keys(w.Groups)) {
		want := w.Groups[name]
		got, ok := groups[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("group %s is missing", name))
		case diffJSON(got.Body, want.Body) != "":
			problems = append(problems, fmt.Sprintf("group %s:\n%s", name, diffJSON(got.Body, want.Body)))
		case strings.Join(got.Members, ",") != strings.Join(want.Members, ","):
			problems = append(problems, fmt.Sprintf("group %s members = %v, want %v", name, got.Members, want.Members))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(groups)) {
		if _, ok := w.Groups[name]; !ok {
			problems = append(problems, fmt.Sprintf("group %s should not be there", name))
		}
	}
	if len(problems) > 5 {
		problems = append(problems[:5], fmt.Sprintf("… and %d more differences", len(problems)-5))
	}
	return strings.Join(problems, "\n")
}

// scimmyStored is the payload as SCIMMY stores it: the server handler drops "schemas".
func scimmyStored(payload map[string]any) map[string]any {
	out := normalize(payload)
	delete(out, "schemas")
	return out
}
