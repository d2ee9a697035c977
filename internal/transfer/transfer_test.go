package transfer_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/big"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/storage/sqlstore"
	"github.com/keyward/keyward/internal/testkeys"
	"github.com/keyward/keyward/internal/transfer"
	"github.com/keyward/keyward/internal/validate"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// rsaSPKI is the public key of fill's keys: one an upload takes.
var rsaSPKI, _ = x509.MarshalPKIXPublicKey(testkeys.RSAPublic(2048))

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
		a := storage.Account{ID: id, Email: "svc" + id + "@pay.example", Name: "svc" + id, Project: "pay", Scopes: []string{"orders.read"},
			TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods, TLS: storage.TLSBinding{SANDNS: id + ".example"}, CreatedAt: t0, UpdatedAt: t0}
		if id == "1" { // its tokens revoked, and its certificate tokens later
			a.TokensRevokedBefore, a.CertTokensRevokedBefore = t0.Add(time.Minute), t0.Add(2*time.Minute)
		}
		must(s.CreateAccount(ctx, a, ev))
		must(s.CreateKey(ctx, storage.Key{ID: "k" + id, AccountID: id, Algorithm: "RS256", PublicKey: rsaSPKI, Origin: "generated", CreatedAt: t0}, nil, ev))
		must(s.CreateSecret(ctx, storage.Secret{ID: "s" + id, AccountID: id, Hash: bytes.Repeat([]byte{3}, 32), Hint: "kw_…x", CreatedAt: t0}, nil, ev))
	}
	must(s.CreateOrg(ctx, storage.Org{Domain: "example.com", BlockedScopes: []string{"x"}, CreatedAt: t0}, ev))
	must(s.PutUsers(ctx, []storage.User{{Email: "a@example.com", Org: "example.com", CreatedAt: t0}, {Email: "b@example.com", Org: "example.com", Suspended: true, CreatedAt: t0}}, storage.SameEvent(ev)))
	must(s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "pay", Org: "example.com", Internal: true}, nil, ev))
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
	dump := exported(t)
	if a := dump.Accounts[0]; !a.TokensRevokedBefore.Equal(t0.Add(time.Minute)) || !a.CertTokensRevokedBefore.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("exported %s with tokens revoked before %v and certificate tokens before %v, want %v and %v",
			a.ID, a.TokensRevokedBefore, a.CertTokensRevokedBefore, t0.Add(time.Minute), t0.Add(2*time.Minute))
	}
	b, err := json.Marshal(dump)
	if err != nil {
		t.Fatal(err)
	}
	var back transfer.Dump
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}

	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			dst := target.open(t)
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
	// A target that already holds a different pepper (a first start's):
	// TestImportOverFirstStart.
}

// A dump with a NUL character or bytes that are not UTF-8 in any text of
// an item is refused as a whole, on either backend, naming the item and
// its field, before anything is written. PostgreSQL's text holds
// neither: it failed mid-import with "the store refused it, though the
// file passed import's checks … report it"; SQLite imported it, at most
// with a warning, and its lookups of an email's domain (migration
// 00011's index) stopped at a NUL: an organization at that domain was
// not refused.
func TestImportRefusesTextTheStoreCannotHold(t *testing.T) {
	ctx := context.Background()
	base := exported(t)
	for _, tc := range []struct {
		name string
		edit func(d *transfer.Dump)
		want string
	}{
		{"account email", func(d *transfer.Dump) { d.Accounts[0].Email = "svc1\x00@nul.example" },
			`the service account "1": its email "svc1\x00@nul.example" holds a NUL character`},
		{"user email", func(d *transfer.Dump) { d.Users[0].Email = "a\x00@example.com" },
			`the user "a\x00@example.com": its email holds a NUL character`},
		{"API description", func(d *transfer.Dump) { d.APIs[0].Description = "a\x00b" },
			`the API "orders": its description "a\x00b" holds a NUL character`},
		{"API name", func(d *transfer.Dump) { d.APIs[0].Name = "ord\x00ers" },
			`the API "ord\x00ers": its name "ord\x00ers" holds a NUL character`},
		{"API identifier", func(d *transfer.Dump) { d.APIs[0].Identifier = "https://orders\x00" },
			`its identifier "https://orders\x00" holds a NUL character`},
		{"API scope", func(d *transfer.Dump) { d.APIs[0].Scopes = []string{"orders.read", "orders\x00.write"} },
			`the API "orders": its scope "orders\x00.write" holds a NUL character`},
		{"API token format", func(d *transfer.Dump) { d.APIs[0].TokenFormat = "opaque\x00" },
			`the API "orders": its token_format "opaque\x00" holds a NUL character`},
		{"API introspector", func(d *transfer.Dump) { d.APIs[0].Introspectors = []string{"2\x00"} },
			`the API "orders": its introspector "2\x00" holds a NUL character`},
		{"API description not UTF-8", func(d *transfer.Dump) { d.APIs[0].Description = "caf\xe9" },
			`the API "orders": its description "caf\xe9" is not UTF-8 text`},
		{"account display name", func(d *transfer.Dump) { d.Accounts[0].DisplayName = "Pay\x00" },
			`the service account "1": its display_name "Pay\x00" holds a NUL character`},
		{"account description", func(d *transfer.Dump) { d.Accounts[0].Description = "\xff" },
			`the service account "1": its description "\xff" is not UTF-8 text`},
		{"account name", func(d *transfer.Dump) { d.Accounts[0].Name = "svc\x001" },
			`the service account "1": its name "svc\x001" holds a NUL character`},
		{"account project", func(d *transfer.Dump) { d.Accounts[0].Project = "pay\x00" },
			`the service account "1": its project "pay\x00" holds a NUL character`},
		{"account scope", func(d *transfer.Dump) { d.Accounts[0].Scopes = []string{"orders.read\x00"} },
			`the service account "1": its scope "orders.read\x00" holds a NUL character`},
		{"account auth method", func(d *transfer.Dump) { d.Accounts[0].AuthMethods = []string{"client_secret_basic\x00"} },
			`the service account "1": its auth method "client_secret_basic\x00" holds a NUL character`},
		{"account TLS binding", func(d *transfer.Dump) { d.Accounts[0].TLS.SANDNS = "1.example\x00" },
			`the service account "1": its tls_client_auth_san_dns "1.example\x00" holds a NUL character`},
		{"account client ID", func(d *transfer.Dump) { d.Accounts[0].ID = "1\x00" },
			`the service account "1\x00": its client_id "1\x00" holds a NUL character`},
		{"account email not UTF-8", func(d *transfer.Dump) { d.Accounts[0].Email = "svc1@pay.example\xff" },
			`the service account "1": its email "svc1@pay.example\xff" is not UTF-8 text`},
		{"key ID", func(d *transfer.Dump) { d.Keys[0].ID = "k\x001" },
			`the key "k\x001": its key_id "k\x001" holds a NUL character`},
		{"secret hint", func(d *transfer.Dump) { d.Secrets[0].Hint = "kw_\x00" },
			`the secret "s1": its hint "kw_\x00" holds a NUL character`},
		{"signing key ID", func(d *transfer.Dump) { d.SigningKeys[0].ID = "s\x00k" },
			`the signing key "s\x00k": its kid "s\x00k" holds a NUL character`},
		{"sealed value name", func(d *transfer.Dump) { d.SealedValues[0].Name = "pepper\x00" },
			`the sealed value "pepper\x00": its name "pepper\x00" holds a NUL character`},
		{"organization domain", func(d *transfer.Dump) { d.Orgs[0].Domain = "example.com\x00" },
			`the organization "example.com\x00": its domain "example.com\x00" holds a NUL character`},
		{"organization blocked scope", func(d *transfer.Dump) { d.Orgs[0].BlockedScopes = []string{"x\x00"} },
			`the organization "example.com": its blocked scope "x\x00" holds a NUL character`},
		{"user email not UTF-8", func(d *transfer.Dump) { d.Users[0].Email = "a@example.com\xff" },
			`the user "a@example.com\xff": its email is not UTF-8 text`},
		{"project", func(d *transfer.Dump) { d.Projects[0].Project = "pay\x00" },
			`the project "pay\x00": its name "pay\x00" holds a NUL character`},
		{"grant scope", func(d *transfer.Dump) { d.Grants[0].Scopes = []string{"orders.read\x00"} },
			`the delegation of "1" in "example.com": its scope "orders.read\x00" holds a NUL character`},
		// The text fields with no case above.
		{"account TLS subject DN", func(d *transfer.Dump) { d.Accounts[0].TLS.SubjectDN = "CN=1\x00" },
			`the service account "1": its tls_client_auth_subject_dn "CN=1\x00" holds a NUL character`},
		{"account TLS SAN URI", func(d *transfer.Dump) { d.Accounts[0].TLS.SANURI = "https://1.example/\x00" },
			`the service account "1": its tls_client_auth_san_uri "https://1.example/\x00" holds a NUL character`},
		{"account TLS SAN IP", func(d *transfer.Dump) { d.Accounts[0].TLS.SANIP = "192.0.2.1\x00" },
			`the service account "1": its tls_client_auth_san_ip "192.0.2.1\x00" holds a NUL character`},
		{"account TLS SAN email", func(d *transfer.Dump) { d.Accounts[0].TLS.SANEmail = "a@1.example\xff" },
			`the service account "1": its tls_client_auth_san_email "a@1.example\xff" is not UTF-8 text`},
		{"account token format", func(d *transfer.Dump) { d.Accounts[0].TokenFormat = "jwt\x00" },
			`the service account "1": its token_format "jwt\x00" holds a NUL character`},
		{"key account ID", func(d *transfer.Dump) { d.Keys[0].AccountID = "1\x00" },
			`the key "k1": its account_id "1\x00" holds a NUL character`},
		{"key algorithm", func(d *transfer.Dump) { d.Keys[0].Algorithm = "RS256\x00" },
			`the key "k1": its algorithm "RS256\x00" holds a NUL character`},
		{"key origin", func(d *transfer.Dump) { d.Keys[0].Origin = "uploaded\xff" },
			`the key "k1": its origin "uploaded\xff" is not UTF-8 text`},
		{"secret ID", func(d *transfer.Dump) { d.Secrets[0].ID = "s\x001" },
			`the secret "s\x001": its secret_id "s\x001" holds a NUL character`},
		{"secret account ID", func(d *transfer.Dump) { d.Secrets[0].AccountID = "1\x00" },
			`the secret "s1": its account_id "1\x00" holds a NUL character`},
		{"signing key algorithm", func(d *transfer.Dump) { d.SigningKeys[0].Algorithm = "ES256\x00" },
			`the signing key "sk": its algorithm "ES256\x00" holds a NUL character`},
		{"user organization", func(d *transfer.Dump) { d.Users[0].Org = "example.com\x00" },
			`the user "a@example.com": its organization "example.com\x00" holds a NUL character`},
		{"project organization", func(d *transfer.Dump) { d.Projects[0].Org = "example.com\x00" },
			`the project "pay": its organization "example.com\x00" holds a NUL character`},
		{"grant client ID", func(d *transfer.Dump) { d.Grants[0].ClientID = "1\x00" },
			`the delegation of "1\x00" in "example.com": its client_id "1\x00" holds a NUL character`},
		{"grant organization", func(d *transfer.Dump) { d.Grants[0].Org = "example.com\xff" },
			`the delegation of "1" in "example.com\xff": its organization "example.com\xff" is not UTF-8 text`},
	} {
		for _, target := range targets {
			t.Run(tc.name+"/"+target.name, func(t *testing.T) {
				d := clone(base)
				tc.edit(&d)
				dst := target.open(t)
				wantRefused(t, dst, transfer.Import(ctx, dst, d, t0), tc.want, "the store could not hold it")
			})
		}
	}
}

