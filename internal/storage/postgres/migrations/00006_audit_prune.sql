-- +goose Up
-- The audit log stays append-only, but for pruning: a transaction that
-- prunes opens the gate (a row here, never visible to other transactions),
-- deletes the oldest events, closes it and appends an audit.prune event
-- naming what went, all at once.
CREATE TABLE audit_prune_gate (open INTEGER NOT NULL);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND EXISTS (SELECT 1 FROM audit_prune_gate) THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only; prune old events with keyward audit prune';
END;
$$;
-- +goose StatementEnd

-- +goose Down
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
-- +goose StatementEnd
DROP TABLE audit_prune_gate;
