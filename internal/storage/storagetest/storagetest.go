// Package storagetest is the conformance suite every storage backend runs:
// the same tests, table by table, so the backends cannot drift apart.
package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// Run runs the conformance suite. newStore must return an empty store; the
// suite closes it.
func Run(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Storage)
	}{
		{"Accounts", testAccounts},
		{"AccountEmailAt", testAccountEmailAt},
		{"AuditTextNotUTF8", testAuditTextNotUTF8},
		{"AuditTimeEpoch", testAuditTimeEpoch},
		{"AccountPaging", testAccountPaging},
		{"AccountRevocations", testAccountRevocations},
		{"Keys", testKeys},
		{"CreateKeyChecked", testCreateKeyChecked},
		{"CreateKeyCheckedConcurrent", testCreateKeyCheckedConcurrent},
		{"Secrets", testSecrets},
		{"CreateSecretChecked", testCreateSecretChecked},
		{"UpdateSecretChecked", testUpdateSecretChecked},
		{"SecretChecksConcurrent", testSecretChecksConcurrent},
		{"APIs", testAPIs},
		{"Tokens", testTokens},
		{"DeleteExpiredBacklog", testDeleteExpiredBacklog},
		{"Delegation", testDelegation},
		{"DeleteAccountCascades", testDeleteAccountCascades},
		{"DeleteAccountAddConcurrent", testDeleteAccountAddConcurrent},
		{"DeleteChecked", testDeleteChecked},
		{"DeleteCheckedConcurrent", testDeleteCheckedConcurrent},
		{"GetOrgs", testGetOrgs},
		{"OrgProjects", testOrgProjects},
		{"ProjectOrgChecked", testProjectOrgChecked},
		{"ProjectOrgCheckedConcurrent", testProjectOrgCheckedConcurrent},
		{"ProjectOrgMovesCrossed", testProjectOrgMovesCrossed},
		{"ProjectOrgMovesSame", testProjectOrgMovesSame},
		{"ProjectOrgMoveUpdate", testProjectOrgMoveUpdate},
		{"DeleteOrgPlacing", testDeleteOrgPlacing},
		{"PutUsersDeleteOrg", testPutUsersDeleteOrg},
		{"PutUsersConcurrent", testPutUsersConcurrent},
		{"PutUsersDuplicateLastWins", testPutUsersDuplicateLastWins},
		{"PutUsersManyOrgs", testPutUsersManyOrgs},
		{"PutUsersFlipped", testPutUsersFlipped},
		{"PutUsersFlippedConcurrent", testPutUsersFlippedConcurrent},
		{"UpdateUser", testUpdateUser},
		{"GuardKeepHeld", testGuardKeepHeld},
		{"GuardKeepHeldConcurrent", testGuardKeepHeldConcurrent},
		{"GuardKeepSignIn", testGuardKeepSignIn},
		{"GuardKeepSignInAccounts", testGuardKeepSignInAccounts},
		{"GuardKeepSignInConcurrent", testGuardKeepSignInConcurrent},
		{"GuardKeepSignInCertificates", testGuardKeepSignInCertificates},
		{"SignInExpiry", testSignInExpiry},
		{"GuardKnownScopes", testGuardKnownScopes},
		{"GuardKnownScopesConcurrent", testGuardKnownScopesConcurrent},
		{"UpdateAccountConcurrent", testUpdateAccountConcurrent},
		{"DeleteIntrospectorsConcurrent", testDeleteIntrospectorsConcurrent},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"DeleteAPIHeld", testDeleteAPIHeld},
		{"CreateAPIHeld", testCreateAPIHeld},
		{"CreateAPIIdentifierTaken", testCreateAPIIdentifierTaken},
		{"CreateAPIIdentifierConcurrent", testCreateAPIIdentifierConcurrent},
		{"UpdateAPIScopes", testUpdateAPIScopes},
		{"SigningKeys", testSigningKeys},
		{"SigningKeysConcurrent", testSigningKeysConcurrent},
		{"SealedValues", testSealedValues},
		{"Load", testLoad},
		{"LoadReplaceAPIs", testLoadReplaceAPIs},
		{"LoadReplaceSealedValues", testLoadReplaceSealedValues},
		{"LoadNotEmpty", testLoadNotEmpty},
		{"Reseal", testReseal},
		{"CommitJTI", testCommitJTI},
		{"CommitJTIConcurrent", testCommitJTIConcurrent},
		{"CommitJTIsCrossed", testCommitJTIsCrossed},
		{"CommitJTIBatch", testCommitJTIBatch},
		{"CommitJTIRefusedFrees", testCommitJTIRefusedFrees},
		{"AuditChain", testAuditChain},
		{"AuditChainConcurrent", testAuditChainConcurrent},
		{"AuditBatch", testAuditBatch},
		{"AuditPrune", testAuditPrune},
		{"AuditPruneBeforeEpoch", testAuditPruneBeforeEpoch},
		{"AuditFilter", testAuditFilter},
		{"AuditTimeBounds", testAuditTimeBounds},
		{"AuditTimeBoundsZero", testAuditTimeBoundsZero},
		{"AuditNewestPaging", testAuditNewestPaging},
		{"Ping", testPing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			tt.fn(t, s)
		})
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

func ev(action string) storage.AuditEvent {
	return storage.AuditEvent{Time: t0, Action: action, Outcome: storage.OutcomeSuccess, Actor: "test"}
}

func account(id, email string) storage.Account {
	return storage.Account{
		ID: id, Email: email, Name: "job", Project: "proj", DisplayName: "Job", Description: "nightly job",
		Scopes: []string{"orders.read", "orders.write"}, TokenLifetime: time.Hour, CreatedAt: t0, UpdatedAt: t0,
		AuthMethods: []string{storage.AuthSecretBasic, storage.AuthTLS}, TLS: storage.TLSBinding{SubjectDN: "CN=job,O=Example"},
		TokenFormat: storage.TokenOpaque,
	}
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// errOf is the error of a call that returns a value with it.
func errOf[T any](_ T, err error) error { return err }

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// testAccountRevocations: an account's two revocation times, of all its
// tokens and of its certificate tokens, are stored apart, to the
// microsecond, by every way an account is written (created, created in
// bulk as an import does, loaded, updated), and an update of one keeps
// the other.
func testAccountRevocations(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	all, cert := t0.Add(time.Minute), t0.Add(2*time.Minute)
	check := func(name, id string, wantAll, wantCert time.Time) {
		t.Helper()
		got, err := s.GetAccount(ctx, id)
		mustNil(t, err)
		if !got.TokensRevokedBefore.Equal(wantAll.Truncate(time.Microsecond)) || !got.CertTokensRevokedBefore.Equal(wantCert.Truncate(time.Microsecond)) {
			t.Errorf("%s: TokensRevokedBefore %v, CertTokensRevokedBefore %v; want %v, %v",
				name, got.TokensRevokedBefore, got.CertTokensRevokedBefore, wantAll, wantCert)
		}
	}
	revoked := func(id, email string, all, cert time.Time) storage.Account {
		a := account(id, email)
		a.TokensRevokedBefore, a.CertTokensRevokedBefore = all, cert
		return a
	}

	mustNil(t, s.CreateAccount(ctx, account("100000000000000000001", "none@proj.example"), ev("account.create")))
	check("created without", "100000000000000000001", time.Time{}, time.Time{})
	mustNil(t, s.CreateAccount(ctx, revoked("100000000000000000002", "one@proj.example", time.Time{}, cert), ev("account.create")))
	check("created with the certificate one", "100000000000000000002", time.Time{}, cert)
	mustNil(t, s.CreateAccounts(ctx, []storage.Account{revoked("100000000000000000003", "bulk@proj.example", all, cert)}, ev("account.bulk_create")))
	check("created in bulk", "100000000000000000003", all, cert)

	later := t0.Add(3 * time.Minute)
	mustNil(t, errOf(s.UpdateAccount(ctx, "100000000000000000001", func(old storage.Account) (storage.Account, error) {
		old.CertTokensRevokedBefore = later
		return old, nil
	}, ev("account.update"))))
	check("certificate tokens revoked", "100000000000000000001", time.Time{}, later)
	mustNil(t, errOf(s.UpdateAccount(ctx, "100000000000000000001", func(old storage.Account) (storage.Account, error) {
		old.TokensRevokedBefore = all
		return old, nil
	}, ev("account.update"))))
	check("then all tokens revoked", "100000000000000000001", all, later)
	mustNil(t, errOf(s.UpdateAccount(ctx, "100000000000000000003", func(old storage.Account) (storage.Account, error) {
		old.CertTokensRevokedBefore = time.Time{}
		return old, nil
	}, ev("account.update"))))
	check("certificate revocation cleared", "100000000000000000003", all, time.Time{})

	page, err := s.ListAccounts(ctx, storage.ListOptions{Limit: 10})
	mustNil(t, err)
	if len(page) != 3 || !page[1].CertTokensRevokedBefore.Equal(cert.Truncate(time.Microsecond)) {
		t.Errorf("ListAccounts: %+v, want the second with CertTokensRevokedBefore %v", page, cert)
	}
}

// AccountEmailAt runs the conformance test of AccountEmailAt on s, a new
// store: for a backend's tests that set up the database itself (as one
// with a Turkish locale).
func AccountEmailAt(t *testing.T, s storage.Storage) { testAccountEmailAt(t, s) }

// testAccountEmailAt checks the indexed lookup by an email's domain that
// keeps an organization, or a delegated token's subject, off the emails of
// service accounts.
func testAccountEmailAt(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateAccount(ctx, account("100000000000000000001", "job@proj.example"), ev("account.create")))
	// An email in capitals, as a store made before the account domain had
	// to be lower case may hold, and one an import kept that is not
	// NAME@PROJECT.<domain>.
	mustNil(t, s.CreateAccount(ctx, account("100000000000000000004", "Old@Proj.OLD.example"), ev("account.create")))
	odd := account("100000000000000000005", "odd@elsewhere.example")
	odd.Name = "odd"
	mustNil(t, s.CreateAccount(ctx, odd, ev("account.create")))
	// One made under an account domain written with a final dot.
	mustNil(t, s.CreateAccount(ctx, account("100000000000000000006", "dot@proj.dot.example."), ev("account.create")))
	// One an import kept that is not NAME@PROJECT.<domain>, in capitals:
	// neither its project nor its email as written finds it. And one
	// with two @s, whose domain is after the last (validate.EmailDomain).
	caps := account("100000000000000000007", "Caps.Job@Imported.Example.")
	caps.Name = "caps"
	mustNil(t, s.CreateAccount(ctx, caps, ev("account.create")))
	twoAt := account("100000000000000000008", "a@b@Two.example")
	twoAt.Name = "twoat"
	mustNil(t, s.CreateAccount(ctx, twoAt, ev("account.create")))
	// Emails are compared in ASCII lower case on every backend and in
	// every database locale: a capital I is i (not a Turkish dotless ı),
	// an email written as an account's is found whatever its letters, and
	// one that differs from it only in the case of letters beyond ASCII
	// is not (É is not é).
	ivan := account("100000000000000000009", "IVAN@IST.example")
	ivan.Name = "ivan"
	mustNil(t, s.CreateAccount(ctx, ivan, ev("account.create")))
	elise := account("100000000000000000010", "ÉLISE@ÜNÏ.example")
	elise.Name = "elise"
	mustNil(t, s.CreateAccount(ctx, elise, ev("account.create")))
	zoe := account("100000000000000000011", "zoë@lower.example")
	zoe.Name = "zoe"
	mustNil(t, s.CreateAccount(ctx, zoe, ev("account.create")))
	for _, c := range []struct {
		local, domain string
		want          bool
	}{
		{"", "proj.example", true},
		{"job", "proj.example", true},
		{"old", "proj.old.example", true},
		{"", "proj.old.example", true},
		{"odd", "elsewhere.example", true},
		{"", "example", false},
		{"", "old.example", false},
		{"", "roj.example", false},
		{"", "proj.example.com", false},
		{"nobody", "proj.example", false},
		{"jo_", "proj.example", false},
		{"", "proj.%", false},
		{"", "proj._xample", false},
		{"job", "proj.example.", true},
		{"", "proj.example.", true},
		{"dot", "proj.dot.example", true},
		{"dot", "proj.dot.example.", true},
		{"", "proj.dot.example", true},
		{"", "proj.dot.example.", true},
		{"other", "proj.dot.example", false},
		{"", "dot.example", false},
		{"caps.job", "imported.example", true},
		{"caps.job", "imported.example.", true},
		{"", "imported.example", true},
		{"", "imported.example.", true},
		{"", "elsewhere.example", true},
		{"caps", "imported.example", false},
		{"caps.job", "example", false},
		{"", "ported.example", false},
		{"", "mported.example", false},
		{"", "two.example", true},
		{"a", "b@two.example", true},
		{"", "b@two.example", false},
		{"ivan", "ist.example", true},
		{"IVAN", "IST.example", true},
		{"Ivan", "Ist.Example", true},
		{"", "ist.example", true},
		{"", "IST.EXAMPLE.", true},
		{"ÉLISE", "ÜNÏ.example", true},
		{"ÉLISE", "ÜNÏ.example.", true},
		{"Élise", "ÜNÏ.EXAMPLE", true},
		{"", "ÜNÏ.example", true},
		{"", "ÜNÏ.Example", true},
		{"élise", "ÜNÏ.example", false},
		{"ÉLISE", "ünï.example", false},
		{"", "ünï.example", false},
		{"zoë", "lower.example", true},
		{"ZOë", "LOWER.example", true},
		{"ZOË", "lower.example", false},
	} {
		got, err := s.AccountEmailAt(ctx, c.local, c.domain)
		mustNil(t, err)
		if got != c.want {
			t.Errorf("AccountEmailAt(%q, %q) = %v, want %v", c.local, c.domain, got, c.want)
		}
	}
}

