package transfer_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/transfer"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func fill(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read"}, TokenFormat: "opaque", Introspectors: []string{"2"}, CreatedAt: t0}, ev))
	for _, id := range []string{"1", "2"} {
		must(s.CreateAccount(ctx, storage.Account{ID: id, Email: id + "@p.example", Name: "n" + id, Project: "p", Scopes: []string{"orders.read"},
			TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods, TLS: storage.TLSBinding{SANDNS: id + ".example"}, CreatedAt: t0, UpdatedAt: t0}, ev))
		must(s.CreateKey(ctx, storage.Key{ID: "k" + id, AccountID: id, Algorithm: "RS256", PublicKey: []byte{1, 2}, Origin: "generated", CreatedAt: t0}, ev))
		must(s.CreateSecret(ctx, storage.Secret{ID: "s" + id, AccountID: id, Hash: []byte{3}, Hint: "kw_…x", CreatedAt: t0}, ev))
	}
	must(s.CreateOrg(ctx, storage.Org{Domain: "example.com", BlockedScopes: []string{"x"}, CreatedAt: t0}, ev))
	must(s.PutUsers(ctx, []storage.User{{Email: "a@example.com", Org: "example.com", CreatedAt: t0}, {Email: "b@example.com", Org: "example.com", Suspended: true, CreatedAt: t0}}, ev))
	must(s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "p", Org: "example.com", Internal: true}, ev))
	_, err := s.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: "1", Scopes: []string{"orders.read"}, CreatedAt: t0}, ev)
	must(err)
	_, err = s.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{{ID: "sk", Algorithm: "ES256", Sealed: []byte{9}, CreatedAt: t0, ActivatedAt: t0}}, nil
	}, ev)
	must(err)
	must(s.CreateSealedValue(ctx, storage.SealedValue{Name: "client-secret-pepper", Sealed: []byte{7, 7}, CreatedAt: t0}, ev))
}