// A key's or signing key's algorithm or origin with a NUL character or
// bytes that are not UTF-8 is one problem, said once: that the store
// could not hold it, not also that it is none of the algorithms or
// origins, which the same value's quoted text says again.
func TestImportTextTheStoreCannotHoldSaidOnce(t *testing.T) {
	ctx := context.Background()
	base := exported(t)
	for _, tc := range []struct {
		name  string
		edit  func(d *transfer.Dump)
		want  string
		field string
	}{
		{"key algorithm NUL", func(d *transfer.Dump) { d.Keys[0].Algorithm = "RS256\x00" },
			`the key "k1": its algorithm "RS256\x00" holds a NUL character`, "its algorithm"},
		{"key algorithm not UTF-8", func(d *transfer.Dump) { d.Keys[0].Algorithm = "RS256\xff" },
			`the key "k1": its algorithm "RS256\xff" is not UTF-8 text`, "its algorithm"},
		{"key origin NUL", func(d *transfer.Dump) { d.Keys[0].Origin = "uploaded\x00" },
			`the key "k1": its origin "uploaded\x00" holds a NUL character`, "its origin"},
		{"key origin not UTF-8", func(d *transfer.Dump) { d.Keys[0].Origin = "uploaded\xff" },
			`the key "k1": its origin "uploaded\xff" is not UTF-8 text`, "its origin"},
		{"signing key algorithm NUL", func(d *transfer.Dump) { d.SigningKeys[0].Algorithm = "ES256\x00" },
			`the signing key "sk": its algorithm "ES256\x00" holds a NUL character`, "its algorithm"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := clone(base)
			tc.edit(&d)
			dst := openSQLite(t)
			err := transfer.Import(ctx, dst, d, t0)
			wantRefused(t, dst, err, tc.want)
			if n := strings.Count(err.Error(), tc.field); n != 1 {
				t.Errorf("import: %v\nsays %q %d times, want once", err, tc.field, n)
			}
		})
	}
}

// A dump with a delegation of Keyward's own scopes, which the admin API
// refuses to grant, is refused as a whole, naming each such grant, before
// anything is written.
func TestImportRefusesUndelegableGrants(t *testing.T) {
	ctx := context.Background()
	dump := exported(t)
	dump.Grants = append(dump.Grants,
		storage.Grant{Org: "example.com", ClientID: "2", Scopes: []string{"orders.read", "keyward.admin"}, CreatedAt: t0},
		storage.Grant{Org: "example.com", ClientID: "3", Scopes: []string{"keyward.introspect"}, CreatedAt: t0})
	dst := openSQLite(t)
	wantRefused(t, dst, transfer.Import(ctx, dst, dump, t0),
		`delegation of "2" in "example.com" carries keyward.admin`, `delegation of "3" in "example.com" carries keyward.introspect`)
}

// A dump with a delegation grant whose client ID is not the ID of one of
// its service accounts (the target store has none) is refused as a whole,
// naming the grant, before anything is written.
func TestImportRefusesGrantsWithoutAccount(t *testing.T) {
	ctx := context.Background()
	base := exported(t)
	grant := func(clientID string) storage.Grant {
		return storage.Grant{Org: "example.com", ClientID: clientID, Scopes: []string{"orders.read"}, CreatedAt: t0}
	}
	for _, tc := range []struct {
		name  string
		edit  func(d *transfer.Dump)
		wants []string
	}{
		{"unknown client ID", func(d *transfer.Dump) { d.Grants = append(d.Grants, grant("3")) },
			[]string{`the delegation of "3" in "example.com" names no service account in the file`}},
		{"client email instead of ID", func(d *transfer.Dump) { d.Grants = append(d.Grants, grant("svc2@pay.example")) },
			[]string{`the delegation of "svc2@pay.example" in "example.com" names no service account`}},
		{"account left out of the file", func(d *transfer.Dump) { d.Accounts = d.Accounts[1:] }, // account 1 holds the grant
			[]string{`the delegation of "1" in "example.com" names no service account`}},
		{"organization left out of the file", func(d *transfer.Dump) {
			g := grant("1")
			g.Org = "elsewhere.example"
			d.Grants = append(d.Grants, g)
		}, []string{`the delegation of "1" in "elsewhere.example" is in no organization in the file`}},
		{"both kinds of problem", func(d *transfer.Dump) {
			g := grant("4")
			g.Scopes = append(g.Scopes, "keyward.admin")
			d.Grants = append(d.Grants, g)
		}, []string{`the delegation of "4" in "example.com" names no service account`, `the delegation of "4" in "example.com" carries keyward.admin`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			d.Accounts = append([]storage.Account(nil), base.Accounts...)
			d.Grants = append([]storage.Grant(nil), base.Grants...)
			tc.edit(&d)
			dst := openSQLite(t)
			wantRefused(t, dst, transfer.Import(ctx, dst, d, t0), tc.wants...)
		})
	}
}

// targets open an empty store of each backend; PostgreSQL's is skipped
// without KEYWARD_TEST_POSTGRES_DSN.
// accountDomain is the --account-domain the tests' warnings are for.
const accountDomain = "iam.example.com"

