package scim

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Sentinel causes wrapped by *Error when a request fails before or outside
// a SCIM error response. Find them with errors.Is.
var (
	// ErrNetwork: the connection could not be made or broke (DNS, refused, reset).
	ErrNetwork = errors.New("scim: network error")
	// ErrTimeout: the request or the caller's context deadline expired.
	ErrTimeout = errors.New("scim: timeout")
	// ErrCanceled: the caller's context was canceled.
	ErrCanceled = errors.New("scim: canceled")
	// ErrTLS: the TLS handshake failed (unknown authority, bad certificate, wrong host name).
	ErrTLS = errors.New("scim: TLS error")
	// ErrBadURL: the base URL is not an absolute http(s) URL.
	ErrBadURL = errors.New("scim: bad base URL")
	// ErrRedirect: the server answered 3xx; SCIM endpoints do not redirect,
	// so this usually means a wrong base URL (a login page, http→https).
	ErrRedirect = errors.New("scim: unexpected redirect")
	// ErrNotJSON: a success response whose body is not JSON (an HTML page, a proxy message).
	ErrNotJSON = errors.New("scim: response is not JSON")
	// ErrBodyTooLarge: a success body exceeds Options.MaxResponseBytes. No
	// classification helper reports it: the target misbehaves for this
	// request, and the caller decides (error bodies are truncated instead).
	ErrBodyTooLarge = errors.New("scim: response body too large")
	// ErrNoID: a create answered with success but without an "id".
	ErrNoID = errors.New("scim: create response has no id")
	// ErrAuth: the OAuth2 token endpoint refused or failed to issue a token.
	ErrAuth = errors.New("scim: cannot obtain access token")
	// ErrUnsupported: the operation is not supported by the target
	// (for example Bulk when discovery says so, or in aws mode).
	ErrUnsupported = errors.New("scim: operation not supported by the target")
	// ErrPayloadTooLarge: one Bulk operation alone exceeds bulk.maxPayloadSize.
	ErrPayloadTooLarge = errors.New("scim: operation exceeds bulk.maxPayloadSize")
	// ErrNotAttempted: a Bulk operation was not executed because
	// failOnErrors was reached before it.
	ErrNotAttempted = errors.New("scim: bulk operation not attempted")
)

// Error is the one error type returned by Client methods. Find it with
// errors.As. It is either a SCIM error answer (Status ≥ 400, with the
// parsed ScimType and Detail) or a transport failure (Status 0 or the
// status of an unusable answer, with Err set to one of the sentinel
// causes above).
//
// Error never holds request bodies, tokens or query strings: Path is the
// request path relative to the base URL, without the query, so filter
// values (which may be e-mail addresses) never appear. Detail is the
// server's own text and may echo personal data; Error() leaves it out,
// so log or store it deliberately.
type Error struct {
	// Op is the client operation: "discover", "create", "get", "replace",
	// "patch", "delete", "search", "bulk" or "token".
	Op string
	// Method and Path of the request; Path is relative to the base URL
	// ("/Users/2819c223") and has no query string.
	Method string
	Path   string
	// Status is the HTTP status, 0 when no response was received.
	Status int
	// ScimType is the SCIM error type (RFC 7644 §3.12), e.g. "uniqueness".
	ScimType string
	// Detail is the server's human-readable detail. Not part of Error().
	Detail string
	// RetryAfter is the server's Retry-After (seconds or HTTP date)
	// converted to a duration; 0 when absent.
	RetryAfter time.Duration
	// Unsent is true when the request never reached the target: the connection failed
	// before the request was written whole, or no token could be had for it. The target
	// cannot have acted on it (see IsRefused).
	Unsent bool
	// Err is the underlying cause (ErrNetwork, ErrTimeout, ...), or nil
	// for a plain SCIM error answer.
	Err error
}

// Error formats the operation, request line, status, scimType, Retry-After
// and cause. It never includes Detail, bodies, queries or credentials.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("scim: ")
	b.WriteString(e.Op)
	if e.Method != "" {
		b.WriteString(" ")
		b.WriteString(e.Method)
		b.WriteString(" ")
		b.WriteString(e.Path)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": %d", e.Status)
		if text := http.StatusText(e.Status); text != "" { // none for 520 and other gateway statuses
			b.WriteString(" " + text)
		}
	}
	if e.ScimType != "" {
		fmt.Fprintf(&b, " (scimType %s)", e.ScimType)
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " retry after %s", e.RetryAfter)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(strings.TrimPrefix(e.Err.Error(), "scim: "))
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Timeout reports whether the error is a timeout, like net.Error.
func (e *Error) Timeout() bool { return errors.Is(e.Err, ErrTimeout) }

