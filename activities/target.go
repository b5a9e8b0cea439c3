package activities

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/scimsync/scimsync/scim"
	"github.com/scimsync/scimsync/sealed"
	"github.com/scimsync/scimsync/secretref"
	"github.com/scimsync/scimsync/store"
)

// target is a provider's SCIM client with the configuration it was built from.
type target struct {
	provider store.Provider
	client   *scim.Client
	// configAt is when the client's ServiceProviderConfig was discovered (zero: not yet).
	configAt time.Time
}

// target returns the SCIM client of the provider, built once per provider version and
// reused (it caches OAuth2 tokens), with the ServiceProviderConfig cached in the store.
func (a *Activities) target(ctx context.Context, name string) (*target, error) {
	p, err := a.provider(ctx, name)
	if err != nil {
		return nil, err
	}
	if v, ok := a.targets.Load(p.ID); ok {
		t := v.(*target)
		if t.provider.UpdatedAt.Equal(p.UpdatedAt) && time.Since(t.configAt) < a.ttl() {
			return t, nil
		}
	}
	t, err := a.newTarget(ctx, p)
	if err != nil {
		return nil, err
	}
	// A dry-run client records the writes it holds back; each activity gets its own so
	// that it reports exactly its own requests.
	if !p.DryRun {
		a.targets.Store(p.ID, t)
	}
	return t, nil
}

