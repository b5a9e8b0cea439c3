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
	// Assumed is true when the configuration was not requested at all:
	// discovery is off (Options.NoDiscovery) or the compatibility mode
	// assumes one (Compat.NoDiscovery).
	Assumed bool `json:"-"`
}

// ConfigOverride corrects a ServiceProviderConfig: each field given (not
// nil) replaces what the document says, whether it was discovered,
// assumed or the fallback; fields left nil keep the document's value.
// The zero value changes nothing.
type ConfigOverride struct {
	// Patch, when set, says whether PATCH is supported.
	Patch *bool
	// Bulk, when set, replaces the bulk capability: Supported false means
	// no Bulk; with Supported true, a MaxOperations or MaxPayloadSize of 0
	// keeps the document's limit (and where that is 0 too, the client's
	// defaults DefaultBulkMaxOperations and DefaultBulkMaxPayloadSize apply).
	Bulk *BulkConfig
	// Filter, when set, says whether filtering is supported.
	Filter *bool
}

// IsZero reports whether o changes nothing.
func (o ConfigOverride) IsZero() bool { return o.Patch == nil && o.Bulk == nil && o.Filter == nil }

// Apply returns spc with the fields of o that are set.
func (o ConfigOverride) Apply(spc ServiceProviderConfig) ServiceProviderConfig {
	if o.Patch != nil {
		spc.Patch.Supported = *o.Patch
	}
	if o.Filter != nil {
		spc.Filter.Supported = *o.Filter
	}
	if b := o.Bulk; b != nil {
		if !b.Supported {
			spc.Bulk = BulkConfig{}
		} else {
			spc.Bulk.Supported = true
			if b.MaxOperations > 0 {
				spc.Bulk.MaxOperations = b.MaxOperations
			}
			if b.MaxPayloadSize > 0 {
				spc.Bulk.MaxPayloadSize = b.MaxPayloadSize
			}
		}
	}
	return spc
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
// Without discovery (Options.NoDiscovery, or a mode whose Compat.NoDiscovery
// is set) it sends nothing and returns the assumed configuration (see
// Options.NoDiscovery) with Assumed set.
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
	if c.noDiscovery() {
		spc := c.assumed()
		c.setConfig(spc)
		return spc, nil
	}
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

// noDiscovery reports whether the client never requests the ServiceProviderConfig.
func (c *Client) noDiscovery() bool { return c.opts.NoDiscovery || c.compat.NoDiscovery }

// assumed is the configuration of a client without discovery: the mode's, else nothing
// optional supported.
func (c *Client) assumed() ServiceProviderConfig {
	var spc ServiceProviderConfig
	if c.compat.NoDiscovery {
		spc = c.compat.Assumed
	}
	spc.Assumed = true
	return spc
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

// Capabilities returns the effective capabilities: Config() with
// Options.Override and then the compatibility mode applied. When no
// configuration is known yet it runs Discover first; if that fails, the
// error is returned with the capabilities of the fallback configuration.
func (c *Client) Capabilities(ctx context.Context) (Capabilities, error) {
	if spc, ok := c.Config(); ok {
		return c.effective(spc), nil
	}
	spc, err := c.Discover(ctx)
	return c.effective(spc), err
}

func (c *Client) effective(spc ServiceProviderConfig) Capabilities {
	if c.opts.Override != nil {
		spc = c.opts.Override.Apply(spc)
	}
	return c.compat.Apply(spc)
}

// Compat returns the compatibility row the client was built with.
func (c *Client) Compat() Compat { return c.compat }
