-- +goose Up

-- Dead letters of the change outbox (docs/reliability.md). A change that Temporal refuses
-- permanently (an invalid argument, such as a payload over the namespace's size limit; a
-- namespace that no longer exists) would block every batch it is claimed in. The relay
-- moves it here instead, in the transaction that deletes the rest of its batch from the
-- outbox, so that it is neither lost nor relayed twice, and relays the others. An operator
-- puts it back in the outbox (starter outbox retry) or drops it (starter outbox drop).

-- How many relay attempts Temporal refused permanently: 0 for a new change; for one an
-- operator put back, the attempts it had when parked.
ALTER TABLE sync_changes ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0);

-- The change as it was in sync_changes (id included: it goes back under the same id), the
-- provider whose signal or schedule trigger Temporal refused, and Temporal's answer. Like
-- every relay error it names ids only (workflow and schedule IDs, object uuids), never
-- personal data.
CREATE TABLE sync_changes_parked (
    id          bigint PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('user', 'group', 'membership', 'binding')),
    op          text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    object_id   uuid NOT NULL,
    related_id  uuid,
    created_at  timestamptz NOT NULL,
    provider    text NOT NULL,
    error       text NOT NULL,
    attempts    integer NOT NULL CHECK (attempts >= 1),
    parked_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX sync_changes_parked_parked_at_idx ON sync_changes_parked (parked_at, id);

-- +goose Down
-- Parked changes go back to the outbox rather than being lost with the table.
INSERT INTO sync_changes (id, kind, op, object_id, related_id, created_at)
    SELECT id, kind, op, object_id, related_id, created_at FROM sync_changes_parked;
DROP TABLE sync_changes_parked;
ALTER TABLE sync_changes DROP COLUMN attempts;
