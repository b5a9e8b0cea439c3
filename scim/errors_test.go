package scim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/scimtest"
)

const testToken = "s3cr3t-token"

// newPair starts a scimtest server and a client for it.
func newPair(t *testing.T, so scimtest.Options, co scim.Options) (*scimtest.Server, *scim.Client) {
	t.Helper()
	if so.Token == "" && so.OAuth == nil {
		so.Token = testToken
	}
	srv := scimtest.NewServer(so)
	t.Cleanup(srv.Close)
	co.BaseURL = srv.URL
	if co.Token == "" && co.OAuth2 == nil {
		co.Token = so.Token
	}
	if co.HTTPClient == nil {
		co.HTTPClient = srv.Client()
	}
	c, err := scim.New(co)
	if err != nil {
		t.Fatalf("scim.New: %v", err)
	}
	return srv, c
}

// class is the classification of an error by the helpers of the error table in
// docs/architecture.md ("Error handling").
type class struct {
	retryable, rateLimited, notFound, conflict, providerFatal, objectError bool
}

func classify(err error) class {
	return class{
		retryable:     scim.IsRetryable(err),
		rateLimited:   scim.IsRateLimited(err),
		notFound:      scim.IsNotFound(err),
		conflict:      scim.IsConflict(err),
		providerFatal: scim.IsProviderFatal(err),
		objectError:   scim.IsObjectError(err),
	}
}

// TestErrorTable covers every row of the error table in docs/architecture.md ("Error
// handling"), plus the transport failures the client must tell apart.
func TestErrorTable(t *testing.T) {
	fixed := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	getUser := func(ctx context.Context, c *scim.Client, _ *scimtest.Server) error {
		_, err := c.Get(ctx, scim.Users, "u1")
		return err
	}
	fault := func(f scimtest.Fault) func(*scimtest.Server) {
		return func(s *scimtest.Server) { s.AddFault(f) }
	}
	statusFault := func(status int) func(*scimtest.Server) {
		return fault(scimtest.Fault{Method: "GET", Route: "/Users/{id}", Status: status})
	}
	tests := []struct {
		name       string
		setup      func(*scimtest.Server)
		opts       scim.Options
		call       func(context.Context, *scim.Client, *scimtest.Server) error
		status     int
		scimType   string
		cause      error
		retryAfter time.Duration
		want       class
	}{
		{name: "timeout", setup: fault(scimtest.Fault{Route: "/Users/{id}", Hang: true}),
			opts: scim.Options{Timeout: 150 * time.Millisecond}, call: getUser,
			cause: scim.ErrTimeout, want: class{retryable: true}},
		{name: "500", setup: statusFault(500), call: getUser, status: 500, want: class{retryable: true}},
		{name: "502 with an HTML body", setup: fault(scimtest.Fault{Route: "/Users/{id}", Status: 502, Body: "<html>bad gateway</html>"}),
			call: getUser, status: 502, want: class{retryable: true}},
		{name: "503", setup: statusFault(503), call: getUser, status: 503, want: class{retryable: true}},
		{name: "504", setup: statusFault(504), call: getUser, status: 504, want: class{retryable: true}},
		{name: "429 Retry-After seconds", setup: fault(scimtest.Fault{Route: "/Users/{id}", Status: 429, RetryAfter: "7"}),
			call: getUser, status: 429, retryAfter: 7 * time.Second, want: class{retryable: true, rateLimited: true}},
		{name: "503 Retry-After HTTP date",
			setup: fault(scimtest.Fault{Route: "/Users/{id}", Status: 503,
				RetryAfter: fixed.Add(90 * time.Second).Format(http.TimeFormat)}),
			opts: scim.Options{Now: func() time.Time { return fixed }},
			call: getUser, status: 503, retryAfter: 90 * time.Second, want: class{retryable: true, rateLimited: true}},
		{name: "404 on update", call: func(ctx context.Context, c *scim.Client, _ *scimtest.Server) error {
			_, err := c.Replace(ctx, scim.Users, "missing", map[string]any{"userName": "x"})
			return err
		}, status: 404, want: class{notFound: true, objectError: true}},
		{name: "404 on delete", call: func(ctx context.Context, c *scim.Client, _ *scimtest.Server) error {
			return c.Delete(ctx, scim.Users, "missing")
		}, status: 404, want: class{notFound: true, objectError: true}},
		{name: "409 on create", call: func(ctx context.Context, c *scim.Client, s *scimtest.Server) error {
			s.AddUser(map[string]any{"userName": "taken"})
			_, err := c.Create(ctx, scim.Users, map[string]any{"userName": "TAKEN"})
			return err
		}, status: 409, scimType: "uniqueness", want: class{conflict: true, objectError: true}},
		{name: "other 4xx for one object", call: func(ctx context.Context, c *scim.Client, _ *scimtest.Server) error {
			_, err := c.Create(ctx, scim.Users, map[string]any{"userName": "x", "active": "False"})
			return err
		}, status: 400, scimType: "invalidValue", want: class{objectError: true}},
		{name: "401", opts: scim.Options{Token: "wrong"}, call: getUser, status: 401, want: class{providerFatal: true}},
		{name: "403", setup: statusFault(403), call: getUser, status: 403, want: class{providerFatal: true}},
		{name: "redirect", setup: fault(scimtest.Fault{Route: "/Users/{id}", Status: 302,
			Header: http.Header{"Location": {"https://login.example.invalid/"}}, Body: "moved"}),
			call: getUser, status: 302, cause: scim.ErrRedirect, want: class{providerFatal: true}},
		{name: "HTML instead of JSON", setup: fault(scimtest.Fault{Route: "/Users/{id}", Body: "<!doctype html><html>Sign in</html>"}),
			call: getUser, status: 200, cause: scim.ErrNotJSON, want: class{providerFatal: true}},
		{name: "oversized body", setup: fault(scimtest.Fault{Route: "/Users/{id}", ContentType: "application/scim+json",
			Body: `{"id":"u1","pad":"` + strings.Repeat("x", 4096) + `"}`}),
			opts: scim.Options{MaxResponseBytes: 1024}, call: getUser, status: 200, cause: scim.ErrBodyTooLarge},
		{name: "create response without id", setup: fault(scimtest.Fault{Method: "POST", Route: "/Users", Status: 201,
			ContentType: "application/scim+json", Body: `{"userName":"x"}`}),
			call: func(ctx context.Context, c *scim.Client, _ *scimtest.Server) error {
				_, err := c.Create(ctx, scim.Users, map[string]any{"userName": "x"})
				return err
			}, status: 201, cause: scim.ErrNoID, want: class{objectError: true}},
		{name: "canceled context", call: func(ctx context.Context, c *scim.Client, s *scimtest.Server) error {
			s.AddFault(scimtest.Fault{Route: "/Users/{id}", Hang: true})
			ctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(50*time.Millisecond, cancel)
			_, err := c.Get(ctx, scim.Users, "u1")
			return err
		}, cause: scim.ErrCanceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, c := newPair(t, scimtest.Options{}, tt.opts)
			if tt.setup != nil {
				tt.setup(srv)
			}
			err := tt.call(context.Background(), c, srv)
			checkError(t, err, tt.status, tt.scimType, tt.cause, tt.retryAfter, tt.want)
		})
	}
}