func testAccounts(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a := account("100000000000000000001", "job@proj.example")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))

	got, err := s.GetAccount(ctx, a.ID)
	mustNil(t, err)
	if got.Email != a.Email || got.Name != "job" || got.Project != "proj" || got.DisplayName != "Job" ||
		got.Description != "nightly job" || !slices.Equal(got.Scopes, a.Scopes) || got.TokenLifetime != time.Hour ||
		got.Disabled || !got.CreatedAt.Equal(t0.Truncate(time.Microsecond)) || !slices.Equal(got.AuthMethods, a.AuthMethods) || got.TLS != a.TLS ||
		got.TokenFormat != storage.TokenOpaque || !got.TokensRevokedBefore.IsZero() {
		t.Fatalf("GetAccount = %+v, want %+v", got, a)
	}
	got, err = s.GetAccountByEmail(ctx, a.Email)
	mustNil(t, err)
	if got.ID != a.ID {
		t.Fatalf("GetAccountByEmail ID = %s, want %s", got.ID, a.ID)
	}

	wantErr(t, s.CreateAccount(ctx, account(a.ID, "other@proj.example"), ev("account.create")), storage.ErrAlreadyExists)
	wantErr(t, s.CreateAccount(ctx, account("100000000000000000002", a.Email), ev("account.create")), storage.ErrAlreadyExists)
	_, err = s.GetAccount(ctx, "999")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetAccountByEmail(ctx, "nobody@proj.example")
	wantErr(t, err, storage.ErrNotFound)

	updated, err := s.UpdateAccount(ctx, a.ID, func(old storage.Account) (storage.Account, error) {
		old.Disabled = true
		old.Scopes = []string{"orders.read"}
		old.TokenLifetime = 5 * time.Minute
		old.AuthMethods = []string{storage.AuthPrivateKeyJWT}
		old.TLS = storage.TLSBinding{SANDNS: "job.example"}
		old.TokensRevokedBefore = t0.Add(time.Minute)
		return old, nil
	}, ev("account.update"))
	mustNil(t, err)
	if !updated.Disabled {
		t.Fatal("UpdateAccount did not return the new account")
	}
	got, err = s.GetAccount(ctx, a.ID)
	mustNil(t, err)
	if !got.Disabled || !slices.Equal(got.Scopes, []string{"orders.read"}) || got.TokenLifetime != 5*time.Minute ||
		!slices.Equal(got.AuthMethods, []string{storage.AuthPrivateKeyJWT}) || got.TLS.SANDNS != "job.example" || got.TLS.SubjectDN != "" ||
		!got.TokensRevokedBefore.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("after update: %+v", got)
	}

	// A failing update function changes nothing and writes no event.
	boom := errors.New("boom")
	_, err = s.UpdateAccount(ctx, a.ID, func(old storage.Account) (storage.Account, error) { return old, boom }, ev("account.update"))
	wantErr(t, err, boom)
	_, err = s.UpdateAccount(ctx, "999", func(old storage.Account) (storage.Account, error) { return old, nil }, ev("account.update"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.UpdateAccount(ctx, a.ID, func(old storage.Account) (storage.Account, error) {
		old.Email = "renamed@proj.example"
		return old, nil
	}, ev("account.update"))
	if err == nil {
		t.Fatal("UpdateAccount allowed the email to change")
	}

	n, err := s.CountAccounts(ctx)
	mustNil(t, err)
	if n != 1 {
		t.Fatalf("CountAccounts = %d, want 1", n)
	}
	bulk := []storage.Account{account("300000000000000000001", "b1@proj.example"), account("300000000000000000002", "b2@proj.example")}
	mustNil(t, s.CreateAccounts(ctx, bulk, ev("account.bulk_create")))
	wantErr(t, s.CreateAccounts(ctx, []storage.Account{account("300000000000000000003", "b3@proj.example"), bulk[0]}, ev("account.bulk_create")), storage.ErrAlreadyExists)
	if _, err := s.GetAccount(ctx, "300000000000000000003"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatal("a failed bulk create left accounts behind")
	}
	for _, b := range bulk {
		mustNil(t, s.DeleteAccount(ctx, b.ID, nil, ev("account.delete")))
	}

	mustNil(t, s.CreateKey(ctx, key("k1", a.ID), nil, ev("key.create")))
	mustNil(t, s.CreateSecret(ctx, secret("s1", a.ID, t0), nil, ev("secret.create")))
	mustNil(t, s.DeleteAccount(ctx, a.ID, nil, ev("account.delete")))
	if secs, err := s.ListSecrets(ctx, a.ID); err != nil || len(secs) != 0 {
		t.Fatalf("secrets of a deleted account: %v, %v", secs, err)
	}
	_, err = s.GetAccount(ctx, a.ID)
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetKey(ctx, "k1")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.DeleteAccount(ctx, a.ID, nil, ev("account.delete")), storage.ErrNotFound)

	evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Limit: 100})
	mustNil(t, err)
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action)
	}
	want := []string{"account.create", "account.update", "account.bulk_create", "account.delete", "account.delete", "key.create", "secret.create", "account.delete"}
	if !slices.Equal(actions, want) {
		t.Fatalf("audit actions = %v, want %v (failed changes must write no event)", actions, want)
	}
}

func testAccountPaging(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for i := range 7 {
		a := account(fmt.Sprintf("1000000000000000000%02d", i), fmt.Sprintf("job%d@proj.example", i))
		if i%2 == 1 {
			a.Project = "other"
		}
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	}
	var ids []string
	after := ""
	for {
		page, err := s.ListAccounts(ctx, storage.ListOptions{After: after, Limit: 3})
		mustNil(t, err)
		if len(page) > 3 {
			t.Fatalf("page of %d accounts, limit 3", len(page))
		}
		for _, a := range page {
			ids = append(ids, a.ID)
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].ID
	}
	if len(ids) != 7 || !slices.IsSorted(ids) {
		t.Fatalf("paged IDs = %v, want 7 sorted", ids)
	}
	other, err := s.ListAccounts(ctx, storage.ListOptions{Project: "other"})
	mustNil(t, err)
	if len(other) != 3 {
		t.Fatalf("project filter: %d accounts, want 3", len(other))
	}
}

func key(id, accountID string) storage.Key {
	return storage.Key{
		ID: id, AccountID: accountID, Algorithm: "RS256", PublicKey: []byte("spki-" + id),
		Origin: storage.KeyOriginGenerated, CreatedAt: t0,
	}
}

func testKeys(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a := account("100000000000000000001", "job@proj.example")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	k1 := key("k1", a.ID)
	k1.Certificate = []byte("cert")
	k2 := key("k2", a.ID)
	k2.CreatedAt = t0.Add(time.Second)
	k2.ExpiresAt = t0.Add(24 * time.Hour)
	k2.Algorithm = "ES256"
	k2.Origin = storage.KeyOriginUploaded
	mustNil(t, s.CreateKey(ctx, k2, nil, ev("key.create")))
	mustNil(t, s.CreateKey(ctx, k1, nil, ev("key.create")))
	wantErr(t, s.CreateKey(ctx, k1, nil, ev("key.create")), storage.ErrAlreadyExists)

	got, err := s.GetKey(ctx, "k2")
	mustNil(t, err)
	if got.AccountID != a.ID || got.Algorithm != "ES256" || string(got.PublicKey) != "spki-k2" || got.Certificate != nil ||
		got.Origin != storage.KeyOriginUploaded || !got.ExpiresAt.Equal(k2.ExpiresAt) {
		t.Fatalf("GetKey = %+v", got)
	}
	keys, err := s.ListKeys(ctx, a.ID)
	mustNil(t, err)
	if len(keys) != 2 || keys[0].ID != "k1" || keys[1].ID != "k2" || string(keys[0].Certificate) != "cert" {
		t.Fatalf("ListKeys = %+v, want k1, k2 oldest first", keys)
	}
	if !keys[1].Expired(t0.Add(25*time.Hour)) || keys[1].Expired(t0) || keys[0].Expired(t0.Add(1e6*time.Hour)) {
		t.Fatal("Key.Expired is wrong")
	}

	_, err = s.UpdateKey(ctx, "k1", func(k storage.Key) (storage.Key, error) {
		k.Disabled = true
		return k, nil
	}, ev("key.disable"))
	mustNil(t, err)
	got, err = s.GetKey(ctx, "k1")
	mustNil(t, err)
	if !got.Disabled {
		t.Fatal("key not disabled")
	}
	_, err = s.UpdateKey(ctx, "nope", func(k storage.Key) (storage.Key, error) { return k, nil }, ev("key.disable"))
	wantErr(t, err, storage.ErrNotFound)

	mustNil(t, s.DeleteKey(ctx, "k1", nil, ev("key.delete")))
	wantErr(t, s.DeleteKey(ctx, "k1", nil, ev("key.delete")), storage.ErrNotFound)
	keys, err = s.ListKeys(ctx, a.ID)
	mustNil(t, err)
	if len(keys) != 1 {
		t.Fatalf("after delete: %d keys, want 1", len(keys))
	}
}

func secret(id, accountID string, created time.Time) storage.Secret {
	return storage.Secret{ID: id, AccountID: accountID, Hash: []byte("hash-" + id), Hint: "…" + id, CreatedAt: created}
}