var targets = []struct {
	name string
	open func(t *testing.T) *sqlstore.Store
}{
	{"sqlite", openSQLite},
	{"postgres", func(t *testing.T) *sqlstore.Store {
		s, err := postgres.Open(context.Background(), pgtest.SchemaDSN(t), postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}},
}

// openSQLite opens an empty SQLite store until the test ends.
func openSQLite(t *testing.T) *sqlstore.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exported is the dump of a filled store, each slice its own copy.
func exported(t *testing.T) transfer.Dump {
	t.Helper()
	src := openSQLite(t)
	fill(t, src)
	d, err := transfer.Export(context.Background(), src, t0)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// wantRefused fails unless err says that nothing was imported, and each
// of wants, and the import left nothing in s.
func wantRefused(t *testing.T, s storage.Storage, err error, wants ...string) {
	t.Helper()
	for _, want := range append([]string{"nothing was imported"}, wants...) {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("import: %v, want an error saying %q", err, want)
		}
	}
	wantEmpty(t, s)
}

// wantEmpty fails unless the import left nothing in s: no account, API,
// organization, key, signing key or audit event.
func wantEmpty(t *testing.T, s storage.Storage) {
	t.Helper()
	ctx := context.Background()
	n, err := s.CountAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	apis, err := s.ListAPIs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := s.ListOrgs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	signing, err := s.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.ListAuditEvents(ctx, storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	_, kerr := s.GetKey(ctx, "k1")
	if n != 0 || len(apis) != 0 || len(orgs) != 0 || len(signing) != 0 || len(events) != 0 || kerr == nil {
		t.Fatalf("the refused import left %d accounts, APIs %v, organizations %v, signing keys %v, %d audit events, key k1 (err %v)",
			n, apis, orgs, signing, len(events), kerr)
	}
}

// A file with an item naming an account or an organization it does not
// hold is refused before anything is written, naming every such item;
// before, the items ahead of it stayed written and the next import
// refused the store as not empty.
func TestImportRefusesDanglingReferences(t *testing.T) {
	base := exported(t)
	for _, tc := range []struct {
		name  string
		edit  func(d *transfer.Dump)
		wants []string
	}{
		{"key of no account", func(d *transfer.Dump) {
			d.Keys = append(d.Keys, storage.Key{ID: "k9", AccountID: "9", Algorithm: "RS256", PublicKey: []byte{1}, Origin: "uploaded", CreatedAt: t0})
		}, []string{`the key "k9" is of "9", no service account in the file`}},
		{"secret of no account", func(d *transfer.Dump) {
			d.Secrets = append(d.Secrets, storage.Secret{ID: "s9", AccountID: "9", Hash: []byte{1}, CreatedAt: t0})
		}, []string{`the secret "s9" is of "9", no service account in the file`}},
		{"user of no organization", func(d *transfer.Dump) {
			d.Users = append(d.Users, storage.User{Email: "c@other.example", Org: "other.example", CreatedAt: t0})
		}, []string{`the user "c@other.example" is in "other.example", no organization in the file`}},
		{"project of no organization", func(d *transfer.Dump) {
			d.Projects = append(d.Projects, storage.ProjectOrg{Project: "q", Org: "other.example"})
		}, []string{`the project "q" is placed in "other.example", no organization in the file`}},
		{"grant of no organization", func(d *transfer.Dump) {
			d.Grants = append(d.Grants, storage.Grant{Org: "other.example", ClientID: "2", Scopes: []string{"orders.read"}, CreatedAt: t0})
		}, []string{`the delegation of "2" in "other.example" is in no organization in the file`}},
		{"introspector of no account", func(d *transfer.Dump) { d.APIs[0].Introspectors = []string{"2", "9"} },
			[]string{`the introspector "9" of API "orders" is no service account in the file`}},
		{"account left out", func(d *transfer.Dump) { d.Accounts = d.Accounts[:1] }, []string{ // account 2 introspects; k2, s2 are its
			`the introspector "2" of API "orders" is no service account`, `the key "k2" is of "2",`, `the secret "s2" is of "2",`}},
		{"key of an account whose ID holds an escape", func(d *transfer.Dump) { d.Keys[0].AccountID = "\x1b[2J" + strings.Repeat("9", 100) },
			[]string{`the key "k1" is of "\x1b[2J999`, `"… (104 bytes), no service account in the file`}},
		{"organization left out", func(d *transfer.Dump) { d.Orgs = nil }, []string{
			`the user "a@example.com" is in "example.com",`, `the user "b@example.com" is in "example.com",`, `the project "pay" is placed in "example.com",`,
			`the delegation of "1" in "example.com" is in no organization`}},
	} {
		for _, target := range targets {
			t.Run(tc.name+"/"+target.name, func(t *testing.T) {
				d := base
				d.APIs = slices.Clone(base.APIs)
				d.Accounts, d.Keys, d.Secrets = slices.Clone(base.Accounts), slices.Clone(base.Keys), slices.Clone(base.Secrets)
				d.Users, d.Projects, d.Grants = slices.Clone(base.Users), slices.Clone(base.Projects), slices.Clone(base.Grants)
				tc.edit(&d)
				dst := target.open(t)
				wantRefused(t, dst, transfer.Import(context.Background(), dst, d, t0), tc.wants...)
			})
		}
	}
}

// A file with an item the admin API cannot make, an account, key,
// secret, organization or user without its identifier, is refused before
// anything is written, naming every such item. Before, an account without
// a client ID (or a user without an email) was imported yet never listed
// nor exported, its keys and secrets with it, and the store, holding it,
// refused every later import as not empty (found by FuzzImport).
func TestImportRefusesItemsWithoutIdentifier(t *testing.T) {
	base := exported(t)
	for _, tc := range []struct {
		name  string
		edit  func(d *transfer.Dump)
		wants []string
	}{
		{"account without client ID", func(d *transfer.Dump) {
			d.Accounts = append(d.Accounts, storage.Account{Email: "svcx@pay.example", Name: "svcx", Project: "pay", CreatedAt: t0, UpdatedAt: t0})
		}, []string{`the service account "svcx@pay.example" has no client_id`}},
		{"account without email", func(d *transfer.Dump) {
			d.Accounts = append(d.Accounts, storage.Account{ID: "9", Name: "svcx", Project: "pay", CreatedAt: t0, UpdatedAt: t0})
		}, []string{`the service account "9" has no email`}},
		{"key without ID", func(d *transfer.Dump) {
			d.Keys = append(d.Keys, storage.Key{AccountID: "1", Algorithm: "RS256", PublicKey: []byte{1}, Origin: "uploaded", CreatedAt: t0})
		}, []string{`a key of "1" has no key_id`}},
		{"secret without ID", func(d *transfer.Dump) {
			d.Secrets = append(d.Secrets, storage.Secret{AccountID: "2", Hash: []byte{1}, CreatedAt: t0})
		}, []string{`a secret of "2" has no secret_id`}},
		{"organization without domain", func(d *transfer.Dump) { d.Orgs = append(d.Orgs, storage.Org{CreatedAt: t0}) },
			[]string{"an organization has no domain"}},
		{"user without email", func(d *transfer.Dump) {
			d.Users = append(d.Users, storage.User{Org: "example.com", CreatedAt: t0})
		}, []string{`a user of "example.com" has no email`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			d.Accounts, d.Keys, d.Secrets = slices.Clone(base.Accounts), slices.Clone(base.Keys), slices.Clone(base.Secrets)
			d.Orgs, d.Users = slices.Clone(base.Orgs), slices.Clone(base.Users)
			tc.edit(&d)
			dst := targets[0].open(t)
			wantRefused(t, dst, transfer.Import(context.Background(), dst, d, t0), tc.wants...)
		})
	}
}

// A file with a service-account key that is an RSA key over 8192 bits,
// which the admin API refuses since verifying with it takes too long, is
// refused before anything is written, naming the key; one of 8192 bits
// imports. (The moduli are random odd numbers: only their size matters.)
func TestImportRefusesOversizedKeys(t *testing.T) {
	base := exported(t)
	spki := func(bits int) []byte {
		der, _ := x509.MarshalPKIXPublicKey(testkeys.RSAPublic(bits))
		return der
	}
	for _, tc := range []struct {
		name  string
		bits  int
		wants []string // nil: imported
	}{
		{"8192 bits", 8192, nil},
		{"8200 bits", 8200, []string{`the key "k9" of "1": the RSA key has 8200 bits, more than the 8192 Keyward accepts`, "remove these keys from the file"}},
		{"65536 bits", 65536, []string{`the key "k9" of "1": the RSA key has 65536 bits`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := base
			d.Keys = append(slices.Clone(base.Keys), storage.Key{ID: "k9", AccountID: "1", Algorithm: "RS256", PublicKey: spki(tc.bits), Origin: "uploaded", CreatedAt: t0})
			dst := targets[0].open(t)
			err := transfer.Import(context.Background(), dst, d, t0)
			if tc.wants == nil {
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				return
			}
			wantRefused(t, dst, err, tc.wants...)
		})
	}
}

// An item the store refuses, however late in the file, leaves the store
// as it was, audit log included, and the fixed file then imports: the
// import is one transaction. Before, the items ahead of it stayed written
// and every later import was refused as not empty.
func TestImportAllOrNothing(t *testing.T) {
	ctx := context.Background()
	base := exported(t)
	for _, tc := range []struct {
		name string
		edit func(d *transfer.Dump)
	}{
		{"a key twice", func(d *transfer.Dump) { d.Keys = append(d.Keys, d.Keys[0]) }},
		{"a secret twice", func(d *transfer.Dump) { d.Secrets = append(d.Secrets, d.Secrets[1]) }},
		{"an organization twice", func(d *transfer.Dump) { d.Orgs = append(d.Orgs, d.Orgs[0]) }},
		{"a signing key twice", func(d *transfer.Dump) { d.SigningKeys = append(d.SigningKeys, d.SigningKeys[0]) }},
	} {
		for _, target := range targets {
			t.Run(tc.name+"/"+target.name, func(t *testing.T) {
				d := base
				d.Keys, d.Secrets, d.Orgs, d.SigningKeys = slices.Clone(base.Keys), slices.Clone(base.Secrets), slices.Clone(base.Orgs), slices.Clone(base.SigningKeys)
				tc.edit(&d)
				dst := target.open(t)
				err := transfer.Import(ctx, dst, d, t0)
				if err == nil || !strings.Contains(err.Error(), "nothing was imported") {
					t.Fatalf("import: %v, want an error saying nothing was imported", err)
				}
				wantEmpty(t, dst)

				if err := transfer.Import(ctx, dst, base, t0); err != nil {
					t.Fatalf("import of the fixed file: %v", err)
				}
				again, err := transfer.Export(ctx, dst, t0)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(again, base) {
					t.Fatalf("the fixed file's import:\n got %+v\nwant %+v", again, base)
				}
				events, err := dst.ListAuditEvents(ctx, storage.AuditFilter{})
				if err != nil {
					t.Fatal(err)
				}
				var actions []string
				for _, e := range events {
					if e.Actor != "import" {
						t.Errorf("event %s by %q, want import", e.Action, e.Actor)
					}
					actions = append(actions, e.Action)
					// Most events share one Data until written: a key
					// added to one event's would be in all of theirs.
					keys := slices.Sorted(maps.Keys(e.Data))
					want := []string{"exported_at"}
					if e.Action == "user.import" || e.Action == "signing_key.import" {
						want = []string{"count", "exported_at"}
					}
					if !slices.Equal(keys, want) || e.Data["exported_at"] != events[0].Data["exported_at"] {
						t.Errorf("event %s: data %v, want keys %v and the exported_at of the others", e.Action, e.Data, want)
					}
				}
				want := []string{"api.import", "account.import", "account.import", "key.import", "key.import", "secret.import", "secret.import",
					"org.import", "user.import", "org.project_import", "delegation.import", "sealed_value.import", "signing_key.import"}
				if !slices.Equal(actions, want) {
					t.Errorf("audit events %v, want %v", actions, want)
				}
			})
		}
	}
}

// TestImportOverBuiltinAPI: the bare built-in API an interrupted first
// 'keyward serve' leaves becomes the file's version, introspectors and
// all, with an event saying what it was; the same API stays, unaudited.
func TestImportOverBuiltinAPI(t *testing.T) {
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	builtin := storage.API{Name: "keyward", Identifier: "urn:keyward:admin", Description: "Keyward's own admin API.",
		Scopes: []string{"keyward.admin", "keyward.introspect"}, CreatedAt: t0.Add(time.Hour)}
	src := openSQLite(t)
	fill(t, src)
	exported := builtin
	exported.Description, exported.TokenFormat, exported.Introspectors, exported.CreatedAt = "ours", storage.TokenOpaque, []string{"1"}, t0
	if err := src.CreateAPI(ctx, exported, ev); err != nil {
		t.Fatal(err)
	}
	dump, err := transfer.Export(ctx, src, t0)
	if err != nil {
		t.Fatal(err)
	}
	bare := openSQLite(t)
	same := openSQLite(t)
	for name, tc := range map[string]struct {
		dst      storage.Storage
		existing storage.API
		replaced []string // what the event says it was; none: no event
	}{
		"bare":      {bare, builtin, []string{`description "Keyward's own admin API."`, `token format "jwt"`, "introspectors []", "created at 2026-03-01T13:00:00Z"}},
		"identical": {same, exported, nil},
	} {
		t.Run(name, func(t *testing.T) {
			if err := tc.dst.CreateAPI(ctx, tc.existing, ev); err != nil {
				t.Fatal(err)
			}
			if err := transfer.Import(ctx, tc.dst, dump, t0); err != nil {
				t.Fatal(err)
			}
			again, err := transfer.Export(ctx, tc.dst, t0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(again, dump) {
				t.Fatalf("the import lost part of the file:\n got %+v\nwant %+v", again.APIs, dump.APIs)
			}
			events, err := tc.dst.ListAuditEvents(ctx, storage.AuditFilter{Action: "api.import"})
			if err != nil {
				t.Fatal(err)
			}
			var got string
			for _, e := range events {
				if e.Data["api"] == "keyward" {
					got = e.Data["replaced"]
				}
			}
			if (got == "") != (tc.replaced == nil) {
				t.Fatalf("api.import event of the built-in API says it replaced %q, want %q", got, tc.replaced)
			}
			for _, want := range tc.replaced {
				if !strings.Contains(got, want) {
					t.Errorf("api.import event says it replaced %q, want it to say %q", got, want)
				}
			}
		})
	}
}

// TestImportOverFirstStart: a first 'keyward serve' stopped before it
// made the administrator leaves the client-secret pepper and signing
// keys, sealed under its own master key (and the built-in API, which
// TestImportOverBuiltinAPI covers). The import makes them the file's, so
// that the server opens them with the master key of the exported store,
// and the sealed_value.import event says the pepper replaced one.
func TestImportOverFirstStart(t *testing.T) {
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	dump := exported(t)
	dst := openSQLite(t)
	if err := dst.CreateSealedValue(ctx, storage.SealedValue{Name: "client-secret-pepper", Sealed: []byte{1}, CreatedAt: t0.Add(time.Hour)}, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{{ID: "first", Algorithm: "ES256", Sealed: []byte{2}, CreatedAt: t0.Add(time.Hour), ActivatedAt: t0.Add(time.Hour)}}, nil
	}, ev); err != nil {
		t.Fatal(err)
	}
	if err := transfer.Import(ctx, dst, dump, t0); err != nil {
		t.Fatal(err)
	}
	again, err := transfer.Export(ctx, dst, t0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, dump) {
		t.Fatalf("the import did not make the store the file's:\n got %+v, %+v\nwant %+v, %+v", again.SealedValues, again.SigningKeys, dump.SealedValues, dump.SigningKeys)
	}
	events, err := dst.ListAuditEvents(ctx, storage.AuditFilter{Action: "sealed_value.import"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Data["name"] != "client-secret-pepper" || !strings.Contains(events[0].Data["replaced"], "2026-03-01T13:00:00Z") {
		t.Fatalf("sealed_value.import events %+v, want one naming the pepper and saying it replaced one created at 2026-03-01T13:00:00Z", events)
	}
}

// TestImportOneMasterKey: over the pepper and signing keys a first start
// sealed under its master key, a file that would replace only one of
// them (a pepper without signing keys) is refused, and the store
// left as it was: its values would be sealed under two master keys,
// which no one key opens.
func TestImportOneMasterKey(t *testing.T) {
	pepper := storage.SealedValue{Name: "client-secret-pepper", Sealed: []byte{1}, CreatedAt: t0.Add(time.Hour)}
	key := storage.SigningKey{ID: "first", Algorithm: "ES256", Sealed: []byte{2}, CreatedAt: t0.Add(time.Hour), ActivatedAt: t0.Add(time.Hour)}
	for _, tt := range []struct {
		name        string
		storePepper bool
		fileKeys    bool
		filePepper  bool
		want        string
	}{
		{"pepper without signing keys", true, false, true, "the file has a client-secret pepper but no signing keys, and the target store has the signing keys a server started on it sealed"},
		{"pepper without signing keys over signing keys alone", false, false, true, "the file has a client-secret pepper but no signing keys"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
			dump := exported(t)
			if !tt.fileKeys {
				dump.SigningKeys = nil
			}
			if !tt.filePepper {
				dump.SealedValues = nil
			}
			dst := openSQLite(t)
			if tt.storePepper {
				if err := dst.CreateSealedValue(ctx, pepper, ev); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := dst.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) {
				return []storage.SigningKey{key}, nil
			}, ev); err != nil {
				t.Fatal(err)
			}
			err := transfer.Import(ctx, dst, dump, t0)
			if err == nil || !strings.Contains(err.Error(), "nothing was imported: "+tt.want) || !strings.Contains(err.Error(), "import into a store no server has started on") {
				t.Fatalf("import: %v, want an error saying %q", err, tt.want)
			}
			if n, err := dst.CountAccounts(ctx); err != nil || n != 0 {
				t.Fatalf("the refused import left %d accounts (%v)", n, err)
			}
			if got, err := dst.GetSealedValue(ctx, pepper.Name); tt.storePepper && (err != nil || !bytes.Equal(got.Sealed, pepper.Sealed)) || !tt.storePepper && !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("the refused import left the pepper %+v, %v", got, err)
			}
			if keys, err := dst.ListSigningKeys(ctx); err != nil || len(keys) != 1 || keys[0].ID != key.ID {
				t.Fatalf("the refused import left the signing keys %+v, %v", keys, err)
			}
		})
	}
}

// sealedMeanwhile is a store on which a first start seals, once the
// import has read the store and before its Load, what seal seals: the
// import's reads of the pepper and signing keys are not Load's.
type sealedMeanwhile struct {
	storage.Storage
	seal func(context.Context, storage.Storage) error
}

func (s sealedMeanwhile) Load(ctx context.Context, b storage.Bulk, evs []storage.AuditEvent) error {
	if err := s.seal(ctx, s.Storage); err != nil {
		return err
	}
	return s.Storage.Load(ctx, b, evs)
}

// TestImportOneMasterKeySealedMeanwhile: a first start that seals its
// pepper or signing keys while an import runs, after the import read
// the store and before it loads, refuses the import as
// TestImportOneMasterKey's store does: the check is made in Load's
// transaction, and the store is left with the first start's values alone.
func TestImportOneMasterKeySealedMeanwhile(t *testing.T) {
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	pepper := storage.SealedValue{Name: "client-secret-pepper", Sealed: []byte{1}, CreatedAt: t0.Add(time.Hour)}
	key := storage.SigningKey{ID: "first", Algorithm: "ES256", Sealed: []byte{2}, CreatedAt: t0.Add(time.Hour), ActivatedAt: t0.Add(time.Hour)}
	sealPepper := func(ctx context.Context, s storage.Storage) error { return s.CreateSealedValue(ctx, pepper, ev) }
	sealKey := func(ctx context.Context, s storage.Storage) error {
		_, err := s.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) { return []storage.SigningKey{key}, nil }, ev)
		return err
	}
	for _, target := range targets {
		for _, tt := range []struct {
			name        string
			storePepper bool // sealed before the import reads the store
			fileKeys    bool
			filePepper  bool
			meanwhile   []func(context.Context, storage.Storage) error
			want        string
		}{
			{"pepper without signing keys", true, false, true, []func(context.Context, storage.Storage) error{sealKey}, "the file has a client-secret pepper but no signing keys"},
		} {
			t.Run(target.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				dump := exported(t)
				if !tt.fileKeys {
					dump.SigningKeys = nil
				}
				if !tt.filePepper {
					dump.SealedValues = nil
				}
				dst := target.open(t)
				if tt.storePepper {
					if err := sealPepper(ctx, dst); err != nil {
						t.Fatal(err)
					}
				}
				s := sealedMeanwhile{Storage: dst, seal: func(ctx context.Context, s storage.Storage) error {
					for _, f := range tt.meanwhile {
						if err := f(ctx, s); err != nil {
							return err
						}
					}
					return nil
				}}
				err := transfer.Import(ctx, s, dump, t0)
				if err == nil || !strings.Contains(err.Error(), "nothing was imported: "+tt.want) {
					t.Fatalf("import: %v, want an error saying %q", err, tt.want)
				}
				if got, err := dst.GetSealedValue(ctx, pepper.Name); err != nil || !bytes.Equal(got.Sealed, pepper.Sealed) {
					t.Fatalf("the refused import left the pepper %+v, %v", got, err)
				}
				if keys, err := dst.ListSigningKeys(ctx); err != nil || len(keys) != 1 || keys[0].ID != key.ID {
					t.Fatalf("the refused import left the signing keys %+v, %v", keys, err)
				}
			})
		}
	}
}

