package sqlstore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/sqlite"
)

// emailLookups are AccountEmailAt's queries, each with the index of
// migration 00011 that must serve it, whatever the number of accounts:
// the token endpoint asks one for every delegated token it has not cached.
var emailLookups = []struct{ query, index string }{
	{"accountEmailIs", "accounts_email_lower"},
	{"accountEmailAt", "accounts_email_domain"},
}

// TestEmailLookupPlansSQLite: SQLite searches AccountEmailAt's indexes,
// scanning no table (EXPLAIN QUERY PLAN).
func TestEmailLookupPlansSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyward.db")
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, l := range emailLookups {
		plan := explain(t, db, "EXPLAIN QUERY PLAN "+s.Query(l.query), 3)
		if !strings.Contains(plan, l.index) || strings.Contains(plan, "SCAN") {
			t.Errorf("%s's plan:\n%s\nwant a search of the index %s and no scan", l.query, plan, l.index)
		}
	}
}

// TestEmailLookupPlansPostgres: PostgreSQL can serve AccountEmailAt's
// queries from their indexes (with sequential scans turned off: over a
// table this small one is cheaper).
func TestEmailLookupPlansPostgres(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.SchemaDSN(t)
	s, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db, err := sql.Open("pgx", dsn+"&options=-c%20enable_seqscan%3Doff")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, l := range emailLookups {
		plan := explain(t, db, "EXPLAIN "+s.Query(l.query), 0)
		if !strings.Contains(plan, l.index) || strings.Contains(plan, "Seq Scan") {
			t.Errorf("%s's plan:\n%s\nwant a scan of the index %s and no sequential scan", l.query, plan, l.index)
		}
	}
}

// explain runs q, an EXPLAIN, with two emails or domains as its
// arguments, and returns its rows' column col, a line each.
func explain(t *testing.T, db *sql.DB, q string, col int) string {
	t.Helper()
	rows, err := db.Query(q, "job@proj.example", "job@proj.example.")
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var plan strings.Builder
	for rows.Next() {
		vals := make([]any, len(cols))
		for i := range vals {
			vals[i] = new(sql.RawBytes)
		}
		if err := rows.Scan(vals...); err != nil {
			t.Fatal(err)
		}
		plan.Write(*vals[col].(*sql.RawBytes))
		plan.WriteByte('\n')
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return plan.String()
}