func testSecrets(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a := account("100000000000000000001", "job@proj.example")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	s2 := secret("s2", a.ID, t0.Add(time.Second))
	s2.ExpiresAt = t0.Add(time.Hour)
	mustNil(t, s.CreateSecret(ctx, s2, nil, ev("secret.create")))
	mustNil(t, s.CreateSecret(ctx, secret("s1", a.ID, t0), nil, ev("secret.create")))
	wantErr(t, s.CreateSecret(ctx, secret("s1", a.ID, t0), nil, ev("secret.create")), storage.ErrAlreadyExists)

	secs, err := s.ListSecrets(ctx, a.ID)
	mustNil(t, err)
	if len(secs) != 2 || secs[0].ID != "s1" || secs[1].ID != "s2" || string(secs[1].Hash) != "hash-s2" || secs[1].Hint != "…s2" ||
		!secs[1].ExpiresAt.Equal(s2.ExpiresAt) || !secs[0].LastUsedAt.IsZero() {
		t.Fatalf("ListSecrets = %+v", secs)
	}
	if !secs[1].Expired(t0.Add(2*time.Hour)) || secs[1].Expired(t0) || secs[0].Expired(t0.Add(1e6*time.Hour)) {
		t.Fatal("Secret.Expired is wrong")
	}
	_, err = s.UpdateSecret(ctx, "s1", func(x storage.Secret) (storage.Secret, error) {
		x.Disabled = true
		return x, nil
	}, nil, ev("secret.disable"))
	mustNil(t, err)
	_, err = s.UpdateSecret(ctx, "nope", func(x storage.Secret) (storage.Secret, error) { return x, nil }, nil, ev("secret.disable"))
	wantErr(t, err, storage.ErrNotFound)

	// Last use moves forward only.
	mustNil(t, s.TouchSecrets(ctx, map[string]time.Time{"s1": t0.Add(time.Minute), "s2": t0.Add(2 * time.Minute)}))
	mustNil(t, s.TouchSecrets(ctx, map[string]time.Time{"s1": t0}))
	mustNil(t, s.TouchSecrets(ctx, nil))
	secs, err = s.ListSecrets(ctx, a.ID)
	mustNil(t, err)
	if !secs[0].Disabled || !secs[0].LastUsedAt.Equal(t0.Add(time.Minute).Truncate(time.Microsecond)) || !secs[1].LastUsedAt.Equal(t0.Add(2*time.Minute).Truncate(time.Microsecond)) {
		t.Fatalf("after update and touch: %+v", secs)
	}

	mustNil(t, s.DeleteSecret(ctx, "s1", nil, ev("secret.delete")))
	wantErr(t, s.DeleteSecret(ctx, "s1", nil, ev("secret.delete")), storage.ErrNotFound)
	secs, err = s.ListSecrets(ctx, a.ID)
	mustNil(t, err)
	if len(secs) != 1 {
		t.Fatalf("after delete: %d secrets, want 1", len(secs))
	}
}

func testAPIs(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	orders := storage.API{Name: "orders", Identifier: "https://orders.internal", Description: "Orders", Scopes: []string{"orders.write", "orders.read"}, CreatedAt: t0}
	mustNil(t, s.CreateAPI(ctx, orders, ev("api.create")))
	if got, err := s.GetAPI(ctx, "orders"); err != nil || got.TokenFormat != storage.TokenJWT || len(got.Introspectors) != 0 {
		t.Fatalf("new API: %+v, %v; want JWT tokens and no introspectors by default", got, err)
	}
	// An introspector added must be an account: one deleted since the
	// caller looked it up would be left naming no account.
	_, err := s.UpdateAPI(ctx, "orders", func(a storage.API) (storage.API, error) {
		a.Introspectors = []string{"100000000000000000009"}
		return a, nil
	}, ev("api.update"))
	wantErr(t, err, storage.ErrNotFound)
	introspector := account("100000000000000000009", "introspector@proj.example")
	introspector.Scopes = nil // holding no scope of the APIs deleted below
	mustNil(t, s.CreateAccount(ctx, introspector, ev("account.create")))
	up, err := s.UpdateAPI(ctx, "orders", func(a storage.API) (storage.API, error) {
		a.TokenFormat, a.Introspectors = storage.TokenOpaque, []string{"100000000000000000009"}
		return a, nil
	}, ev("api.update"))
	mustNil(t, err)
	if !slices.Equal(up.Scopes, orders.Scopes) {
		t.Fatalf("UpdateAPI passed scopes %v to fn, want %v", up.Scopes, orders.Scopes)
	}
	if got, _ := s.GetAPI(ctx, "orders"); got.TokenFormat != storage.TokenOpaque || !slices.Equal(got.Introspectors, []string{"100000000000000000009"}) {
		t.Fatalf("after UpdateAPI: %+v", got)
	}
	_, err = s.UpdateAPI(ctx, "nope", func(a storage.API) (storage.API, error) { return a, nil }, ev("api.update"))
	wantErr(t, err, storage.ErrNotFound)
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}, CreatedAt: t0}, ev("api.create")))

	got, err := s.GetAPI(ctx, "orders")
	mustNil(t, err)
	if got.Identifier != orders.Identifier || got.Description != "Orders" || !slices.Equal(got.Scopes, orders.Scopes) {
		t.Fatalf("GetAPI = %+v, want %+v", got, orders)
	}
	for name, dup := range map[string]storage.API{
		"name":       {Name: "orders", Identifier: "https://x", Scopes: []string{"x.read"}},
		"identifier": {Name: "x", Identifier: "https://orders.internal", Scopes: []string{"x.read"}},
		"scope":      {Name: "y", Identifier: "https://y", Scopes: []string{"y.read", "orders.read"}},
	} {
		t.Run("duplicate "+name, func(t *testing.T) {
			wantErr(t, s.CreateAPI(ctx, dup, ev("api.create")), storage.ErrAlreadyExists)
		})
	}
	// The failed create with a taken scope left nothing behind.
	_, err = s.GetAPI(ctx, "y")
	wantErr(t, err, storage.ErrNotFound)

	all, err := s.ListAPIs(ctx)
	mustNil(t, err)
	if len(all) != 2 || all[0].Name != "billing" || all[1].Name != "orders" || !slices.Equal(all[1].Scopes, orders.Scopes) {
		t.Fatalf("ListAPIs = %+v", all)
	}
	mustNil(t, s.DeleteAPI(ctx, "orders", nil, ev("api.delete")))
	wantErr(t, s.DeleteAPI(ctx, "orders", nil, ev("api.delete")), storage.ErrNotFound)
	// Its scopes are free again.
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "orders2", Identifier: "https://orders2", Scopes: []string{"orders.read"}, CreatedAt: t0}, ev("api.create")))
}

func testTokens(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	tok := storage.TokenRecord{
		Hash: []byte{1, 2, 3}, ID: "jti-1", AccountID: "acct", Subject: "acct", Scope: "orders.read",
		Audience: []string{"https://orders.internal"}, Credential: "secret:s1", Thumbprint: "thumb", JKT: "jkt-1", Actor: "",
		IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
	}
	res, err := s.Commit(ctx, []storage.Write{{Token: &tok, Events: []storage.AuditEvent{ev("token.issued")}}})
	mustNil(t, err)
	mustNil(t, res[0])
	got, err := s.GetToken(ctx, []byte{1, 2, 3})
	mustNil(t, err)
	if got.ID != "jti-1" || got.AccountID != "acct" || got.Scope != "orders.read" || !slices.Equal(got.Audience, tok.Audience) ||
		got.Credential != "secret:s1" || got.Thumbprint != "thumb" || got.JKT != "jkt-1" || !got.ExpiresAt.Equal(tok.ExpiresAt) {
		t.Fatalf("GetToken = %+v", got)
	}
	_, err = s.GetToken(ctx, []byte{9})
	wantErr(t, err, storage.ErrNotFound)
	if byID, err := s.GetTokenByID(ctx, "jti-1"); err != nil || !bytes.Equal(byID.Hash, tok.Hash) || byID.AccountID != "acct" {
		t.Fatalf("GetTokenByID = %+v, %v", byID, err)
	}
	_, err = s.GetTokenByID(ctx, "jti-unknown")
	wantErr(t, err, storage.ErrNotFound)

	// A replayed write stores no token.
	other := tok
	other.Hash, other.ID = []byte{4}, "jti-2"
	_, err = s.Commit(ctx, []storage.Write{jtiWrite("a", "j", "first")})
	mustNil(t, err)
	replay := jtiWrite("a", "j", "replay")
	replay.Token = &other
	res, err = s.Commit(ctx, []storage.Write{replay})
	mustNil(t, err)
	wantErr(t, res[0], storage.ErrReplay)
	_, err = s.GetToken(ctx, []byte{4})
	wantErr(t, err, storage.ErrNotFound)

	// A batch of every size the stores split into statements stores every
	// token of the writes it accepts, and none of a replayed write.
	_, err = s.Commit(ctx, []storage.Write{jtiWrite("b", "used", "first")})
	mustNil(t, err)
	var batch []storage.Write
	for i := range 45 {
		bt := tok
		bt.Hash, bt.ID, bt.Scope = []byte(fmt.Sprintf("batch-%02d", i)), fmt.Sprintf("batch-jti-%d", i), fmt.Sprintf("scope.%d", i)
		w := storage.Write{Token: &bt, Events: []storage.AuditEvent{ev("token.issued")}}
		if i == 17 {
			w.JTIs = []storage.UsedJTI{{Issuer: "b", JTI: "used", ExpiresAt: t0.Add(time.Hour)}}
		}
		batch = append(batch, w)
	}
	res, err = s.Commit(ctx, batch)
	mustNil(t, err)
	for i := range batch {
		got, err := s.GetToken(ctx, []byte(fmt.Sprintf("batch-%02d", i)))
		if i == 17 {
			wantErr(t, res[i], storage.ErrReplay)
			wantErr(t, err, storage.ErrNotFound)
			continue
		}
		mustNil(t, res[i])
		mustNil(t, err)
		if got.ID != fmt.Sprintf("batch-jti-%d", i) || got.Scope != fmt.Sprintf("scope.%d", i) {
			t.Fatalf("batch token %d = %+v", i, got)
		}
	}

	// Revoking records the ID; the opaque token stays, to be found as
	// revoked until it expires.
	revoked, err := s.IsRevoked(ctx, "jti-1")
	mustNil(t, err)
	if revoked {
		t.Fatal("fresh token reported revoked")
	}
	r := storage.Revocation{JTI: "jti-1", AccountID: "acct", RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	mustNil(t, s.Revoke(ctx, r, ev("token.revoke")))
	mustNil(t, s.Revoke(ctx, r, ev("token.revoke"))) // twice is fine
	if got, err := s.GetToken(ctx, []byte{1, 2, 3}); err != nil || got.ID != "jti-1" {
		t.Fatalf("the revoked token by its hash: %+v, %v; want it still there", got, err)
	}
	if got, err := s.GetTokenByID(ctx, "jti-1"); err != nil || got.ID != "jti-1" {
		t.Fatalf("the revoked token by its ID: %+v, %v; want it still there", got, err)
	}
	for _, jti := range []string{"jti-1"} {
		if revoked, err := s.IsRevoked(ctx, jti); err != nil || !revoked {
			t.Fatalf("IsRevoked(%s) = %v, %v", jti, revoked, err)
		}
	}
	// A JWT's ID can be revoked without any stored token.
	mustNil(t, s.Revoke(ctx, storage.Revocation{JTI: "jwt-9", RevokedAt: t0, ExpiresAt: t0.Add(2 * time.Hour)}, ev("token.revoke")))

	// Garbage collection removes what expired, and only that.
	keep := tok
	keep.Hash, keep.ID, keep.ExpiresAt = []byte{5}, "jti-keep", t0.Add(3*time.Hour)
	_, err = s.Commit(ctx, []storage.Write{{Token: &keep}})
	mustNil(t, err)
	n, err := s.DeleteExpired(ctx, t0.Add(150*time.Minute))
	mustNil(t, err)
	if n < 3 { // jti-1 and jwt-9 revocations, the used JTI "j"
		t.Fatalf("DeleteExpired removed %d records, want at least 3", n)
	}
	if revoked, _ := s.IsRevoked(ctx, "jwt-9"); revoked {
		t.Fatal("an expired revocation survived garbage collection")
	}
	if _, err := s.GetToken(ctx, []byte{5}); err != nil {
		t.Fatalf("an unexpired token was collected: %v", err)
	}
}

func testSigningKeys(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	keys, err := s.ListSigningKeys(ctx)
	mustNil(t, err)
	if len(keys) != 0 {
		t.Fatalf("new store has %d signing keys", len(keys))
	}
	cur := storage.SigningKey{ID: "a", Algorithm: "ES256", Sealed: []byte{1, 2, 3}, CreatedAt: t0, ActivatedAt: t0}
	next := storage.SigningKey{ID: "b", Algorithm: "ES256", Sealed: []byte{4, 5}, CreatedAt: t0.Add(time.Second)}
	_, err = s.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{cur, next}, nil
	}, ev("signing_key.rotate"))
	mustNil(t, err)
	keys, err = s.ListSigningKeys(ctx)
	mustNil(t, err)
	if len(keys) != 2 || keys[0].ID != "a" || !keys[0].ActivatedAt.Equal(t0.Truncate(time.Microsecond)) || !keys[1].ActivatedAt.IsZero() ||
		string(keys[1].Sealed) != string(next.Sealed) {
		t.Fatalf("ListSigningKeys = %+v", keys)
	}
	// A failing function leaves the keys alone.
	_, err = s.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
		return nil, errors.New("no")
	}, ev("signing_key.rotate"))
	if err == nil {
		t.Fatal("UpdateSigningKeys ignored the function's error")
	}
	keys, err = s.ListSigningKeys(ctx)
	mustNil(t, err)
	if len(keys) != 2 {
		t.Fatalf("failed update changed the keys: %d", len(keys))
	}
}

