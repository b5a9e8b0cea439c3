package store

import (
	"context"
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lib/pq"
)

// Deprovision actions: what happens remotely when an object is deleted or leaves scope.
const (
	DeprovisionDelete     = "delete"
	DeprovisionDeactivate = "deactivate"
	// DeprovisionDeactivateThenDelete deactivates a user at once, like
	// DeprovisionDeactivate, and deletes it at the target once the provider's
	// DeprovisionDeleteAfter has passed, unless it came back in scope before.
	DeprovisionDeactivateThenDelete = "deactivate_then_delete"
	DeprovisionNone                 = "none"
)

// Discovery settings: whether a provider's ServiceProviderConfig is requested.
const (
	// DiscoveryAuto requests it, unless the compatibility mode assumes one (vcenter, gitlab).
	DiscoveryAuto = "auto"
	// DiscoveryOff never requests it: the target is taken to support nothing optional (or
	// what its mode assumes), corrected by the provider's ServiceConfig.
	DiscoveryOff = "off"
)

// ServiceConfigOverride is what a provider's configuration says of its target's
// capabilities, winning over what discovery finds (or what is assumed without it). A nil
// field says nothing; the zero value changes nothing. It is stored as a jsonb object.
type ServiceConfigOverride struct {
	Patch  *bool         `json:"patch,omitempty"`
	Bulk   *BulkOverride `json:"bulk,omitempty"`
	Filter *bool         `json:"filter,omitempty"`
}

// BulkOverride is the bulk capability of a ServiceConfigOverride: Supported false means no
// Bulk; a limit of 0 keeps the discovered one.
type BulkOverride struct {
	Supported      bool `json:"supported"`
	MaxOperations  int  `json:"maxOperations,omitempty"`
	MaxPayloadSize int  `json:"maxPayloadSize,omitempty"`
}

// IsZero reports whether o changes nothing.
func (o ServiceConfigOverride) IsZero() bool {
	return o.Patch == nil && o.Bulk == nil && o.Filter == nil
}

