package scimtest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Server. The zero value is a standard SCIM 2.0
// server at "/scim/v2" without authentication.
type Options struct {
	// Addr, when set, is the address to listen on (e.g. "127.0.0.1:8088")
	// instead of a free loopback port. It is read by NewServer and
	// NewUnstartedServer, which panic when it cannot be listened on.
	Addr string
	// BasePath is the path of the SCIM base URL; "" means "/scim/v2".
	// "/" serves SCIM at the root.
	BasePath string
	// Token, when set, is a bearer token accepted on every SCIM request.
	// With Token "" and OAuth nil no authentication is required.
	Token string
	// OAuth, when set, serves a token endpoint at /oauth/token (see
	// Server.TokenURL) and accepts the tokens it issues.
	OAuth *OAuth
	// Basic, when set, accepts HTTP Basic credentials (RFC 7617) with its
	// username and password on every SCIM request, besides the bearer
	// tokens of Token and OAuth when those are set too. A request without
	// acceptable credentials is answered 401 with a Basic challenge.
	Basic *BasicAuth
	// Quirks imitate a vendor; see Profile.
	Quirks Quirks
	// Config is the advertised (and enforced) ServiceProviderConfig.
	Config Config
	// MaxPageSize caps ListResponse pages; 0 means 100.
	MaxPageSize int
	// PatchNoContent answers successful PATCHes with 204 and no body.
	PatchNoContent bool
	// MaxLogEntries bounds the request log (oldest dropped); 0 means
	// 10000, negative disables the log. Counters are always kept.
	MaxLogEntries int
	// MaxLogBody bounds each request body kept in the log, in bytes; 0 means 64 KiB.
	// Replays of the log (the benchmark's) raise it to keep whole Bulk bodies.
	MaxLogBody int
	// Seed seeds the fault-injection randomness; the same seed gives the
	// same sequence of injected faults.
	Seed uint64
	// RateLimit, when set, throttles SCIM requests with a token bucket (see RateLimit and
	// Server.SetRateLimit).
	RateLimit *RateLimit
}

// OAuth configures the token endpoint.
type OAuth struct {
	// ClientID and ClientSecret must be presented (basic auth or form).
	ClientID     string
	ClientSecret string
	// Username and Password, when set, enable the password grant.
	Username string
	Password string
	// TokenTTL is advertised as expires_in and enforced; 0 means 1 h.
	TokenTTL time.Duration
	// RequiredParams must all be present in a token request with these
	// values (extra token-request parameters); else 400 invalid_request.
	RequiredParams url.Values
}

// BasicAuth are the credentials a Server takes with HTTP Basic.
type BasicAuth struct {
	Username string
	Password string
}

// Config is the capabilities advertised at discovery and enforced. The
// zero value supports PATCH, Bulk (1000 operations, 1 MiB) and filtering
// (200 results).
type Config struct {
	// NoPatch: PATCH answers 501 and discovery says unsupported.
	NoPatch bool
	// NoBulk: /Bulk answers 501 and discovery says unsupported.
	NoBulk bool
	// BulkNoPatch: PATCH operations inside a Bulk request fail with 400 (PATCH requests
	// of their own work), as with targets whose Bulk takes only some methods.
	BulkNoPatch bool
	// NoFilter: a filter answers 400 invalidFilter; discovery says unsupported.
	NoFilter bool
	// BulkMaxOperations (0: 1000) and BulkMaxPayloadSize (0: 1 MiB) are
	// advertised and enforced with 413.
	BulkMaxOperations  int
	BulkMaxPayloadSize int
	// FilterMaxResults is advertised and caps page sizes; 0 means 200.
	FilterMaxResults int
	// Raw, when set, is served verbatim as the discovery body (for
	// vendors that send "True" or 1 where booleans belong). Enforcement
	// still follows the fields above.
	Raw json.RawMessage
	// DiscoveryNotFound: the discovery endpoints answer 404.
	DiscoveryNotFound bool
	// NoListing: GET /Users and /Groups without a filter answer 400 tooMany, as
	// targets that cannot list do; single resources and filtered searches work.
	NoListing bool
}

func (c Config) bulkMaxOperations() int {
	if c.BulkMaxOperations > 0 {
		return c.BulkMaxOperations
	}
	return 1000
}

