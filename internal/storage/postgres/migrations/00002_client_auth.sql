-- +goose Up
ALTER TABLE accounts ADD COLUMN auth_methods TEXT NOT NULL DEFAULT '["client_secret_basic","client_secret_post","private_key_jwt"]';
ALTER TABLE accounts ADD COLUMN tls_binding TEXT NOT NULL DEFAULT '{}';

CREATE TABLE secrets (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    hash         BYTEA NOT NULL,
    hint         TEXT NOT NULL,
    disabled     INTEGER NOT NULL DEFAULT 0,
    expires_at   BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX secrets_account ON secrets (account_id, created_at);

-- +goose Down
DROP TABLE secrets;
ALTER TABLE accounts DROP COLUMN tls_binding;
ALTER TABLE accounts DROP COLUMN auth_methods;
