-- +goose Up

-- Whether a provider's target is failing (no answer, 408 or 5xx): set by the first failure
-- a worker sees, kept fresh while failures go on, cleared by the next answer. starter status
-- shows it as "waiting for the target since ...": syncs retry until the target answers.
CREATE TABLE target_health (
    provider_id     uuid PRIMARY KEY REFERENCES providers (id) ON DELETE CASCADE,
    failing_since   timestamptz,
    last_failure_at timestamptz,
    last_error      text NOT NULL DEFAULT '',
    failures        bigint NOT NULL DEFAULT 0
);

-- +goose Down
DROP TABLE target_health;
