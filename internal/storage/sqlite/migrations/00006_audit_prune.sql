-- +goose Up
-- The audit log stays append-only, but for pruning: a transaction that
-- prunes opens the gate (a row naming the last event it may delete),
-- deletes the oldest events, closes it and appends an audit.prune event
-- naming what went, all at once. Even with the gate open, only a prefix of
-- the log can go, never its newest event.
CREATE TABLE audit_prune_gate (through INTEGER NOT NULL);

DROP TRIGGER audit_events_no_delete;
-- +goose StatementBegin
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
WHEN NOT EXISTS (SELECT 1 FROM audit_prune_gate WHERE OLD.seq <= through)
    OR OLD.seq >= (SELECT MAX(seq) FROM audit_events)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only; prune old events with keyward audit prune');
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER audit_events_no_delete;
-- +goose StatementBegin
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
-- +goose StatementEnd
DROP TABLE audit_prune_gate;
