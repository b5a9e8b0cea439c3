package scim

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// OAuth2 configures bearer tokens from an OAuth2 token endpoint.
type OAuth2 struct {
	// TokenURL is the token endpoint. Required.
	TokenURL string
	// ClientID and ClientSecret authenticate the client at the endpoint.
	ClientID     string
	ClientSecret string
	// GrantType is "client_credentials" or "password". "" means
	// "password" when Username is set, else "client_credentials".
	GrantType string
	// Username and Password are sent for the password grant.
	Username string
	Password string
	// Scopes requested, joined with spaces; none when empty.
	Scopes []string
	// Params are extra token-request parameters (subject_token,
	// client_assertion, audience...). A "grant_type" here overrides GrantType.
	Params url.Values
	// AuthStyle says how client credentials are sent; zero auto-detects.
	AuthStyle oauth2.AuthStyle
}

// Basic configures HTTP Basic authentication (RFC 7617).
type Basic struct {
	// Username may not contain a colon; it may be empty only when Password
	// is not.
	Username string
	Password string
}

// credentials yield the Authorization header of a request.
type credentials interface {
	authorization(ctx context.Context) (string, error)
	// invalidate forgets a cached token; false when nothing can be renewed.
	invalidate() bool
}

func newCredentials(opts Options, hc *http.Client, timeout time.Duration) (credentials, error) {
	switch {
	case opts.OAuth2 != nil:
		return newOAuthCache(*opts.OAuth2, hc, timeout)
	case opts.TokenSource != nil:
		return sourceToken{opts.TokenSource}, nil
	case opts.Basic != nil:
		return newBasicAuth(*opts.Basic)
	case opts.Token != "":
		return staticToken(opts.Token), nil
	}
	return nil, nil
}

type staticToken string

func (s staticToken) authorization(context.Context) (string, error) {
	return "Bearer " + string(s), nil
}
func (staticToken) invalidate() bool { return false }

type sourceToken struct{ src oauth2.TokenSource }

func (s sourceToken) authorization(context.Context) (string, error) {
	t, err := s.src.Token()
	if err != nil {
		return "", tokenError(err)
	}
	return "Bearer " + t.AccessToken, nil
}
func (sourceToken) invalidate() bool { return false }

// basicAuth is the header of Basic credentials, computed once. Its errors never carry
// the credentials.
type basicAuth string

func newBasicAuth(b Basic) (basicAuth, error) {
	switch {
	case strings.Contains(b.Username, ":"):
		return "", errors.New("scim: Basic.Username must not contain a colon (RFC 7617)")
	case b.Username == "" && b.Password == "":
		return "", errors.New("scim: Basic needs a username or a password")
	}
	return basicAuth("Basic " + base64.StdEncoding.EncodeToString([]byte(b.Username+":"+b.Password))), nil
}

func (b basicAuth) authorization(context.Context) (string, error) { return string(b), nil }
func (basicAuth) invalidate() bool                                { return false }

// oauthCache fetches tokens with the client-credentials machinery of
// x/oauth2 (the password grant overrides grant_type and adds the user's
// credentials as parameters), caches the token until shortly before it
// expires (oauth2.Token.Valid), and forgets it on a 401.
type oauthCache struct {
	conf    clientcredentials.Config
	hc      *http.Client
	timeout time.Duration

	mu  sync.Mutex
	tok *oauth2.Token
}

func newOAuthCache(o OAuth2, hc *http.Client, timeout time.Duration) (*oauthCache, error) {
	if o.TokenURL == "" {
		return nil, errors.New("scim: OAuth2.TokenURL is required")
	}
	params := url.Values{}
	grant := o.GrantType
	if grant == "" {
		grant = "client_credentials"
		if o.Username != "" {
			grant = "password"
		}
	}
	if grant == "password" {
		params.Set("username", o.Username)
		params.Set("password", o.Password)
	}
	if grant != "client_credentials" {
		params.Set("grant_type", grant)
	}
	for k, vs := range o.Params {
		params[k] = append([]string(nil), vs...)
	}
	tokHC := *hc
	tokHC.CheckRedirect = nil
	return &oauthCache{
		conf: clientcredentials.Config{
			ClientID:       o.ClientID,
			ClientSecret:   o.ClientSecret,
			TokenURL:       o.TokenURL,
			Scopes:         o.Scopes,
			EndpointParams: params,
			AuthStyle:      o.AuthStyle,
		},
		hc:      &tokHC,
		timeout: timeout,
	}, nil
}

func (o *oauthCache) authorization(ctx context.Context) (string, error) {
	tok, err := o.token(ctx)
	if err != nil {
		return "", err
	}
	return "Bearer " + tok, nil
}

func (o *oauthCache) token(ctx context.Context) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.tok.Valid() {
		return o.tok.AccessToken, nil
	}
	if o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, o.hc)
	t, err := o.conf.Token(ctx)
	if err != nil {
		return "", tokenError(err)
	}
	o.tok = t
	return t.AccessToken, nil
}

func (o *oauthCache) invalidate() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	had := o.tok != nil
	o.tok = nil
	return had
}

// tokenError turns a token-endpoint failure into an *Error that never
// carries the endpoint's body (it may echo credentials).
func tokenError(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil {
		return &Error{Op: "token", Status: re.Response.StatusCode, Err: ErrAuth}
	}
	var ctxErr error = ErrNetwork
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		ctxErr = ErrTimeout
	case errors.Is(err, context.Canceled):
		ctxErr = ErrCanceled
	}
	return &Error{Op: "token", Err: fmt.Errorf("%w: %w", ErrAuth, ctxErr)}
}
