package scim

import (
	"context"
	"encoding/json"
	"net/http"
)

// Supported is a capability that is only on or off.
type Supported struct {
	Supported bool `json:"supported"`
}

// BulkConfig is the "bulk" capability of a ServiceProviderConfig.
type BulkConfig struct {
	Supported      bool `json:"supported"`
	MaxOperations  int  `json:"maxOperations"`
	MaxPayloadSize int  `json:"maxPayloadSize"`
}

// FilterConfig is the "filter" capability of a ServiceProviderConfig.
type FilterConfig struct {
	Supported  bool `json:"supported"`
	MaxResults int  `json:"maxResults"`
}

// ServiceProviderConfig is what a target advertises (RFC 7643 §5). It
// marshals to and from the SCIM JSON shape, so it can be cached as is.
// Unmarshaling is tolerant: booleans may arrive as numbers or strings
// ("True", 1), numbers as strings, and unknown fields are ignored.
type ServiceProviderConfig struct {
	Patch          Supported    `json:"patch"`
	Bulk           BulkConfig   `json:"bulk"`
	Filter         FilterConfig `json:"filter"`
	ChangePassword Supported    `json:"changePassword"`
	Sort           Supported    `json:"sort"`
	ETag           Supported    `json:"etag"`
	// Fallback is true when discovery failed and this is the fallback
	// configuration (Options.Fallback or FallbackConfig).
	Fallback bool `json:"-"`
}

// FallbackConfig is the configuration used when discovery fails and
// Options.Fallback is nil: PATCH, Bulk, filter, sort and ETag all
// unsupported, so the client writes with POST, PUT and DELETE only.
func FallbackConfig() ServiceProviderConfig {
	return ServiceProviderConfig{Fallback: true}
}

// UnmarshalJSON reads a ServiceProviderConfig tolerantly.
func (s *ServiceProviderConfig) UnmarshalJSON(b []byte) error {
	type flexSupported struct {
		Supported flexBool `json:"supported"`
	}
	var raw struct {
		Patch flexSupported `json:"patch"`
		Bulk  struct {
			Supported      flexBool `json:"supported"`
			MaxOperations  flexInt  `json:"maxOperations"`
			MaxPayloadSize flexInt  `json:"maxPayloadSize"`
		} `json:"bulk"`
		Filter struct {
			Supported  flexBool `json:"supported"`
			MaxResults flexInt  `json:"maxResults"`
		} `json:"filter"`
		ChangePassword flexSupported `json:"changePassword"`
		Sort           flexSupported `json:"sort"`
		ETag           flexSupported `json:"etag"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*s = ServiceProviderConfig{
		Patch: Supported{bool(raw.Patch.Supported)},
		Bulk: BulkConfig{
			Supported:      bool(raw.Bulk.Supported),
			MaxOperations:  int(raw.Bulk.MaxOperations),
			MaxPayloadSize: int(raw.Bulk.MaxPayloadSize),
		},
		Filter: FilterConfig{
			Supported:  bool(raw.Filter.Supported),
			MaxResults: int(raw.Filter.MaxResults),
		},
		ChangePassword: Supported{bool(raw.ChangePassword.Supported)},
		Sort:           Supported{bool(raw.Sort.Supported)},
		ETag:           Supported{bool(raw.ETag.Supported)},
	}
	return nil
}

// Discover reads the target's ServiceProviderConfig (at the path of the
// compatibility mode), remembers it for Capabilities, and returns it.
//
// When the target has no discovery endpoint — it answers 404, 501 or
// another object-level 4xx —
// Discover returns Options.Fallback (FallbackConfig() when nil) with
// Fallback set, remembers it, and returns a nil error. Failures that say
// nothing about the endpoint — network errors, timeouts, 5xx, 429, and
// provider errors such as 401/403/TLS — are returned as *Error, with the
// fallback configuration as the value, and nothing is remembered. A
// success answer that is not JSON (an HTML page) is ErrNotJSON, a
// provider error: the base URL is most likely wrong.
func (c *Client) Discover(ctx context.Context) (ServiceProviderConfig, error) {
	var spc ServiceProviderConfig
	_, err := c.do(ctx, request{op: "discover", method: http.MethodGet, path: c.compat.discoveryPath()}, &spc)
	if err == nil {
		c.setConfig(spc)
		return spc, nil
	}
	fb := c.fallback()
	if discoveryMissing(err) {
		c.setConfig(fb)
		return fb, nil
	}
	return fb, err
}

func discoveryMissing(err error) bool {
	e, ok := asError(err)
	if !ok {
		return false
	}
	if e.Err != nil {
		return false
	}
	return e.Status == http.StatusNotImplemented || IsObjectError(err)
}

func (c *Client) fallback() ServiceProviderConfig {
	fb := FallbackConfig()
	if c.opts.Fallback != nil {
		fb = *c.opts.Fallback
	}
	fb.Fallback = true
	return fb
}

func (c *Client) setConfig(spc ServiceProviderConfig) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.config = &spc
}

// Config returns the configuration the client works with: the last one
// discovered, else Options.Config, else (ok false) none yet.
func (c *Client) Config() (spc ServiceProviderConfig, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.config == nil {
		return ServiceProviderConfig{}, false
	}
	return *c.config, true
}

// Capabilities returns the effective capabilities: Config() with the
// compatibility mode applied. When no configuration is known yet it runs
// Discover first; if that fails, the error is returned with the
// capabilities of the fallback configuration.
func (c *Client) Capabilities(ctx context.Context) (Capabilities, error) {
	if spc, ok := c.Config(); ok {
		return c.compat.Apply(spc), nil
	}
	spc, err := c.Discover(ctx)
	return c.compat.Apply(spc), err
}

// Compat returns the compatibility row the client was built with.
func (c *Client) Compat() Compat { return c.compat }
