package storagetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// bulk is a whole configuration for Load: an API, two accounts with a
// key and a secret each, an organization with a user, a project and a
// grant, a sealed value and a signing key.
func bulk() storage.Bulk {
	a1, a2 := account("100000000000000000001", "one@proj.example"), account("100000000000000000002", "two@proj.example")
	return storage.Bulk{
		APIs: []storage.API{{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read", "orders.write"},
			TokenFormat: storage.TokenOpaque, Introspectors: []string{a2.ID}, CreatedAt: t0}},
		Accounts:     []storage.Account{a1, a2},
		Keys:         []storage.Key{key("k1", a1.ID), key("k2", a2.ID)},
		Secrets:      []storage.Secret{secret("s1", a1.ID, t0), secret("s2", a2.ID, t0)},
		Orgs:         []storage.Org{{Domain: "example.com", BlockedScopes: []string{"orders.write"}, CreatedAt: t0}},
		Users:        []storage.User{{Email: "u@example.com", Org: "example.com", CreatedAt: t0}},
		Projects:     []storage.ProjectOrg{{Project: "proj", Org: "example.com", Internal: true}},
		Grants:       []storage.Grant{{Org: "example.com", ClientID: a1.ID, Scopes: []string{"orders.read"}, CreatedAt: t0}},
		SealedValues: []storage.SealedValue{{Name: "pepper", Sealed: []byte{7}, CreatedAt: t0}},
		SigningKeys:  []storage.SigningKey{{ID: "sk", Algorithm: "ES256", Sealed: []byte{9}, CreatedAt: t0, ActivatedAt: t0}},
	}
}

// testLoad: a Load that fails on any item, the last one included, leaves
// nothing behind, not even its audit events; one that succeeds writes
// everything with its events; and a store with accounts is refused.
func testLoad(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	evs := []storage.AuditEvent{ev("api.import"), ev("account.import"), ev("account.import")}
	for _, tc := range []struct {
		name string
		edit func(b *storage.Bulk)
		want error // nil: any error
	}{
		{"key of no account", func(b *storage.Bulk) { b.Keys = append(b.Keys, key("k3", "100000000000000000009")) }, nil},
		{"secret of no account", func(b *storage.Bulk) { b.Secrets = append(b.Secrets, secret("s3", "100000000000000000009", t0)) }, nil},
		{"user of no organization", func(b *storage.Bulk) {
			b.Users = append(b.Users, storage.User{Email: "v@other.example", Org: "other.example", CreatedAt: t0})
		}, nil},
		{"project of no organization", func(b *storage.Bulk) {
			b.Projects = append(b.Projects, storage.ProjectOrg{Project: "p2", Org: "other.example"})
		}, nil},
		{"grant of no organization", func(b *storage.Bulk) {
			b.Grants = append(b.Grants, storage.Grant{Org: "other.example", ClientID: b.Accounts[0].ID, Scopes: []string{"orders.read"}, CreatedAt: t0})
		}, nil},
		{"duplicate account", func(b *storage.Bulk) { b.Accounts = append(b.Accounts, b.Accounts[0]) }, storage.ErrAlreadyExists},
		{"duplicate key", func(b *storage.Bulk) { b.Keys = append(b.Keys, b.Keys[0]) }, storage.ErrAlreadyExists},
		{"duplicate API", func(b *storage.Bulk) { b.APIs = append(b.APIs, b.APIs[0]) }, storage.ErrAlreadyExists},
		{"duplicate sealed value", func(b *storage.Bulk) { b.SealedValues = append(b.SealedValues, b.SealedValues[0]) }, storage.ErrAlreadyExists},
		{"duplicate signing key", func(b *storage.Bulk) { b.SigningKeys = append(b.SigningKeys, b.SigningKeys[0]) }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bulk()
			tc.edit(&b)
			err := s.Load(ctx, b, evs)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if tc.want != nil {
				wantErr(t, err, tc.want)
			}
			wantEmpty(t, s)
		})
	}

	b := bulk()
	mustNil(t, s.Load(ctx, b, evs))
	if got := verifyAll(t, s); len(got) != len(evs) || got[0].Action != "api.import" || got[2].Action != "account.import" {
		t.Fatalf("audit events after Load = %+v, want %d", got, len(evs))
	}
	api, err := s.GetAPI(ctx, "orders")
	mustNil(t, err)
	if !slices.Equal(api.Scopes, b.APIs[0].Scopes) || !slices.Equal(api.Introspectors, b.APIs[0].Introspectors) || api.TokenFormat != storage.TokenOpaque {
		t.Errorf("GetAPI = %+v, want %+v", api, b.APIs[0])
	}
	for _, a := range b.Accounts {
		got, err := s.GetAccount(ctx, a.ID)
		mustNil(t, err)
		if got.Email != a.Email || !slices.Equal(got.Scopes, a.Scopes) || got.TLS != a.TLS {
			t.Errorf("GetAccount = %+v, want %+v", got, a)
		}
		keys, err := s.ListKeys(ctx, a.ID)
		mustNil(t, err)
		secrets, err := s.ListSecrets(ctx, a.ID)
		mustNil(t, err)
		if len(keys) != 1 || keys[0].AccountID != a.ID || len(secrets) != 1 || secrets[0].AccountID != a.ID {
			t.Errorf("account %s has keys %+v and secrets %+v, want one of each", a.ID, keys, secrets)
		}
	}
	if u, err := s.GetUser(ctx, "u@example.com"); err != nil || u.Org != "example.com" {
		t.Errorf("GetUser = %+v, %v", u, err)
	}
	if p, err := s.GetProjectOrg(ctx, "proj"); err != nil || !p.Internal {
		t.Errorf("GetProjectOrg = %+v, %v", p, err)
	}
	if g, err := s.GetGrant(ctx, "example.com", b.Accounts[0].ID); err != nil || !slices.Equal(g.Scopes, []string{"orders.read"}) {
		t.Errorf("GetGrant = %+v, %v", g, err)
	}
	if v, err := s.GetSealedValue(ctx, "pepper"); err != nil || !slices.Equal(v.Sealed, []byte{7}) {
		t.Errorf("GetSealedValue = %+v, %v", v, err)
	}
	if keys, err := s.ListSigningKeys(ctx); err != nil || len(keys) != 1 || keys[0].ID != "sk" {
		t.Errorf("ListSigningKeys = %+v, %v", keys, err)
	}
	// The loaded grant holds its scope, as PutGrant's does.
	wantErr(t, s.DeleteAPI(ctx, "orders", nil, ev("api.delete")), storage.ErrScopesHeld)

	// Into a store with accounts, nothing at all.
	again := storage.Bulk{APIs: []storage.API{{Name: "billing", Identifier: "https://billing", Scopes: []string{"billing.read"}, CreatedAt: t0}}}
	wantErr(t, s.Load(ctx, again, []storage.AuditEvent{ev("api.import")}), storage.ErrNotEmpty)
	if _, err := s.GetAPI(ctx, "billing"); err == nil {
		t.Error("a refused Load created an API")
	}
	if got := verifyAll(t, s); len(got) != len(evs) {
		t.Errorf("a refused Load left audit events: %d, want %d", len(got), len(evs))
	}
}

