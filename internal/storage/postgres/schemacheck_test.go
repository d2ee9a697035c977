package postgres_test

import (
	"context"
	"database/sql"
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
