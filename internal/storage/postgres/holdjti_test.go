package postgres_test

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// holdJTI opens another session on dsn and, in a transaction it leaves
// open, inserts the used JTI (issuer "i", jti): a commit of the same JTI
// waits on it until tx ends. It returns that session's pool, for the
// test's own queries, the transaction and its backend's pid. Both are
// closed when the test ends, after its deferred calls: a test that defers
// closing a committer that may wait on tx defers tx.Rollback after it.
func holdJTI(t *testing.T, dsn, jti string, exp time.Time) (db *sql.DB, tx *sql.Tx, pid int) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, err = db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tx.Rollback() })
	if err := tx.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO used_jtis (issuer, jti, expires_at) VALUES ('i', $1, $2)", jti, exp.UnixMicro()); err != nil {
		t.Fatal(err)
	}
	return db, tx, pid
}
