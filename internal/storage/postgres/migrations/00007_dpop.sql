-- +goose Up
-- The JWK thumbprint of the DPoP key an opaque token is bound to
-- (RFC 9449 §6), for introspection's cnf.jkt.
ALTER TABLE tokens ADD COLUMN jkt TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE tokens DROP COLUMN jkt;
