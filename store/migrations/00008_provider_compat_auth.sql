-- +goose Up

-- Compatibility modes without discovery (vcenter, gitlab), HTTP Basic auth, and what a
-- provider says of its target's capabilities when discovery is off or wrong.
ALTER TABLE providers
    DROP CONSTRAINT providers_compatibility_mode_check,
    ADD CONSTRAINT providers_compatibility_mode_check
        CHECK (compatibility_mode IN ('default', 'aws', 'slack', 'salesforce', 'webex', 'vcenter', 'gitlab')),
    DROP CONSTRAINT providers_auth_mode_check,
    ADD CONSTRAINT providers_auth_mode_check CHECK (auth_mode IN ('token', 'oauth2', 'basic')),
    -- basic_password is a secret like token: a reference (env:, file:) or a sealed literal.
    ADD COLUMN basic_username text NOT NULL DEFAULT '',
    ADD COLUMN basic_password text NOT NULL DEFAULT '',
    -- auto: the ServiceProviderConfig is requested (unless the mode assumes one); off: never.
    ADD COLUMN discovery text NOT NULL DEFAULT 'auto' CHECK (discovery IN ('auto', 'off')),
    -- {"patch": bool, "bulk": {"supported": bool, "maxOperations": n, "maxPayloadSize": n},
    -- "filter": bool}, each key optional: what wins over the discovered (or assumed) document.
    ADD COLUMN service_provider_config jsonb NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(service_provider_config) = 'object');

-- +goose Down
-- Fails while a provider uses a mode or auth mode this migration added: change it first.
ALTER TABLE providers
    DROP COLUMN service_provider_config,
    DROP COLUMN discovery,
    DROP COLUMN basic_password,
    DROP COLUMN basic_username,
    DROP CONSTRAINT providers_auth_mode_check,
    ADD CONSTRAINT providers_auth_mode_check CHECK (auth_mode IN ('token', 'oauth2')),
    DROP CONSTRAINT providers_compatibility_mode_check,
    ADD CONSTRAINT providers_compatibility_mode_check
        CHECK (compatibility_mode IN ('default', 'aws', 'slack', 'salesforce', 'webex'));