func (c Config) bulkMaxPayloadSize() int {
	if c.BulkMaxPayloadSize > 0 {
		return c.BulkMaxPayloadSize
	}
	return 1 << 20
}

func (c Config) filterMaxResults() int {
	if c.FilterMaxResults > 0 {
		return c.FilterMaxResults
	}
	return 200
}

// Request is one entry of the request log.
type Request struct {
	Time   time.Time
	Method string
	// Path is the full URL path; Route its template, e.g. "PATCH /Groups/{id}".
	Path   string
	Route  string
	Query  url.Values
	Header http.Header
	// Body is the request body (at most 64 KiB of it).
	Body     []byte
	Status   int
	Duration time.Duration
}

// Server is an in-memory SCIM 2.0 server on a loopback port, shaped like
// httptest.Server. It is safe for concurrent use.
type Server struct {
	// URL is the SCIM base URL (scheme, host and BasePath), set by Start.
	URL string
	// Options may be changed between NewUnstartedServer and Start.
	Options Options

	ts        *httptest.Server
	opts      Options
	quirks    Quirks
	basePath  string
	closing   chan struct{}
	closeOnce sync.Once

	mu       sync.RWMutex // guards the resources below
	users    *collection
	groups   *collection
	memberOf map[string]map[string]struct{} // member id → group ids

	statMu    sync.Mutex // guards everything below
	log       []Request
	counts    map[string]int
	faults    []*faultState
	rng       *rand.Rand
	tokens    map[string]time.Time
	tokenSeq  int
	tokenReqs []url.Values

	limiter bucket // has its own lock
}

// NewServer starts and returns a new Server. The caller should Close it.
func NewServer(opts Options) *Server {
	s := NewUnstartedServer(opts)
	s.Start()
	return s
}

// NewUnstartedServer returns a Server listening on a loopback port but
// not serving; change s.Options, then call Start or StartTLS. It panics
// when no port can be had.
func NewUnstartedServer(opts Options) *Server {
	s := &Server{Options: opts, closing: make(chan struct{})}
	s.ts = httptest.NewUnstartedServer(s)
	if opts.Addr != "" {
		ln, err := net.Listen("tcp", opts.Addr)
		if err != nil {
			panic(fmt.Sprintf("scimtest: listen on %s: %v", opts.Addr, err))
		}
		s.ts.Listener.Close()
		s.ts.Listener = ln
	}
	s.users, s.groups = newCollection("Users"), newCollection("Groups")
	s.memberOf = map[string]map[string]struct{}{}
	s.counts = map[string]int{}
	s.tokens = map[string]time.Time{}
	return s
}

func (s *Server) setup() {
	s.opts = s.Options
	s.quirks = s.opts.Quirks
	bp := s.opts.BasePath
	if bp == "" {
		bp = "/scim/v2"
	}
	bp = "/" + strings.Trim(bp, "/")
	if bp == "/" {
		bp = ""
	}
	s.basePath = bp
	s.rng = rand.New(rand.NewPCG(s.opts.Seed, 0x5c1a5c1a))
	s.SetRateLimit(s.opts.RateLimit)
}

// Start starts serving plain HTTP. It panics if already started.
func (s *Server) Start() {
	s.setup()
	s.ts.Start()
	s.URL = s.ts.URL + s.basePath
}

// StartTLS starts serving HTTPS with a self-signed certificate that only
// Client() trusts. It panics if already started.
func (s *Server) StartTLS() {
	s.setup()
	s.ts.StartTLS()
	s.URL = s.ts.URL + s.basePath
}

// Close releases hanging requests, shuts the server down and blocks until
// every request has finished.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	s.ts.CloseClientConnections()
	s.ts.Close()
}

// Client returns an *http.Client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.ts.Client() }

// RootURL is the server's scheme and host, without BasePath.
func (s *Server) RootURL() string { return s.ts.URL }

// TokenURL is the OAuth2 token endpoint (served when Options.OAuth is set).
func (s *Server) TokenURL() string { return s.ts.URL + "/oauth/token" }

// maxRequestBody bounds request bodies read by the server.
const maxRequestBody = 32 << 20

