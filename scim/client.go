package scim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"
)

// Defaults applied to zero Options fields.
const (
	DefaultTimeout          = 30 * time.Second
	DefaultPageSize         = 100
	DefaultMaxResponseBytes = 16 << 20
	DefaultUserAgent        = "scimsync/1"
)

// MediaType is the SCIM media type sent in Accept and Content-Type.
const MediaType = "application/scim+json"

// Options configure a Client. The zero value of every field but BaseURL
// is usable.
type Options struct {
	// BaseURL is the SCIM base URL, e.g. "https://example.com/scim/v2".
	// Required: an absolute http or https URL. Trailing slashes are removed.
	BaseURL string

	// Token is a static bearer token. Ignored when OAuth2, TokenSource or
	// Basic is set. Empty with no other auth: requests carry no Authorization.
	Token string
	// Basic, when set, sends HTTP Basic credentials with every request.
	// Ignored when OAuth2 or TokenSource is set. New fails when the username
	// holds a colon or both are empty.
	Basic *Basic
	// OAuth2 obtains bearer tokens from a token endpoint (client
	// credentials or password grant). Tokens are cached and refreshed.
	OAuth2 *OAuth2
	// TokenSource supplies bearer tokens for other flows. It is called on
	// every request, so it should cache (oauth2.ReuseTokenSource).
	TokenSource oauth2.TokenSource

	// HTTPClient sends the requests. nil: a client with its own transport
	// honouring InsecureSkipVerify. The client is copied and never follows
	// redirects (a redirect is ErrRedirect); its Timeout is left as is.
	HTTPClient *http.Client
	// InsecureSkipVerify disables TLS verification; only used when
	// HTTPClient is nil. Off by default (docs/architecture.md, "Security").
	InsecureSkipVerify bool
	// Timeout bounds each request, response body included, and each token
	// fetch. 0 means DefaultTimeout; negative means no limit other than
	// the caller's context.
	Timeout time.Duration
	// UserAgent is sent with every request; "" means DefaultUserAgent.
	UserAgent string

	// Mode is the compatibility mode; "" means ModeDefault.
	Mode Mode
	// Config is a known ServiceProviderConfig (for example a cached one).
	// When set, Capabilities uses it without discovering. nil: the first
	// call needing capabilities runs Discover. Ignored without discovery.
	Config *ServiceProviderConfig
	// Fallback is used when discovery finds no endpoint; nil means
	// FallbackConfig() (PATCH, Bulk and filter unsupported).
	Fallback *ServiceProviderConfig
	// NoDiscovery: never request the ServiceProviderConfig. The client then
	// assumes the mode's configuration where the mode has one (vcenter,
	// gitlab: they never discover anyway), else one with nothing optional
	// supported (PATCH, Bulk, filter), which Override corrects. false: the
	// mode decides.
	NoDiscovery bool
	// Override, when set, corrects the configuration the client works with
	// (discovered, cached, fallback or assumed) before the mode applies: the
	// fields it gives win. nil: the configuration is taken as it is.
	Override *ConfigOverride

	// DryRun records mutating requests (POST, PUT, PATCH, DELETE) instead
	// of sending them; GETs are sent. See DryRunLog.
	DryRun bool
	// OnDryRun, when set, is called with every request recorded in dry run.
	OnDryRun func(RecordedRequest)
	// OnRequest, when set, is called after every request with its method,
	// path, status and duration (never headers, bodies or queries). It is
	// meant for metrics and request logs; it must be safe for concurrent use.
	OnRequest func(RequestInfo)

	// PageSize is the count asked per ListResponse page; 0 means
	// DefaultPageSize.
	PageSize int
	// MaxResponseBytes bounds every response body; 0 means
	// DefaultMaxResponseBytes. A larger success body is ErrBodyTooLarge.
	MaxResponseBytes int64
	// Now returns the current time, used for Retry-After dates; nil means
	// time.Now.
	Now func() time.Time
	// Pacer, when set, admits every request sent to the target (discovery, reads,
	// writes; not the OAuth2 token endpoint, nor the writes dry run holds back) and
	// learns from the answers; a throttled request is then sent again once the Pacer
	// lets it (see Pacer). nil: requests go at once and a 429 is returned to the caller.
	Pacer Pacer
}

// RequestInfo describes one finished request for Options.OnRequest.
type RequestInfo struct {
	Op     string
	Method string
	// Path is relative to the base URL, without query string.
	Path string
	// Status is the HTTP status, 0 when no response was received.
	Status   int
	Duration time.Duration
	// Err is the request's error, nil on success.
	Err error
	// DryRun is true when the request was recorded and not sent.
	DryRun bool
}

