-- +goose Up
-- The audit log stays append-only, but for pruning: a transaction that
-- prunes opens the gate (a row naming the last event it may delete, never
-- visible to other transactions), deletes the oldest events, closes it and
-- appends an audit.prune event naming what went, all at once. Even with the
-- gate open, only a prefix of the log can go, never its newest event. The
-- trigger names its tables through the audit table's own schema, so a
-- temporary table of the same name cannot stand in for the gate.
CREATE TABLE audit_prune_gate (through BIGINT NOT NULL);

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    allowed boolean;
BEGIN
    IF TG_OP = 'DELETE' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %1$I.audit_prune_gate WHERE $1 <= through)
                        AND $1 < (SELECT MAX(seq) FROM %1$I.audit_events)', TG_TABLE_SCHEMA)
            INTO allowed USING OLD.seq;
        IF allowed THEN
            RETURN OLD;
        END IF;
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
