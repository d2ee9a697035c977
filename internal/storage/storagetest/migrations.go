package storagetest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// Migration tests take open, which opens the store (migrating it), and
// exec, which runs statements on the closed store's database directly.

// Exec is the exec of a backend's migration tests: it runs statements
// directly on the database that driver opens at dsn, failing t with the
// statement that fails.
func Exec(driver, dsn string) func(t *testing.T, queries ...string) {
	return func(t *testing.T, queries ...string) {
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for _, q := range queries {
			if _, err := db.Exec(q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
}

// ScopeIndexSince is the schema version that indexes the scopes of
// accounts and grants (account_scopes, delegation_grant_scopes).
const ScopeIndexSince = 8

// CertRevocationSince is the schema version that adds the accounts'
// cert_tokens_revoked_before.
const CertRevocationSince = 10

// EmailIndexSince is the schema version that indexes the accounts'
// emails in lower case, whole and by their domains (AccountEmailAt).
const EmailIndexSince = 11

// undoSchema undoes the schema migrations that came after the data
// migrations the tests here take back, newest first: unmigrate forgets
// them too, and they run again on the next open.
var undoSchema = []struct {
	version int
	query   string
}{
	{EmailIndexSince, "DROP INDEX accounts_email_domain"},
	{EmailIndexSince, "DROP INDEX accounts_email_lower"},
	{CertRevocationSince, "ALTER TABLE accounts DROP COLUMN cert_tokens_revoked_before"},
}

// UndoAfter undoes the schema migrations after version (see undoSchema),
// newest first, for a test that takes version back with its own
// statements and forgets it and every later one: they run again on the
// next open.
func UndoAfter(t *testing.T, exec func(t *testing.T, queries ...string), version int) {
	for _, u := range undoSchema {
		if u.version > version {
			exec(t, u.query)
		}
	}
}

// unmigrate takes a store's schema back to the version before version,
// dropping tables it created. The migrations after version are forgotten
// too and run again on the next open: a data migration must be safe to
// repeat, and a later schema migration is undone first (undoSchema).
func unmigrate(t *testing.T, exec func(t *testing.T, queries ...string), version int, drop ...string) {
	for _, u := range undoSchema {
		if u.version >= version {
			exec(t, u.query)
		}
	}
	for _, table := range drop {
		exec(t, "DROP TABLE "+table)
	}
	exec(t, fmt.Sprintf(`DELETE FROM goose_db_version WHERE version_id >= %d`, version))
}

// ScopeIndexBackfill checks that migrating a store to ScopeIndexSince
// indexes the scopes accounts and grants already hold.
func ScopeIndexBackfill(t *testing.T, open func(t *testing.T) storage.Storage, exec func(t *testing.T, queries ...string)) {
	ctx := context.Background()
	s := open(t)
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read", "orders.<all>"}, CreatedAt: t0}, ev("api.create")))
	admin, reader := holder(1, false, adminScope), holder(2, false, "x", "orders.<all>", "orders.read")
	for _, a := range []storage.Account{admin, reader, holder(3, false, "orders.readonly")} {
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	}
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))
	mustNil(t, errOf(s.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: admin.ID, Scopes: []string{"orders.read"}, CreatedAt: t0}, ev("delegation.grant"))))
	mustNil(t, s.Close())
	unmigrate(t, exec, ScopeIndexSince, "delegation_grant_scopes", "account_scopes")

	s = open(t)
	defer s.Close()
	err := s.DeleteAPI(ctx, "orders", nil, ev("api.delete"))
	held, ok := errors.AsType[*storage.ScopesHeldError](err)
	if !ok || held.Total != 2 || len(held.Holders) != 2 || held.Holders[0].AccountID != reader.ID ||
		!slices.Equal(held.Holders[0].Scopes, []string{"orders.read", "orders.<all>"}) || held.Holders[1].ClientID != admin.ID {
		t.Fatalf("DeleteAPI after the migration = %v (%+v), want the reader and the grant as holders", err, held)
	}
	_, err = s.UpdateAccount(ctx, admin.ID, setDisabled(true), ev("account.disable"), storage.Guard{KeepHeld: adminScope})
	wantErr(t, err, storage.ErrLastHolder)
	verifyAll(t, s)
}