// wantEmpty fails unless s holds nothing a Load writes, nor any audit
// event.
func wantEmpty(t *testing.T, s storage.Storage) {
	t.Helper()
	ctx := context.Background()
	n, err := s.CountAccounts(ctx)
	mustNil(t, err)
	apis, err := s.ListAPIs(ctx)
	mustNil(t, err)
	orgs, err := s.ListOrgs(ctx)
	mustNil(t, err)
	values, err := s.ListSealedValues(ctx)
	mustNil(t, err)
	signing, err := s.ListSigningKeys(ctx)
	mustNil(t, err)
	_, kerr := s.GetKey(ctx, "k1")
	events := verifyAll(t, s)
	if n != 0 || len(apis) != 0 || len(orgs) != 0 || len(values) != 0 || len(signing) != 0 || kerr == nil || len(events) != 0 {
		t.Fatalf("the failed Load left %d accounts, APIs %v, organizations %v, sealed values %v, signing keys %v, key k1 (err %v), %d audit events",
			n, apis, orgs, values, signing, kerr, len(events))
	}
}

// testLoadReplaceAPIs: an API the store has already (as a first start
// interrupted before it made an account leaves the built-in one) is
// rewritten to what ReplaceAPIs says of it; one it does not have, or has
// with another identifier, fails the Load, which then leaves nothing.
func testLoadReplaceAPIs(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	bare := storage.API{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read"}, CreatedAt: t0.Add(time.Hour)}
	mustNil(t, s.CreateAPI(ctx, bare, ev("api.create")))
	events := len(verifyAll(t, s))

	for _, tc := range []struct {
		name string
		edit func(b *storage.Bulk)
	}{
		{"missing", func(b *storage.Bulk) {
			b.ReplaceAPIs = append(b.ReplaceAPIs, storage.API{Name: "billing", Identifier: "https://billing", Scopes: []string{"billing.read"}, CreatedAt: t0})
		}},
		{"other identifier", func(b *storage.Bulk) { b.ReplaceAPIs[0].Identifier = "https://other" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := bulk()
			b.ReplaceAPIs, b.APIs = b.APIs, nil
			tc.edit(&b)
			wantErr(t, s.Load(ctx, b, []storage.AuditEvent{ev("api.import")}), storage.ErrNotFound)
			if n, err := s.CountAccounts(ctx); err != nil || n != 0 {
				t.Fatalf("the failed Load left %d accounts (%v)", n, err)
			}
			if got, err := s.GetAPI(ctx, "orders"); err != nil || got.Description != "" || !slices.Equal(got.Scopes, bare.Scopes) {
				t.Fatalf("the failed Load changed the API: %+v, %v", got, err)
			}
			if n := len(verifyAll(t, s)); n != events {
				t.Fatalf("the failed Load left audit events: %d, want %d", n, events)
			}
		})
	}

	// The same API to add, not replace (its caller found none: one made
	// since), fails as taken, naming it, not as a store that is not empty.
	err := s.Load(ctx, bulk(), []storage.AuditEvent{ev("api.import")})
	wantErr(t, err, storage.ErrAlreadyExists)
	if le, ok := errors.AsType[*storage.LoadError](err); !ok || le.Kind != "API" || le.ID != "orders" {
		t.Fatalf("Load of an API the store has = %v, want a *LoadError naming the API orders", err)
	}
	if n, err := s.CountAccounts(ctx); err != nil || n != 0 {
		t.Fatalf("the failed Load left %d accounts (%v)", n, err)
	}

	b := bulk()
	b.ReplaceAPIs, b.APIs = b.APIs, nil
	b.ReplaceAPIs[0].Description = "from the file"
	mustNil(t, s.Load(ctx, b, []storage.AuditEvent{ev("api.import")}))
	want := b.ReplaceAPIs[0]
	got, err := s.GetAPI(ctx, "orders")
	mustNil(t, err)
	if got.Description != want.Description || !got.CreatedAt.Equal(want.CreatedAt) || got.TokenFormat != want.TokenFormat ||
		!slices.Equal(got.Scopes, want.Scopes) || !slices.Equal(got.Introspectors, want.Introspectors) {
		t.Fatalf("GetAPI after Load = %+v, want %+v", got, want)
	}
	// The scope the file added is the API's: its grant holds it.
	wantErr(t, s.DeleteAPI(ctx, "orders", nil, ev("api.delete")), storage.ErrScopesHeld)
}

// testLoadReplaceSealedValues: a sealed value the store has already (the
// pepper a first start interrupted before it made an account seals under
// its master key) is rewritten to what ReplaceSealedValues says of it,
// while the store's signing keys are replaced; one it does not have fails
// the Load, which then leaves the store as it was.
func testLoadReplaceSealedValues(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	first := storage.SealedValue{Name: "pepper", Sealed: []byte{1}, CreatedAt: t0.Add(time.Hour)}
	mustNil(t, s.CreateSealedValue(ctx, first, ev("sealed_value.create")))
	events := len(verifyAll(t, s))

	b := bulk()
	b.ReplaceSealedValues, b.SealedValues = b.SealedValues, nil
	b.ReplaceSealedValues = append(b.ReplaceSealedValues, storage.SealedValue{Name: "other", Sealed: []byte{8}, CreatedAt: t0})
	wantErr(t, s.Load(ctx, b, []storage.AuditEvent{ev("sealed_value.import")}), storage.ErrNotFound)
	if n, err := s.CountAccounts(ctx); err != nil || n != 0 {
		t.Fatalf("the failed Load left %d accounts (%v)", n, err)
	}
	if got, err := s.GetSealedValue(ctx, "pepper"); err != nil || !slices.Equal(got.Sealed, first.Sealed) || !got.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("the failed Load changed the sealed value: %+v, %v", got, err)
	}
	if n := len(verifyAll(t, s)); n != events {
		t.Fatalf("the failed Load left audit events: %d, want %d", n, events)
	}

	b = bulk()
	b.ReplaceSealedValues, b.SealedValues = b.SealedValues, nil
	mustNil(t, s.Load(ctx, b, []storage.AuditEvent{ev("sealed_value.import")}))
	want := b.ReplaceSealedValues[0]
	got, err := s.GetSealedValue(ctx, "pepper")
	mustNil(t, err)
	if !slices.Equal(got.Sealed, want.Sealed) || !got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("GetSealedValue after Load = %+v, want %+v", got, want)
	}
}

