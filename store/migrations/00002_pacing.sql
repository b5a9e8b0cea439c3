-- +goose Up

-- Pacing (docs/pacing.md): what the operator configured per provider, and
-- the state every worker shares to stay under one target's limit together.

-- 0 means not configured: no limit of the operator's (the compatibility mode's published
-- limit, if any, applies), no cap on requests in flight.
ALTER TABLE providers
    ADD COLUMN rate_limit_per_minute double precision NOT NULL DEFAULT 0
        CHECK (rate_limit_per_minute >= 0 AND rate_limit_per_minute <= 1000000),
    ADD COLUMN rate_limit_burst integer NOT NULL DEFAULT 0
        CHECK (rate_limit_burst >= 0 AND rate_limit_burst <= 100000),
    ADD COLUMN max_in_flight integer NOT NULL DEFAULT 0
        CHECK (max_in_flight >= 0 AND max_in_flight <= 10000);

-- One row per provider, read and written under a row lock with the database's clock, so
-- that every worker sees one token bucket and one pause whatever its own clock says.
CREATE TABLE provider_pacing (
    provider_id       uuid PRIMARY KEY REFERENCES providers (id) ON DELETE CASCADE,
    -- The allowed rate learned from the target, in requests per second; NULL: nothing
    -- learned (the configured limit, if any, applies).
    learned_rate      double precision CHECK (learned_rate > 0),
    -- The learned rate after the last cut, which growth starts from and a throttle after
    -- growth returns to.
    base_rate         double precision,
    -- The shared token bucket: tokens at refilled_at; NULL is a full bucket.
    tokens            double precision,
    refilled_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    paused_until      timestamptz,
    pause_cause       text NOT NULL DEFAULT '',
    -- After a pause the target gets one request (a probe) and nothing else until it is
    -- answered otherwise than by a throttle, or until probe_until.
    probing           boolean NOT NULL DEFAULT false,
    probe_until       timestamptz,
    throttles         bigint NOT NULL DEFAULT 0,
    strikes           integer NOT NULL DEFAULT 0,
    -- Bumped by every throttle that begins a pause: requests admitted before (in flight
    -- when it came) only extend that pause when they are throttled too.
    epoch             bigint NOT NULL DEFAULT 0,
    last_throttle_at  timestamptz,
    last_cut_at       timestamptz,
    grown_at          timestamptz,
    -- What the workers sent and the target accepted: the current window and the rates of
    -- the one before it.
    window_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    window_sent       bigint NOT NULL DEFAULT 0,
    window_ok         bigint NOT NULL DEFAULT 0,
    window_throttled  bigint NOT NULL DEFAULT 0,
    prev_seconds      double precision NOT NULL DEFAULT 0,
    prev_sent         bigint NOT NULL DEFAULT 0,
    prev_ok           bigint NOT NULL DEFAULT 0,
    prev_throttled    bigint NOT NULL DEFAULT 0,
    sent_total        bigint NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Requests in flight are capped across workers by claims: each worker process (holder)
-- claims slots for a while and renews them; a dead worker's claim expires.
CREATE TABLE provider_pacing_slots (
    provider_id  uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    holder       text NOT NULL,
    slots        integer NOT NULL CHECK (slots >= 0),
    wanted       integer NOT NULL CHECK (wanted >= 0),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (provider_id, holder)
);

-- Changing a provider's limits starts learning afresh.
-- +goose StatementBegin
CREATE FUNCTION providers_reset_pacing() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE provider_pacing SET learned_rate = NULL, base_rate = NULL, tokens = NULL WHERE provider_id = NEW.id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER providers_reset_pacing
    AFTER UPDATE ON providers
    FOR EACH ROW WHEN ((OLD.rate_limit_per_minute, OLD.rate_limit_burst, OLD.max_in_flight, OLD.compatibility_mode, OLD.base_url)
                       IS DISTINCT FROM
                       (NEW.rate_limit_per_minute, NEW.rate_limit_burst, NEW.max_in_flight, NEW.compatibility_mode, NEW.base_url))
    EXECUTE FUNCTION providers_reset_pacing();

-- A create whose outcome is unknown (sent, and answered by nothing certain) must be looked
-- up before it is posted again; one the target refused (a 4xx, a 429, a connection that
-- failed before the request was written) must not: it is simply sent again. true, the
-- safe value, for links written before this column.
ALTER TABLE sync_links ADD COLUMN create_uncertain boolean NOT NULL DEFAULT true;

-- +goose Down
ALTER TABLE sync_links DROP COLUMN create_uncertain;
DROP TRIGGER providers_reset_pacing ON providers;
DROP FUNCTION providers_reset_pacing();
DROP TABLE provider_pacing_slots, provider_pacing;
ALTER TABLE providers DROP COLUMN rate_limit_per_minute, DROP COLUMN rate_limit_burst, DROP COLUMN max_in_flight;