// defaultLogBody bounds the bodies kept in the request log unless Options.MaxLogBody says.
const defaultLogBody = 64 << 10

// statusWriter records the status and logs the request when the header
// is written, before the client can see the answer, so a test that reads
// the log right after a call always finds that call.
type statusWriter struct {
	http.ResponseWriter
	status int
	logged bool
	log    func(status int)
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.flushLog()
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) flushLog() {
	if !w.logged {
		w.logged = true
		w.log(w.status)
	}
}

// ServeHTTP serves the SCIM API under BasePath and the token endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	route := s.route(r)
	sw := &statusWriter{ResponseWriter: w, log: func(status int) { s.logRequest(r, route, body, status, start) }}
	defer sw.flushLog() // requests that never answered (hangs) are logged with status 0
	if err != nil {
		writeError(sw, errorf(http.StatusBadRequest, "invalidSyntax", "cannot read body"))
		return
	}
	if len(body) > maxRequestBody {
		writeError(sw, errorf(http.StatusRequestEntityTooLarge, "", "request body too large"))
		return
	}
	if s.injectFault(sw, r, route, func() { s.serve(httptest.NewRecorder(), r, route, body) }) {
		return
	}
	s.serve(sw, r, route, body)
}

// serve answers a request no fault answered.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, route string, body []byte) {
	if route == "POST /oauth/token" {
		s.serveToken(w, r, body)
		return
	}
	rel, ok := s.relPath(r.URL.Path)
	if !ok {
		writeError(w, errorf(http.StatusNotFound, "", "no such endpoint"))
		return
	}
	if !s.authorized(r) {
		challenge := `Bearer realm="scimtest"`
		if s.opts.Basic != nil {
			challenge = `Basic realm="scimtest", charset="UTF-8"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
		writeError(w, errorf(http.StatusUnauthorized, "", "authorization required"))
		return
	}
	if s.throttle(w) {
		return
	}
	s.serveSCIM(w, r, rel, body)
}

func (s *Server) relPath(p string) (string, bool) {
	if s.basePath == "" {
		return p, true
	}
	if p == s.basePath {
		return "/", true
	}
	rest, ok := strings.CutPrefix(p, s.basePath+"/")
	return "/" + rest, ok
}

// route returns the request's template, e.g. "GET /Users/{id}".
func (s *Server) route(r *http.Request) string {
	if r.URL.Path == "/oauth/token" {
		return r.Method + " /oauth/token"
	}
	rel, ok := s.relPath(r.URL.Path)
	if !ok {
		return r.Method + " " + r.URL.Path
	}
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	switch {
	case len(parts) == 2 && (parts[0] == "Users" || parts[0] == "Groups") && parts[1] == ".search":
		return r.Method + " /" + parts[0] + "/.search"
	case len(parts) == 2 && (parts[0] == "Users" || parts[0] == "Groups"):
		return r.Method + " /" + parts[0] + "/{id}"
	}
	return r.Method + " " + rel
}

func (s *Server) logRequest(r *http.Request, route string, body []byte, status int, start time.Time) {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	s.counts[route]++
	max := s.opts.MaxLogEntries
	if max == 0 {
		max = 10000
	}
	if max < 0 {
		return
	}
	limit := s.opts.MaxLogBody
	if limit <= 0 {
		limit = defaultLogBody
	}
	if len(body) > limit {
		body = body[:limit]
	}
	s.log = append(s.log, Request{
		Time: start, Method: r.Method, Path: r.URL.Path, Route: route, Query: r.URL.Query(),
		Header: r.Header.Clone(), Body: slices.Clone(body), Status: status, Duration: time.Since(start),
	})
	if len(s.log) > 2*max {
		s.log = slices.Clone(s.log[len(s.log)-max:])
	}
}

func (s *Server) authorized(r *http.Request) bool {
	if s.opts.Token == "" && s.opts.OAuth == nil && s.opts.Basic == nil {
		return true
	}
	if user, pass, ok := r.BasicAuth(); ok {
		b := s.opts.Basic
		return b != nil && subtle.ConstantTimeCompare([]byte(user), []byte(b.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pass), []byte(b.Password)) == 1
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || tok == "" {
		return false
	}
	if s.opts.Token != "" && tok == s.opts.Token {
		return true
	}
	s.statMu.Lock()
	defer s.statMu.Unlock()
	exp, ok := s.tokens[tok]
	return ok && time.Now().Before(exp)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		http.Error(w, "encode: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/scim+json")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func writeError(w http.ResponseWriter, e *apiError) { writeJSON(w, e.status, e.body()) }

func (s *Server) baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + s.basePath
}

func decodeBody(body []byte, v any) *apiError {
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(http.StatusBadRequest, "invalidSyntax", "body is not valid JSON")
	}
	return nil
}

func (s *Server) serveSCIM(w http.ResponseWriter, r *http.Request, rel string, body []byte) {
	parts := strings.Split(strings.Trim(rel, "/"), "/")
	base := s.baseURL(r)
	switch {
	case len(parts) == 1 && (parts[0] == "ServiceProviderConfig" || parts[0] == "ServiceProviderConfigs"):
		if r.Method != http.MethodGet {
			writeError(w, errorf(http.StatusMethodNotAllowed, "", "method not allowed"))
			return
		}
		s.serveDiscovery(w, parts[0] == "ServiceProviderConfigs", base)
	case len(parts) == 1 && parts[0] == "ResourceTypes":
		writeJSON(w, http.StatusOK, resourceTypes(base))
	case len(parts) == 1 && parts[0] == "Schemas":
		writeJSON(w, http.StatusOK, map[string]any{"schemas": []any{schemaListResponse}, "totalResults": 0, "Resources": []any{}})
	case len(parts) == 1 && parts[0] == "Bulk":
		if r.Method != http.MethodPost {
			writeError(w, errorf(http.StatusMethodNotAllowed, "", "method not allowed"))
			return
		}
		s.serveBulk(w, body, base)
	case (len(parts) == 1 || len(parts) == 2) && (parts[0] == "Users" || parts[0] == "Groups"):
		id := ""
		if len(parts) == 2 {
			id = parts[1]
		}
		s.serveResource(w, r, parts[0], id, body, base)
	default:
		writeError(w, errorf(http.StatusNotFound, "", "no such endpoint"))
	}
}

func (s *Server) serveDiscovery(w http.ResponseWriter, plural bool, base string) {
	if status := s.quirks.DiscoveryStatus; status != 0 {
		writeError(w, errorf(status, "", "no ServiceProviderConfig is served here"))
		return
	}
	if s.opts.Config.DiscoveryNotFound || plural != s.quirks.DiscoveryPluralOnly {
		writeError(w, errorf(http.StatusNotFound, "", "no such endpoint"))
		return
	}
	if len(s.opts.Config.Raw) > 0 {
		w.Header().Set("Content-Type", "application/scim+json")
		_, _ = w.Write(s.opts.Config.Raw)
		return
	}
	writeJSON(w, http.StatusOK, s.serviceProviderConfig(base))
}

func (s *Server) bulkSupported() bool { return !s.opts.Config.NoBulk && !s.quirks.NoBulk }

func (s *Server) serviceProviderConfig(base string) map[string]any {
	cfg := s.opts.Config
	return map[string]any{
		"schemas":          []any{schemaSPC},
		"documentationUri": "https://example.invalid/scimtest",
		"patch":            map[string]any{"supported": !cfg.NoPatch},
		"bulk": map[string]any{
			"supported":      s.bulkSupported(),
			"maxOperations":  cfg.bulkMaxOperations(),
			"maxPayloadSize": cfg.bulkMaxPayloadSize(),
		},
		"filter": map[string]any{
			"supported":  !cfg.NoFilter && !s.quirks.HideFilterSupport,
			"maxResults": cfg.filterMaxResults(),
		},
		"changePassword":        map[string]any{"supported": false},
		"sort":                  map[string]any{"supported": false},
		"etag":                  map[string]any{"supported": false},
		"authenticationSchemes": s.authenticationSchemes(),
		"meta":                  map[string]any{"resourceType": "ServiceProviderConfig", "location": base + "/ServiceProviderConfig"},
	}
}

func (s *Server) authenticationSchemes() []any {
	schemes := []any{map[string]any{
		"type": "oauthbearertoken", "name": "OAuth Bearer Token",
		"description": "Authentication with a bearer token", "primary": s.opts.Basic == nil,
	}}
	if s.opts.Basic != nil {
		schemes = append(schemes, map[string]any{
			"type": "httpbasic", "name": "HTTP Basic",
			"description": "Authentication with a username and password", "primary": true,
		})
	}
	return schemes
}

func resourceTypes(base string) map[string]any {
	rt := func(name, endpoint, schema string) map[string]any {
		return map[string]any{
			"schemas": []any{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
			"id":      name, "name": name, "endpoint": endpoint, "schema": schema,
			"meta": map[string]any{"resourceType": "ResourceType", "location": base + "/ResourceTypes/" + name},
		}
	}
	return map[string]any{
		"schemas":      []any{schemaListResponse},
		"totalResults": 2, "startIndex": 1, "itemsPerPage": 2,
		"Resources": []any{
			rt("User", "/Users", schemaUser),
			rt("Group", "/Groups", schemaGroup),
		},
	}
}

func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, kind, id string, body []byte, base string) {
	switch {
	case id == ".search" && r.Method == http.MethodPost:
		var req struct {
			Filter     string `json:"filter"`
			StartIndex int    `json:"startIndex"`
			Count      *int   `json:"count"`
		}
		if e := decodeBody(body, &req); e != nil {
			writeError(w, e)
			return
		}
		s.serveList(w, kind, req.Filter, req.Filter != "", listPage{start: req.StartIndex, count: req.Count})
	case id == "" && r.Method == http.MethodGet:
		q := r.URL.Query()
		page := listPage{cursor: q.Has("cursor") || s.quirks.CursorPaging}
		if page.cursor {
			if page.start = decodeCursor(q.Get("cursor")); page.start < 0 {
				writeError(w, errorf(http.StatusBadRequest, "invalidCursor", "cursor %q is not one this server gave", q.Get("cursor")))
				return
			}
		} else {
			page.start, _ = strconv.Atoi(q.Get("startIndex"))
		}
		if c, err := strconv.Atoi(q.Get("count")); err == nil {
			page.count = &c
		}
		if s.opts.Config.NoListing && !q.Has("filter") {
			writeError(w, errorf(http.StatusBadRequest, "tooMany", "listing without a filter is not supported"))
			return
		}
		s.serveList(w, kind, q.Get("filter"), q.Has("filter"), page)
	case id == "" && r.Method == http.MethodPost:
		var in map[string]any
		if e := decodeBody(body, &in); e != nil {
			writeError(w, e)
			return
		}
		s.mu.Lock()
		out, e := s.createLocked(kind, in, base)
		s.mu.Unlock()
		if e != nil {
			writeError(w, e)
			return
		}
		w.Header().Set("Location", base+"/"+kind+"/"+out["id"].(string))
		writeJSON(w, http.StatusCreated, s.render(kind, out))
	case id != "" && r.Method == http.MethodGet:
		s.mu.RLock()
		o := s.coll(kind).byID[id]
		s.mu.RUnlock()
		if o == nil {
			writeError(w, errorf(http.StatusNotFound, "", "resource %s not found", id))
			return
		}
		writeJSON(w, http.StatusOK, s.render(kind, o.body))
	case id != "" && r.Method == http.MethodPut && kind == "Users" && s.quirks.NoUserPut:
		writeError(w, errorf(http.StatusMethodNotAllowed, "", "PUT is not supported for Users: use PATCH"))
	case id != "" && r.Method == http.MethodPut:
		var in map[string]any
		if e := decodeBody(body, &in); e != nil {
			writeError(w, e)
			return
		}
		s.mu.Lock()
		out, e := s.replaceLocked(kind, id, in, base)
		s.mu.Unlock()
		if e != nil {
			writeError(w, e)
			return
		}
		writeJSON(w, http.StatusOK, s.render(kind, out))
	case id != "" && r.Method == http.MethodPatch:
		if s.opts.Config.NoPatch {
			writeError(w, errorf(http.StatusNotImplemented, "", "PATCH is not supported"))
			return
		}
		var req patchRequest
		if e := decodeBody(body, &req); e != nil {
			writeError(w, e)
			return
		}
		s.mu.Lock()
		out, e := s.patchLocked(kind, id, req, base)
		s.mu.Unlock()
		if e != nil {
			writeError(w, e)
			return
		}
		if s.opts.PatchNoContent {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		writeJSON(w, http.StatusOK, s.render(kind, out))
	case id != "" && r.Method == http.MethodDelete:
		s.mu.Lock()
		e := s.deleteLocked(kind, id, base)
		s.mu.Unlock()
		if e != nil {
			writeError(w, e)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, errorf(http.StatusMethodNotAllowed, "", "method not allowed"))
	}
}

// listPage is the page a list request asks for: by startIndex, or by cursor (RFC 9865),
// whose cursors here encode the startIndex of the page they lead to.
type listPage struct {
	start  int
	count  *int
	cursor bool
}

func encodeCursor(start int) string { return "c" + strconv.Itoa(start*7+3) }

func decodeCursor(c string) int {
	if c == "" {
		return 1
	}
	n, err := strconv.Atoi(strings.TrimPrefix(c, "c"))
	if err != nil || !strings.HasPrefix(c, "c") || n < 3 || (n-3)%7 != 0 {
		return -1
	}
	return (n - 3) / 7
}

func (s *Server) serveList(w http.ResponseWriter, kind, filter string, hasFilter bool, page listPage) {
	start, count := page.start, page.count
	var f *Filter
	if hasFilter {
		if s.opts.Config.NoFilter {
			writeError(w, errorf(http.StatusBadRequest, "invalidFilter", "filtering is not supported"))
			return
		}
		var err error
		if f, err = ParseFilter(filter); err != nil {
			writeError(w, errorf(http.StatusBadRequest, "invalidFilter", "%v", err))
			return
		}
		if s.quirks.EqOnlyFilter && !f.eqOnly() {
			writeError(w, errorf(http.StatusBadRequest, "invalidFilter", "only eq joined by and is supported"))
			return
		}
	}
	maxPage := s.opts.MaxPageSize
	if maxPage <= 0 {
		maxPage = 100
	}
	if m := s.quirks.MaxPageSize; m > 0 {
		maxPage = min(maxPage, m)
	}
	maxPage = min(maxPage, s.opts.Config.filterMaxResults())
	n := maxPage
	if count != nil {
		n = max(0, min(*count, maxPage))
	}
	if start < 1 {
		start = 1
	}
	s.mu.RLock()
	c := s.coll(kind)
	var matched []*object
	total := 0
	if f == nil {
		all := c.live()
		total = len(all)
		if start-1 < total {
			matched = all[start-1 : min(total, start-1+n)]
		}
	} else {
		objs, indexed := c.candidates(f)
		if !indexed {
			objs = c.live()
		}
		var hits []*object
		for _, o := range objs {
			if f.Match(o.body) {
				hits = append(hits, o)
			}
		}
		total = len(hits)
		if start-1 < total {
			matched = hits[start-1 : min(total, start-1+n)]
		}
	}
	bodies := make([]any, len(matched))
	for i, o := range matched {
		bodies[i] = o.body
	}
	s.mu.RUnlock()
	for i := range bodies {
		bodies[i] = s.render(kind, bodies[i].(map[string]any))
	}
	out := map[string]any{
		"schemas":      []any{schemaListResponse},
		"totalResults": total,
		"itemsPerPage": len(bodies),
		"Resources":    bodies,
	}
	if page.cursor {
		if next := start + len(bodies); len(bodies) > 0 && next <= total {
			out["nextCursor"] = encodeCursor(next)
		}
	} else {
		out["startIndex"] = start
	}
	writeJSON(w, http.StatusOK, out)
}

// --- inspection and seeding -------------------------------------------

func (s *Server) list(kind string) []map[string]any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	objs := s.coll(kind).live()
	out := make([]map[string]any, len(objs))
	for i, o := range objs {
		out[i] = copyMap(o.body)
	}
	return out
}

// Users returns deep copies of every stored user (full bodies, members
// and quirks ignored), in creation order.
func (s *Server) Users() []map[string]any { return s.list("Users") }

// Groups returns deep copies of every stored group with its members,
// whatever GroupGetOmitsMembers says, in creation order.
func (s *Server) Groups() []map[string]any { return s.list("Groups") }

func (s *Server) get(kind, id string) (map[string]any, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	o := s.coll(kind).byID[id]
	if o == nil {
		return nil, false
	}
	return copyMap(o.body), true
}

// User returns a deep copy of user id.
func (s *Server) User(id string) (map[string]any, bool) { return s.get("Users", id) }

// Group returns a deep copy of group id, members included.
func (s *Server) Group(id string) (map[string]any, bool) { return s.get("Groups", id) }

// UserByName finds a user by userName, case-insensitively.
func (s *Server) UserByName(userName string) (map[string]any, bool) {
	s.mu.RLock()
	id, ok := s.users.unique[strings.ToLower(userName)]
	s.mu.RUnlock()
	if !ok {
		return nil, false
	}
	return s.User(id)
}

// GroupMembers returns the sorted member ids of group id.
func (s *Server) GroupMembers(id string) []string {
	g, ok := s.Group(id)
	if !ok {
		return nil
	}
	ids := memberIDs(g)
	sort.Strings(ids)
	return ids
}

// Len returns the number of users and groups stored.
func (s *Server) Len() (users, groups int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.users.byID), len(s.groups.byID)
}

func (s *Server) seed(kind string, body map[string]any) string {
	base := s.URL
	s.mu.Lock()
	defer s.mu.Unlock()
	out, e := s.createLocked(kind, body, base)
	if e != nil {
		panic(fmt.Sprintf("scimtest: seed %s: %d %s", kind, e.status, e.detail))
	}
	return out["id"].(string)
}

// AddUser stores a user directly (no request is logged) and returns its
// id. "schemas" is added when missing. It panics when the body is invalid.
func (s *Server) AddUser(body map[string]any) string {
	body = copyMap(body)
	if _, ok := body["schemas"]; !ok {
		body["schemas"] = []any{schemaUser}
	}
	return s.seed("Users", body)
}

// AddGroup stores a group directly and returns its id, like AddUser.
func (s *Server) AddGroup(body map[string]any) string {
	body = copyMap(body)
	if _, ok := body["schemas"]; !ok {
		body["schemas"] = []any{schemaGroup}
	}
	return s.seed("Groups", body)
}

// Requests returns a copy of the request log, oldest first.
func (s *Server) Requests() []Request {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	max := s.opts.MaxLogEntries
	if max <= 0 {
		max = 10000
	}
	log := s.log
	if len(log) > max {
		log = log[len(log)-max:]
	}
	return slices.Clone(log)
}

// Counts returns the number of requests per route, e.g.
// {"POST /Users": 3, "PATCH /Groups/{id}": 1}.
func (s *Server) Counts() map[string]int {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	out := make(map[string]int, len(s.counts))
	for k, v := range s.counts {
		out[k] = v
	}
	return out
}

// Count returns the number of requests to route, e.g. "POST /Users".
func (s *Server) Count(route string) int {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	return s.counts[route]
}

// Mutations returns the number of POST, PUT, PATCH and DELETE requests
// received on the SCIM API (the token endpoint excluded).
func (s *Server) Mutations() int {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	n := 0
	for route, c := range s.counts {
		m, path, _ := strings.Cut(route, " ")
		if path == "/oauth/token" {
			continue
		}
		switch m {
		case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
			n += c
		}
	}
	return n
}

// ResetLog clears the request log and counters.
func (s *Server) ResetLog() {
	s.statMu.Lock()
	defer s.statMu.Unlock()
	s.log = nil
	s.counts = map[string]int{}
}

// Reset clears resources, the request log, counters, faults, issued
// tokens and token-request records, and refills the rate limit's bucket.
// Options are kept.
func (s *Server) Reset() {
	s.mu.Lock()
	s.users, s.groups = newCollection("Users"), newCollection("Groups")
	s.memberOf = map[string]map[string]struct{}{}
	s.mu.Unlock()
	s.statMu.Lock()
	s.log = nil
	s.counts = map[string]int{}
	s.faults = nil
	s.tokens = map[string]time.Time{}
	s.tokenReqs = nil
	s.statMu.Unlock()
	s.limiter.mu.Lock()
	s.limiter.throttled = 0
	if l := s.limiter.limit; l != nil {
		s.limiter.tokens, s.limiter.at = l.burst(), time.Now()
	}
	s.limiter.mu.Unlock()
}