// testLoadNotEmpty: a store without accounts but with an organization (its
// users, projects and grants need one) or an API Load is not told to
// replace is not empty either: Load refuses it, saying what it holds,
// rather than merge the bulk into it.
func testLoadNotEmpty(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		add  func() error
		want string
	}{
		{"organization", func() error {
			return s.CreateOrg(ctx, storage.Org{Domain: "other.example", CreatedAt: t0}, ev("org.create"))
		}, "1 organization"},
		{"API not replaced", func() error {
			return s.CreateAPI(ctx, storage.API{Name: "billing", Identifier: "https://billing", Scopes: []string{"billing.read"}, CreatedAt: t0}, ev("api.create"))
		}, "1 organization, 1 API (billing)"},
		{"account", func() error {
			return s.CreateAccount(ctx, account("100000000000000000009", "nine@proj.example"), ev("account.create"))
		}, "1 service account, 1 organization, 1 API (billing)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mustNil(t, tc.add())
			err := s.Load(ctx, bulk(), []storage.AuditEvent{ev("api.import")})
			wantErr(t, err, storage.ErrNotEmpty)
			if ne, ok := errors.AsType[*storage.NotEmptyError](err); !ok || ne.Holds != tc.want {
				t.Fatalf("Load = %v, want a NotEmptyError holding %q", err, tc.want)
			}
			if _, err := s.GetOrg(ctx, "example.com"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a refused Load wrote the organization: %v", err)
			}
			if _, err := s.GetAPI(ctx, "orders"); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("a refused Load wrote the API: %v", err)
			}
		})
	}
}
