-- +goose Up
ALTER TABLE apis ADD COLUMN token_format TEXT NOT NULL DEFAULT 'jwt';
ALTER TABLE apis ADD COLUMN introspectors TEXT NOT NULL DEFAULT '[]';
ALTER TABLE accounts ADD COLUMN token_format TEXT NOT NULL DEFAULT '';
ALTER TABLE accounts ADD COLUMN tokens_revoked_before BIGINT NOT NULL DEFAULT 0;

-- Introspection is a permission of the built-in API.
INSERT INTO api_scopes (scope, api_name, position)
SELECT 'keyward.introspect', 'keyward', 1 WHERE EXISTS (SELECT 1 FROM apis WHERE name = 'keyward')
ON CONFLICT DO NOTHING;

-- Opaque access tokens, stored only as the SHA-256 of the token.
CREATE TABLE tokens (
    hash        BYTEA PRIMARY KEY,
    jti         TEXT NOT NULL UNIQUE,
    account_id  TEXT NOT NULL,
    subject     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    audience    TEXT NOT NULL,
    credential  TEXT NOT NULL DEFAULT '',
    thumbprint  TEXT NOT NULL DEFAULT '',
    actor       TEXT NOT NULL DEFAULT '',
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX tokens_expires ON tokens (expires_at);
CREATE INDEX tokens_account ON tokens (account_id);

-- Revoked token IDs, kept until the token would have expired.
CREATE TABLE revocations (
    jti        TEXT PRIMARY KEY,
    account_id TEXT NOT NULL DEFAULT '',
    revoked_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX revocations_expires ON revocations (expires_at);

-- +goose Down
DROP TABLE revocations;
DROP TABLE tokens;
DELETE FROM api_scopes WHERE scope = 'keyward.introspect';
ALTER TABLE accounts DROP COLUMN tokens_revoked_before;
ALTER TABLE accounts DROP COLUMN token_format;
ALTER TABLE apis DROP COLUMN introspectors;
ALTER TABLE apis DROP COLUMN token_format;
