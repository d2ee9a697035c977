// Package pgtest gives tests a fresh PostgreSQL schema of their own.
package pgtest

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage/postgres"
)

// DSNEnv names the environment variable with the DSN of a PostgreSQL
// database the tests may create schemas in.
const DSNEnv = "KEYWARD_TEST_POSTGRES_DSN"

// SchemaDSN creates a schema that is dropped when the test ends and returns
// a DSN whose search_path points at it. It skips the test, saying why, when
// DSNEnv is unset.
func SchemaDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		t.Skipf("%s is not set; skipping PostgreSQL tests (e.g. %s=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", DSNEnv, DSNEnv)
	}
	schema, drop, err := postgres.TempSchema(context.Background(), dsn, "kwtest_")
	if err != nil {
		t.Fatalf("%s: %v", DSNEnv, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := drop(ctx); err != nil {
			t.Logf("dropping the test's schema (the next test run drops it): %v", err)
		}
	})
	return schema
}

// FirstStartLockKey is the key (classid) of the advisory lock a server
// holds while it starts (postgres.Store.LockFirstStart); its objid is
// the schema's.
const FirstStartLockKey = 0x6b770005

// FirstStartLocks counts the sessions that hold, and that wait for, the
// first-start lock of the schema db's search_path names.
func FirstStartLocks(t testing.TB, db *sql.DB) (held, waiting int) {
	t.Helper()
	if err := db.QueryRowContext(context.Background(), `SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) FROM pg_locks
		WHERE locktype = 'advisory' AND classid = $1 AND objsubid = 2 AND objid::bigint = (hashtext(current_schema())::bigint & 4294967295)`,
		FirstStartLockKey).Scan(&held, &waiting); err != nil {
		t.Fatal(err)
	}
	return held, waiting
}
