package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// TestOpenMissingSchema: a search_path none of whose schemas exists is
// refused naming it, however the store is opened, not with goose's
// "relation goose_db_version does not exist" (another schema of the
// database has one) or "no schema has been selected to create in".
func TestOpenMissingSchema(t *testing.T) {
	missing := schemaOf(t, pgtest.SchemaDSN(t)) + "_none"
	dsn := withSetting(pgtest.SchemaDSN(t), "search_path", missing)
	for _, tt := range []struct {
		name string
		opts postgres.Options
	}{
		{"migrate", postgres.Options{}},
		{"no-migrate (export)", postgres.Options{NoMigrate: true}},
		{"new only (import)", postgres.Options{MigrateNewOnly: true}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st, err := postgres.Open(context.Background(), dsn, tt.opts)
			if err == nil {
				st.Close()
			}
			if err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "search_path") || strings.Contains(err.Error(), "goose_db_version") {
				t.Fatalf("Open = %v, want a refusal naming the search_path's schema %s", err, missing)
			}
		})
	}
}

// TestOpenNoMigrateWithoutSchema: opened without migrating (export and
// the other maintenance commands, serve --no-migrate), a database with
// no Keyward schema (a mistyped name or search_path) is refused as
// such, not as a schema to migrate, and left as it was: goose's version
// table is not created in it. One goose gave only its version table (as
// those releases' export did) is refused the same way.
func TestOpenNoMigrateWithoutSchema(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup []string
	}{
		{"empty", nil},
		{"goose's version table only", []string{
			`CREATE TABLE goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, is_applied boolean NOT NULL, tstamp timestamp DEFAULT now())`,
			`INSERT INTO goose_db_version (version_id, is_applied) VALUES (0, true)`,
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dsn := pgtest.SchemaDSN(t)
			execOn(dsn)(t, tt.setup...)
			st, err := postgres.Open(context.Background(), dsn, postgres.Options{NoMigrate: true})
			if err == nil {
				st.Close()
			}
			if err == nil || !strings.Contains(err.Error(), "no Keyward schema") || strings.Contains(err.Error(), "keyward migrate") {
				t.Fatalf("Open = %v, want a refusal saying the database has no Keyward schema", err)
			}
			db, err := sql.Open("pgx", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			var tables int
			if err := db.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables); err != nil {
				t.Fatal(err)
			}
			if want := len(tt.setup) / 2; tables != want {
				t.Fatalf("the schema has %d tables after Open, want %d: it was written to", tables, want)
			}
		})
	}
}

// TestOpenNoMigrateMistypedDatabase: export --db naming a database that
// exists but holds no store (a mistyped name) says so, naming the
// database, and writes nothing to it.
func TestOpenNoMigrateMistypedDatabase(t *testing.T) {
	pgtest.SchemaDSN(t) // skips without the environment's DSN
	u, err := url.Parse(os.Getenv(pgtest.DSNEnv))
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skipf("%s is not a postgres:// URL", pgtest.DSNEnv)
	}
	admin, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	name := "kwtest_db_" + strings.ToLower(rand.Text()[:12])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Skipf("cannot create a database: %v", err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE " + name + " WITH (FORCE)"); err != nil {
			t.Logf("dropping the test's database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	st, err := postgres.Open(context.Background(), u.String(), postgres.Options{NoMigrate: true})
	if err == nil {
		st.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "no Keyward schema") || !strings.Contains(err.Error(), name) {
		t.Fatalf("Open = %v, want a refusal saying database %s has no Keyward schema", err, name)
	}
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var tables int
	if err := db.QueryRow(`SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 0 {
		t.Fatalf("the database has %d tables after Open, want none: it was written to", tables)
	}
}

// schemaOf is the schema of dsn's search_path.
func schemaOf(t *testing.T, dsn string) string {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var s string
	if err := db.QueryRow(`SELECT current_schema()`).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}
