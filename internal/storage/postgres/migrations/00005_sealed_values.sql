-- +goose Up
-- The server's own secrets other than signing keys (the client-secret
-- pepper), encrypted under the master key, so the master key can be
-- rotated without losing them.
CREATE TABLE sealed_values (
    name       TEXT PRIMARY KEY,
    sealed     BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE sealed_values;