// TestSQLiteToPostgres moves a store across backends through JSON and back.
func TestSQLiteToPostgres(t *testing.T) {
	ctx := context.Background()
	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src)
	dump, err := transfer.Export(ctx, src, t0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(dump)
	if err != nil {
		t.Fatal(err)
	}
	var back transfer.Dump
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}

	targets := map[string]func(t *testing.T) storage.Storage{
		"sqlite": func(t *testing.T) storage.Storage {
			s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		"postgres": func(t *testing.T) storage.Storage {
			s, err := postgres.Open(ctx, pgtest.SchemaDSN(t), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	}
	for name, open := range targets {
		t.Run(name, func(t *testing.T) {
			dst := open(t)
			defer dst.Close()
			if err := transfer.Import(ctx, dst, back, t0); err != nil {
				t.Fatal(err)
			}
			again, err := transfer.Export(ctx, dst, t0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, dump) {
				t.Fatalf("round trip changed the store:\n got %+v\nwant %+v", again, dump)
			}
			if err := transfer.Import(ctx, dst, back, t0); !errors.Is(err, transfer.ErrNotEmpty) {
				t.Fatalf("second import: %v, want ErrNotEmpty", err)
			}
		})
	}
	if err := transfer.Import(ctx, nil, transfer.Dump{Format: "other"}, t0); err == nil {
		t.Fatal("accepted an unknown format")
	}

	// A target that already holds a different pepper would lose the
	// secrets: the import stops.
	dst, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "c.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	other := storage.SealedValue{Name: "client-secret-pepper", Sealed: []byte{1}, CreatedAt: t0}
	if err := dst.CreateSealedValue(ctx, other, storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	if err := transfer.Import(ctx, dst, back, t0); err == nil || !strings.Contains(err.Error(), "different") {
		t.Fatalf("import over another pepper: %v", err)
	}
}

// A dump with a delegation of Keyward's own scopes, which the admin API
// refuses to grant, is refused as a whole, naming each such grant, before
// anything is written.
func TestImportRefusesUndelegableGrants(t *testing.T) {
	ctx := context.Background()
	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src)
	dump, err := transfer.Export(ctx, src, t0)
	if err != nil {
		t.Fatal(err)
	}
	dump.Grants = append(dump.Grants,
		storage.Grant{Org: "example.com", ClientID: "2", Scopes: []string{"orders.read", "keyward.admin"}, CreatedAt: t0},
		storage.Grant{Org: "example.com", ClientID: "3", Scopes: []string{"keyward.introspect"}, CreatedAt: t0})
	dst, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	err = transfer.Import(ctx, dst, dump, t0)
	for _, want := range []string{"nothing was imported", "delegation of 2 in example.com carries keyward.admin", "delegation of 3 in example.com carries keyward.introspect"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("import: %v, want an error saying %q", err, want)
		}
	}
	if n, err := dst.CountAccounts(ctx); err != nil || n != 0 {
		t.Errorf("the refused import left %d accounts (%v)", n, err)
	}
	if apis, err := dst.ListAPIs(ctx); err != nil || len(apis) != 0 {
		t.Errorf("the refused import left APIs %v (%v)", apis, err)
	}
	if orgs, err := dst.ListOrgs(ctx); err != nil || len(orgs) != 0 {
		t.Errorf("the refused import left organizations %v (%v)", orgs, err)
	}
}

// A dump with a delegation grant whose client ID is not the ID of one of
// its service accounts (the target store has none) is refused as a whole,
// naming the grant, before anything is written.
func TestImportRefusesGrantsWithoutAccount(t *testing.T) {
	ctx := context.Background()
	src, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "a.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	fill(t, src)
	base, err := transfer.Export(ctx, src, t0)
	if err != nil {
		t.Fatal(err)
	}
	grant := func(clientID string) storage.Grant {
		return storage.Grant{Org: "example.com", ClientID: clientID, Scopes: []string{"orders.read"}, CreatedAt: t0}
	}
	for _, tc := range []struct {
		name  string
		edit  func(d *transfer.Dump)
		wants []string
	}{
		{"unknown client ID", func(d *transfer.Dump) { d.Grants = append(d.Grants, grant("3")) },
			[]string{"the delegation of 3 in example.com names no service account in the file"}},
		{"client email instead of ID", func(d *transfer.Dump) { d.Grants = append(d.Grants, grant("2@p.example")) },
			[]string{"the delegation of 2@p.example in example.com names no service account"}},
		{"account left out of the file", func(d *transfer.Dump) { d.Accounts = d.Accounts[1:] }, // account 1 holds the grant
			[]string{"the delegation of 1 in example.com names no service account"}},
		{"both kinds of problem", func(d *transfer.Dump) {
			g := grant("4")
			g.Scopes = append(g.Scopes, "keyward.admin")
			d.Grants = append(d.Grants, g)
		}, []string{"the delegation of 4 in example.com names no service account", "the delegation of 4 in example.com carries keyward.admin"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			d.Accounts = append([]storage.Account(nil), base.Accounts...)
			d.Grants = append([]storage.Grant(nil), base.Grants...)
			tc.edit(&d)
			dst, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer dst.Close()
			err = transfer.Import(ctx, dst, d, t0)
			for _, want := range append([]string{"nothing was imported"}, tc.wants...) {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("import: %v, want an error saying %q", err, want)
				}
			}
			if n, err := dst.CountAccounts(ctx); err != nil || n != 0 {
				t.Errorf("the refused import left %d accounts (%v)", n, err)
			}
			if apis, err := dst.ListAPIs(ctx); err != nil || len(apis) != 0 {
				t.Errorf("the refused import left APIs %v (%v)", apis, err)
			}
			if orgs, err := dst.ListOrgs(ctx); err != nil || len(orgs) != 0 {
				t.Errorf("the refused import left organizations %v (%v)", orgs, err)
			}
		})
	}
}
