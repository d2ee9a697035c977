-- +goose Up
-- Times are microseconds since the Unix epoch (0 for "none"), as in the
-- SQLite schema, so one implementation of the queries serves both.
CREATE TABLE accounts (
    id               TEXT PRIMARY KEY,
    email            TEXT NOT NULL UNIQUE,
    name             TEXT NOT NULL,
    project          TEXT NOT NULL,
    display_name     TEXT NOT NULL DEFAULT '',
    description      TEXT NOT NULL DEFAULT '',
    scopes           TEXT NOT NULL DEFAULT '[]',
    token_lifetime_s BIGINT NOT NULL,
    disabled         INTEGER NOT NULL DEFAULT 0,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX accounts_project ON accounts (project, id);

CREATE TABLE keys (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    algorithm   TEXT NOT NULL,
    public_key  BYTEA NOT NULL,
    certificate BYTEA NOT NULL,
    origin      TEXT NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0,
    expires_at  BIGINT NOT NULL DEFAULT 0,
    created_at  BIGINT NOT NULL
);
CREATE INDEX keys_account ON keys (account_id, created_at);

CREATE TABLE apis (
    name        TEXT PRIMARY KEY,
    identifier  TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_scopes (
    scope    TEXT PRIMARY KEY,
    api_name TEXT NOT NULL REFERENCES apis (name),
    position INTEGER NOT NULL
);
CREATE INDEX api_scopes_api ON api_scopes (api_name, position);

CREATE TABLE signing_keys (
    id           TEXT PRIMARY KEY,
    algorithm    TEXT NOT NULL,
    sealed       BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    activated_at BIGINT NOT NULL DEFAULT 0,
    retired_at   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE used_jtis (
    issuer     TEXT NOT NULL,
    jti        TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX used_jtis_expires ON used_jtis (expires_at);

CREATE TABLE audit_events (
    seq        BIGINT PRIMARY KEY,
    time       BIGINT NOT NULL,
    action     TEXT NOT NULL,
    outcome    TEXT NOT NULL,
    account_id TEXT NOT NULL DEFAULT '',
    actor      TEXT NOT NULL DEFAULT '',
    source     TEXT NOT NULL DEFAULT '',
    data       TEXT NOT NULL DEFAULT '{}',
    prev_hash  BYTEA NOT NULL,
    hash       BYTEA NOT NULL
);
CREATE INDEX audit_events_account ON audit_events (account_id, seq);
CREATE INDEX audit_events_action ON audit_events (action, seq);
CREATE INDEX audit_events_time ON audit_events (time);

-- The audit log is append-only.
-- +goose StatementBegin
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

-- +goose Down
DROP TABLE audit_events;
DROP FUNCTION audit_events_append_only;
DROP TABLE used_jtis;
DROP TABLE signing_keys;
DROP TABLE api_scopes;
DROP TABLE apis;
DROP TABLE keys;
DROP TABLE accounts;