// DanglingSince is the schema version that drops the delegation grants
// and API introspector entries of accounts deleted before DeleteAccount
// removed them.
const DanglingSince = 9

// DanglingCleanup checks that migrating a store to DanglingSince drops the
// grants and introspector entries naming no account, and nothing else.
func DanglingCleanup(t *testing.T, open func(t *testing.T) storage.Storage, exec func(t *testing.T, queries ...string)) {
	ctx := context.Background()
	s := open(t)
	kept, gone := holder(1, false, "orders.read"), holder(2, false)
	for _, name := range []string{"orders", "stock", "mail"} {
		mustNil(t, s.CreateAPI(ctx, storage.API{Name: name, Identifier: "https://" + name, Scopes: []string{name + ".read"}, CreatedAt: t0}, ev("api.create")))
	}
	mustNil(t, s.CreateAccount(ctx, kept, ev("account.create")))
	_, err := s.UpdateAPI(ctx, "mail", func(a storage.API) (storage.API, error) { a.Introspectors = []string{kept.ID}; return a, nil }, ev("api.update"))
	mustNil(t, err)
	for _, org := range []string{"example.com", "other.org"} {
		mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: org, CreatedAt: t0}, ev("org.create")))
		mustNil(t, errOf(s.PutGrant(ctx, storage.Grant{Org: org, ClientID: kept.ID, Scopes: []string{"mail.read"}, CreatedAt: t0}, ev("delegation.grant"))))
	}
	mustNil(t, s.Close())
	// What deleting an account left behind before it removed its grants
	// and introspector entries.
	exec(t,
		`INSERT INTO delegation_grants (org, client_id, scopes, created_at) VALUES ('example.com', '`+gone.ID+`', '["stock.read"]', 1)`,
		`INSERT INTO delegation_grant_scopes (scope, org, client_id) VALUES ('stock.read', 'example.com', '`+gone.ID+`')`,
		`UPDATE apis SET introspectors = '["`+gone.ID+`","`+kept.ID+`"]' WHERE name = 'orders'`,
		`UPDATE apis SET introspectors = '["`+gone.ID+`"]' WHERE name = 'stock'`)
	unmigrate(t, exec, DanglingSince)

	s = open(t)
	defer s.Close()
	for name, want := range map[string][]string{"orders": {kept.ID}, "stock": {}, "mail": {kept.ID}} {
		a, err := s.GetAPI(ctx, name)
		mustNil(t, err)
		if !slices.Equal(a.Introspectors, want) {
			t.Errorf("introspectors of %s after the migration = %q, want %q", name, a.Introspectors, want)
		}
	}
	_, err = s.GetGrant(ctx, "example.com", gone.ID)
	wantErr(t, err, storage.ErrNotFound)
	for _, org := range []string{"example.com", "other.org"} {
		if g, err := s.ListGrants(ctx, org); err != nil || len(g) != 1 || g[0].ClientID != kept.ID {
			t.Errorf("grants of %s after the migration = %+v, %v; want only %s's", org, g, err, kept.ID)
		}
	}
	mustNil(t, s.DeleteAPI(ctx, "stock", nil, ev("api.delete"))) // the left-over grant held stock.read
	verifyAll(t, s)
}

// MigrateNewOnly checks a backend's MigrateNewOnly option (keyward
// import's): it migrates a database without a schema and opens a current
// one, but refuses an older schema and leaves it as it is, since a
// release still running may be serving from it. open opens the store of
// one database with the backend's NoMigrate and MigrateNewOnly options.
func MigrateNewOnly(t *testing.T, open func(t *testing.T, noMigrate, newOnly bool) (storage.Storage, error), exec func(t *testing.T, queries ...string)) {
	ctx := context.Background()
	for _, what := range []string{"a database without a schema", "a current one"} {
		s, err := open(t, false, true)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		_, err = s.CountAccounts(ctx)
		mustNil(t, err)
		mustNil(t, s.Close())
	}
	s, err := open(t, true, false)
	if err != nil {
		t.Fatalf("the new database's schema is not current: %v", err)
	}
	mustNil(t, s.Close())

	// The last migration forgotten: an older schema.
	exec(t, `DELETE FROM goose_db_version WHERE version_id = (SELECT MAX(version_id) FROM goose_db_version)`)
	for _, o := range []struct {
		what               string
		noMigrate, newOnly bool
	}{
		{"MigrateNewOnly", false, true},
		// Still refused without migrating: MigrateNewOnly left it older.
		{"NoMigrate, after MigrateNewOnly", true, false},
	} {
		s, err := open(t, o.noMigrate, o.newOnly)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "not up to date") {
			t.Fatalf("%s on an older schema: %v, want a refusal", o.what, err)
		}
	}
}