// Equal reports whether o and p say the same.
func (o ServiceConfigOverride) Equal(p ServiceConfigOverride) bool {
	eqBool := func(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return eqBool(o.Patch, p.Patch) && eqBool(o.Filter, p.Filter) &&
		(o.Bulk == nil) == (p.Bulk == nil) && (o.Bulk == nil || *o.Bulk == *p.Bulk)
}

// Value implements driver.Valuer.
func (o ServiceConfigOverride) Value() (driver.Value, error) { return json.Marshal(o) }

// Scan implements sql.Scanner.
func (o *ServiceConfigOverride) Scan(src any) error {
	*o = ServiceConfigOverride{}
	b, err := jsonBytes(src)
	if err != nil || b == nil {
		return err
	}
	return json.Unmarshal(b, o)
}

// Provider is one configured SCIM target.
//
// Token, OAuthClientSecret, BasicPassword and the values of OAuthParams are secret
// references (env:NAME, file:/path) or sealed values; the worker resolves them just before
// use. They never leave the worker in workflow inputs, logs or errors.
type Provider struct {
	ID                string    `db:"id"`
	Name              string    `db:"name"` // lower-case slug; appears in workflow IDs
	BaseURL           string    `db:"base_url"`
	AuthMode          string    `db:"auth_mode"` // "token", "oauth2" or "basic"
	Token             string    `db:"token"`
	OAuthTokenURL     string    `db:"oauth_token_url"`
	OAuthClientID     string    `db:"oauth_client_id"`
	OAuthClientSecret string    `db:"oauth_client_secret"`
	OAuthParams       StringMap `db:"oauth_params"` // extra token-request parameters, e.g. grant_type
	// BasicUsername (a literal or a reference) and BasicPassword (a secret) are the HTTP
	// Basic credentials of auth mode basic.
	BasicUsername string `db:"basic_username"`
	BasicPassword string `db:"basic_password"`
	// Discovery is DiscoveryAuto or DiscoveryOff; ServiceConfig corrects the target's
	// capabilities, discovered or not.
	Discovery              string                `db:"discovery"`
	ServiceConfig          ServiceConfigOverride `db:"service_provider_config"`
	CompatibilityMode      string                `db:"compatibility_mode"`
	ExcludeServiceAccounts bool                  `db:"exclude_service_accounts"`
	ApplicationID          *string               `db:"application_id"`
	DryRun                 bool                  `db:"dry_run"`
	VerifyTLS              bool                  `db:"verify_tls"`
	PageSize               int                   `db:"page_size"`
	DeprovisionAction      string                `db:"deprovision_action"`
	DeprovisionThreshold   int                   `db:"deprovision_threshold"` // 0: no limit
	// DeprovisionDeleteAfter is the grace period of DeprovisionDeactivateThenDelete: how
	// long a deactivated user stays at the target before it is deleted (0 with any other
	// action).
	DeprovisionDeleteAfter time.Duration `db:"-"`
	FlattenGroups          bool          `db:"flatten_groups"`
	LinkExisting           bool          `db:"link_existing"`
	FullSyncInterval       time.Duration `db:"-"`
	Enabled                bool          `db:"enabled"`
	// RateLimitPerMinute and RateLimitBurst are the operator's limit on requests to the
	// target, shared by every worker (0: none configured; the compatibility mode's
	// published limit applies, if it has one). MaxInFlight caps the requests in flight
	// across workers (0: no cap). See package pacing.
	RateLimitPerMinute float64 `db:"rate_limit_per_minute"`
	RateLimitBurst     int     `db:"rate_limit_burst"`
	MaxInFlight        int     `db:"max_in_flight"`
	// ReconcileInterval is how often a full sync reads the target back (0: only when
	// asked); Orphans what it does with remote objects no live link accounts for.
	ReconcileInterval time.Duration `db:"-"`
	Orphans           string        `db:"orphans"`
	CreatedAt         time.Time     `db:"created_at"`
	UpdatedAt         time.Time     `db:"updated_at"`

	IntervalSeconds    float64 `db:"interval_seconds"`     // scan target for FullSyncInterval
	ReconcileSeconds   float64 `db:"reconcile_seconds"`    // scan target for ReconcileInterval
	DeleteAfterSeconds float64 `db:"delete_after_seconds"` // scan target for DeprovisionDeleteAfter
}

// DeactivatesUsers reports whether the provider's deprovision action deactivates users
// (active: false) rather than deleting them at once.
func (p Provider) DeactivatesUsers() bool {
	return p.DeprovisionAction == DeprovisionDeactivate || p.DeprovisionAction == DeprovisionDeactivateThenDelete
}

// Orphan policies: what a read-back does with remote objects that no live link accounts
// for.
const (
	OrphansReport = "report"
	OrphansAdopt  = "adopt"
	OrphansDelete = "delete"
)

// ProviderDefaults returns a provider with the defaults of a new row.
func ProviderDefaults() Provider {
	return Provider{
		AuthMode: "token", CompatibilityMode: "default", Discovery: DiscoveryAuto, ExcludeServiceAccounts: true,
		VerifyTLS: true, PageSize: 100, DeprovisionAction: DeprovisionDelete,
		FullSyncInterval: time.Hour, Enabled: true,
		ReconcileInterval: 24 * time.Hour, Orphans: OrphansReport,
	}
}

const providerColumns = `id, name, base_url, auth_mode, token, oauth_token_url, oauth_client_id,
	oauth_client_secret, oauth_params, compatibility_mode, exclude_service_accounts, application_id,
	dry_run, verify_tls, page_size, deprovision_action, deprovision_threshold, flatten_groups,
	link_existing, extract(epoch FROM full_sync_interval)::float8 AS interval_seconds, enabled,
	rate_limit_per_minute, rate_limit_burst, max_in_flight,
	extract(epoch FROM reconcile_interval)::float8 AS reconcile_seconds, orphans, basic_username,
	basic_password, discovery, service_provider_config,
	extract(epoch FROM deprovision_delete_after)::float8 AS delete_after_seconds, created_at, updated_at`

func (p *Provider) afterScan() {
	p.FullSyncInterval = time.Duration(p.IntervalSeconds * float64(time.Second))
	p.ReconcileInterval = time.Duration(p.ReconcileSeconds * float64(time.Second))
	p.DeprovisionDeleteAfter = time.Duration(p.DeleteAfterSeconds * float64(time.Second))
}

// UpsertProvider creates the provider p.Name or overwrites all its settings, and returns
// the stored row. Any change clears the cached ServiceProviderConfig.
func (tx *Tx) UpsertProvider(ctx context.Context, p Provider) (Provider, error) {
	if p.FullSyncInterval == 0 {
		p.FullSyncInterval = time.Hour
	}
	if p.Orphans == "" {
		p.Orphans = OrphansReport
	}
	if p.Discovery == "" {
		p.Discovery = DiscoveryAuto
	}
	var out Provider
	err := tx.tx.QueryRowxContext(ctx, `
		INSERT INTO providers (name, base_url, auth_mode, token, oauth_token_url, oauth_client_id,
			oauth_client_secret, oauth_params, compatibility_mode, exclude_service_accounts,
			application_id, dry_run, verify_tls, page_size, deprovision_action,
			deprovision_threshold, flatten_groups, link_existing, full_sync_interval, enabled,
			rate_limit_per_minute, rate_limit_burst, max_in_flight, reconcile_interval, orphans,
			basic_username, basic_password, discovery, service_provider_config, deprovision_delete_after)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
			make_interval(secs => $19), $20, $21, $22, $23, make_interval(secs => $24), $25,
			$26, $27, $28, $29, make_interval(secs => $30))
		ON CONFLICT (name) DO UPDATE SET base_url = EXCLUDED.base_url, auth_mode = EXCLUDED.auth_mode,
			token = EXCLUDED.token, oauth_token_url = EXCLUDED.oauth_token_url,
			oauth_client_id = EXCLUDED.oauth_client_id, oauth_client_secret = EXCLUDED.oauth_client_secret,
			oauth_params = EXCLUDED.oauth_params, compatibility_mode = EXCLUDED.compatibility_mode,
			exclude_service_accounts = EXCLUDED.exclude_service_accounts,
			application_id = EXCLUDED.application_id, dry_run = EXCLUDED.dry_run,
			verify_tls = EXCLUDED.verify_tls, page_size = EXCLUDED.page_size,
			deprovision_action = EXCLUDED.deprovision_action,
			deprovision_threshold = EXCLUDED.deprovision_threshold,
			flatten_groups = EXCLUDED.flatten_groups, link_existing = EXCLUDED.link_existing,
			full_sync_interval = EXCLUDED.full_sync_interval, enabled = EXCLUDED.enabled,
			rate_limit_per_minute = EXCLUDED.rate_limit_per_minute,
			rate_limit_burst = EXCLUDED.rate_limit_burst, max_in_flight = EXCLUDED.max_in_flight,
			reconcile_interval = EXCLUDED.reconcile_interval, orphans = EXCLUDED.orphans,
			basic_username = EXCLUDED.basic_username, basic_password = EXCLUDED.basic_password,
			discovery = EXCLUDED.discovery, service_provider_config = EXCLUDED.service_provider_config,
			deprovision_delete_after = EXCLUDED.deprovision_delete_after,
			updated_at = CASE WHEN (providers.base_url, providers.auth_mode, providers.token,
				providers.oauth_token_url, providers.oauth_client_id, providers.oauth_client_secret,
				providers.oauth_params, providers.compatibility_mode, providers.exclude_service_accounts,
				providers.application_id, providers.dry_run, providers.verify_tls, providers.page_size,
				providers.deprovision_action, providers.deprovision_threshold, providers.flatten_groups,
				providers.link_existing, providers.full_sync_interval, providers.enabled,
				providers.rate_limit_per_minute, providers.rate_limit_burst, providers.max_in_flight,
				providers.reconcile_interval, providers.orphans, providers.basic_username,
				providers.basic_password, providers.discovery, providers.service_provider_config,
				providers.deprovision_delete_after)
				IS DISTINCT FROM (EXCLUDED.base_url, EXCLUDED.auth_mode, EXCLUDED.token,
				EXCLUDED.oauth_token_url, EXCLUDED.oauth_client_id, EXCLUDED.oauth_client_secret,
				EXCLUDED.oauth_params, EXCLUDED.compatibility_mode, EXCLUDED.exclude_service_accounts,
				EXCLUDED.application_id, EXCLUDED.dry_run, EXCLUDED.verify_tls, EXCLUDED.page_size,
				EXCLUDED.deprovision_action, EXCLUDED.deprovision_threshold, EXCLUDED.flatten_groups,
				EXCLUDED.link_existing, EXCLUDED.full_sync_interval, EXCLUDED.enabled,
				EXCLUDED.rate_limit_per_minute, EXCLUDED.rate_limit_burst, EXCLUDED.max_in_flight,
				EXCLUDED.reconcile_interval, EXCLUDED.orphans, EXCLUDED.basic_username,
				EXCLUDED.basic_password, EXCLUDED.discovery, EXCLUDED.service_provider_config,
				EXCLUDED.deprovision_delete_after)
				THEN now() ELSE providers.updated_at END
		RETURNING `+providerColumns,
		p.Name, p.BaseURL, p.AuthMode, p.Token, p.OAuthTokenURL, p.OAuthClientID, p.OAuthClientSecret,
		p.OAuthParams, p.CompatibilityMode, p.ExcludeServiceAccounts, p.ApplicationID, p.DryRun,
		p.VerifyTLS, p.PageSize, p.DeprovisionAction, p.DeprovisionThreshold, p.FlattenGroups,
		p.LinkExisting, p.FullSyncInterval.Seconds(), p.Enabled,
		p.RateLimitPerMinute, p.RateLimitBurst, p.MaxInFlight, p.ReconcileInterval.Seconds(), p.Orphans,
		p.BasicUsername, p.BasicPassword, p.Discovery, p.ServiceConfig, p.DeprovisionDeleteAfter.Seconds()).StructScan(&out)
	if err != nil {
		return Provider{}, fmt.Errorf("store: save provider %s: %w", p.Name, translate(err))
	}
	out.afterScan()
	return out, nil
}

// DeleteProvider removes a provider with its filters, mapping selection and links.
func (tx *Tx) DeleteProvider(ctx context.Context, name string) error {
	return execOne(ctx, tx.tx, "delete provider "+name, `DELETE FROM providers WHERE name = $1`, name)
}

// SetGroupFilters replaces the provider's group filters (by group id). An empty list means
// every group is in scope.
func (tx *Tx) SetGroupFilters(ctx context.Context, providerID string, groupIDs []string) error {
	if _, err := tx.tx.ExecContext(ctx, `
		DELETE FROM provider_group_filters WHERE provider_id = $1 AND group_id <> ALL($2::uuid[])`,
		providerID, pq.Array(groupIDs)); err != nil {
		return fmt.Errorf("store: set group filters: %w", translate(err))
	}
	if _, err := tx.tx.ExecContext(ctx, `
		INSERT INTO provider_group_filters (provider_id, group_id)
		SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING`, providerID, pq.Array(groupIDs)); err != nil {
		return fmt.Errorf("store: set group filters: %w", translate(err))
	}
	return nil
}

// Provider loads a provider by name; ErrNotFound when none.
func (s *Store) Provider(ctx context.Context, name string) (Provider, error) {
	var p Provider
	if err := s.db.GetContext(ctx, &p, `SELECT `+providerColumns+` FROM providers WHERE name = $1`, name); err != nil {
		return Provider{}, fmt.Errorf("store: provider %s: %w", name, translate(err))
	}
	p.afterScan()
	return p, nil
}

// Providers lists all providers by name.
func (s *Store) Providers(ctx context.Context) ([]Provider, error) {
	ps := []Provider{}
	if err := s.db.SelectContext(ctx, &ps, `SELECT `+providerColumns+` FROM providers ORDER BY name`); err != nil {
		return nil, fmt.Errorf("store: list providers: %w", translate(err))
	}
	for i := range ps {
		ps[i].afterScan()
	}
	return ps, nil
}

// GroupFilters returns the ids of the provider's group filters, sorted.
func (s *Store) GroupFilters(ctx context.Context, providerID string) ([]string, error) {
	ids := []string{}
	if err := s.db.SelectContext(ctx, &ids,
		`SELECT group_id FROM provider_group_filters WHERE provider_id = $1 ORDER BY group_id`, providerID); err != nil {
		return nil, fmt.Errorf("store: group filters: %w", translate(err))
	}
	return ids, nil
}

// CachedServiceConfig returns the provider's cached ServiceProviderConfig document when it
// was fetched less than maxAge ago; ok is false otherwise.
func (s *Store) CachedServiceConfig(ctx context.Context, providerID string, maxAge time.Duration) (config json.RawMessage, ok bool, err error) {
	var row struct {
		Config    []byte    `db:"config"`
		FetchedAt time.Time `db:"fetched_at"`
	}
	err = s.db.GetContext(ctx, &row,
		`SELECT config, fetched_at FROM provider_service_configs WHERE provider_id = $1`, providerID)
	if err != nil {
		if translate(err) == ErrNotFound {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("store: cached service config: %w", translate(err))
	}
	if s.now().Sub(row.FetchedAt) >= maxAge {
		return nil, false, nil
	}
	return row.Config, true, nil
}

// PutServiceConfig caches the provider's ServiceProviderConfig document.
func (s *Store) PutServiceConfig(ctx context.Context, providerID string, config json.RawMessage) error {
	_, err := s.db.ExecContext(ctx, `
		INSERT INTO provider_service_configs (provider_id, config, fetched_at) VALUES ($1, $2, $3)
		ON CONFLICT (provider_id) DO UPDATE SET config = EXCLUDED.config, fetched_at = EXCLUDED.fetched_at`,
		providerID, []byte(config), s.now())
	if err != nil {
		return fmt.Errorf("store: cache service config: %w", translate(err))
	}
	return nil
}

// ClearServiceConfig drops the provider's cached ServiceProviderConfig.
func (s *Store) ClearServiceConfig(ctx context.Context, providerID string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM provider_service_configs WHERE provider_id = $1`, providerID); err != nil {
		return fmt.Errorf("store: clear service config: %w", translate(err))
	}
	return nil
}
