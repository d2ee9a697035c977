// Package pgtest gives tests a fresh PostgreSQL schema of their own.
package pgtest

import (
	"context"
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
