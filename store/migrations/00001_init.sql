-- +goose Up

-- Directory: the source of truth. Other services write these tables (or point views at
-- their own); every write lands in the sync_changes outbox through the triggers below.

CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username    text NOT NULL UNIQUE CHECK (username <> ''),
    name        text NOT NULL DEFAULT '',
    email       text NOT NULL DEFAULT '',
    is_active   boolean NOT NULL DEFAULT true,
    type        text NOT NULL DEFAULT 'internal'
                CHECK (type IN ('internal', 'external', 'service_account')),
    locale      text NOT NULL DEFAULT '',
    avatar      text NOT NULL DEFAULT '',
    attributes  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE groups (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    parent_id   uuid REFERENCES groups (id) ON DELETE SET NULL CHECK (parent_id <> id),
    attributes  jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX groups_parent_id_idx ON groups (parent_id);

CREATE TABLE group_members (
    group_id  uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_user_id_idx ON group_members (user_id);

-- An application's bindings decide who may use it. policy_engine_mode 'any' admits a user
-- when one enabled binding passes, 'all' when every enabled binding passes; an application
-- without enabled bindings admits everybody.
CREATE TABLE applications (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                text NOT NULL UNIQUE CHECK (name <> ''),
    policy_engine_mode  text NOT NULL DEFAULT 'any' CHECK (policy_engine_mode IN ('any', 'all')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- A group binding passes for members of the group or of any of its descendants; a user
-- binding passes for that user; negate inverts the result.
CREATE TABLE application_bindings (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    application_id  uuid NOT NULL REFERENCES applications (id) ON DELETE CASCADE,
    group_id        uuid REFERENCES groups (id) ON DELETE CASCADE,
    user_id         uuid REFERENCES users (id) ON DELETE CASCADE,
    negate          boolean NOT NULL DEFAULT false,
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((group_id IS NULL) <> (user_id IS NULL))
);
CREATE INDEX application_bindings_application_id_idx ON application_bindings (application_id);

-- Configuration.

-- Secrets (token, oauth_client_secret, oauth_params values) hold either a reference
-- (env:NAME, file:/path) resolved by the worker, or a sealed literal; never a clear literal
-- written by scimsync itself.
CREATE TABLE providers (
    id                        uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                      text NOT NULL UNIQUE
                              CHECK (name ~ '^[a-z0-9][a-z0-9._-]{0,62}$'),
    base_url                  text NOT NULL CHECK (base_url ~ '^https?://'),
    auth_mode                 text NOT NULL DEFAULT 'token' CHECK (auth_mode IN ('token', 'oauth2')),
    token                     text NOT NULL DEFAULT '',
    oauth_token_url           text NOT NULL DEFAULT '',
    oauth_client_id           text NOT NULL DEFAULT '',
    oauth_client_secret       text NOT NULL DEFAULT '',
    oauth_params              jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(oauth_params) = 'object'),
    compatibility_mode        text NOT NULL DEFAULT 'default'
                              CHECK (compatibility_mode IN ('default', 'aws', 'slack', 'salesforce', 'webex')),
    exclude_service_accounts  boolean NOT NULL DEFAULT true,
    application_id            uuid REFERENCES applications (id) ON DELETE SET NULL,
    dry_run                   boolean NOT NULL DEFAULT false,
    verify_tls                boolean NOT NULL DEFAULT true,
    page_size                 integer NOT NULL DEFAULT 100 CHECK (page_size BETWEEN 1 AND 1000),
    deprovision_action        text NOT NULL DEFAULT 'delete'
                              CHECK (deprovision_action IN ('delete', 'deactivate', 'none')),
    deprovision_threshold     integer NOT NULL DEFAULT 0 CHECK (deprovision_threshold >= 0),
    flatten_groups            boolean NOT NULL DEFAULT false,
    link_existing             boolean NOT NULL DEFAULT false,
    full_sync_interval        interval NOT NULL DEFAULT '1 hour' CHECK (full_sync_interval >= '1 minute'),
    enabled                   boolean NOT NULL DEFAULT true,
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE provider_group_filters (
    provider_id  uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    group_id     uuid NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    PRIMARY KEY (provider_id, group_id)
);

CREATE TABLE property_mappings (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL UNIQUE CHECK (name <> ''),
    kind        text NOT NULL CHECK (kind IN ('user', 'group')),
    expression  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE provider_mappings (
    provider_id  uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    mapping_id   uuid NOT NULL REFERENCES property_mappings (id) ON DELETE CASCADE,
    PRIMARY KEY (provider_id, mapping_id)
);

-- The target's ServiceProviderConfig, cached for a while; any change to the provider clears it.
CREATE TABLE provider_service_configs (
    provider_id  uuid PRIMARY KEY REFERENCES providers (id) ON DELETE CASCADE,
    config       jsonb NOT NULL,
    fetched_at   timestamptz NOT NULL
);

-- +goose StatementBegin
CREATE FUNCTION providers_clear_service_config() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM provider_service_configs WHERE provider_id = NEW.id;
    RETURN NULL;
END $$;
-- +goose StatementEnd

CREATE TRIGGER providers_clear_service_config
    AFTER UPDATE ON providers
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION providers_clear_service_config();

-- Sync state. A link survives the deletion of its local object (no foreign key on
-- object_id) so the remote side can still be deprovisioned. remote_id is NULL while a
-- create is in flight: a retry then looks the object up remotely before posting again.
CREATE TABLE sync_links (
    provider_id   uuid NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    kind          text NOT NULL CHECK (kind IN ('user', 'group')),
    object_id     uuid NOT NULL,
    remote_id     text,
    payload_hash  text NOT NULL DEFAULT '',
    payload       jsonb,
    members       jsonb CHECK (members IS NULL OR jsonb_typeof(members) = 'array'),
    last_error    text NOT NULL DEFAULT '',
    synced_at     timestamptz,
    -- Set when the remote object was deactivated (deprovision action 'deactivate'); the
    -- link stays so that the object is updated, not created again, if it comes back.
    deprovisioned_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider_id, kind, object_id)
);
CREATE UNIQUE INDEX sync_links_remote_id_idx ON sync_links (provider_id, kind, remote_id);
CREATE INDEX sync_links_errors_idx ON sync_links (provider_id) WHERE last_error <> '';

-- Change outbox, written in the writer's transaction. kind names what changed:
-- user / group (object_id is its id), membership (object_id = group, related_id = user),
-- binding (object_id = application). The relay claims rows with FOR UPDATE SKIP LOCKED.
CREATE TABLE sync_changes (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('user', 'group', 'membership', 'binding')),
    op          text NOT NULL CHECK (op IN ('insert', 'update', 'delete')),
    object_id   uuid NOT NULL,
    related_id  uuid,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- +goose StatementBegin
CREATE FUNCTION sync_changes_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    row_data record;
    change_op text := lower(TG_OP);
BEGIN
    IF TG_OP = 'DELETE' THEN row_data := OLD; ELSE row_data := NEW; END IF;
    IF TG_TABLE_NAME = 'users' THEN
        INSERT INTO sync_changes (kind, op, object_id) VALUES ('user', change_op, row_data.id);
    ELSIF TG_TABLE_NAME = 'groups' THEN
        INSERT INTO sync_changes (kind, op, object_id) VALUES ('group', change_op, row_data.id);
    ELSIF TG_TABLE_NAME = 'group_members' THEN
        INSERT INTO sync_changes (kind, op, object_id, related_id)
            VALUES ('membership', change_op, row_data.group_id, row_data.user_id);
    ELSIF TG_TABLE_NAME = 'application_bindings' THEN
        INSERT INTO sync_changes (kind, op, object_id) VALUES ('binding', change_op, row_data.application_id);
    END IF;
    -- Delivered at commit, and only then: a rolled-back change wakes nobody.
    PERFORM pg_notify('scimsync_changes', '');
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- Updates that change nothing but updated_at are not changes.
CREATE TRIGGER users_capture_insert_delete AFTER INSERT OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION sync_changes_capture();
CREATE TRIGGER users_capture_update AFTER UPDATE ON users
    FOR EACH ROW WHEN ((OLD.username, OLD.name, OLD.email, OLD.is_active, OLD.type, OLD.locale, OLD.avatar, OLD.attributes)
                       IS DISTINCT FROM
                       (NEW.username, NEW.name, NEW.email, NEW.is_active, NEW.type, NEW.locale, NEW.avatar, NEW.attributes))
    EXECUTE FUNCTION sync_changes_capture();

CREATE TRIGGER groups_capture_insert_delete AFTER INSERT OR DELETE ON groups
    FOR EACH ROW EXECUTE FUNCTION sync_changes_capture();
CREATE TRIGGER groups_capture_update AFTER UPDATE ON groups
    FOR EACH ROW WHEN ((OLD.name, OLD.parent_id, OLD.attributes) IS DISTINCT FROM (NEW.name, NEW.parent_id, NEW.attributes))
    EXECUTE FUNCTION sync_changes_capture();

CREATE TRIGGER group_members_capture AFTER INSERT OR UPDATE OR DELETE ON group_members
    FOR EACH ROW EXECUTE FUNCTION sync_changes_capture();

CREATE TRIGGER application_bindings_capture AFTER INSERT OR DELETE ON application_bindings
    FOR EACH ROW EXECUTE FUNCTION sync_changes_capture();
CREATE TRIGGER application_bindings_capture_update AFTER UPDATE ON application_bindings
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION sync_changes_capture();

-- +goose Down
DROP TABLE sync_changes, sync_links, provider_service_configs, provider_mappings,
    property_mappings, provider_group_filters, providers, application_bindings,
    applications, group_members, groups, users;
DROP FUNCTION sync_changes_capture(), providers_clear_service_config();