func asError(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// StatusOf returns the HTTP status carried by err, or 0.
func StatusOf(err error) int {
	if e, ok := asError(err); ok {
		return e.Status
	}
	return 0
}

// RetryAfterOf returns the Retry-After carried by err, or 0.
func RetryAfterOf(err error) time.Duration {
	if e, ok := asError(err); ok {
		return e.RetryAfter
	}
	return 0
}

// IsRetryable reports whether err is transient (docs/architecture.md, "Error
// handling"): a network error, a timeout, or a status for which
// transientStatus holds. Canceled contexts are not retryable. A nil error is
// not retryable.
func IsRetryable(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	if errors.Is(e.Err, ErrNetwork) || errors.Is(e.Err, ErrTimeout) {
		return true
	}
	if errors.Is(e.Err, ErrAuth) {
		return transientStatus(e.Status) // token endpoint unreachable or failing
	}
	return e.Err == nil && transientStatus(e.Status)
}

// transientStatus reports whether a target answering status may answer the same request
// differently soon: 408, 429 and every 5xx but 501 and 505. Gateways and CDNs in front of
// targets answer statuses of their own when the origin blips (520 to 530, 507, 598...),
// and failing a whole sync for one of them costs far more than a retry. 501 (Not
// Implemented) and 505 (HTTP Version Not Supported) describe the server, not a moment.
func transientStatus(status int) bool {
	switch status {
	case http.StatusRequestTimeout, http.StatusTooManyRequests:
		return true
	case http.StatusNotImplemented, http.StatusHTTPVersionNotSupported:
		return false
	}
	return status >= 500 && status < 600
}

// IsRateLimited reports whether err is a 429, or a 503 carrying Retry-After:
// retry after RetryAfterOf(err) and slow down.
func IsRateLimited(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	return e.Status == http.StatusTooManyRequests ||
		(e.Status == http.StatusServiceUnavailable && e.RetryAfter > 0)
}

// IsRefused reports whether the target certainly did not act on the request that failed
// with err: it answered with a 4xx status (429 included), or the request never reached it
// (Error.Unsent). Anything else (a timeout or a broken connection after the request was
// written, a 5xx, which a gateway may send after the application acted) leaves the
// outcome uncertain: a create that failed so may have been executed.
func IsRefused(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	if e.Unsent {
		return true
	}
	return e.Err == nil && e.Status >= 400 && e.Status < 500
}

// IsNotFound reports whether err is a 404 answer.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound && !isTransport(err) }

// IsConflict reports whether err is a 409 answer (uniqueness).
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict && !isTransport(err) }

// IsProviderFatal reports whether err means the whole provider is
// misconfigured and retrying cannot help (docs/architecture.md, "Error
// handling"): 401, 403, a TLS failure, a bad base URL, a redirect, a success
// answer that is not JSON (usually an HTML page at a wrong base URL), or the
// token endpoint refusing the credentials.
func IsProviderFatal(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	switch {
	case errors.Is(e.Err, ErrTLS), errors.Is(e.Err, ErrBadURL), errors.Is(e.Err, ErrRedirect):
		return true
	case errors.Is(e.Err, ErrAuth):
		return e.Status >= 400 && e.Status < 500 && !transientStatus(e.Status)
	case errors.Is(e.Err, ErrNotJSON):
		return e.Status >= 200 && e.Status < 300
	}
	return e.Err == nil && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden)
}

// IsObjectError reports whether err concerns one object only
// (docs/architecture.md, "Error handling"): a 4xx answer other than 401,
// 403, 408 and 429, or a create answer without id. 404 and 409 are object errors too; callers that handle them
// specially (re-link, look up) test IsNotFound and IsConflict first.
func IsObjectError(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	if errors.Is(e.Err, ErrNoID) || errors.Is(e.Err, ErrPayloadTooLarge) {
		return true
	}
	if e.Err != nil {
		return false
	}
	switch e.Status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return e.Status >= 400 && e.Status < 500
}