// TestImportOldExportOverFirstStart: a file from a release that exported
// no pepper (signing keys, secrets hashed with the pepper its server
// derived from the master key) imports over a stopped first start, which
// sealed a pepper and signing keys under its own master key, whether it
// did so before the import read the store or meanwhile: the start's
// pepper is removed in Load's transaction, so that the server started
// with the file's master key derives the file's pepper, and the
// signing keys become the file's. Before, the import was refused.
func TestImportOldExportOverFirstStart(t *testing.T) {
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	pepper := storage.SealedValue{Name: "client-secret-pepper", Sealed: []byte{1}, CreatedAt: t0.Add(time.Hour)}
	key := storage.SigningKey{ID: "first", Algorithm: "ES256", Sealed: []byte{2}, CreatedAt: t0.Add(time.Hour), ActivatedAt: t0.Add(time.Hour)}
	firstStart := func(ctx context.Context, s storage.Storage) error {
		if err := s.CreateSealedValue(ctx, pepper, ev); err != nil {
			return err
		}
		_, err := s.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) { return []storage.SigningKey{key}, nil }, ev)
		return err
	}
	for _, target := range targets {
		for _, meanwhile := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/meanwhile=%v", target.name, meanwhile), func(t *testing.T) {
				ctx := context.Background()
				dump := exported(t)
				dump.SealedValues = nil
				dst := target.open(t)
				var s storage.Storage = dst
				if meanwhile {
					// Once: the import, which then finds a pepper it did
					// not see, looks again and loads again.
					sealed := false
					s = sealedMeanwhile{Storage: dst, seal: func(ctx context.Context, s storage.Storage) error {
						if sealed {
							return nil
						}
						sealed = true
						return firstStart(ctx, s)
					}}
				} else if err := firstStart(ctx, dst); err != nil {
					t.Fatal(err)
				}
				if err := transfer.Import(ctx, s, dump, t0); err != nil {
					t.Fatalf("import of a file without a pepper over a first start: %v", err)
				}
				if got, err := dst.GetSealedValue(ctx, pepper.Name); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("the import left the first start's pepper %+v (%v); want none, for the server to derive the file's", got, err)
				}
				if keys, err := dst.ListSigningKeys(ctx); err != nil || !reflect.DeepEqual(keys, dump.SigningKeys) {
					t.Fatalf("signing keys after the import %+v (%v), want the file's %+v", keys, err, dump.SigningKeys)
				}
				if n, err := dst.CountAccounts(ctx); err != nil || n != len(dump.Accounts) {
					t.Fatalf("the import left %d accounts (%v), want %d", n, err, len(dump.Accounts))
				}
				events, err := dst.ListAuditEvents(ctx, storage.AuditFilter{Action: "sealed_value.import"})
				if err != nil {
					t.Fatal(err)
				}
				// Sealed meanwhile too: it was removed without an event.
				if len(events) != 1 || !strings.Contains(events[0].Data["removed"], "2026-03-01T13:00:00Z") {
					t.Fatalf("sealed_value.import events %+v, want one saying the pepper created at 2026-03-01T13:00:00Z was removed", events)
				}
			})
		}
	}
}

