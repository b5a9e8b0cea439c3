-- +goose Up

-- Reconciliation (docs/reconciliation.md): reading the target back to repair what was
-- changed there, and to find the objects there that no link accounts for.

-- How often a full sync reads the target back (0: never unless asked), and what it does
-- with orphans: remote objects no live link accounts for.
ALTER TABLE providers
    ADD COLUMN reconcile_interval interval NOT NULL DEFAULT '24 hours' CHECK (reconcile_interval >= '0'),
    ADD COLUMN orphans text NOT NULL DEFAULT 'report' CHECK (orphans IN ('report', 'adopt', 'delete'));

-- What a read-back found at the target: one row per remote object, under the read-back
-- that read it (the full sync's workflow ID, or a plan's), so that a sync compares page by
-- page with what it read and memory stays bounded at any size. Rows go when the read-back
-- ends.
CREATE TABLE target_objects (
    read_back    text NOT NULL,
    provider_id  uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind IN ('user', 'group')),
    remote_id    text NOT NULL,
    external_id  text NOT NULL DEFAULT '',
    name         text NOT NULL DEFAULT '', -- userName or displayName
    body         jsonb NOT NULL,           -- the resource as read, without members and meta
    members      jsonb CHECK (members IS NULL OR jsonb_typeof(members) = 'array'), -- NULL: not observable
    -- When it was read: a link written after it knows better than the read-back.
    read_at      timestamptz NOT NULL,
    PRIMARY KEY (read_back, provider_id, kind, remote_id)
);
CREATE INDEX target_objects_external_id_idx ON target_objects (read_back, provider_id, kind, external_id);

-- Every read-back of a provider, with what it found and did; status shows the last.
CREATE TABLE read_backs (
    id           text NOT NULL,
    provider_id  uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    figures      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(figures) = 'object'),
    PRIMARY KEY (provider_id, id)
);
CREATE INDEX read_backs_finished_idx ON read_backs (provider_id, finished_at DESC);

-- An operator's request for a read-back at the next full sync (starter full-sync
-- --read-target); a read-back that starts after it fulfils it.
CREATE TABLE read_back_requests (
    provider_id   uuid PRIMARY KEY REFERENCES providers (id) ON DELETE CASCADE,
    requested_at  timestamptz NOT NULL
);

-- +goose Down
DROP TABLE read_back_requests, read_backs, target_objects;
ALTER TABLE providers DROP COLUMN reconcile_interval, DROP COLUMN orphans;
