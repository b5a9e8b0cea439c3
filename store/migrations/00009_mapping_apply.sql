-- +goose Up

-- When a property mapping's attributes are written: always (every create and update), or
-- on_create (only in the create of an object: an initial password, a value the application
-- owns afterwards). See mapping.Apply.
ALTER TABLE property_mappings
    ADD COLUMN apply text NOT NULL DEFAULT 'always' CHECK (apply IN ('always', 'on_create'));

-- +goose Down
ALTER TABLE property_mappings DROP COLUMN apply;
