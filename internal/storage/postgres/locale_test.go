package postgres_test

import (
	"context"
	"database/sql"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

// TestAccountEmailAtTurkishLocale: AccountEmailAt compares emails in ASCII
// lower case in a database whose locale is Turkish too, where lower()
// would turn a capital I into a dotless ı and miss IVAN@IST.example
// (storagetest's AccountEmailAt, in a database of its own, created with
// ICU's tr-TR collation and dropped at the end).
func TestAccountEmailAtTurkishLocale(t *testing.T) {
	dsn := os.Getenv(pgtest.DSNEnv)
	if dsn == "" {
		t.Skipf("%s is not set; skipping PostgreSQL tests", pgtest.DSNEnv)
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Skipf("%s is not a postgres:// URL; skipping the test, which must name another database", pgtest.DSNEnv)
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() }) // after the database is dropped
	var icu bool
	if err := admin.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM pg_collation WHERE collprovider = 'i' AND collname LIKE 'tr-%')").Scan(&icu); err != nil {
		t.Fatal(err)
	}
	if !icu {
		t.Skip("the PostgreSQL server has no ICU tr-TR collation (built without ICU?); skipping the Turkish-locale test")
	}
	name := "kwtest_tr_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" LOCALE_PROVIDER icu ICU_LOCALE 'tr-TR' TEMPLATE template0"); err != nil {
		if strings.Contains(err.Error(), "LOCALE_PROVIDER") || strings.Contains(err.Error(), "ICU") {
			t.Skipf("the PostgreSQL server cannot create an ICU tr-TR database: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("dropping the test's database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	s, err := postgres.Open(ctx, u.String(), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The locale lowers I to ı, as the test means it to.
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var lowered string
	if err := db.QueryRowContext(ctx, "SELECT lower('I')").Scan(&lowered); err != nil {
		t.Fatal(err)
	}
	if lowered != "ı" {
		t.Fatalf("lower('I') in the tr-TR database = %q, want the dotless ı", lowered)
	}
	storagetest.AccountEmailAt(t, s)
}
