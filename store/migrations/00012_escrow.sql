-- +goose Up

-- Escrow: an object whose write failed is retried on its own, with a growing delay
-- (store.RetryDelays, SCIMSYNC_ESCROW_DELAYS), then only by full syncs. error_attempts
-- counts the failed writes in a row, next_attempt_at is when the escrow loop of a worker
-- signals the object's ObjectSync again (NULL: no escrow retry due, only full syncs); both
-- are set when a write fails and cleared when one succeeds.
ALTER TABLE sync_links
    ADD COLUMN error_attempts  integer NOT NULL DEFAULT 0,
    ADD COLUMN next_attempt_at timestamptz;
CREATE INDEX sync_links_next_attempt ON sync_links (next_attempt_at) WHERE next_attempt_at IS NOT NULL;

-- Quarantine: a provider whose writes mostly fail. write_outcomes holds its last write
-- outcomes, oldest first ('' a success, else the object error); quarantined_since and
-- quarantine_error (the most frequent error of the window) are set when more than 90% of
-- at least store.QuarantineMinOutcomes of them failed, and cleared by a write call that
-- succeeds without a failure.
ALTER TABLE target_health
    ADD COLUMN write_outcomes    text[] NOT NULL DEFAULT '{}',
    ADD COLUMN quarantined_since timestamptz,
    ADD COLUMN quarantine_error  text NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE target_health DROP COLUMN quarantine_error, DROP COLUMN quarantined_since, DROP COLUMN write_outcomes;
DROP INDEX sync_links_next_attempt;
ALTER TABLE sync_links DROP COLUMN next_attempt_at, DROP COLUMN error_attempts;
