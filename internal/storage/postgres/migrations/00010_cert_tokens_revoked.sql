-- +goose Up
-- The tokens issued before it to a client that authenticated with a
-- CA-issued certificate (tls_client_auth) are revoked: a change of the
-- account's certificate binding sets it, and ends those tokens alone, not
-- the ones got with the account's keys or secrets (tokens_revoked_before).
-- Microseconds since 1970; 0 is none.
ALTER TABLE accounts ADD COLUMN cert_tokens_revoked_before BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE accounts DROP COLUMN cert_tokens_revoked_before;