// TestImportOldExportNoKeysOverFirstStart: a file from a release that
// exported no pepper, with secrets but no signing keys, imported over a
// first start that sealed a pepper (before the import looked or
// meanwhile), which stays, is imported with a warning that its secrets
// work only if that start's master key was the exported store's (the
// pepper is derived from it). It passed silently. Without secrets, or
// into a store no server started on, there is no warning.
func TestImportOldExportNoKeysOverFirstStart(t *testing.T) {
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	pepper := storage.SealedValue{Name: "client-secret-pepper", Sealed: []byte{1}, CreatedAt: t0.Add(time.Hour)}
	sealPepper := func(ctx context.Context, s storage.Storage) error { return s.CreateSealedValue(ctx, pepper, ev) }
	for _, target := range targets {
		for _, tt := range []struct {
			name      string
			before    bool // the pepper sealed before the import looks
			meanwhile bool // after it looked, before Load
			secrets   bool
			warn      bool
		}{
			{"sealed before", true, false, true, true},
			{"sealed meanwhile", false, true, true, true},
			{"no secrets", true, false, false, false},
			{"new store", false, false, true, false},
		} {
			t.Run(target.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				dump := exported(t)
				dump.SealedValues, dump.SigningKeys = nil, nil
				if !tt.secrets {
					dump.Secrets = nil
				}
				if len(dump.Secrets) == 0 && tt.secrets {
					t.Fatal("the export has no secrets")
				}
				dst := target.open(t)
				var s storage.Storage = dst
				if tt.before {
					if err := sealPepper(ctx, dst); err != nil {
						t.Fatal(err)
					}
				}
				if tt.meanwhile {
					s = sealedMeanwhile{Storage: dst, seal: sealPepper}
				}
				warnings, err := transfer.ImportWarnings(ctx, s, dump, t0)
				if err != nil {
					t.Fatalf("import: %v", err)
				}
				const want = "the imported secrets work only if that key is the exported store's"
				if warned := len(warnings) == 1 && strings.Contains(warnings[0], want); warned != tt.warn || !tt.warn && len(warnings) > 0 {
					t.Fatalf("warnings %q, want a warning saying %q: %v", warnings, want, tt.warn)
				}
			})
		}
	}
}

// TestImportStoreChangedMeanwhile: an API or the pepper that a first
// start makes after the import looked at the store, and before Load, so
// that the import's choice to add it is stale, refuses the import saying
// that the store changed and to run it again (before, it was a WriteError
// saying an identifier was taken, as of a bad file), and the import run
// again succeeds.
func TestImportStoreChangedMeanwhile(t *testing.T) {
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	for _, target := range targets {
		for _, tt := range []struct {
			name string
			make func(context.Context, storage.Storage) error
			want string
		}{
			{"API", func(ctx context.Context, s storage.Storage) error {
				return s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders", CreatedAt: t0.Add(time.Hour)}, ev)
			}, "the API \"orders\", which it did not have, was created"},
			{"pepper", func(ctx context.Context, s storage.Storage) error {
				return s.CreateSealedValue(ctx, storage.SealedValue{Name: "client-secret-pepper", Sealed: []byte{1}, CreatedAt: t0.Add(time.Hour)}, ev)
			}, "the sealed value \"client-secret-pepper\", which it did not have, was created"},
		} {
			t.Run(target.name+"/"+tt.name, func(t *testing.T) {
				ctx := context.Background()
				dump := exported(t)
				dst := target.open(t)
				err := transfer.Import(ctx, sealedMeanwhile{Storage: dst, seal: tt.make}, dump, t0)
				for _, want := range []string{"nothing was imported: the target store changed while the import ran: " + tt.want, "run the import again"} {
					if err == nil || !strings.Contains(err.Error(), want) {
						t.Fatalf("import: %v, want an error saying %q", err, want)
					}
				}
				if _, ok := errors.AsType[*transfer.WriteError](err); ok {
					t.Fatalf("import: %v is a *WriteError, which speaks of the file's item, not of the store's change", err)
				}
				if err := transfer.Import(ctx, dst, dump, t0); err != nil {
					t.Fatalf("the import run again: %v", err)
				}
			})
		}
	}
}

// TestImportOverOtherSealedValue: of the sealed values a store without
// accounts has, only the client-secret pepper (a first start's) is
// replaced by the file's; another one the file has differently, which a
// later release may add and need kept, refuses the import, as every
// sealed value did before.
func TestImportOverOtherSealedValue(t *testing.T) {
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	dump := exported(t)
	dump.SealedValues = append(dump.SealedValues, storage.SealedValue{Name: "other", Sealed: []byte{2}, CreatedAt: t0})
	dst := openSQLite(t)
	have := storage.SealedValue{Name: "other", Sealed: []byte{1}, CreatedAt: t0.Add(time.Hour)}
	if err := dst.CreateSealedValue(ctx, have, ev); err != nil {
		t.Fatal(err)
	}
	err := transfer.Import(ctx, dst, dump, t0)
	if err == nil || !strings.Contains(err.Error(), "nothing was imported: sealed value other: the target store already has a different one") {
		t.Fatalf("import over another sealed value: %v, want it refused", err)
	}
	if got, err := dst.GetSealedValue(ctx, "other"); err != nil || !bytes.Equal(got.Sealed, have.Sealed) {
		t.Fatalf("the refused import left the sealed value %+v, %v; want %+v", got, err, have)
	}
	if n, err := dst.CountAccounts(ctx); err != nil || n != 0 {
		t.Fatalf("the refused import left %d accounts (%v)", n, err)
	}
}

