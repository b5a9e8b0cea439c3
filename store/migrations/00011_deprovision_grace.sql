-- +goose Up

-- Two-step offboarding (deprovision action deactivate_then_delete): a user who leaves
-- scope is deactivated at once and deleted at the target once a grace period has passed,
-- unless it comes back before; a mistaken removal is then undone with nothing lost.
ALTER TABLE providers
    DROP CONSTRAINT providers_deprovision_action_check,
    ADD CONSTRAINT providers_deprovision_action_check
        CHECK (deprovision_action IN ('delete', 'deactivate', 'deactivate_then_delete', 'none')),
    -- The grace period: set with deactivate_then_delete, and only with it.
    ADD COLUMN deprovision_delete_after interval NOT NULL DEFAULT '0',
    ADD CONSTRAINT providers_deprovision_delete_after_check
        CHECK ((deprovision_action = 'deactivate_then_delete') = (deprovision_delete_after > '0'));

-- When a deactivated object is to be deleted at the target (its deactivation plus the
-- provider's grace period): a full sync's cleanup deletes it once passed, if it is still
-- out of scope. Cleared whenever the object is written again (reactivated).
ALTER TABLE sync_links ADD COLUMN delete_after timestamptz;
CREATE INDEX sync_links_delete_after_idx ON sync_links (provider_id, delete_after) WHERE delete_after IS NOT NULL;

-- +goose Down
-- Fails while a provider uses deactivate_then_delete: change it first.
DROP INDEX sync_links_delete_after_idx;
ALTER TABLE sync_links DROP COLUMN delete_after;
ALTER TABLE providers
    DROP CONSTRAINT providers_deprovision_delete_after_check,
    DROP COLUMN deprovision_delete_after,
    DROP CONSTRAINT providers_deprovision_action_check,
    ADD CONSTRAINT providers_deprovision_action_check
        CHECK (deprovision_action IN ('delete', 'deactivate', 'none'));