// TestStatusClassification: the status of an answer alone decides its class. 408, 429 and
// every 5xx but 501 and 505 are transient, including the statuses gateways and CDNs answer
// of their own (520 to 530) when the origin blips; 501 and 505 say what the server is and
// never change with a retry.
func TestStatusClassification(t *testing.T) {
	tests := []struct {
		status int
		want   class
	}{
		{400, class{objectError: true}},
		{401, class{providerFatal: true}},
		{403, class{providerFatal: true}},
		{404, class{notFound: true, objectError: true}},
		{408, class{retryable: true}},
		{409, class{conflict: true, objectError: true}},
		{422, class{objectError: true}},
		{429, class{retryable: true, rateLimited: true}},
		{500, class{retryable: true}},
		{501, class{}},
		{502, class{retryable: true}},
		{503, class{retryable: true}},
		{504, class{retryable: true}},
		{505, class{}},
		{507, class{retryable: true}},
		{508, class{retryable: true}},
		{511, class{retryable: true}},
		{520, class{retryable: true}},
		{521, class{retryable: true}},
		{522, class{retryable: true}},
		{523, class{retryable: true}},
		{524, class{retryable: true}},
		{525, class{retryable: true}},
		{526, class{retryable: true}},
		{527, class{retryable: true}},
		{530, class{retryable: true}},
		{598, class{retryable: true}},
		{599, class{retryable: true}},
	}
	srv, c := newPair(t, scimtest.Options{}, scim.Options{})
	for _, tt := range tests {
		srv.ClearFaults()
		srv.AddFault(scimtest.Fault{Method: "GET", Route: "/Users/{id}", Status: tt.status})
		_, err := c.Get(context.Background(), scim.Users, "u1")
		var e *scim.Error
		if !errors.As(err, &e) || e.Status != tt.status || e.Err != nil {
			t.Errorf("%d: err = %v, want a *scim.Error with that status and no transport cause", tt.status, err)
			continue
		}
		if got := classify(err); got != tt.want {
			t.Errorf("%d: classification = %+v, want %+v", tt.status, got, tt.want)
		}
		want := fmt.Sprintf(": %d", tt.status) // gateway statuses have no text: no dangling space
		if text := http.StatusText(tt.status); text != "" {
			want += " " + text
		}
		if !strings.HasSuffix(err.Error(), want) {
			t.Errorf("%d: error string %q, want it to end with %q", tt.status, err, want)
		}
	}
}