// TestImportWithoutCertRevocation: a dump written before accounts had
// CertTokensRevokedBefore imports, the accounts without one, the rest as
// written.
func TestImportWithoutCertRevocation(t *testing.T) {
	ctx := context.Background()
	dump := exported(t)
	b, err := json.Marshal(dump)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	for _, a := range raw["accounts"].([]any) {
		delete(a.(map[string]any), "cert_tokens_revoked_before")
	}
	if b, err = json.Marshal(raw); err != nil {
		t.Fatal(err)
	}
	var old transfer.Dump
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	dst := openSQLite(t)
	if err := transfer.Import(ctx, dst, old, t0); err != nil {
		t.Fatal(err)
	}
	again, err := transfer.Export(ctx, dst, t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range dump.Accounts {
		dump.Accounts[i].CertTokensRevokedBefore = time.Time{}
	}
	if !reflect.DeepEqual(again, dump) {
		t.Fatalf("imported from an older dump:\n got %+v\nwant %+v", again.Accounts, dump.Accounts)
	}
}

// A file with an item the store could not hold or Keyward could not use
// (a required value missing, a unique one given twice) is refused before
// anything is written, naming the item. Before, the store refused some of
// them with its own text (NOT NULL constraint failed: keys.public_key).
func TestImportRefusesInvalidItems(t *testing.T) {
	base := exported(t)
	for _, tc := range []struct {
		name  string
		edit  func(d *transfer.Dump)
		wants []string
	}{
		{"account client ID twice", func(d *transfer.Dump) { d.Accounts[1].ID = "1" },
			[]string{`the service account "1" is in the file twice`}},
		{"account email twice", func(d *transfer.Dump) { d.Accounts[1].Email = d.Accounts[0].Email },
			[]string{`the service account email "svc1@pay.example" is in the file twice`}},
		{"scope of two APIs", func(d *transfer.Dump) {
			d.APIs = append(d.APIs, storage.API{Name: "other", Identifier: "https://other", Scopes: []string{"orders.read"}, TokenFormat: "jwt", CreatedAt: t0})
		}, []string{`the API "other": the scope "orders.read" is another API's too`}},
		{"scope twice in one API", func(d *transfer.Dump) { d.APIs[0].Scopes = append(d.APIs[0].Scopes, d.APIs[0].Scopes[0]) },
			[]string{`the API "orders": the scope "orders.read" is listed twice`}},
		{"key without public key", func(d *transfer.Dump) { d.Keys[0].PublicKey = nil },
			[]string{`the key "k1" has no public_key`}},
		{"key algorithm", func(d *transfer.Dump) { d.Keys[0].Algorithm = "none" },
			[]string{`the key "k1": its algorithm "none" is none of RS256, ES256`}},
		{"key origin", func(d *transfer.Dump) { d.Keys[0].Origin = "" },
			[]string{`the key "k1": its origin "" is neither generated nor uploaded`}},
		{"key ID twice", func(d *transfer.Dump) { d.Keys[1].ID = "k1" },
			[]string{`the key "k1" is in the file twice`}},
		{"key of no account in the file", func(d *transfer.Dump) { d.Keys[0].AccountID = "9" },
			[]string{`the key "k1" is of "9", no service account in the file`}},
		{"secret without hash", func(d *transfer.Dump) { d.Secrets[0].Hash = nil },
			[]string{`the secret "s1" has no hash`}},
		{"signing key with nothing sealed", func(d *transfer.Dump) { d.SigningKeys[0].Sealed = nil },
			[]string{`the signing key "sk" has nothing sealed`}},
		{"sealed value with nothing sealed", func(d *transfer.Dump) { d.SealedValues[0].Sealed = nil },
			[]string{`the sealed value "client-secret-pepper" has nothing sealed`}},
		{"user twice", func(d *transfer.Dump) { d.Users[1].Email = d.Users[0].Email },
			[]string{`the user "a@example.com" is in the file twice`}},
		{"project placed twice", func(d *transfer.Dump) { d.Projects = append(d.Projects, d.Projects[0]) },
			[]string{`the project "pay" is in the file twice`}},
		{"delegation twice", func(d *transfer.Dump) { d.Grants = append(d.Grants, d.Grants[0]) },
			[]string{`the delegation of "1" in "example.com" is in the file twice`}},
		{"key expiring at the time the store holds as none", func(d *transfer.Dump) { d.Keys[0].ExpiresAt = time.Unix(0, 0) },
			[]string{`the key "k1": its expires_at 1970-01-01T00:00:00Z is the one time the store holds as none`}},
		{"token lifetime under a second", func(d *transfer.Dump) { d.Accounts[0].TokenLifetime = time.Second / 2 },
			[]string{`the service account "1": its token_lifetime_ns 500000000 is not whole seconds, as the store keeps a token lifetime`}},
		{"token lifetime not whole seconds", func(d *transfer.Dump) { d.Accounts[1].TokenLifetime = math.MaxInt64 },
			[]string{`the service account "2": its token_lifetime_ns 9223372036854775807 is not whole seconds`}},
		{"signing key retired at the time the store holds as none", func(d *transfer.Dump) { d.SigningKeys[0].RetiredAt = time.Unix(0, 999) },
			[]string{`the signing key "sk": its retired_at 1970-01-01T00:00:00.000000999Z is the one time the store holds as none`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := clone(base)
			tc.edit(&d)
			dst := targets[0].open(t)
			wantRefused(t, dst, transfer.Import(context.Background(), dst, d, t0), tc.wants...)
		})
	}
	// Two sealed values without a name are each said to have none, not
	// also to be one value given twice.
	d := clone(base)
	d.SealedValues = append(d.SealedValues, d.SealedValues[0])
	d.SealedValues[0].Name, d.SealedValues[1].Name = "", ""
	dst := targets[0].open(t)
	err := transfer.Import(context.Background(), dst, d, t0)
	wantRefused(t, dst, err, "a sealed value has no name")
	if strings.Contains(err.Error(), "twice") {
		t.Errorf("two sealed values without a name: %v; want no \"twice\"", err)
	}
}

// A file with an item whose values the admin API would refuse on create
// now, but which the store holds and the server uses, is imported, and
// Warnings names the item: an export of a real store must import. Before,
// the import refused it, and with it the backup of a store whose
// administrator is admin@keyward.iam.example.com. (serve
// --account-domain iam.example.com.) or whose labels date from before the
// control-character rule.
func TestImportWarnsOfInvalidItems(t *testing.T) {
	base := exported(t)
	if w := transfer.Warnings(base, accountDomain, t0); len(w) > 0 {
		t.Fatalf("warnings of an export: %q", w)
	}
	for _, tc := range []struct {
		name string
		edit func(d *transfer.Dump)
		want string
	}{
		{"account email ending in a dot", func(d *transfer.Dump) { d.Accounts[0].Email = "admin@keyward.iam.example.com." },
			`the service account "1": its email "admin@keyward.iam.example.com." is not one the admin API would accept now`},
		{"account email twice in another case", func(d *transfer.Dump) { d.Accounts[1].Email = "svc1@PAY.example" },
			`the service account email "svc1@PAY.example" is in the file twice in different cases`},
		{"account scope no API defines", func(d *transfer.Dump) { d.Accounts[0].Scopes = []string{"orders.write"} },
			`the service account "1": the scope "orders.write" is defined by no API in the file`},
		{"account auth method", func(d *transfer.Dump) { d.Accounts[0].AuthMethods = []string{"none"} },
			`the service account "1": unknown client authentication method "none"`},
		{"account description with a line break", func(d *transfer.Dump) { d.Accounts[0].Description = "a\nb" },
			`the service account "1": the description contains the control character U+000A`},
		{"account display name with an escape", func(d *transfer.Dump) { d.Accounts[0].DisplayName = "a\x1b[2Jb" },
			`the service account "1": the display name contains the control character U+001B`},
		{"account display name with a right-to-left override", func(d *transfer.Dump) { d.Accounts[0].DisplayName = "a\u202eb" },
			`the service account "1": the display name contains the invisible format character U+202E at byte 1`},
		{"account display name with a right-to-left mark", func(d *transfer.Dump) { d.Accounts[0].DisplayName = "a\u200fb" },
			`the service account "1": the display name contains the invisible format character U+200F at byte 1`},
		{"API description with a paragraph separator", func(d *transfer.Dump) { d.APIs[0].Description = "a\u2029b" },
			`the API "orders": the description contains the line or paragraph separator U+2029 at byte 1`},
		{"account email with a zero-width space", func(d *transfer.Dump) { d.Accounts[0].Email = "svc1\u200b@pay.example" },
			`the service account "1": its email "svc1\u200b@pay.example" is not one the admin API would accept now`},
		{"API identifier with a zero-width space", func(d *transfer.Dump) { d.APIs[0].Identifier = "https://ord\u200bers.internal" },
			`the API "orders": the API identifier "https://ord\u200bers.internal" contains the invisible format character U+200B`},
		{"API identifier with an ideographic space", func(d *transfer.Dump) { d.APIs[0].Identifier = "https://orders\u3000internal" },
			`the API "orders": the API identifier "https://orders\u3000internal" contains the space character U+3000`},
		{"user email with a zero-width space", func(d *transfer.Dump) { d.Users[0].Email = "adm\u200bin@example.com" },
			`the user "adm\u200bin@example.com": it is not an email address the admin API would accept now`},
		{"user email with a no-break space", func(d *transfer.Dump) { d.Users[0].Email = "ad\u00a0min@example.com" },
			`the user "ad\u00a0min@example.com": it is not an email address the admin API would accept now`},
		{"account email with an ideographic space", func(d *transfer.Dump) { d.Accounts[0].Email = "svc1\u3000@pay.example" },
			`the service account "1": its email "svc1\u3000@pay.example" is not one the admin API would accept now`},
		{"account token lifetime zero", func(d *transfer.Dump) { d.Accounts[0].TokenLifetime = 0 },
			`the service account "1": its token lifetime 0s is under`},
		{"account token format", func(d *transfer.Dump) { d.Accounts[0].TokenFormat = "paseto" },
			`the service account "1": the token format "paseto" must be jwt or opaque`},
		{"API name", func(d *transfer.Dump) { d.APIs[0].Name = "Orders" },
			`the API "Orders": the API name "Orders" must be`},
		{"API identifier", func(d *transfer.Dump) { d.APIs[0].Identifier = "orders" },
			`the API "orders": the API identifier "orders" must be an absolute URI`},
		{"API scope name", func(d *transfer.Dump) { d.APIs[0].Scopes = []string{"orders.read", "a b"} },
			`the API "orders": the scope "a b" is not a valid scope name`},
		{"API without scopes", func(d *transfer.Dump) {
			d.APIs[0].Scopes = nil
			d.Accounts[0].Scopes, d.Accounts[1].Scopes, d.Grants = nil, nil, nil
		}, `the API "orders": an API needs at least one scope`},
		{"organization domain", func(d *transfer.Dump) {
			d.Orgs[0].Domain = "Example.com"
			for i := range d.Users {
				d.Users[i].Org = "Example.com"
			}
			d.Projects[0].Org, d.Grants[0].Org = "Example.com", "Example.com"
		}, `the organization "Example.com": "Example.com" is not a domain name`},
		{"organization blocked scope", func(d *transfer.Dump) { d.Orgs[0].BlockedScopes = []string{"a b"} },
			`the organization "example.com": the blocked scope "a b" is not a valid scope name`},
		{"user twice in another case", func(d *transfer.Dump) { d.Users[1].Email = "A@example.com" },
			`the user "A@example.com" is in the file twice in different cases`},
		{"user of another domain", func(d *transfer.Dump) { d.Users[0].Email = "a@example.org" },
			`the user "a@example.org" is in "example.com": the admin API puts a user in the organization of its email's domain`},
		{"delegation without scope", func(d *transfer.Dump) { d.Grants[0].Scopes = nil },
			`the delegation of "1" in "example.com" has no scope`},
		{"delegation scope no API defines", func(d *transfer.Dump) { d.Grants[0].Scopes = []string{"orders.write"} },
			`the delegation of "1" in "example.com": the scope "orders.write" is defined by no API in the file`},
		{"account TLS binding of two fields", func(d *transfer.Dump) { d.Accounts[0].TLS.SubjectDN = "CN=a" },
			`the service account "1": its tls_binding: a TLS binding names exactly one of subject DN, SAN DNS, SAN URI, SAN IP or SAN email`},
		{"account TLS binding IP", func(d *transfer.Dump) { d.Accounts[0].TLS = storage.TLSBinding{SANIP: "10.0.0"} },
			`the service account "1": its tls_binding: the SAN IP "10.0.0" is not an IP address, by the admin API's rules now`},
		{"key of 1024 bits", func(d *transfer.Dump) { d.Keys[0].PublicKey = spki(testkeys.RSAPublic(1024)) },
			`the key "k1": the admin API would refuse it now: the RSA key has 1024 bits`},
		{"key with an even exponent", func(d *transfer.Dump) {
			k := testkeys.RSAPublic(2048)
			k.E = 65536
			d.Keys[0].PublicKey = spki(k)
		}, `the key "k1": the admin API would refuse it now: the RSA key's public exponent is 65536`},
		{"key on P-384", func(d *transfer.Dump) { d.Keys[0].PublicKey = spki(&ec384.PublicKey) },
			`the key "k1": the admin API would refuse it now: the EC key is on P-384`},
		{"key not DER", func(d *transfer.Dump) { d.Keys[0].PublicKey = []byte{1, 2} },
			`the key "k1": its public_key is no DER SubjectPublicKeyInfo Keyward can read`},
		{"key of another algorithm", func(d *transfer.Dump) { d.Keys[0].Algorithm = "ES256" },
			`the key "k1": its public_key is a key for RS256, not for its algorithm ES256`},
		{"key certificate not DER", func(d *transfer.Dump) { d.Keys[0].Certificate = []byte{3, 4} },
			`the key "k1": its certificate is no DER X.509 certificate`},
		{"key certificate of another key", func(d *transfer.Dump) { d.Keys[0].Certificate = ec384Cert },
			`the key "k1": its certificate is of another key than its public_key`},
		{"key certificate not valid yet", func(d *transfer.Dump) {
			d.Keys[0].Algorithm, d.Keys[0].PublicKey = "ES256", spki(&p256.PublicKey)
			d.Keys[0].Certificate = p256Cert(t0.Add(time.Hour))
		}, `the key "k1": its certificate is not valid until 2026-03-01T13:00:00Z, yet the key is usable at once`},
		{"secret hash of another size", func(d *transfer.Dump) { d.Secrets[0].Hash = []byte{3} },
			`the secret "s1": its hash is 1 bytes, not the 32 of the keyed SHA-256 Keyward stores`},
		{"account email of another name", func(d *transfer.Dump) { d.Accounts[0].Name = "svcx" },
			`the service account "1": its email "svc1@pay.example" is not of its name "svcx" and project "pay"`},
		{"account email of another project", func(d *transfer.Dump) { d.Accounts[0].Project = "ops" },
			`the service account "1": its email "svc1@pay.example" is not of its name "svc1" and project "ops"`},
		{"account name starting with a digit", func(d *transfer.Dump) { d.Accounts[0].Name, d.Accounts[0].Email = "1", "1@pay.example" },
			`the service account "1": the account name "1" must be 3-30 lowercase letters, digits and hyphens, starting with a letter, by the admin API's rules now`},
		{"account name with an escape", func(d *transfer.Dump) { d.Accounts[0].Name = "svc\x1b[2J" },
			`the service account "1": the account name "svc\x1b[2J" must be 3-30 lowercase letters`},
		{"account project of one letter", func(d *transfer.Dump) { d.Accounts[0].Project, d.Accounts[0].Email = "p", "svc1@p.example" },
			`the service account "1": the project "p" must be 3-30 lowercase letters, digits and hyphens, starting with a letter, by the admin API's rules now`},
		{"project placed in upper case", func(d *transfer.Dump) { d.Projects[0].Project = "Pay" },
			`the project "Pay" must be 3-30 lowercase letters, digits and hyphens, starting with a letter, by the admin API's rules now`},
		{"organization under the account domain", func(d *transfer.Dump) {
			d.Orgs = append(d.Orgs, storage.Org{Domain: "Ops.IAM.example.com", CreatedAt: t0})
		}, `the organization "Ops.IAM.example.com" is under the account domain "iam.example.com", whose addresses are service accounts' emails`},
		{"API identifier another's but for a trailing slash", func(d *transfer.Dump) {
			d.APIs = append(d.APIs, storage.API{Name: "orders2", Identifier: "HTTPS://Orders/", Scopes: []string{"orders2.read"}, TokenFormat: "jwt", CreatedAt: t0})
		}, `the API "orders2": its identifier "HTTPS://Orders/" differs from the API identifier "https://orders" only in the case of its scheme or host or in a trailing slash`},
		{"organization at the domain of account emails", func(d *transfer.Dump) {
			d.Orgs = append(d.Orgs, storage.Org{Domain: "Pay.Example", CreatedAt: t0})
		}, `the organization "Pay.Example" is the domain of service accounts' emails in the file: its users could have the email of a service account`},
		{"organization at the domain of account emails, one with a final dot", func(d *transfer.Dump) {
			for i := range d.Accounts {
				if strings.HasSuffix(d.Accounts[i].Email, "@pay.example") {
					d.Accounts[i].Email += "."
				}
			}
			d.Orgs = append(d.Orgs, storage.Org{Domain: "pay.example", CreatedAt: t0})
		}, `the organization "pay.example" is the domain of service accounts' emails in the file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := clone(base)
			tc.edit(&d)
			dst := targets[0].open(t)
			if err := transfer.Import(context.Background(), dst, d, t0); err != nil {
				t.Fatalf("import: %v", err)
			}
			warnings := transfer.Warnings(d, accountDomain, t0)
			found := false
			for _, w := range warnings {
				found = found || strings.Contains(w, tc.want)
				if !strings.HasSuffix(w, "; it is imported as it is") {
					t.Errorf("warning %q does not say the item is imported as it is", w)
				}
			}
			if !found {
				t.Fatalf("warnings %q, want one saying %q", warnings, tc.want)
			}
			if n, err := dst.CountAccounts(context.Background()); err != nil || n != len(d.Accounts) {
				t.Fatalf("%d accounts imported (%v), want %d", n, err, len(d.Accounts))
			}
		})
	}
}

// TestWarningsOfARefusedFile: Warnings names nothing of a file Import
// refuses: it named, as imported as they are, values the refusal names
// as bad (a name with a NUL, which the store cannot hold, was also one
// the admin API's rules refuse), so that a reader saw the same field
// refused and imported.
func TestWarningsOfARefusedFile(t *testing.T) {
	base := exported(t)
	for _, tc := range []struct {
		name string
		edit func(d *transfer.Dump)
	}{
		{"account name with a NUL", func(d *transfer.Dump) { d.Accounts[0].Name += "\x00" }},
		{"account project not UTF-8", func(d *transfer.Dump) { d.Accounts[0].Project += "\xff" }},
		{"organization domain with a NUL", func(d *transfer.Dump) {
			d.Orgs = append(d.Orgs, storage.Org{Domain: "nul\x00.example", CreatedAt: t0})
		}},
		{"API name not UTF-8", func(d *transfer.Dump) { d.APIs[0].Name += "\xff" }},
		{"API identifier not UTF-8", func(d *transfer.Dump) { d.APIs[0].Identifier += "/gr\xfc\xdfe" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := clone(base)
			tc.edit(&d)
			if err := transfer.Import(context.Background(), targets[0].open(t), d, t0); err == nil || !strings.Contains(err.Error(), "nothing was imported") {
				t.Fatalf("import: %v, want it refused", err)
			}
			if w := transfer.Warnings(d, accountDomain, t0); len(w) > 0 {
				t.Errorf("warnings of a file import refuses: %q, want none", w)
			}
		})
	}
}

// TestImportWarnsOfOrgAtAccountEmailDomainInASCIICase: the warning of an
// organization at the domain of account emails compares the domains as
// AccountEmailAt, by which the admin API refuses one, does: in ASCII
// lower case. An account's PAY.EXAMPLE is pay.example's, but İ is not i
// (which strings.ToLower would make it), nor K the Kelvin sign k.
func TestImportWarnsOfOrgAtAccountEmailDomainInASCIICase(t *testing.T) {
	base := exported(t)
	for _, tc := range []struct {
		email, org string
		want       bool
	}{
		{"svc9@PAY.EXAMPLE", "pay.example", true},
		{"svc9@İNTL.example", "intl.example", false},
		{"svc9@\u212aey.example", "key.example", false},
	} {
		t.Run(tc.email, func(t *testing.T) {
			d := clone(base)
			a := d.Accounts[0]
			a.ID, a.Email = "900000000000000000009", tc.email
			d.Accounts = append(d.Accounts, a)
			d.Orgs = append(d.Orgs, storage.Org{Domain: tc.org, CreatedAt: t0})
			found := false
			for _, w := range transfer.Warnings(d, accountDomain, t0) {
				found = found || strings.Contains(w, "the organization "+strconv.Quote(tc.org)+" is the domain of service accounts' emails")
			}
			if found != tc.want {
				t.Errorf("organization %s with an account %s: warned %v, want %v", tc.org, tc.email, found, tc.want)
			}
		})
	}
}

// ec384 is a key the admin API refuses, and ec384Cert a certificate of it.
var (
	ec384, _     = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ec384Cert, _ = x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(1)},
		&x509.Certificate{SerialNumber: big.NewInt(1)}, &ec384.PublicKey, ec384)
)

// p256 is a key the admin API takes, and p256Cert makes a certificate of
// it valid from notBefore.
var p256, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)

func p256Cert(notBefore time.Time) []byte {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: notBefore, NotAfter: notBefore.Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p256.PublicKey, p256)
	if err != nil {
		panic(err)
	}
	return der
}

// An imported key whose certificate's notBefore is within the minute an
// upload allows for a clock a little fast, or past, is not warned of.
func TestImportCertificateValidSoon(t *testing.T) {
	for _, notBefore := range []time.Time{t0.Add(-time.Hour), t0.Add(validate.NotBeforeSkew)} {
		d := clone(exported(t))
		d.Keys[0].Algorithm, d.Keys[0].PublicKey = "ES256", spki(&p256.PublicKey)
		d.Keys[0].Certificate = p256Cert(notBefore)
		if w := transfer.Warnings(d, accountDomain, t0); len(w) > 0 {
			t.Errorf("certificate valid from %s, imported at %s: warnings %q, want none", notBefore, t0, w)
		}
	}
}

// spki is the DER SubjectPublicKeyInfo of pub.
func spki(pub any) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return der
}

// clone copies d deeply enough for a test to edit its items.
func clone(d transfer.Dump) transfer.Dump {
	d.APIs, d.Accounts, d.Keys, d.Secrets = slices.Clone(d.APIs), slices.Clone(d.Accounts), slices.Clone(d.Keys), slices.Clone(d.Secrets)
	d.SigningKeys, d.SealedValues = slices.Clone(d.SigningKeys), slices.Clone(d.SealedValues)
	d.Orgs, d.Users, d.Projects, d.Grants = slices.Clone(d.Orgs), slices.Clone(d.Users), slices.Clone(d.Projects), slices.Clone(d.Grants)
	return d
}

// failingLoad is a store whose Load fails with err, as a database would,
// with its own text (a constraint and an error number) in the cause.
type failingLoad struct {
	storage.Storage
	err error
}

var (
	errDriver = errors.New("sqlite: create key: NOT NULL constraint failed: keys.public_key (1299)")
	errUnique = fmt.Errorf("sqlite: insert org: UNIQUE constraint failed: orgs.domain (2067): %w", storage.ErrAlreadyExists)
)

func (f failingLoad) Load(context.Context, storage.Bulk, []storage.AuditEvent) error {
	return fmt.Errorf("tx: %w", f.err)
}

// A store error writing an item of a file that passed check names the
// item, the kind of failure in the store's terms, and not the database's
// text, which stays in the error chain. Before, the user read the store's
// error whole ("load: key k1: sqlite: … NOT NULL constraint failed:
// keys.public_key (1299)").
func TestImportStoreErrorNamesItem(t *testing.T) {
	base := exported(t)
	for _, tc := range []struct {
		name   string
		open   func(t *testing.T) storage.Storage
		want   string
		not    []string
		target error
	}{
		{"database error", func(t *testing.T) storage.Storage {
			return failingLoad{targets[0].open(t), &storage.LoadError{Kind: "key", ID: "k1", Err: errDriver}}
		},
			`nothing was imported: the import failed writing key "k1": the store refused it`,
			[]string{"constraint", "1299", "sqlite", "public_key"}, errDriver},
		{"identifier taken in the store", func(t *testing.T) storage.Storage {
			// (An API of the file taken is the store changed since the
			// import looked: TestImportStoreChangedMeanwhile.)
			return failingLoad{targets[0].open(t), &storage.LoadError{Kind: "organization", ID: "example.com", Err: errUnique}}
		}, `nothing was imported: the import failed writing organization "example.com": its identifier, or another value that must be unique, is taken`,
			[]string{"UNIQUE", "sqlite"}, storage.ErrAlreadyExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := transfer.Import(context.Background(), tc.open(t), clone(base), t0)
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("import: %v, want it to start %q", err, tc.want)
			}
			for _, not := range tc.not {
				if strings.Contains(err.Error(), not) {
					t.Errorf("import: %v, shows %q", err, not)
				}
			}
			if !errors.Is(err, tc.target) {
				t.Errorf("import: %v, its chain lacks %v", err, tc.target)
			}
		})
	}
}

// writingStore is a store that, once Export has read its APIs, deletes
// the account that is the introspector of one and the key and secret of
// another, and adds an account and a grant to it, as a server running
// beside the export may.
type writingStore struct {
	*sqlstore.Store
	t *testing.T
}

func (s writingStore) ListAPIs(ctx context.Context) ([]storage.API, error) {
	apis, err := s.Store.ListAPIs(ctx)
	bg := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	for _, step := range []func() error{
		func() error {
			_, err := s.UpdateAPI(bg, "orders", func(a storage.API) (storage.API, error) { a.Introspectors = nil; return a, nil }, ev)
			return err
		},
		func() error { return s.DeleteAccount(bg, "2", nil, ev) },
		func() error {
			return s.CreateAccount(bg, storage.Account{ID: "3", Email: "svc3@pay.example", Name: "svc3", Project: "pay", Scopes: []string{"orders.read"},
				TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods, CreatedAt: t0, UpdatedAt: t0}, ev)
		},
		func() error {
			_, err := s.PutGrant(bg, storage.Grant{Org: "example.com", ClientID: "3", Scopes: []string{"orders.read"}, CreatedAt: t0}, ev)
			return err
		},
	} {
		if err := step(); err != nil {
			s.t.Fatal(err)
		}
	}
	return apis, err
}

// TestExportSnapshot exports a store the server changes part way through
// the export: the file is the store as it was when the export began, and
// imports.
func TestExportSnapshot(t *testing.T) {
	ctx := context.Background()
	for _, target := range targets {
		t.Run(target.name, func(t *testing.T) {
			src := target.open(t)
			fill(t, src)
			d, err := transfer.Export(ctx, writingStore{src, t}, t0)
			if err != nil {
				t.Fatal(err)
			}
			var ids, grants []string
			for _, a := range d.Accounts {
				ids = append(ids, a.ID)
			}
			for _, g := range d.Grants {
				grants = append(grants, g.ClientID)
			}
			if !slices.Equal(ids, []string{"1", "2"}) || !slices.Equal(grants, []string{"1"}) || len(d.Keys) != 2 || len(d.Secrets) != 2 {
				t.Errorf("exported accounts %q, grants to %q, %d keys and %d secrets; want the store as the export began: accounts [1 2], a grant to 1, 2 keys and 2 secrets",
					ids, grants, len(d.Keys), len(d.Secrets))
			}
			dst := openSQLite(t)
			if err := transfer.Import(ctx, dst, d, t0); err != nil {
				t.Errorf("import of the export: %v", err)
			}
		})
	}
}

// A store with service accounts is refused in the words Load's refusal
// uses ("it holds 2 service accounts"), the count before the noun, singular
// for one; the check before the transaction said "it holds service
// accounts: 2".
func TestImportNotEmptyWithAccounts(t *testing.T) {
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "x", Outcome: storage.OutcomeSuccess}
	for _, tc := range []struct {
		accounts int
		want     string
	}{
		{1, "; it holds 1 service account"},
		{2, "; it holds 2 service accounts"},
	} {
		t.Run(strconv.Itoa(tc.accounts), func(t *testing.T) {
			s := openSQLite(t)
			for i := range tc.accounts {
				id := strconv.Itoa(i + 1)
				if err := s.CreateAccount(ctx, storage.Account{ID: id, Email: "svc" + id + "@pay.example", Name: "svc" + id, Project: "pay",
					TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods, CreatedAt: t0, UpdatedAt: t0}, ev); err != nil {
					t.Fatal(err)
				}
			}
			err := transfer.Import(ctx, s, exported(t), t0)
			if !errors.Is(err, transfer.ErrNotEmpty) || !strings.HasSuffix(err.Error(), tc.want) {
				t.Fatalf("import: %v, want ErrNotEmpty ending %q", err, tc.want)
			}
		})
	}
}

// A store without accounts is not empty when it holds an organization or
// an API that the file does not have (left by an earlier import of a file
// without accounts, say): the import is refused, saying what the store
// holds. Before, the file was merged into it.
func TestImportNotEmptyWithoutAccounts(t *testing.T) {
	ctx := context.Background()
	base := exported(t)
	for _, tc := range []struct {
		name  string
		first transfer.Dump
		want  string
	}{
		{"organization", transfer.Dump{Format: transfer.Format, Orgs: []storage.Org{{Domain: "other.example", CreatedAt: t0}}},
			"; it holds 1 organization"},
		{"API", transfer.Dump{Format: transfer.Format, APIs: []storage.API{{Name: "billing", Identifier: "https://billing",
			Scopes: []string{"billing.read"}, TokenFormat: storage.TokenJWT, CreatedAt: t0}}},
			"; it holds 1 API (billing)"},
	} {
		for _, target := range targets {
			t.Run(tc.name+"/"+target.name, func(t *testing.T) {
				s := target.open(t)
				if err := transfer.Import(ctx, s, tc.first, t0); err != nil {
					t.Fatal(err)
				}
				err := transfer.Import(ctx, s, clone(base), t0)
				if !errors.Is(err, transfer.ErrNotEmpty) || !strings.HasSuffix(err.Error(), tc.want) {
					t.Fatalf("import: %v, want ErrNotEmpty ending %q", err, tc.want)
				}
				if n, err := s.CountAccounts(ctx); err != nil || n != 0 {
					t.Fatalf("the refused import left %d accounts (%v)", n, err)
				}
			})
		}
	}
}

// heldEvents is a store whose Load keeps the audit events it is given,
// and writes nothing.
type heldEvents struct {
	storage.Storage
	evs []storage.AuditEvent
}

func (h *heldEvents) Load(_ context.Context, _ storage.Bulk, evs []storage.AuditEvent) error {
	h.evs = evs
	return nil
}

// The audit events an import holds until its commit, one an item, take
// little memory but their own fields: those that say only the file's
// time share one Data, where each took a map (≈ 300 bytes), and their
// slice is made to size, not grown.
func TestImportEventsMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	const n = 2000
	d := transfer.Dump{Format: transfer.Format, ExportedAt: t0}
	for i := range n {
		id := strconv.Itoa(100000000000000000 + i)
		d.Accounts = append(d.Accounts, storage.Account{ID: id, Email: "svc" + id + "@pay.example", Name: "svc" + id, Project: "pay",
			TokenLifetime: time.Hour, AuthMethods: storage.DefaultAuthMethods, CreatedAt: t0, UpdatedAt: t0})
		d.Secrets = append(d.Secrets, storage.Secret{ID: "s" + id, AccountID: id, Hash: bytes.Repeat([]byte{3}, 32), Hint: "kw_…x", CreatedAt: t0})
	}
	st := &heldEvents{Storage: openSQLite(t)}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := transfer.Import(context.Background(), st, d, t0); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if len(st.evs) != 2*n {
		t.Fatalf("%d events, want %d", len(st.evs), 2*n)
	}
	// Import's other allocations (checking the items) take about twice
	// the events' (≈ 700 bytes an event in all; it was ≈ 1700).
	allocated := after.TotalAlloc - before.TotalAlloc
	limit := 4 * uint64(unsafe.Sizeof(storage.AuditEvent{}))
	if perEvent := allocated / uint64(len(st.evs)); perEvent > limit {
		t.Errorf("import allocated %d bytes an event, want at most %d", perEvent, limit)
	}
	for i, e := range st.evs {
		if want := map[string]string{"exported_at": "2026-03-01T12:00:00Z"}; !maps.Equal(e.Data, want) {
			t.Fatalf("event %d (%s): data %v, want %v", i, e.Action, e.Data, want)
		}
	}
}