// RecordedRequest is a mutating request recorded in dry-run mode.
type RecordedRequest struct {
	Method string
	// Path is relative to the base URL.
	Path string
	// Body is the JSON body that would have been sent, nil for DELETE.
	Body json.RawMessage
}

// Client is a SCIM 2.0 client for one target. It is safe for concurrent
// use. Create it with New.
type Client struct {
	opts    Options
	base    string
	hc      *http.Client
	compat  Compat
	creds   credentials
	timeout time.Duration

	mu      sync.Mutex
	config  *ServiceProviderConfig
	dryLog  []RecordedRequest
	dryNext int
}

// New returns a Client for opts. It fails with an *Error wrapping
// ErrBadURL when BaseURL is not an absolute http(s) URL, and with a plain
// error for an unknown Mode or an incomplete OAuth2 or Basic configuration.
func New(opts Options) (*Client, error) {
	base, err := normalizeBaseURL(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	compat, err := CompatFor(opts.Mode)
	if err != nil {
		return nil, err
	}
	hc := opts.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		if opts.InsecureSkipVerify {
			tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // explicit operator choice
		}
		hc = &http.Client{Transport: tr}
	}
	hcCopy := *hc
	hcCopy.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &Client{opts: opts, base: base, hc: &hcCopy, compat: compat}
	c.timeout = opts.Timeout
	if c.timeout == 0 {
		c.timeout = DefaultTimeout
	}
	switch {
	case c.noDiscovery():
		spc := c.assumed()
		c.config = &spc
	case opts.Config != nil:
		spc := *opts.Config
		c.config = &spc
	}
	c.creds, err = newCredentials(opts, hc, c.timeout)
	if err != nil {
		return nil, err
	}
	return c, nil
}

func normalizeBaseURL(raw string) (string, error) {
	bad := &Error{Op: "new", Err: ErrBadURL}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", bad
	}
	u.User = nil
	return strings.TrimRight(u.String(), "/"), nil
}

// BaseURL returns the normalised base URL (no trailing slash).
func (c *Client) BaseURL() string { return c.base }

// DryRun reports whether the client records instead of sending writes.
func (c *Client) DryRun() bool { return c.opts.DryRun }

// DryRunLog returns a copy of the requests recorded in dry-run mode.
func (c *Client) DryRunLog() []RecordedRequest {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]RecordedRequest, len(c.dryLog))
	copy(out, c.dryLog)
	return out
}

// request is one HTTP exchange.
type request struct {
	op     string
	method string
	path   string // relative to base, escaped, no query
	query  url.Values
	body   any // marshalled as JSON when not nil
}

// response is what do returns on success.
type response struct {
	status int
	body   []byte
	dryRun bool
}

func isMutating(method string) bool {
	switch method {
	case http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
		return true
	}
	return false
}

func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// do sends req and, on a 2xx answer with a body, decodes it into out (when
// not nil). Non-2xx answers and transport failures are *Error. In dry-run
// mode a mutating request is recorded and answered with dryRun set.
func (c *Client) do(ctx context.Context, req request, out any) (*response, error) {
	var body []byte
	if req.body != nil {
		var err error
		if body, err = marshalJSON(req.body); err != nil {
			return nil, &Error{Op: req.op, Method: req.method, Path: req.path, Err: fmt.Errorf("encode body: %w", err)}
		}
	}
	if c.opts.DryRun && isMutating(req.method) {
		c.record(RecordedRequest{Method: req.method, Path: req.path, Body: body})
		c.hook(ctx, RequestInfo{Op: req.op, Method: req.method, Path: req.path, DryRun: true})
		return &response{dryRun: true}, nil
	}
	resp, err := c.paced(ctx, req, body)
	if err != nil && c.creds != nil && StatusOf(err) == http.StatusUnauthorized && c.creds.invalidate() {
		// A cached OAuth2 token may have been revoked: fetch a new one once.
		resp, err = c.paced(ctx, req, body)
	}
	if err != nil {
		return nil, err
	}
	if out != nil && len(bytes.TrimSpace(resp.body)) > 0 {
		if err := decodeJSON(resp.body, out); err != nil {
			return nil, &Error{Op: req.op, Method: req.method, Path: req.path, Status: resp.status, Err: ErrNotJSON}
		}
	}
	return resp, nil
}

// decodeJSON is json.Unmarshal with numbers kept as json.Number: a float64 holds integers
// exactly only up to 2^53, and targets with numeric ids go beyond (9007199254740993 would
// come back as ...992, and the object be linked to another id).
func decodeJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

func (c *Client) record(r RecordedRequest) {
	c.mu.Lock()
	c.dryLog = append(c.dryLog, r)
	c.mu.Unlock()
	if c.opts.OnDryRun != nil {
		c.opts.OnDryRun(r)
	}
}