func isTransport(err error) bool {
	e, ok := asError(err)
	return ok && e.Err != nil
}

// maxDetail bounds the Detail kept from an error body.
const maxDetail = 1024

// errorBody is a SCIM error response (RFC 7644 §3.12). Vendors send status
// as a string or a number, and some nest it as {"Errors":[...]}.
type errorBody struct {
	Status   flexString `json:"status"`
	ScimType string     `json:"scimType"`
	Detail   string     `json:"detail"`
	Message  string     `json:"message"`
}

// ParseErrorBody parses a SCIM error body. It never fails: fields it
// cannot read are left empty. Detail is truncated to 1 KiB.
func ParseErrorBody(body []byte) (scimType, detail string) {
	var eb errorBody
	if json.Unmarshal(body, &eb) != nil {
		return "", ""
	}
	detail = eb.Detail
	if detail == "" {
		detail = eb.Message
	}
	if len(detail) > maxDetail {
		detail = detail[:maxDetail]
	}
	return strings.TrimSpace(eb.ScimType), detail
}

// MaxRetryAfter caps the Retry-After of a target: a longer one (a misconfigured target, an
// HTTP date far off) is read as this. An hour is longer than any published SaaS limit
// window and short enough for an operator to notice a paused provider before it matters.
const MaxRetryAfter = time.Hour

// ParseRetryAfter converts a Retry-After header value, delay-seconds or an
// HTTP date, into a duration relative to now, at most MaxRetryAfter.
// Invalid, negative or past values give 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	const maxDelay = MaxRetryAfter
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxDelay/time.Second) {
			return maxDelay
		}
		return time.Duration(n) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	if t.After(now.Add(maxDelay)) {
		return maxDelay
	}
	return t.Sub(now).Round(time.Second)
}

// classifyTransport maps an error from http.Client.Do or a body read to a
// sentinel cause. ctx is the request context.
func classifyTransport(ctx context.Context, err error) error {
	var (
		uerr     x509.UnknownAuthorityError
		herr     x509.HostnameError
		cerr     x509.CertificateInvalidError
		verr     *tls.CertificateVerificationError
		rerr     tls.RecordHeaderError
		aerr     tls.AlertError
		nerr     net.Error
		tooLarge *bodyTooLargeError
	)
	switch {
	case errors.As(err, &tooLarge):
		return ErrBodyTooLarge
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return ErrCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrTimeout):
		return ErrTimeout
	case errors.As(err, &uerr):
		return fmt.Errorf("%w: certificate signed by an unknown authority (not trusted by this machine)", ErrTLS)
	case errors.As(err, &herr):
		return fmt.Errorf("%w: certificate not valid for host %s", ErrTLS, herr.Host)
	case errors.As(err, &cerr):
		return fmt.Errorf("%w: %s", ErrTLS, strings.TrimPrefix(cerr.Error(), "x509: "))
	case errors.As(err, &verr), errors.As(err, &rerr), errors.As(err, &aerr):
		return ErrTLS
	case errors.As(err, &nerr) && nerr.Timeout():
		return ErrTimeout
	case strings.Contains(err.Error(), "tls: "), strings.Contains(err.Error(), "x509: "):
		return ErrTLS
	case strings.Contains(err.Error(), "unsupported protocol scheme"):
		return ErrBadURL
	}
	return ErrNetwork
}

type bodyTooLargeError struct{}

func (*bodyTooLargeError) Error() string { return "response body too large" }

// flexString reads a JSON string or number as a string.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*f = flexString(s)
		return nil
	}
	var n json.Number
	if json.Unmarshal(b, &n) == nil {
		*f = flexString(n.String())
		return nil
	}
	*f = ""
	return nil
}

// flexBool reads true/false, "true"/"False", 1/0 and "1"/"0" as a bool;
// anything else (null, objects) is false. Vendors send all of these.
type flexBool bool

func (f *flexBool) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	switch strings.ToLower(s) {
	case "true", "1", "yes", "on":
		*f = true
	default:
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			*f = n != 0
		} else {
			*f = false
		}
	}
	return nil
}

// flexInt reads a JSON number or numeric string as an int; others give 0.
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(strings.TrimSpace(string(b)), `"`)
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || n > 1<<31 {
		*f = 0
		return nil
	}
	*f = flexInt(n)
	return nil
}
