-- +goose Up
-- The tokens issued before it to a client that authenticated with a
-- CA-issued certificate (tls_client_auth) are revoked: a change of the
-- account's certificate binding sets it, and ends those tokens alone, not
-- the ones got with the account's keys or secrets (tokens_revoked_before).
-- Microseconds since 1970; 0 is none.
ALTER TABLE accounts ADD COLUMN cert_tokens_revoked_before BIGINT NOT NULL DEFAULT 0;

-- +goose Down
-- An earlier release reads tokens_revoked_before alone: the certificate
-- tokens revoked stay revoked, with the account's other tokens, as a
-- binding change in that release revoked them.
UPDATE accounts SET tokens_revoked_before = cert_tokens_revoked_before WHERE cert_tokens_revoked_before > tokens_revoked_before;
ALTER TABLE accounts DROP COLUMN cert_tokens_revoked_before;