// CertRevocationDown checks that taking migration CertRevocationSince
// back (its Down statements, down) keeps the certificate tokens an
// account revoked revoked: an earlier release reads tokens_revoked_before
// alone, and must not find them active again. It folds the later of the
// two times into tokens_revoked_before (what a binding change set in
// that release), and a store opened again after it (migrating up)
// has it there.
func CertRevocationDown(t *testing.T, open func(t *testing.T) storage.Storage, exec func(t *testing.T, queries ...string), down []string) {
	ctx := context.Background()
	all, cert := t0.Add(time.Minute), t0.Add(2*time.Minute)
	accounts := []struct {
		a        storage.Account
		wantAll  time.Time
		wantNote string
	}{
		{holder(1, false), time.Time{}, "neither revoked"},
		{holder(2, false), cert, "certificate tokens revoked"},
		{holder(3, false), cert, "all revoked, then the certificate tokens"},
		{holder(4, false), cert.Add(time.Minute), "the certificate tokens revoked, then all"},
	}
	accounts[1].a.CertTokensRevokedBefore = cert
	accounts[2].a.TokensRevokedBefore, accounts[2].a.CertTokensRevokedBefore = all, cert
	accounts[3].a.TokensRevokedBefore, accounts[3].a.CertTokensRevokedBefore = cert.Add(time.Minute), cert
	s := open(t)
	for _, a := range accounts {
		mustNil(t, s.CreateAccount(ctx, a.a, ev("account.create")))
	}
	mustNil(t, s.Close())
	UndoAfter(t, exec, CertRevocationSince)
	exec(t, down...)
	exec(t, fmt.Sprintf(`DELETE FROM goose_db_version WHERE version_id >= %d`, CertRevocationSince))

	s = open(t)
	defer s.Close()
	for _, a := range accounts {
		got, err := s.GetAccount(ctx, a.a.ID)
		mustNil(t, err)
		if !got.TokensRevokedBefore.Equal(a.wantAll) || !got.CertTokensRevokedBefore.IsZero() {
			t.Errorf("%s: after the migration back and up, tokens revoked before %v, certificate tokens before %v; want %v and none",
				a.wantNote, got.TokensRevokedBefore, got.CertTokensRevokedBefore, a.wantAll)
		}
	}
}

// DownStatements returns the statements of a goose migration file's Down
// section, one a line ending in ';' after the comments.
func DownStatements(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, down, ok := strings.Cut(string(b), "-- +goose Down")
	if !ok {
		t.Fatalf("%s has no Down section", path)
	}
	var stmts []string
	for _, line := range strings.Split(down, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "--") {
			stmts = append(stmts, line)
		}
	}
	return stmts
}

// EmailIndexDown checks that migration EmailIndexSince's Down statements,
// down (what Upgrading tells an operator to run to go back to an earlier
// build), take it back whole: the store migrates up again, and finds an
// imported account's email in other capitals.
func EmailIndexDown(t *testing.T, open func(t *testing.T) storage.Storage, exec func(t *testing.T, queries ...string), down []string) {
	ctx := context.Background()
	a := holder(1, false)
	a.Email = "Imported@Elsewhere.Example"
	s := open(t)
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	mustNil(t, s.Close())
	exec(t, down...)
	exec(t, fmt.Sprintf(`DELETE FROM goose_db_version WHERE version_id >= %d`, EmailIndexSince))

	s = open(t)
	defer s.Close()
	for _, local := range []string{"imported", ""} {
		if got, err := s.AccountEmailAt(ctx, local, "elsewhere.example"); err != nil || !got {
			t.Errorf("AccountEmailAt(%q, elsewhere.example) after the migration back and up = %v, %v; want true", local, got, err)
		}
	}
}