func (a *Activities) newTarget(ctx context.Context, p store.Provider) (*target, error) {
	opts := scim.Options{
		BaseURL:            p.BaseURL,
		Mode:               scim.Mode(p.CompatibilityMode),
		DryRun:             p.DryRun,
		InsecureSkipVerify: !p.VerifyTLS,
		Timeout:            a.RequestTimeout,
		Pacer:              a.pacers().For(p),
	}
	if p.VerifyTLS && a.HTTPClient != nil {
		opts.HTTPClient = a.HTTPClient
	}
	name, id, observe := p.Name, p.ID, a.OnRequest
	opts.OnRequest = func(info scim.RequestInfo) {
		a.observeHealth(id, info)
		if observe != nil {
			observe(name, info)
		}
	}
	if err := a.authenticate(p, &opts); err != nil {
		return nil, err
	}
	opts.NoDiscovery = p.Discovery == store.DiscoveryOff
	opts.Override = configOverride(p.ServiceConfig)

	t := &target{provider: p}
	// Without discovery (off, or a mode that assumes the target's configuration) the
	// client knows its configuration from the start: nothing to cache or discover.
	compat, _ := scim.CompatFor(opts.Mode) // an unknown mode fails scim.New below
	assumed := opts.NoDiscovery || compat.NoDiscovery
	ok := false
	if !assumed {
		var cached json.RawMessage
		var err error
		if cached, ok, err = a.Store.CachedServiceConfig(ctx, p.ID, a.ttl()); err != nil {
			return nil, err
		}
		if ok {
			var spc scim.ServiceProviderConfig
			if err := json.Unmarshal(cached, &spc); err == nil {
				opts.Config = &spc
				t.configAt = time.Now() // fresh enough: the store checked its age
			}
		}
	}
	c, err := scim.New(opts)
	if err != nil {
		return nil, classify(p.Name, err)
	}
	t.client = c
	switch {
	case assumed:
		t.configAt = time.Now()
	case !ok:
		if err := a.discover(ctx, t); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// configOverride is the client's form of a provider's service_provider_config; nil when
// it says nothing.
func configOverride(o store.ServiceConfigOverride) *scim.ConfigOverride {
	if o.IsZero() {
		return nil
	}
	out := &scim.ConfigOverride{Patch: o.Patch, Filter: o.Filter}
	if b := o.Bulk; b != nil {
		out.Bulk = &scim.BulkConfig{Supported: b.Supported, MaxOperations: b.MaxOperations, MaxPayloadSize: b.MaxPayloadSize}
	}
	return out
}

// discover reads the target's ServiceProviderConfig and caches it, the fallback included
// (a target without discovery keeps answering the same).
func (a *Activities) discover(ctx context.Context, t *target) error {
	spc, err := t.client.Discover(ctx)
	if err != nil {
		return classify(t.provider.Name, err)
	}
	doc, err := json.Marshal(spc)
	if err != nil {
		return err
	}
	if err := a.Store.PutServiceConfig(ctx, t.provider.ID, doc); err != nil {
		return err
	}
	t.configAt = time.Now()
	return nil
}

// Discover returns the target's effective capabilities, discovering them when the cached
// ServiceProviderConfig is missing or older than ServiceConfigTTL.
func (a *Activities) Discover(ctx context.Context, in ProviderInput) (DiscoverResult, error) {
	p, err := a.provider(ctx, in.Provider)
	if err != nil {
		return DiscoverResult{}, err
	}
	_, cached, err := a.Store.CachedServiceConfig(ctx, p.ID, a.ttl())
	if err != nil {
		return DiscoverResult{}, err
	}
	t, err := a.target(ctx, in.Provider)
	if err != nil {
		return DiscoverResult{}, err
	}
	caps, err := t.client.Capabilities(ctx)
	if err != nil {
		return DiscoverResult{}, classify(p.Name, err)
	}
	spc, _ := t.client.Config()
	return DiscoverResult{
		Patch: caps.UserUpdate == scim.UpdatePatch || caps.MemberPatch, Bulk: caps.Bulk, Filter: caps.Filter,
		MaxOperations: caps.BulkMaxOperations, Cached: cached && !spc.Assumed, Fallback: spc.Fallback, Assumed: spc.Assumed,
	}, nil
}

// authenticate fills the auth options from the provider, resolving secret references.
func (a *Activities) authenticate(p store.Provider, opts *scim.Options) error {
	switch p.AuthMode {
	case "token", "":
		if p.Token == "" {
			return nil
		}
		tok, err := a.secret(p.Token)
		if err != nil {
			return nonRetryable(ErrTypeConfig, fmt.Errorf("provider %s: token: %w", p.Name, err))
		}
		opts.Token = tok
	case "oauth2":
		secret := ""
		if p.OAuthClientSecret != "" {
			var err error
			if secret, err = a.secret(p.OAuthClientSecret); err != nil {
				return nonRetryable(ErrTypeConfig, fmt.Errorf("provider %s: oauth client secret: %w", p.Name, err))
			}
		}
		cfg := &scim.OAuth2{TokenURL: p.OAuthTokenURL, ClientID: p.OAuthClientID, ClientSecret: secret, Params: url.Values{}}
		for k, ref := range p.OAuthParams {
			v, err := a.secret(ref)
			if err != nil {
				return nonRetryable(ErrTypeConfig, fmt.Errorf("provider %s: oauth parameter %s: %w", p.Name, k, err))
			}
			switch k {
			case "username":
				cfg.Username = v
			case "password":
				cfg.Password = v
			case "scope":
				cfg.Scopes = strings.Fields(v)
			default:
				cfg.Params.Set(k, v)
			}
		}
		opts.OAuth2 = cfg
	case "basic":
		if p.BasicUsername == "" || p.BasicPassword == "" {
			return nonRetryable(ErrTypeConfig, fmt.Errorf("provider %s: auth mode basic needs a username and a password", p.Name))
		}
		user, err := a.secret(p.BasicUsername)
		if err != nil {
			return nonRetryable(ErrTypeConfig, fmt.Errorf("provider %s: basic username: %w", p.Name, err))
		}
		password, err := a.secret(p.BasicPassword)
		if err != nil {
			return nonRetryable(ErrTypeConfig, fmt.Errorf("provider %s: basic password: %w", p.Name, err))
		}
		if strings.Contains(user, ":") {
			return nonRetryable(ErrTypeConfig, fmt.Errorf("provider %s: basic username: a Basic username cannot contain ':' (RFC 7617)", p.Name))
		}
		opts.Basic = &scim.Basic{Username: user, Password: password}
	default:
		return nonRetryable(ErrTypeConfig, fmt.Errorf("provider %s: unknown auth mode %q", p.Name, p.AuthMode))
	}
	return nil
}

// secret resolves one of a provider's secrets: a reference (see secretref.Resolve), or a
// literal that starter apply sealed under the installation secret.
func (a *Activities) secret(ref string) (string, error) {
	if !sealed.IsSealed(ref) {
		return secretref.Resolve(ref)
	}
	if a.Mapper == nil {
		return "", errors.New("sealed secret: no installation secret to open it")
	}
	box, err := sealed.New(a.Mapper.Secret)
	if err != nil {
		return "", err
	}
	return box.Open(ref)
}