// testSigningKeysConcurrent checks that updates are serialized: each sees the
// result of the one before, so no rotation is lost.
func testSigningKeysConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateSigningKeys(ctx, func(old []storage.SigningKey) ([]storage.SigningKey, error) {
				return append(old, storage.SigningKey{ID: fmt.Sprintf("k%d", i), Algorithm: "ES256", Sealed: []byte{1}, CreatedAt: t0}), nil
			}, ev("signing_key.rotate"))
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	keys, err := s.ListSigningKeys(ctx)
	mustNil(t, err)
	if len(keys) != n {
		t.Fatalf("%d keys after %d concurrent appends: updates were lost", len(keys), n)
	}
}

func jtiWrite(issuer, jti string, action string) storage.Write {
	return storage.Write{
		JTIs:   []storage.UsedJTI{{Issuer: issuer, JTI: jti, ExpiresAt: t0.Add(time.Hour)}},
		Events: []storage.AuditEvent{ev(action)},
	}
}

func testCommitJTI(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	res, err := s.Commit(ctx, []storage.Write{
		jtiWrite("acct1", "j1", "first"),
		jtiWrite("acct1", "j1", "same batch replay"),
		jtiWrite("acct2", "j1", "other issuer"),
		{Events: []storage.AuditEvent{ev("no jti")}},
	})
	mustNil(t, err)
	if len(res) != 4 || res[0] != nil || !errors.Is(res[1], storage.ErrReplay) || res[2] != nil || res[3] != nil {
		t.Fatalf("Commit results = %v, want [nil ErrReplay nil nil]", res)
	}
	res, err = s.Commit(ctx, []storage.Write{jtiWrite("acct1", "j1", "later replay")})
	mustNil(t, err)
	if !errors.Is(res[0], storage.ErrReplay) {
		t.Fatalf("replay in a later batch: %v, want ErrReplay", res[0])
	}
	evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{})
	mustNil(t, err)
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action)
	}
	if want := []string{"first", "other issuer", "no jti"}; !slices.Equal(actions, want) {
		t.Fatalf("events = %v, want %v (a replayed write writes no event)", actions, want)
	}

	// Expired JTIs are collected, after which the ID may be used again.
	n, err := s.DeleteExpired(ctx, t0.Add(30*time.Minute))
	mustNil(t, err)
	if n != 0 {
		t.Fatalf("deleted %d unexpired JTIs", n)
	}
	n, err = s.DeleteExpired(ctx, t0.Add(2*time.Hour))
	mustNil(t, err)
	if n != 2 {
		t.Fatalf("deleted %d expired JTIs, want 2", n)
	}
	res, err = s.Commit(ctx, []storage.Write{jtiWrite("acct1", "j1", "after expiry")})
	mustNil(t, err)
	if res[0] != nil {
		t.Fatalf("reuse after expiry: %v", res[0])
	}

	// A write with two JTIs, one of them used, takes neither.
	two := jtiWrite("acct3", "fresh", "two jtis")
	two.JTIs = append(two.JTIs, storage.UsedJTI{Issuer: "acct1", JTI: "j1", ExpiresAt: t0.Add(time.Hour)})
	res, err = s.Commit(ctx, []storage.Write{two})
	mustNil(t, err)
	if !errors.Is(res[0], storage.ErrReplay) {
		t.Fatalf("write with a used JTI: %v, want ErrReplay", res[0])
	}
	res, err = s.Commit(ctx, []storage.Write{jtiWrite("acct3", "fresh", "fresh still free")})
	mustNil(t, err)
	if res[0] != nil {
		t.Fatalf("the unused JTI of a refused write stayed taken: %v", res[0])
	}
}

// testCommitJTIRefusedFrees: a write refused for a JTI used before does not
// keep a later write of the same batch from taking its other JTIs, as if
// the writes had been committed one by one.
func testCommitJTIRefusedFrees(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	res, err := s.Commit(ctx, []storage.Write{jtiWrite("acct", "used", "before")})
	mustNil(t, err)
	mustNil(t, res[0])
	a := jtiWrite("acct", "used", "replay")
	a.JTIs = append(a.JTIs, storage.UsedJTI{Issuer: "dpop:k", JTI: "shared", ExpiresAt: t0.Add(time.Hour)})
	b := jtiWrite("dpop:k", "shared", "fresh")
	b.JTIs = append(b.JTIs, storage.UsedJTI{Issuer: "acct", JTI: "other", ExpiresAt: t0.Add(time.Hour)})
	res, err = s.Commit(ctx, []storage.Write{a, b})
	mustNil(t, err)
	if !errors.Is(res[0], storage.ErrReplay) || res[1] != nil {
		t.Fatalf("Commit results = %v, want [ErrReplay nil]: the refused write's JTI is no replay for the next", res)
	}
	res, err = s.Commit(ctx, []storage.Write{jtiWrite("dpop:k", "shared", "again"), jtiWrite("acct", "other", "again")})
	mustNil(t, err)
	if !errors.Is(res[0], storage.ErrReplay) || !errors.Is(res[1], storage.ErrReplay) {
		t.Fatalf("after the accepted write: %v, want both ErrReplay", res)
	}
}

// testCommitJTIBatch commits batches of every size the stores split into
// statements, with JTIs used before, used twice in the batch, and fresh.
func testCommitJTIBatch(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var before []storage.Write
	usedBefore := map[string]bool{}
	for i := 0; i < 80; i += 7 {
		before = append(before, jtiWrite("acct", fmt.Sprintf("j%d", i), "before"))
		usedBefore[fmt.Sprintf("j%d", i)] = true
	}
	_, err := s.Commit(ctx, before)
	mustNil(t, err)
	for _, size := range []int{1, 8, 9, 33, 45, 77} {
		var (
			writes []storage.Write
			want   []bool // true: accepted
		)
		seen := map[string]bool{}
		for i := range size {
			jti := fmt.Sprintf("j%d", i)
			if i%5 == 4 {
				jti = fmt.Sprintf("j%d", i-1) // the write before asks for it too
			}
			w := jtiWrite("acct", jti, "use")
			if size > 1 && i%11 == 10 {
				w = storage.Write{Events: []storage.AuditEvent{ev("no jti")}}
				want = append(want, true)
			} else {
				used := seen[w.JTIs[0].JTI] || usedBefore[w.JTIs[0].JTI]
				seen[w.JTIs[0].JTI] = true
				want = append(want, !used)
			}
			writes = append(writes, w)
		}
		res, err := s.Commit(ctx, writes)
		mustNil(t, err)
		for i, r := range res {
			if got := r == nil; got != want[i] {
				t.Fatalf("size %d write %d (%v): accepted=%v, want %v", size, i, writes[i].JTIs, got, want[i])
			}
			if r != nil && !errors.Is(r, storage.ErrReplay) {
				t.Fatalf("size %d write %d: %v", size, i, r)
			}
		}
		// Whatever was accepted is used now.
		for i, w := range writes {
			if len(w.JTIs) == 0 || !want[i] {
				continue
			}
			res, err := s.Commit(ctx, []storage.Write{w})
			mustNil(t, err)
			if !errors.Is(res[0], storage.ErrReplay) {
				t.Fatalf("size %d: JTI %s accepted twice", size, w.JTIs[0].JTI)
			}
		}
		// Clear the batch's JTIs for the next size.
		_, err = s.DeleteExpired(ctx, t0.Add(2*time.Hour))
		mustNil(t, err)
		_, err = s.Commit(ctx, before)
		mustNil(t, err)
	}
}

// testCommitJTIConcurrent races many writers for one JTI: exactly one wins.
func testCommitJTIConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const n = 16
	var (
		wg   sync.WaitGroup
		wins atomic.Int32
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Commit(ctx, []storage.Write{jtiWrite("acct", "race", "use")})
			if err != nil {
				t.Error(err)
				return
			}
			switch {
			case res[0] == nil:
				wins.Add(1)
			case !errors.Is(res[0], storage.ErrReplay):
				t.Errorf("result %v, want nil or ErrReplay", res[0])
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d of %d concurrent uses of one JTI succeeded, want 1", wins.Load(), n)
	}
}

// testCommitJTIsCrossed: writes of two JTIs each (a client assertion and a
// DPoP proof), committed at once with the same JTIs in opposite orders,
// never fail the commit (a deadlock, on PostgreSQL), and exactly one of
// each pair wins; other writes in their batches are not held up.
func testCommitJTIsCrossed(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	// The same two JTIs, in either order.
	two := func(round int, reversed bool) storage.Write {
		w := jtiWrite("acct", fmt.Sprintf("x%d", round), "use")
		w.JTIs = append(w.JTIs, storage.UsedJTI{Issuer: "dpop:k", JTI: fmt.Sprintf("y%d", round), ExpiresAt: t0.Add(time.Hour)})
		if reversed {
			slices.Reverse(w.JTIs)
		}
		return w
	}
	for round := range 40 {
		batches := [][]storage.Write{
			{two(round, false), jtiWrite("other", fmt.Sprintf("a%d", round), "use"), two(round, true)},
			{jtiWrite("other", fmt.Sprintf("b%d", round), "use"), two(round, true), two(round, false)},
		}
		var (
			wg   sync.WaitGroup
			wins atomic.Int32
		)
		for _, b := range batches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.Commit(ctx, b)
				if err != nil {
					t.Errorf("round %d: Commit: %v", round, err)
					return
				}
				for i, r := range res {
					switch {
					case len(b[i].JTIs) == 1 && r != nil:
						t.Errorf("round %d: a write of a fresh JTI refused: %v", round, r)
					case len(b[i].JTIs) == 2 && r == nil:
						wins.Add(1)
					case r != nil && !errors.Is(r, storage.ErrReplay):
						t.Errorf("round %d: %v, want nil or ErrReplay", round, r)
					}
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d writes of the same two JTIs succeeded, want 1", round, wins.Load())
		}
	}
}

