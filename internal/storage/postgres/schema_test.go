package postgres

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
	"time"
)

func TestWithSearchPath(t *testing.T) {
	tests := []struct {
		dsn, want string
	}{
		{"postgres://u@h:5432/db?sslmode=disable", "postgres://u@h:5432/db?search_path=s1&sslmode=disable"},
		{"postgresql://u@h/db?search_path=old", "postgresql://u@h/db?search_path=s1"},
		{"host=h dbname=db sslmode=disable", "host=h dbname=db sslmode=disable search_path=s1"},
		{"host=h search_path=old", "host=h search_path=old search_path=s1"},
		{"", "search_path=s1"},
	}
	for _, tt := range tests {
		got, err := withSearchPath(tt.dsn, "s1")
		if err != nil || got != tt.want {
			t.Errorf("withSearchPath(%q) = %q, %v; want %q", tt.dsn, got, err, tt.want)
		}
	}
	if _, err := withSearchPath("postgres://u@h:badport/db", "s1"); err == nil {
		t.Error("a malformed URL was accepted")
	}
}

// testDSN is pgtest's DSN; the tests of TempSchema cannot use pgtest, which
// is built on it.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("KEYWARD_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("KEYWARD_TEST_POSTGRES_DSN is not set; skipping PostgreSQL tests (e.g. KEYWARD_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test?sslmode=disable)")
	}
	return dsn
}

// TestTempSchema: a store opened on the DSN TempSchema returns lives in the
// new schema, and dropping it leaves nothing behind.
func TestTempSchema(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	for _, form := range []string{"url", "key=value"} {
		t.Run(form, func(t *testing.T) {
			base := dsn
			if form == "key=value" {
				base = "host=127.0.0.1 port=5432 user=postgres dbname=test sslmode=disable"
				if !strings.Contains(dsn, "127.0.0.1:5432/test") {
					t.Skip("the key=value form is tested against the local test database only")
				}
			}
			scoped, drop, err := TempSchema(ctx, base, "kwtemp_")
			if err != nil {
				t.Fatal(err)
			}
			st, err := Open(ctx, scoped, Options{})
			if err != nil {
				drop(ctx)
				t.Fatal(err)
			}
			st.Close()
			db, err := sql.Open("pgx", scoped)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var schema string
			var tables int
			if err := db.QueryRow("SELECT current_schema(), (SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema())").Scan(&schema, &tables); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(schema, "kwtemp_") || tables == 0 {
				t.Fatalf("the store is in schema %q with %d tables", schema, tables)
			}
			if err := drop(ctx); err != nil {
				t.Fatal(err)
			}
			var left int
			if err := db.QueryRow("SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&left); err != nil || left != 0 {
				t.Fatalf("schema %q still there (%d), %v", schema, left, err)
			}
		})
	}
}

// TestTempSchemaAbandoned: a schema left by a process killed before it
// could drop it (no session marks it in use) is dropped by the next
// TempSchema of the same prefix; one still in use is not, nor one that
// has the prefix but is not named as TempSchema names its schemas.
func TestTempSchemaAbandoned(t *testing.T) {
	dsn := testDSN(t)
	ctx := context.Background()
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const prefix = "kwabandon_"
	exists := func(schema string) bool {
		t.Helper()
		var n int
		if err := db.QueryRow("SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	current := func(scoped string) string {
		t.Helper()
		sdb, err := sql.Open("pgx", scoped)
		if err != nil {
			t.Fatal(err)
		}
		defer sdb.Close()
		var s string
		if err := sdb.QueryRow("SELECT current_setting('search_path')").Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Left by a killed process; not named as TempSchema names them (a
	// user's own); named as versions that did not mark their schemas did.
	abandoned, notOurs, older := prefix+"killed2abcdef", prefix+"users_own", prefix+"older2abcdef"
	for _, s := range []string{abandoned, notOurs, older} {
		if _, err := db.Exec("CREATE SCHEMA " + s + "; CREATE TABLE " + s + ".t (x int)"); err != nil {
			t.Fatal(err)
		}
	}
	defer db.Exec("DROP SCHEMA " + notOurs + " CASCADE")
	defer db.Exec("DROP SCHEMA " + older + " CASCADE")
	live, dropLive, err := TempSchema(ctx, dsn, prefix)
	if err != nil {
		t.Fatal(err)
	}
	liveName := current(live)
	if exists(abandoned) {
		t.Errorf("the abandoned schema %s is still there after a TempSchema", abandoned)
	}
	for _, s := range []string{notOurs, older} {
		if !exists(s) {
			t.Errorf("%s, not named as TempSchema names its marked schemas, was dropped", s)
		}
	}
	other, dropOther, err := TempSchema(ctx, dsn, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if !exists(liveName) {
		t.Fatalf("the schema in use %s was dropped by another TempSchema", liveName)
	}
	// An abandoned schema a session holds a lock in (an open transaction)
	// is left for a later sweep, after a short wait, not waited on.
	busy := prefix + "busy2abcdefgh"
	if _, err := db.Exec("CREATE SCHEMA " + busy + "; CREATE TABLE " + busy + ".t (x int)"); err != nil {
		t.Fatal(err)
	}
	defer db.Exec("DROP SCHEMA " + busy + " CASCADE")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback() // before the drops above, should the test fail
	if _, err := tx.Exec("LOCK TABLE " + busy + ".t IN ACCESS SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, dropThird, err := TempSchema(wctx, dsn, prefix)
	if err != nil {
		t.Fatalf("TempSchema with a locked abandoned schema: %v", err)
	}
	tx.Rollback()
	if !exists(busy) {
		t.Errorf("the locked abandoned schema %s was dropped", busy)
	}
	for _, drop := range []func(context.Context) error{dropLive, dropOther, dropThird} {
		if err := drop(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if name := current(other); exists(liveName) || exists(name) {
		t.Fatalf("%s or %s left after their drops", liveName, name)
	}
}
