-- +goose Up

-- The installation this database belongs to (docs/reliability.md, "Several installations
-- in one namespace"): one row, its id generated once. The first 12 hex digits of the id are
-- in every workflow ID, schedule ID and the default task queue of the installation, so
-- that installations sharing a Temporal namespace (staging and production, two tenants)
-- never run, replace or delete each other's; `starter status` shows it. A copy of the
-- database (a restored backup) keeps the id: give the copy its own by deleting the row
-- with its workers stopped; the store generates a new one when it finds none.
CREATE TABLE installation (
    singleton  boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    id         uuid NOT NULL DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO installation DEFAULT VALUES;

-- +goose Down
DROP TABLE installation;