// testDeleteIntrospectorsConcurrent: accounts deleted at once each leave
// the introspector lists of the APIs they were on; neither deletion writes
// back a list that still names the other.
func testDeleteIntrospectorsConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for _, name := range []string{"orders", "stock"} {
		mustNil(t, s.CreateAPI(ctx, storage.API{Name: name, Identifier: "https://" + name, Scopes: []string{name + ".read"}, CreatedAt: t0}, ev("api.create")))
	}
	for round := range 10 {
		var ids []string
		for i := range 4 {
			a := holder(100*round+i+1, false)
			mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
			ids = append(ids, a.ID)
		}
		for _, name := range []string{"orders", "stock"} {
			_, err := s.UpdateAPI(ctx, name, func(a storage.API) (storage.API, error) { a.Introspectors = ids; return a, nil }, ev("api.update"))
			mustNil(t, err)
		}
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.DeleteAccount(ctx, id, nil, ev("account.delete")); err != nil {
					t.Errorf("round %d: DeleteAccount: %v", round, err)
				}
			}()
		}
		wg.Wait()
		for _, name := range []string{"orders", "stock"} {
			a, err := s.GetAPI(ctx, name)
			mustNil(t, err)
			if len(a.Introspectors) != 0 {
				t.Fatalf("round %d: %s still names deleted introspectors %v", round, name, a.Introspectors)
			}
		}
	}
}

// raceUpdates runs update(0) and update(1) at once on s, update(first)
// first: it reads the row (update calls read from its fn), then waits in
// its fn until the other has read the row too or, if the other's read
// waits for its lock, until s shows it waiting (see Watched) or peerBound
// has passed. Without a lock on the row both read the same version, and
// the later write overwrites the earlier one.
func raceUpdates(s storage.Storage, first int, update func(i int, read func()) error) error {
	var (
		wg     sync.WaitGroup
		errs   = make([]error, 2)
		in     = []chan struct{}{make(chan struct{}), make(chan struct{})}
		done   = []chan struct{}{make(chan struct{}), make(chan struct{})}
		second = 1 - first
		// Only the second can wait for the first: nothing else runs.
		waited = waitMark(s)
	)
	wg.Go(func() {
		defer close(done[first])
		errs[first] = update(first, func() {
			close(in[first])
			awaitPeer(in[second], done[second], waited)
		})
	})
	select {
	case <-in[first]:
	case <-done[first]: // it failed before reading
	}
	wg.Go(func() {
		defer close(done[second])
		errs[second] = update(second, func() { close(in[second]) })
	})
	wg.Wait()
	return errors.Join(errs...)
}

// testUpdateConcurrent: two updates of one key, secret, organization or
// API at once, each changing something else, both take effect: the later
// applies its fn to what the earlier committed, never to what it read
// before (a lost update re-enabled a key or secret disabled while its
// expiry was changed, or unblocked one of two scopes blocked at once; the
// admin API's If-Match, checked in fn, relies on it).
func testUpdateConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a := account("100000000000000000001", "job@proj.example")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	expires := t0.Add(time.Hour)
	blocked := []string{"mail.send", "drive.read"}
	tests := []struct {
		name   string
		create func(id string) error
		// update makes change i (0 or 1) of the row id, calling read when
		// its fn is given the row.
		update func(id string, i int, read func()) error
		// check returns an error unless both changes took effect.
		check func(id string) error
	}{
		{
			name:   "key",
			create: func(id string) error { return s.CreateKey(ctx, key(id, a.ID), nil, ev("key.create")) },
			update: func(id string, i int, read func()) error {
				_, err := s.UpdateKey(ctx, id, func(k storage.Key) (storage.Key, error) {
					read()
					if i == 0 {
						k.Disabled = true
					} else {
						k.ExpiresAt = expires
					}
					return k, nil
				}, ev("key.update"))
				return err
			},
			check: func(id string) error {
				k, err := s.GetKey(ctx, id)
				if err == nil && (!k.Disabled || !k.ExpiresAt.Equal(expires)) {
					err = fmt.Errorf("disabled %v, expires %v", k.Disabled, k.ExpiresAt)
				}
				return err
			},
		},
		{
			name:   "secret",
			create: func(id string) error { return s.CreateSecret(ctx, secret(id, a.ID, t0), nil, ev("secret.create")) },
			update: func(id string, i int, read func()) error {
				_, err := s.UpdateSecret(ctx, id, func(x storage.Secret) (storage.Secret, error) {
					read()
					if i == 0 {
						x.Disabled = true
					} else {
						x.ExpiresAt = expires
					}
					return x, nil
				}, nil, ev("secret.update"))
				return err
			},
			check: func(id string) error {
				secs, err := s.ListSecrets(ctx, a.ID)
				if err != nil {
					return err
				}
				i := slices.IndexFunc(secs, func(x storage.Secret) bool { return x.ID == id })
				if i < 0 {
					return fmt.Errorf("secret %s not listed", id)
				}
				if x := secs[i]; !x.Disabled || !x.ExpiresAt.Equal(expires) {
					return fmt.Errorf("disabled %v, expires %v", x.Disabled, x.ExpiresAt)
				}
				return nil
			},
		},
		{
			name: "org",
			create: func(id string) error {
				return s.CreateOrg(ctx, storage.Org{Domain: id, CreatedAt: t0}, ev("org.create"))
			},
			update: func(id string, i int, read func()) error {
				_, _, err := s.UpdateOrg(ctx, id, func(o storage.Org, _ []storage.ProjectOrg) (storage.Org, error) {
					read()
					o.BlockedScopes = append(o.BlockedScopes, blocked[i])
					return o, nil
				}, ev("org.policy"))
				return err
			},
			check: func(id string) error {
				o, err := s.GetOrg(ctx, id)
				if err == nil && (len(o.BlockedScopes) != 2 || !slices.Contains(o.BlockedScopes, blocked[0]) || !slices.Contains(o.BlockedScopes, blocked[1])) {
					err = fmt.Errorf("blocked scopes %v, want %v", o.BlockedScopes, blocked)
				}
				return err
			},
		},
		{
			name: "api",
			create: func(id string) error {
				return s.CreateAPI(ctx, storage.API{Name: id, Identifier: "https://" + id, Scopes: []string{id + ".read"}, CreatedAt: t0}, ev("api.create"))
			},
			update: func(id string, i int, read func()) error {
				_, err := s.UpdateAPI(ctx, id, func(x storage.API) (storage.API, error) {
					read()
					if i == 0 {
						x.Description = "changed"
					} else {
						x.Introspectors = []string{a.ID}
					}
					return x, nil
				}, ev("api.update"))
				return err
			},
			check: func(id string) error {
				x, err := s.GetAPI(ctx, id)
				if err == nil && (x.Description != "changed" || !slices.Equal(x.Introspectors, []string{a.ID})) {
					err = fmt.Errorf("description %q, introspectors %v", x.Description, x.Introspectors)
				}
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for first := range 2 { // change 0 reads first, then change 1
				id := fmt.Sprintf("%s%d.example", tt.name, first)
				mustNil(t, tt.create(id))
				mustNil(t, raceUpdates(s, first, func(i int, read func()) error { return tt.update(id, i, read) }))
				if err := tt.check(id); err != nil {
					t.Fatalf("%s read first: after concurrent updates: %v: an update was lost", []string{"change 0", "change 1"}[first], err)
				}
			}
		})
	}
}

func verifyAll(t *testing.T, s storage.Storage) []storage.AuditEvent {
	t.Helper()
	var (
		all  []storage.AuditEvent
		seq  int64
		prev = []byte{}
	)
	for {
		page, err := s.ListAuditEvents(context.Background(), storage.AuditFilter{AfterSeq: seq, Limit: 50})
		mustNil(t, err)
		if len(page) == 0 {
			return all
		}
		seq, prev, err = storage.VerifyChain(seq, prev, page)
		if err != nil {
			t.Fatalf("audit chain does not verify: %v", err)
		}
		all = append(all, page...)
	}
}

func testAuditChain(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a := account("100000000000000000001", "job@proj.example")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	e := ev("token.issued")
	e.AccountID = a.ID
	e.Source = "127.0.0.1"
	e.Data = map[string]string{"grant": "jwt-bearer", "scope": "orders.read"}
	_, err := s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{e, ev("token.refused")}}})
	mustNil(t, err)
	evs := verifyAll(t, s)
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	got := evs[1]
	if got.Seq != 2 || got.AccountID != a.ID || got.Source != "127.0.0.1" || got.Data["grant"] != "jwt-bearer" ||
		!got.Time.Equal(storage.NormalizeAuditTime(t0)) || got.Outcome != storage.OutcomeSuccess {
		t.Fatalf("event = %+v", got)
	}
	// Tampering with a stored event breaks the chain.
	tampered := slices.Clone(evs)
	tampered[1].Data = map[string]string{"grant": "client_credentials", "scope": "orders.read"}
	if _, _, err := storage.VerifyChain(0, []byte{}, tampered); err == nil {
		t.Fatal("VerifyChain accepted an altered event")
	}
	if _, _, err := storage.VerifyChain(0, []byte{}, slices.Delete(slices.Clone(evs), 1, 2)); err == nil {
		t.Fatal("VerifyChain accepted a chain with an event removed")
	}
}

// testAuditTextNotUTF8: an event whose hashed text columns hold bytes
// that are not UTF-8 is appended with U+FFFD in their place, and verifies.
// SQLite stored the bytes, which the chain hashes all as one escape, so
// one could be swapped for another unnoticed; PostgreSQL refused them,
// and with them every write of the batch.
func testAuditTextNotUTF8(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	e := storage.AuditEvent{Time: t0, Action: "token.\xff", Outcome: "fail\xc3", AccountID: "sa-\xfe", Actor: "op \xff\xfe", Source: "\x80:1"}
	_, err := s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{e}}})
	mustNil(t, err)
	evs := verifyAll(t, s)
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	got := evs[0]
	if got.Action != "token.\uFFFD" || got.Outcome != "fail\uFFFD" || got.AccountID != "sa-\uFFFD" || got.Actor != "op \uFFFD" || got.Source != "\uFFFD:1" {
		t.Errorf("stored %q %q %q %q %q, want U+FFFD for each run of bytes not UTF-8", got.Action, got.Outcome, got.AccountID, got.Actor, got.Source)
	}
}

// testAuditTimeEpoch: an event stamped at Unix time 0, or at the zero
// time, reads back with the time it was hashed with, and verifies. Both
// were stored as 0, which read back as the zero time, so an event at Unix
// time 0 never verified.
func testAuditTimeEpoch(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	times := []time.Time{time.Unix(0, 0), {}, time.UnixMicro(-1), time.UnixMicro(1)}
	evs := make([]storage.AuditEvent, len(times))
	for i, at := range times {
		evs[i] = storage.AuditEvent{Time: at, Action: "token.issued", Outcome: storage.OutcomeSuccess}
	}
	_, err := s.Commit(ctx, []storage.Write{{Events: evs}})
	mustNil(t, err)
	got := verifyAll(t, s)
	if len(got) != len(times) {
		t.Fatalf("%d events, want %d", len(got), len(times))
	}
	for i, e := range got {
		if !e.Time.Equal(times[i]) || e.Time.IsZero() != times[i].IsZero() {
			t.Errorf("event %d: time %v, want %v", e.Seq, e.Time, times[i])
		}
	}
}