func (c *Client) nextDryID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dryNext++
	return fmt.Sprintf("dry-run-%d", c.dryNext)
}

func (c *Client) hook(ctx context.Context, info RequestInfo) {
	if c.opts.OnRequest != nil {
		c.opts.OnRequest(info)
	}
	observe(ctx, info)
}

func (c *Client) now() time.Time {
	if c.opts.Now != nil {
		return c.opts.Now()
	}
	return time.Now()
}

func (c *Client) maxBody() int64 {
	if c.opts.MaxResponseBytes > 0 {
		return c.opts.MaxResponseBytes
	}
	return DefaultMaxResponseBytes
}

// paced sends req through the Pacer, when there is one: it waits for a permit, sends,
// reports the outcome, and sends again as long as the target throttles the request.
func (c *Client) paced(ctx context.Context, req request, body []byte) (*response, error) {
	if c.opts.Pacer == nil {
		resp, _, err := c.send(ctx, req, body)
		return resp, err
	}
	for {
		permit, err := c.opts.Pacer.Wait(ctx)
		if err != nil {
			return nil, &Error{Op: req.op, Method: req.method, Path: req.path, Unsent: true, Err: classifyTransport(ctx, err)}
		}
		resp, out, err := c.send(ctx, req, body)
		permit.Done(out)
		if !out.Throttled || ctx.Err() != nil {
			return resp, err
		}
	}
}

// send performs one HTTP round trip, reports it to the hook and says what became of it.
func (c *Client) send(ctx context.Context, req request, body []byte) (resp *response, out Outcome, err error) {
	start := time.Now()
	status := 0
	defer func() {
		c.hook(ctx, RequestInfo{Op: req.op, Method: req.method, Path: req.path, Status: status, Duration: time.Since(start), Err: err})
	}()
	// The request counts as sent once it is written whole: before that the target cannot
	// have acted on it, so a failure then is a refusal, not an uncertain outcome.
	var wrote atomic.Bool
	fail := func(status int, cause error) error {
		return &Error{Op: req.op, Method: req.method, Path: req.path, Status: status, Unsent: !wrote.Load(), Err: cause}
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	target := c.base + req.path
	if len(req.query) > 0 {
		target += "?" + req.query.Encode()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	trace := &httptrace.ClientTrace{WroteRequest: func(info httptrace.WroteRequestInfo) {
		if info.Err == nil {
			wrote.Store(true)
		}
	}}
	hreq, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), req.method, target, rd)
	if err != nil {
		return nil, out, fail(0, ErrBadURL)
	}
	hreq.Header.Set("Accept", MediaType+", application/json;q=0.9")
	if body != nil {
		hreq.Header.Set("Content-Type", MediaType)
	}
	ua := c.opts.UserAgent
	if ua == "" {
		ua = DefaultUserAgent
	}
	hreq.Header.Set("User-Agent", ua)
	if c.creds != nil {
		auth, err := c.creds.authorization(ctx)
		if err != nil {
			if e, ok := asError(err); ok {
				e.Unsent = true
			}
			return nil, out, err
		}
		hreq.Header.Set("Authorization", auth)
	}
	hresp, err := c.hc.Do(hreq)
	if err != nil {
		out.Sent = wrote.Load()
		return nil, out, fail(0, classifyTransport(ctx, err))
	}
	defer hresp.Body.Close()
	status = hresp.StatusCode
	out.Status, out.Sent = status, true
	out.Quota = ParseQuota(hresp.Header, c.now())
	limit := c.maxBody()
	data, err := io.ReadAll(io.LimitReader(hresp.Body, limit+1))
	if err != nil {
		return nil, out, fail(status, classifyTransport(ctx, err))
	}
	tooLarge := int64(len(data)) > limit
	if tooLarge {
		data = data[:limit]
	}
	switch {
	case status >= 300 && status < 400:
		return nil, out, fail(status, ErrRedirect)
	case status >= 400 || status < 200:
		e := &Error{Op: req.op, Method: req.method, Path: req.path, Status: status}
		e.ScimType, e.Detail = ParseErrorBody(data)
		e.RetryAfter = ParseRetryAfter(hresp.Header.Get("Retry-After"), c.now())
		out.RetryAfter = e.RetryAfter
		out.Throttled = IsRateLimited(e)
		return nil, out, e
	case tooLarge:
		return nil, out, fail(status, ErrBodyTooLarge)
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] != '{' && t[0] != '[' {
		return nil, out, fail(status, ErrNotJSON)
	}
	return &response{status: status, body: data}, out, nil
}

// errInvalidArgument reports a caller mistake (empty id, unknown kind).
func invalidArgument(op, msg string) error {
	return &Error{Op: op, Err: errors.New(msg)}
}
