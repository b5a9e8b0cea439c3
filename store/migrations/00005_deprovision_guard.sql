-- +goose Up

-- The deprovision threshold guards every path (docs/reliability.md, "Deprovision
-- threshold"): a full sync counts what its cleanup would deprovision, and the direct
-- deprovisions that an object's own sync makes count here, per provider, over the last
-- hour. One row per object: a retried activity reserves the same row again.
CREATE TABLE direct_deprovisions (
    provider_id uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('user', 'group')),
    object_id   uuid NOT NULL,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider_id, kind, object_id)
);
CREATE INDEX direct_deprovisions_at_idx ON direct_deprovisions (provider_id, at);

-- Set when a direct deprovision of the object was held past the threshold: the object
-- stays at the target until a full sync deprovisions it, with approval when the held ones
-- (and whatever else it would deprovision) exceed the threshold. starter status shows them.
ALTER TABLE sync_links ADD COLUMN deprovision_held_at timestamptz;

-- +goose Down
ALTER TABLE sync_links DROP COLUMN deprovision_held_at;
DROP TABLE direct_deprovisions;