func testSealedValues(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	_, err := s.GetSealedValue(ctx, "pepper")
	wantErr(t, err, storage.ErrNotFound)
	v := storage.SealedValue{Name: "pepper", Sealed: []byte{1, 2, 3}, CreatedAt: t0}
	mustNil(t, s.CreateSealedValue(ctx, v, ev("sealed_value.create")))
	wantErr(t, s.CreateSealedValue(ctx, storage.SealedValue{Name: "pepper", Sealed: []byte{9}, CreatedAt: t0}, ev("sealed_value.create")),
		storage.ErrAlreadyExists)
	got, err := s.GetSealedValue(ctx, "pepper")
	mustNil(t, err)
	if got.Name != "pepper" || !bytes.Equal(got.Sealed, v.Sealed) || !got.CreatedAt.Equal(t0) {
		t.Fatalf("got %+v, want %+v", got, v)
	}
	mustNil(t, s.CreateSealedValue(ctx, storage.SealedValue{Name: "another", Sealed: []byte{4}, CreatedAt: t0}, ev("sealed_value.create")))
	all, err := s.ListSealedValues(ctx)
	mustNil(t, err)
	if len(all) != 2 || all[0].Name != "another" || all[1].Name != "pepper" {
		t.Fatalf("list = %+v", all)
	}
	if evs := verifyAll(t, s); len(evs) != 2 {
		t.Fatalf("%d audit events, want one per created value", len(evs))
	}
}

// testReseal replaces every sealed item in one transaction, or none.
func testReseal(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	_, err := s.UpdateSigningKeys(ctx, func([]storage.SigningKey) ([]storage.SigningKey, error) {
		return []storage.SigningKey{
			{ID: "k1", Algorithm: "ES256", Sealed: []byte("k1-old"), CreatedAt: t0, ActivatedAt: t0},
			{ID: "k2", Algorithm: "ES256", Sealed: []byte("k2-old"), CreatedAt: t0},
		}, nil
	}, ev("signing_key.create"))
	mustNil(t, err)
	mustNil(t, s.CreateSealedValue(ctx, storage.SealedValue{Name: "pepper", Sealed: []byte("pepper-old"), CreatedAt: t0}, ev("sealed_value.create")))

	// A failure half-way changes nothing.
	boom := errors.New("cannot open")
	err = s.Reseal(ctx, func(aad string, sealed []byte) ([]byte, error) {
		if aad == storage.SealedValueAAD("pepper") {
			return nil, boom
		}
		return []byte("changed"), nil
	}, ev("master_key.rotate"))
	wantErr(t, err, boom)
	keys, err := s.ListSigningKeys(ctx)
	mustNil(t, err)
	if string(keys[0].Sealed) != "k1-old" || string(keys[1].Sealed) != "k2-old" {
		t.Fatalf("a failed reseal changed the signing keys: %+v", keys)
	}

	var seen []string
	mustNil(t, s.Reseal(ctx, func(aad string, sealed []byte) ([]byte, error) {
		seen = append(seen, aad)
		return []byte(strings.Replace(string(sealed), "-old", "-new", 1)), nil
	}, ev("master_key.rotate")))
	slices.Sort(seen)
	if want := []string{"k1", "k2", storage.SealedValueAAD("pepper")}; !slices.Equal(seen, want) {
		t.Fatalf("resealed %v, want %v", seen, want)
	}
	keys, err = s.ListSigningKeys(ctx)
	mustNil(t, err)
	if string(keys[0].Sealed) != "k1-new" || string(keys[1].Sealed) != "k2-new" || !keys[0].ActivatedAt.Equal(t0) || !keys[1].ActivatedAt.IsZero() {
		t.Fatalf("signing keys after reseal: %+v", keys)
	}
	v, err := s.GetSealedValue(ctx, "pepper")
	mustNil(t, err)
	if string(v.Sealed) != "pepper-new" {
		t.Fatalf("pepper after reseal: %q", v.Sealed)
	}
	evs := verifyAll(t, s)
	if last := evs[len(evs)-1]; last.Action != "master_key.rotate" {
		t.Fatalf("last audit event %+v", last)
	}
}

// testAuditPrune prunes the oldest events: the rest still verifies, with
// the audit.prune event accounting for what went.
// testAuditPruneBeforeEpoch: a prune's cut is compared with the times as
// stored, to the microsecond, whatever it is: a cut at the zero time (a
// --before of 0001-01-01T00:00:00Z) prunes nothing, and one at Unix time 0
// the events before it. The zero time was taken as 0, so the first cut
// pruned every event before 1970.
func testAuditPruneBeforeEpoch(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	evs := []storage.AuditEvent{ev("zero time"), ev("before 1970"), ev("now"), ev("later")}
	evs[0].Time, evs[1].Time, evs[3].Time = time.Time{}, time.Unix(-1, 0), t0.Add(time.Hour)
	_, err := s.Commit(ctx, []storage.Write{{Events: evs}})
	mustNil(t, err)
	prune := storage.AuditEvent{Time: t0.Add(2 * time.Hour), Outcome: storage.OutcomeSuccess, Actor: "operator"}
	for _, step := range []struct {
		cut  time.Time
		want int64
	}{{time.Time{}, 0}, {time.Unix(0, 0), 2}} {
		n, err := s.PruneAudit(ctx, step.cut, storage.PruneLimits{}, prune)
		mustNil(t, err)
		if n != step.want {
			t.Fatalf("a prune before %v deleted %d events, want %d", step.cut, n, step.want)
		}
	}
}

func testAuditPrune(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for i := range 10 {
		e := ev(fmt.Sprintf("event.%d", i))
		e.Time = t0.Add(time.Duration(i) * time.Hour)
		_, err := s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{e}}})
		mustNil(t, err)
	}
	prune := storage.AuditEvent{Time: t0.Add(10 * time.Hour), Outcome: storage.OutcomeSuccess, Actor: "operator", Data: map[string]string{"before": "5h"}}
	cut := t0.Add(5 * time.Hour)
	for _, step := range []struct {
		limits storage.PruneLimits
		want   int64
	}{
		{storage.PruneLimits{MaxEvents: 2}, 2},  // events 1 and 2
		{storage.PruneLimits{ThroughSeq: 4}, 2}, // 3 and 4
		{storage.PruneLimits{}, 1},              // 5, the last before the cut
	} {
		n, err := s.PruneAudit(ctx, cut, step.limits, prune)
		mustNil(t, err)
		if n != step.want {
			t.Fatalf("with %+v pruned %d events, want %d", step.limits, n, step.want)
		}
	}
	c, err := storage.VerifyLog(ctx, s)
	mustNil(t, err)
	if c.FirstSeq != 6 || c.HeadSeq != 13 || c.Events != 8 || len(c.Prunes) != 3 {
		t.Fatalf("after pruning: %+v, want events 6 to 13 with 3 prune events", c)
	}
	evs := listAfter(t, s, 5)
	last := evs[len(evs)-1]
	if last.Action != storage.ActionAuditPrune || last.Actor != "operator" || last.Data["through_seq"] != "5" || last.Data["count"] != "1" || last.Data["before"] != "5h" {
		t.Fatalf("prune event %+v", last)
	}
	// Nothing older than the cut is left: nothing is written.
	n, err := s.PruneAudit(ctx, cut, storage.PruneLimits{}, prune)
	mustNil(t, err)
	if c2, _ := storage.VerifyLog(ctx, s); n != 0 || c2.HeadSeq != 13 {
		t.Fatalf("a second prune deleted %d and moved the head to %d", n, c2.HeadSeq)
	}
	// A cut after every event keeps the newest, so the chain goes on.
	n, err = s.PruneAudit(ctx, t0.Add(100*time.Hour), storage.PruneLimits{}, prune)
	mustNil(t, err)
	if n != 7 {
		t.Fatalf("pruned %d, want all but the newest", n)
	}
	_, err = s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{ev("after")}}})
	mustNil(t, err)
	c, err = storage.VerifyLog(ctx, s)
	mustNil(t, err)
	if c.FirstSeq != 13 || c.HeadSeq != 15 || c.Events != 3 {
		t.Fatalf("after pruning all but the newest: %+v", c)
	}
}

// listAfter lists the events after seq.
func listAfter(t *testing.T, s storage.Storage, seq int64) []storage.AuditEvent {
	t.Helper()
	evs, err := s.ListAuditEvents(context.Background(), storage.AuditFilter{AfterSeq: seq, Limit: 1000})
	mustNil(t, err)
	return evs
}

// testAuditBatch commits batches of every size the stores split into
// statements, prepared and not, and reads every event back in order.
func testAuditBatch(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var want []string
	for _, size := range []int{1, 7, 8, 9, 31, 32, 33, 45, 77} {
		var writes []storage.Write
		for i := range size {
			e := ev("token.issued")
			e.Data = map[string]string{"n": fmt.Sprintf("%d/%d", i, size), "note": `<&"quoted">`}
			e.Source = fmt.Sprintf("10.0.0.%d", i%256)
			if i%2 == 0 {
				e.Prepare()
			}
			want = append(want, e.Data["n"])
			if i%3 == 0 || len(writes) == 0 {
				writes = append(writes, storage.Write{})
			}
			writes[len(writes)-1].Events = append(writes[len(writes)-1].Events, e)
		}
		res, err := s.Commit(ctx, writes)
		mustNil(t, err)
		for _, err := range res {
			mustNil(t, err)
		}
	}
	evs := verifyAll(t, s)
	if len(evs) != len(want) {
		t.Fatalf("%d events, want %d", len(evs), len(want))
	}
	for i, e := range evs {
		if e.Seq != int64(i+1) || e.Data["n"] != want[i] || e.Data["note"] != `<&"quoted">` || !e.Time.Equal(storage.NormalizeAuditTime(t0)) {
			t.Fatalf("event %d = %+v, want data n=%s", i, e, want[i])
		}
	}
}

func testAuditChainConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				var err error
				if j%3 == 0 {
					a := account(fmt.Sprintf("2%02d%018d", i, j), fmt.Sprintf("j%d-%d@p.example", i, j))
					err = s.CreateAccount(ctx, a, ev("account.create"))
				} else {
					_, err = s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{ev("token.issued"), ev("token.issued")}}})
				}
				if err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	evs := verifyAll(t, s)
	if want := 8 * (4 + 6*2); len(evs) != want {
		t.Fatalf("%d events, want %d", len(evs), want)
	}
}

// auditFilterCase is a filter of the audit log and the sequence numbers
// of the events it selects, in the order listed.
type auditFilterCase struct {
	name string
	f    storage.AuditFilter
	want []int64
}

// checkAuditFilters lists the audit events of each case's filter, in a
// subtest, and compares their sequence numbers with the case's.
func checkAuditFilters(t *testing.T, s storage.Storage, tests []auditFilterCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := s.ListAuditEvents(context.Background(), tt.f)
			mustNil(t, err)
			if got := seqs(evs); !slices.Equal(got, tt.want) {
				t.Fatalf("seqs = %v, want %v", got, tt.want)
			}
		})
	}
}

// seqs returns the sequence numbers of evs, nil for none.
func seqs(evs []storage.AuditEvent) []int64 {
	var s []int64
	for _, e := range evs {
		s = append(s, e.Seq)
	}
	return s
}