func checkError(t *testing.T, err error, status int, scimType string, cause error, retryAfter time.Duration, want class) {
	t.Helper()
	var e *scim.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *scim.Error", err, err)
	}
	if e.Status != status || e.ScimType != scimType || e.RetryAfter != retryAfter {
		t.Errorf("err = status %d scimType %q retryAfter %s, want %d %q %s", e.Status, e.ScimType, e.RetryAfter, status, scimType, retryAfter)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Errorf("err = %v, want cause %v", err, cause)
	}
	if cause == nil && e.Err != nil {
		t.Errorf("err = %v, want no transport cause", err)
	}
	if got := classify(err); got != want {
		t.Errorf("classification = %+v, want %+v", got, want)
	}
}

func TestTransportErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("network error", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		url := dead.URL
		dead.Close()
		c, err := scim.New(scim.Options{BaseURL: url, Token: testToken})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(ctx, scim.Users, "u1")
		checkError(t, err, 0, "", scim.ErrNetwork, 0, class{retryable: true})
	})
	t.Run("TLS", func(t *testing.T) {
		srv := scimtest.NewUnstartedServer(scimtest.Options{Token: testToken})
		srv.StartTLS()
		defer srv.Close()
		// The default client does not trust the test certificate.
		c, err := scim.New(scim.Options{BaseURL: srv.URL, Token: testToken})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(ctx, scim.Users, "u1")
		checkError(t, err, 0, "", scim.ErrTLS, 0, class{providerFatal: true})
		// InsecureSkipVerify is the operator's explicit way out.
		c, _ = scim.New(scim.Options{BaseURL: srv.URL, Token: testToken, InsecureSkipVerify: true})
		if _, err := c.Get(ctx, scim.Users, "u1"); !scim.IsNotFound(err) {
			t.Errorf("with InsecureSkipVerify: err = %v, want 404", err)
		}
	})
	for _, raw := range []string{"", "example.com/scim", "ftp://example.com/scim", "http://", "http://h/scim?x=1", "://bad"} {
		t.Run("bad base URL "+raw, func(t *testing.T) {
			_, err := scim.New(scim.Options{BaseURL: raw})
			checkError(t, err, 0, "", scim.ErrBadURL, 0, class{providerFatal: true})
		})
	}
}

// TestErrorStringsCarryNoSecrets: error strings never hold tokens, request
// bodies, filter values or the server's detail (it may echo personal data).
func TestErrorStringsCarryNoSecrets(t *testing.T) {
	const email = "alice@example.com"
	srv, c := newPair(t, scimtest.Options{}, scim.Options{})
	srv.AddFault(scimtest.Fault{Status: 400, ScimType: "invalidValue", Detail: "bad user " + email})
	ctx := context.Background()
	var errs []error
	_, err := c.Search(ctx, scim.Users, scim.Eq("userName", email))
	errs = append(errs, err)
	_, err = c.Create(ctx, scim.Users, map[string]any{"userName": email, "password": "hunter2"})
	errs = append(errs, err)
	for _, err := range errs {
		var e *scim.Error
		if !errors.As(err, &e) {
			t.Fatalf("err = %v, want *scim.Error", err)
		}
		if !strings.Contains(e.Detail, email) {
			t.Errorf("Detail = %q, want the server's detail kept in the field", e.Detail)
		}
		for _, secret := range []string{email, testToken, "hunter2", "filter", "userName"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error string %q contains %q", err.Error(), secret)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"120", 2 * time.Minute},
		{" 3 ", 3 * time.Second},
		{"1.5", 0},
		{"soon", 0},
		{now.Add(45 * time.Second).Format(http.TimeFormat), 45 * time.Second},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0},
		{now.Add(time.Hour).Format(time.RFC850), time.Hour},
		{"7200", time.Hour},
		{"99999999999", time.Hour},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), time.Hour},
	}
	for _, tt := range tests {
		if got := scim.ParseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("ParseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		body             string
		scimType, detail string
	}{
		{`{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"taken"}`, "uniqueness", "taken"},
		{`{"status":400,"scimType":"invalidFilter","detail":"bad"}`, "invalidFilter", "bad"},
		{`{"status":"500","message":"boom"}`, "", "boom"},
		{`<html>oops</html>`, "", ""},
		{``, "", ""},
		{`{"detail":"` + strings.Repeat("d", 5000) + `"}`, "", strings.Repeat("d", 1024)},
	}
	for _, tt := range tests {
		st, d := scim.ParseErrorBody([]byte(tt.body))
		if st != tt.scimType || d != tt.detail {
			t.Errorf("ParseErrorBody(%.40q) = %q, %.20q; want %q, %.20q", tt.body, st, d, tt.scimType, tt.detail)
		}
	}
}