// testAuditTimeBounds: since (inclusive), until (exclusive) and a prune's
// cut compare with the events' times to the nanosecond, though the stores
// keep microseconds. A bound a fraction of a microsecond after an event's
// time was rounded down to it: since took that event in, until and the
// prune's cut left it out.
func testAuditTimeBounds(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	evs := []storage.AuditEvent{ev("first"), ev("second"), ev("third")}
	evs[1].Time, evs[2].Time = t0.Add(time.Minute), t0.Add(2*time.Minute)
	_, err := s.Commit(ctx, []storage.Write{{Events: evs}})
	mustNil(t, err)
	at := t0.Add(time.Minute) // the second event's time
	tests := []auditFilterCase{
		{"since at an event", storage.AuditFilter{Since: new(at)}, []int64{2, 3}},
		{"since a nanosecond before an event", storage.AuditFilter{Since: new(at.Add(-time.Nanosecond))}, []int64{2, 3}},
		{"since a nanosecond after an event", storage.AuditFilter{Since: new(at.Add(time.Nanosecond))}, []int64{3}},
		{"since 999 ns after an event", storage.AuditFilter{Since: new(at.Add(999 * time.Nanosecond))}, []int64{3}},
		{"until at an event", storage.AuditFilter{Until: new(at)}, []int64{1}},
		{"until a nanosecond before an event", storage.AuditFilter{Until: new(at.Add(-time.Nanosecond))}, []int64{1}},
		{"until a nanosecond after an event", storage.AuditFilter{Until: new(at.Add(time.Nanosecond))}, []int64{1, 2}},
		{"newest until a nanosecond after an event", storage.AuditFilter{Newest: true, Until: new(at.Add(time.Nanosecond))}, []int64{2, 1}},
		{"since and until around an event", storage.AuditFilter{Since: new(at.Add(-time.Nanosecond)), Until: new(at.Add(time.Nanosecond))}, []int64{2}},
		{"since and until within a microsecond", storage.AuditFilter{Since: new(at.Add(time.Nanosecond)), Until: new(at.Add(2 * time.Nanosecond))}, nil},
		{"since and until within the microsecond after an event", storage.AuditFilter{Since: new(at.Add(time.Nanosecond)), Until: new(at.Add(time.Microsecond))}, nil},
		{"since and until within the microsecond before an event", storage.AuditFilter{Since: new(at.Add(-999 * time.Nanosecond)), Until: new(at)}, nil},
		{"since and until a nanosecond either side of an event", storage.AuditFilter{Since: new(at.Add(-time.Nanosecond)), Until: new(at.Add(time.Nanosecond))}, []int64{2}},
	}
	checkAuditFilters(t, s, tests)
	// storage.AuditTimesBetween, by which a long poll tells a range that
	// no event can match, agrees with the store: each range with a stored
	// time in it (an event's, a microsecond after or before one's) holds
	// one by it, and each without none.
	for _, tt := range tests {
		if tt.f.Since == nil || tt.f.Until == nil || !tt.f.Since.Before(*tt.f.Until) {
			continue
		}
		if got, want := storage.AuditTimesBetween(*tt.f.Since, *tt.f.Until), tt.want != nil; got != want {
			t.Errorf("%s: AuditTimesBetween = %v, want %v", tt.name, got, want)
		}
	}
	// A prune deletes the events before its cut, the one a nanosecond
	// before it too.
	prune := storage.AuditEvent{Time: t0.Add(time.Hour), Outcome: storage.OutcomeSuccess, Actor: "operator"}
	n, err := s.PruneAudit(ctx, at.Add(time.Nanosecond), storage.PruneLimits{}, prune)
	mustNil(t, err)
	if n != 2 {
		t.Fatalf("a prune before %v deleted %d events, want 2 (those at %v and %v)", at.Add(time.Nanosecond), n, t0, at)
	}
}

// testAuditTimeBoundsZero: the zero time is a bound like any other, as it
// is a prune's cut (testAuditPruneBeforeEpoch): until the zero time
// selects only the events before it, not every event, and since the zero
// time leaves those out. It was taken for no bound.
func testAuditTimeBoundsZero(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	zero := time.Time{}
	evs := []storage.AuditEvent{ev("before the zero time"), ev("zero time"), ev("before 1970"), ev("now")}
	evs[0].Time, evs[1].Time, evs[2].Time = zero.Add(-time.Second), zero, time.Unix(-1, 0)
	_, err := s.Commit(ctx, []storage.Write{{Events: evs}})
	mustNil(t, err)
	tests := []auditFilterCase{
		{"no bound", storage.AuditFilter{}, []int64{1, 2, 3, 4}},
		{"until the zero time", storage.AuditFilter{Until: new(zero)}, []int64{1}},
		{"since the zero time", storage.AuditFilter{Since: new(zero)}, []int64{2, 3, 4}},
		{"since and until the zero time", storage.AuditFilter{Since: new(zero), Until: new(zero)}, nil},
		{"newest until the zero time", storage.AuditFilter{Newest: true, Until: new(zero)}, []int64{1}},
		{"until Unix time 0", storage.AuditFilter{Until: new(time.Unix(0, 0))}, []int64{1, 2, 3}},
		{"since Unix time 0", storage.AuditFilter{Since: new(time.Unix(0, 0))}, []int64{4}},
	}
	checkAuditFilters(t, s, tests)
}

func testAuditFilter(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mk := func(action, outcome, acct string, at time.Time) storage.AuditEvent {
		return storage.AuditEvent{Time: at, Action: action, Outcome: outcome, AccountID: acct}
	}
	_, err := s.Commit(ctx, []storage.Write{{Events: []storage.AuditEvent{
		mk("token.issued", storage.OutcomeSuccess, "a", t0),
		mk("token.refused", storage.OutcomeFailure, "a", t0.Add(time.Minute)),
		mk("token.issued", storage.OutcomeSuccess, "b", t0.Add(2*time.Minute)),
	}}})
	mustNil(t, err)
	tests := []auditFilterCase{
		{"all", storage.AuditFilter{}, []int64{1, 2, 3}},
		{"account", storage.AuditFilter{AccountID: "a"}, []int64{1, 2}},
		{"action", storage.AuditFilter{Action: "token.issued"}, []int64{1, 3}},
		{"outcome", storage.AuditFilter{Outcome: storage.OutcomeFailure}, []int64{2}},
		{"since", storage.AuditFilter{Since: new(t0.Add(time.Minute))}, []int64{2, 3}},
		{"until", storage.AuditFilter{Until: new(t0.Add(time.Minute))}, []int64{1}},
		{"after", storage.AuditFilter{AfterSeq: 1, Limit: 1}, []int64{2}},
		{"before", storage.AuditFilter{BeforeSeq: 3}, []int64{1, 2}},
		{"after and before", storage.AuditFilter{AfterSeq: 1, BeforeSeq: 3}, []int64{2}},
		{"empty range", storage.AuditFilter{AfterSeq: 1, BeforeSeq: 2}, nil},
		{"newest", storage.AuditFilter{Newest: true}, []int64{3, 2, 1}},
		{"newest limit", storage.AuditFilter{Newest: true, Limit: 2}, []int64{3, 2}},
		{"newest account", storage.AuditFilter{Newest: true, AccountID: "a"}, []int64{2, 1}},
		{"newest action limit", storage.AuditFilter{Newest: true, Action: "token.issued", Limit: 1}, []int64{3}},
		{"newest outcome", storage.AuditFilter{Newest: true, Outcome: storage.OutcomeSuccess}, []int64{3, 1}},
		{"newest since", storage.AuditFilter{Newest: true, Since: new(t0.Add(time.Minute))}, []int64{3, 2}},
		{"newest until", storage.AuditFilter{Newest: true, Until: new(t0.Add(2 * time.Minute))}, []int64{2, 1}},
		{"newest before", storage.AuditFilter{Newest: true, BeforeSeq: 3, Limit: 1}, []int64{2}},
		{"newest before the first", storage.AuditFilter{Newest: true, BeforeSeq: 1}, nil},
		{"newest after", storage.AuditFilter{Newest: true, AfterSeq: 1}, []int64{3, 2}},
		{"newest after and before", storage.AuditFilter{Newest: true, AfterSeq: 1, BeforeSeq: 3}, []int64{2}},
		{"newest after and before account", storage.AuditFilter{Newest: true, AfterSeq: 1, BeforeSeq: 4, AccountID: "b"}, []int64{3}},
	}
	checkAuditFilters(t, s, tests)
}

// testAuditNewestPaging pages the log backwards, newest first, each page
// ending before the oldest event of the last, with and without a filter.
func testAuditNewestPaging(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var evs []storage.AuditEvent
	for i := range 10 {
		e := ev("token.issued")
		e.AccountID = []string{"a", "b"}[i%2] // odd seqs are a's
		evs = append(evs, e)
	}
	_, err := s.Commit(ctx, []storage.Write{{Events: evs}})
	mustNil(t, err)
	tests := []struct {
		name  string
		f     storage.AuditFilter
		pages [][]int64
	}{
		{"all", storage.AuditFilter{Limit: 3}, [][]int64{{10, 9, 8}, {7, 6, 5}, {4, 3, 2}, {1}}},
		{"exact pages", storage.AuditFilter{Limit: 5}, [][]int64{{10, 9, 8, 7, 6}, {5, 4, 3, 2, 1}, nil}},
		{"account", storage.AuditFilter{Limit: 2, AccountID: "a"}, [][]int64{{9, 7}, {5, 3}, {1}}},
		{"from before", storage.AuditFilter{Limit: 4, BeforeSeq: 8}, [][]int64{{7, 6, 5, 4}, {3, 2, 1}}},
		{"down to after", storage.AuditFilter{Limit: 4, AfterSeq: 3}, [][]int64{{10, 9, 8, 7}, {6, 5, 4}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.f
			f.Newest = true
			var got [][]int64
			for {
				page, err := s.ListAuditEvents(ctx, f)
				mustNil(t, err)
				got = append(got, seqs(page))
				if len(page) < f.Limit || len(got) > len(tt.pages) {
					break
				}
				f.BeforeSeq = page[len(page)-1].Seq
			}
			if !slices.EqualFunc(got, tt.pages, slices.Equal) {
				t.Fatalf("pages = %v, want %v", got, tt.pages)
			}
		})
	}
}

func testDelegation(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", BlockedScopes: []string{"mail.send"}, CreatedAt: t0}, ev("org.create")))
	wantErr(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")), storage.ErrAlreadyExists)
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "other.org", CreatedAt: t0}, ev("org.create")))
	o, err := s.GetOrg(ctx, "example.com")
	mustNil(t, err)
	if !slices.Equal(o.BlockedScopes, []string{"mail.send"}) {
		t.Fatalf("GetOrg = %+v", o)
	}
	_, _, err = s.UpdateOrg(ctx, "example.com", func(o storage.Org, _ []storage.ProjectOrg) (storage.Org, error) { o.BlockedScopes = nil; return o, nil }, ev("org.policy"))
	mustNil(t, err)
	if o, _ := s.GetOrg(ctx, "example.com"); len(o.BlockedScopes) != 0 {
		t.Fatalf("after UpdateOrg: %+v", o)
	}
	orgs, err := s.ListOrgs(ctx)
	mustNil(t, err)
	if len(orgs) != 2 || orgs[0].Domain != "example.com" {
		t.Fatalf("ListOrgs = %+v", orgs)
	}

	// Users: put is create or replace; paging by email.
	var users []storage.User
	for _, name := range []string{"carol", "alice", "bob"} {
		users = append(users, storage.User{Email: name + "@example.com", Org: "example.com", CreatedAt: t0})
	}
	mustNil(t, s.PutUsers(ctx, users, storage.SameEvent(ev("user.import"))))
	mustNil(t, s.PutUsers(ctx, []storage.User{{Email: "bob@example.com", Org: "example.com", Suspended: true, CreatedAt: t0.Add(time.Hour)}}, storage.SameEvent(ev("user.suspend"))))
	u, err := s.GetUser(ctx, "bob@example.com")
	mustNil(t, err)
	if !u.Suspended || !u.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Fatalf("GetUser after replace = %+v (suspended, original creation time)", u)
	}
	if err := s.PutUsers(ctx, []storage.User{{Email: "x@nowhere", Org: "nowhere", CreatedAt: t0}}, storage.SameEvent(ev("user.add"))); err == nil {
		t.Fatal("PutUsers accepted a user of an unknown organization")
	}
	page, err := s.ListUsers(ctx, "example.com", storage.ListOptions{Limit: 2})
	mustNil(t, err)
	if len(page) != 2 || page[0].Email != "alice@example.com" || page[1].Email != "bob@example.com" {
		t.Fatalf("ListUsers = %+v", page)
	}
	page, err = s.ListUsers(ctx, "example.com", storage.ListOptions{After: page[1].Email})
	mustNil(t, err)
	if len(page) != 1 || page[0].Email != "carol@example.com" {
		t.Fatalf("second page = %+v", page)
	}
	mustNil(t, s.DeleteUser(ctx, "carol@example.com", ev("user.delete")))
	_, err = s.GetUser(ctx, "carol@example.com")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.DeleteUser(ctx, "carol@example.com", ev("user.delete")), storage.ErrNotFound)

	// Projects and grants.
	mustNil(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "cal", Org: "example.com", Internal: true}, nil, ev("project.org")))
	p, err := s.GetProjectOrg(ctx, "cal")
	mustNil(t, err)
	if p.Org != "example.com" || !p.Internal {
		t.Fatalf("GetProjectOrg = %+v", p)
	}
	mustNil(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "cal", Org: "other.org"}, nil, ev("project.org")))
	if p, _ := s.GetProjectOrg(ctx, "cal"); p.Org != "other.org" || p.Internal {
		t.Fatalf("moved project = %+v", p)
	}
	_, err = s.GetProjectOrg(ctx, "none")
	wantErr(t, err, storage.ErrNotFound)
	// A project is taken out of the organization named, only.
	wantErr(t, s.DeleteProjectOrg(ctx, "example.com", "cal", nil, ev("project.org_remove")), storage.ErrNotFound)
	if p, err := s.GetProjectOrg(ctx, "cal"); err != nil || p.Org != "other.org" {
		t.Fatalf("after a delete from another organization the project is %+v (%v), want it in other.org", p, err)
	}
	mustNil(t, s.DeleteProjectOrg(ctx, "other.org", "cal", nil, ev("project.org_remove")))
	_, err = s.GetProjectOrg(ctx, "cal")
	wantErr(t, err, storage.ErrNotFound)
	mustNil(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "cal", Org: "other.org"}, nil, ev("project.org")))
	g, err := s.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: "1", Scopes: []string{"cal.events"}, CreatedAt: t0}, ev("grant"))
	mustNil(t, err)
	if !slices.Equal(g.Scopes, []string{"cal.events"}) || !g.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Fatalf("PutGrant = %+v, want the grant as stored", g)
	}
	// A replaced grant takes the new scopes and keeps its creation time,
	// and PutGrant returns it so.
	g, err = s.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: "1", Scopes: []string{"cal.events", "cal.read"}, CreatedAt: t0.Add(time.Hour)}, ev("grant"))
	mustNil(t, err)
	if !slices.Equal(g.Scopes, []string{"cal.events", "cal.read"}) || !g.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Fatalf("PutGrant of a replacement = %+v, want the new scopes created at %v", g, t0)
	}
	stored, err := s.GetGrant(ctx, "example.com", "1")
	mustNil(t, err)
	if !slices.Equal(stored.Scopes, g.Scopes) || !stored.CreatedAt.Equal(g.CreatedAt) {
		t.Fatalf("GetGrant = %+v, PutGrant returned %+v", stored, g)
	}
	grants, err := s.ListGrants(ctx, "example.com")
	mustNil(t, err)
	if len(grants) != 1 {
		t.Fatalf("ListGrants = %+v", grants)
	}
	mustNil(t, s.DeleteGrant(ctx, "example.com", "1", ev("grant.revoke")))
	_, err = s.GetGrant(ctx, "example.com", "1")
	wantErr(t, err, storage.ErrNotFound)
	// A grant in an organization that does not exist (deleted since the
	// caller looked it up) is ErrNotFound, not a foreign key's error.
	wantErr(t, errOf(s.PutGrant(ctx, storage.Grant{Org: "gone.org", ClientID: "1", Scopes: []string{"cal.events"}, CreatedAt: t0}, ev("grant"))), storage.ErrNotFound)
	// So is a guarded one (the admin API's) to a client ID no account has
	// (deleted since): it would be left naming no account.
	wantErr(t, errOf(s.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: "100000000000000000098", Scopes: []string{"cal.events"}, CreatedAt: t0}, ev("grant"), storage.Guard{})), storage.ErrNotFound)
	_, err = s.GetGrant(ctx, "example.com", "100000000000000000098")
	wantErr(t, err, storage.ErrNotFound)

	// Deleting an organization takes its users, projects and grants along.
	mustNil(t, errOf(s.PutGrant(ctx, storage.Grant{Org: "other.org", ClientID: "2", Scopes: []string{"x"}, CreatedAt: t0}, ev("grant"))))
	mustNil(t, s.PutUsers(ctx, []storage.User{{Email: "z@other.org", Org: "other.org", CreatedAt: t0}}, storage.SameEvent(ev("user.add"))))
	mustNil(t, s.DeleteOrg(ctx, "other.org", nil, ev("org.delete")))
	_, err = s.GetUser(ctx, "z@other.org")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetGrant(ctx, "other.org", "2")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetProjectOrg(ctx, "cal")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.DeleteOrg(ctx, "other.org", nil, ev("org.delete")), storage.ErrNotFound)
}

// Deleting an account takes its delegation grants with it and removes it
// from every API's introspectors, and nobody else's.
// testDeleteAccountAddConcurrent: a DeleteAccount without a check or
// guards, while a CreateKey or CreateSecret of the account is in its
// transaction, waits for it and deletes what it added with the account,
// or comes first and the addition fails with ErrNotFound: it must not fail
// on the new key or secret still naming the account.
func testDeleteAccountAddConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for n, tt := range []struct {
		name string
		add  func(id string, hold func()) error
	}{
		{"key", func(id string, hold func()) error {
			return s.CreateKey(ctx, key("k-"+id, id), func([]storage.Key) error { hold(); return nil }, ev("key.create"))
		}},
		{"secret", func(id string, hold func()) error {
			return s.CreateSecret(ctx, secret("s-"+id, id, t0), func([]storage.Secret) error { hold(); return nil }, ev("secret.create"))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := account(fmt.Sprintf("1000000000000000000%02d", n), fmt.Sprintf("job%d@proj.example", n))
			mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
			in, release := make(chan struct{}), make(chan struct{})
			added := make(chan error, 1)
			go func() { added <- tt.add(a.ID, func() { close(in); <-release }) }()
			<-in
			waited := waitMark(s)
			deleted, done := make(chan error, 1), make(chan struct{})
			go func() { deleted <- s.DeleteAccount(ctx, a.ID, nil, ev("account.delete")); close(done) }()
			awaitPeer(nil, done, waited)
			close(release)
			if err := <-added; err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("adding a %s: %v", tt.name, err)
			}
			mustNil(t, <-deleted)
			wantErr(t, errOf(s.GetAccount(ctx, a.ID)), storage.ErrNotFound)
			keys, err := s.ListKeys(ctx, a.ID)
			mustNil(t, err)
			secrets, err := s.ListSecrets(ctx, a.ID)
			mustNil(t, err)
			if len(keys)+len(secrets) > 0 {
				t.Fatalf("after the account's deletion it has keys %v and secrets %v", keys, secrets)
			}
		})
	}
}

func testDeleteAccountCascades(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	gone, kept := account("100000000000000000001", "gone@proj.example"), account("100000000000000000002", "kept@proj.example")
	for _, name := range []string{"orders", "stock", "mail"} {
		mustNil(t, s.CreateAPI(ctx, storage.API{Name: name, Identifier: "https://" + name, Scopes: []string{name + ".read"}, CreatedAt: t0}, ev("api.create")))
	}
	mustNil(t, s.CreateAccount(ctx, gone, ev("account.create")))
	mustNil(t, s.CreateAccount(ctx, kept, ev("account.create")))
	introspect := map[string][]string{"orders": {gone.ID, kept.ID}, "stock": {gone.ID}, "mail": {kept.ID}}
	for name, ids := range introspect {
		_, err := s.UpdateAPI(ctx, name, func(a storage.API) (storage.API, error) { a.Introspectors = ids; return a, nil }, ev("api.update"))
		mustNil(t, err)
	}
	for _, org := range []string{"example.com", "other.org"} {
		mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: org, CreatedAt: t0}, ev("org.create")))
		for _, a := range []storage.Account{gone, kept} {
			mustNil(t, errOf(s.PutGrant(ctx, storage.Grant{Org: org, ClientID: a.ID, Scopes: []string{"mail.read"}, CreatedAt: t0}, ev("delegation.grant"))))
		}
	}
	mustNil(t, s.DeleteAccount(ctx, gone.ID, nil, ev("account.delete")))

	want := map[string][]string{"orders": {kept.ID}, "stock": {}, "mail": {kept.ID}}
	for name, ids := range want {
		a, err := s.GetAPI(ctx, name)
		mustNil(t, err)
		if !slices.Equal(a.Introspectors, ids) {
			t.Errorf("introspectors of %s = %v, want %v", name, a.Introspectors, ids)
		}
	}
	for _, org := range []string{"example.com", "other.org"} {
		_, err := s.GetGrant(ctx, org, gone.ID)
		wantErr(t, err, storage.ErrNotFound)
		_, err = s.GetGrant(ctx, org, kept.ID)
		mustNil(t, err)
		if grants, err := s.ListGrants(ctx, org); err != nil || len(grants) != 1 {
			t.Errorf("grants of %s = %+v, %v; want only %s's", org, grants, err, kept.ID)
		}
	}
	verifyAll(t, s)
}

// testGetOrgs: GetOrgs returns the existing organizations among the
// domains asked, by domain, each once, whatever their order, repetitions
// and number (more than a backend looks up in one query).
func testGetOrgs(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	var existing []string
	var orgs []storage.Org // created in one transaction: one each took most of the test's time
	for i := range 1203 {
		if i%3 != 0 {
			continue
		}
		d := fmt.Sprintf("org%04d.test", i)
		existing = append(existing, d)
		orgs = append(orgs, storage.Org{Domain: d, BlockedScopes: []string{"s"}, CreatedAt: t0})
	}
	mustNil(t, s.Load(ctx, storage.Bulk{Orgs: orgs}, []storage.AuditEvent{ev("org.import")}))
	var all []string
	for i := range 1203 {
		all = append(all, fmt.Sprintf("org%04d.test", i))
	}
	reversed := slices.Clone(all)
	slices.Reverse(reversed)
	tests := []struct {
		name    string
		domains []string
		want    []string
	}{
		{"none asked", nil, nil},
		{"one missing", []string{"nowhere.test"}, nil},
		{"one existing", []string{"org0003.test"}, []string{"org0003.test"}},
		{"repeated", []string{"org0006.test", "nowhere.test", "org0003.test", "org0006.test"}, []string{"org0003.test", "org0006.test"}},
		{"many, in order", all, existing},
		{"many, reversed and twice", append(reversed, all...), existing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orgs, err := s.GetOrgs(ctx, tt.domains)
			mustNil(t, err)
			var got []string
			for _, o := range orgs {
				if !o.CreatedAt.Equal(t0) || fmt.Sprint(o.BlockedScopes) != "[s]" {
					t.Errorf("organization %+v, want it as created", o)
				}
				got = append(got, o.Domain)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %d organizations %v, want %d %v", len(got), got, len(tt.want), tt.want)
			}
		})
	}
}
