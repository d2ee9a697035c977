package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/cache"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// Every change another replica makes to what the cache holds is felt by
// this one's cache at once: each write path announces itself in its
// transaction, naming what the cache must drop (an account ID, or
// ChangeAll). The cache's TTL is an hour, so only the notification can
// make a change show. A write path that forgot to notify, or named the
// wrong thing (a key's ID instead of its account's), went unseen for
// --cache-ttl.
func TestReplicaCacheFeelsEveryChange(t *testing.T) {
	dsn := pgtest.SchemaDSN(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() storage.Storage {
		s, err := postgres.Open(ctx, dsn, postgres.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a := open()                                           // the replica that changes
	b := cache.New(open(), cache.Options{TTL: time.Hour}) // the one that must feel it
	var signingKeys atomic.Int32
	ready := make(chan struct{})
	// As serve's applyChange.
	go postgres.Watch(ctx, dsn, slog.New(slog.NewTextHandler(io.Discard, nil)), func(p string) {
		switch p {
		case storage.ChangeSigningKeys:
			signingKeys.Add(1)
		case storage.ChangeRevocations:
			b.InvalidateRevocations()
		case storage.ChangeAll:
			signingKeys.Add(1)
			b.Invalidate("")
		default:
			b.Invalidate(p)
		}
	}, ready, nil)
	<-ready

	t0 := time.Now().Truncate(time.Second)
	ev := storage.AuditEvent{Time: t0, Action: "t", Outcome: storage.OutcomeSuccess}
	acct := storage.Account{ID: "100000000000000000001", Email: "job@shop.example", Name: "job", Project: "shop",
		Scopes: []string{"orders.read"}, CreatedAt: t0, UpdatedAt: t0}
	// Bulk changes, an import and a user import, of more accounts and
	// users than 8000 bytes (the most a NOTIFY payload may hold) could
	// name one by one: each is announced once, as ChangeAll.
	accounts, users := []storage.Account{acct}, []storage.User{{Email: "u@example.com", Org: "example.com", CreatedAt: t0}}
	for i := range 500 {
		n := strconv.Itoa(i)
		accounts = append(accounts, storage.Account{ID: fmt.Sprintf("2%020d", i), Email: "job" + n + "@shop.example", Name: "job" + n, Project: "shop", CreatedAt: t0, UpdatedAt: t0})
		users = append(users, storage.User{Email: "user" + n + "@example.com", Org: "example.com", CreatedAt: t0})
	}
	api := func() storage.API {
		apis, err := b.ListAPIs(ctx)
		if err != nil || len(apis) != 1 {
			return storage.API{}
		}
		return apis[0]
	}
	account := func() storage.Account { x, _ := b.GetAccount(ctx, acct.ID); return x }
	byEmail := func() storage.Account { x, _ := b.GetAccountByEmail(ctx, acct.Email); return x }
	keys := func() []storage.Key { x, _ := b.ListKeys(ctx, acct.ID); return x }
	secrets := func() []storage.Secret { x, _ := b.ListSecrets(ctx, acct.ID); return x }
	grant := func() (storage.Grant, error) { return b.GetGrant(ctx, "example.com", acct.ID) }
	user := func() (storage.User, error) { return b.GetUser(ctx, "u@example.com") }
	org := func() (storage.Org, error) { return b.GetOrg(ctx, "example.com") }
	project := func() (storage.ProjectOrg, error) { return b.GetProjectOrg(ctx, "shop") }
	revoked := func() bool { x, _ := b.IsRevoked(ctx, "jti-1"); return x }
	emailAt := func(local, domain string) bool {
		x, err := b.AccountEmailAt(ctx, local, domain)
		return err == nil && x
	}
	// found looks up both, caching each as no account's until it is one.
	found := func(id, email string) bool {
		_, errID := b.GetAccount(ctx, id)
		_, errEmail := b.GetAccountByEmail(ctx, email)
		return errID == nil && errEmail == nil
	}
	keysChanged := func() func() bool {
		n := signingKeys.Load()
		return func() bool { return signingKeys.Load() > n }
	}
	var signing func() bool

	for _, tc := range []struct {
		name   string
		change func() error
		seen   func() bool // false before the change: reads, and so caches, on B
	}{
		{"import (Load)", func() error {
			return a.Load(ctx, storage.Bulk{
				APIs:     []storage.API{{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read"}, CreatedAt: t0}},
				Accounts: accounts,
				Keys:     []storage.Key{{ID: "k1", AccountID: acct.ID, Algorithm: "RS256", PublicKey: []byte("spki-k1"), Origin: storage.KeyOriginGenerated, CreatedAt: t0}},
				Secrets:  []storage.Secret{{ID: "s1", AccountID: acct.ID, Hash: []byte("hash-s1"), Hint: "…s1", CreatedAt: t0}},
				Orgs:     []storage.Org{{Domain: "example.com", CreatedAt: t0}},
				Users:    []storage.User{{Email: "u@example.com", Org: "example.com", CreatedAt: t0}},
				Projects: []storage.ProjectOrg{{Project: "shop", Org: "example.com"}},
				Grants:   []storage.Grant{{Org: "example.com", ClientID: acct.ID, Scopes: []string{"orders.read"}, CreatedAt: t0}},
			}, []storage.AuditEvent{ev})
		}, func() bool { return api().Name == "orders" }},
		{"account disabled", func() error {
			_, err := a.UpdateAccount(ctx, acct.ID, func(x storage.Account) (storage.Account, error) { x.Disabled = true; return x, nil }, ev)
			return err
		}, func() bool { x, y := account(), byEmail(); return x.Disabled && y.Disabled }},
		{"key created", func() error {
			return a.CreateKey(ctx, storage.Key{ID: "k2", AccountID: acct.ID, Algorithm: "RS256", PublicKey: []byte("spki-k2"), Origin: storage.KeyOriginGenerated, CreatedAt: t0}, nil, ev)
		}, func() bool { return len(keys()) == 2 }},
		{"key disabled", func() error {
			_, err := a.UpdateKey(ctx, "k1", func(k storage.Key) (storage.Key, error) { k.Disabled = true; return k, nil }, ev)
			return err
		}, func() bool {
			return slices.ContainsFunc(keys(), func(k storage.Key) bool { return k.ID == "k1" && k.Disabled })
		}},
		{"key deleted", func() error { return a.DeleteKey(ctx, "k2", nil, ev) }, func() bool { return len(keys()) == 1 }},
		{"secret created", func() error {
			return a.CreateSecret(ctx, storage.Secret{ID: "s2", AccountID: acct.ID, Hash: []byte("hash-s2"), Hint: "…s2", CreatedAt: t0}, nil, ev)
		}, func() bool { return len(secrets()) == 2 }},
		{"secret disabled", func() error {
			_, err := a.UpdateSecret(ctx, "s1", func(s storage.Secret) (storage.Secret, error) { s.Disabled = true; return s, nil }, nil, ev)
			return err
		}, func() bool {
			return slices.ContainsFunc(secrets(), func(s storage.Secret) bool { return s.ID == "s1" && s.Disabled })
		}},
		{"secret deleted", func() error { return a.DeleteSecret(ctx, "s2", nil, ev) }, func() bool { return len(secrets()) == 1 }},
		{"API changed", func() error {
			_, err := a.UpdateAPI(ctx, "orders", func(x storage.API) (storage.API, error) { x.Description = "changed"; return x, nil }, ev)
			return err
		}, func() bool { return api().Description == "changed" }},
		{"token revoked", func() error {
			return a.Revoke(ctx, storage.Revocation{JTI: "jti-1", AccountID: acct.ID, RevokedAt: t0, ExpiresAt: t0.Add(time.Hour)}, ev)
		}, revoked},
		{"grant changed", func() error {
			_, err := a.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: acct.ID, Scopes: []string{"orders.read", "orders.write"}, CreatedAt: t0}, ev)
			return err
		}, func() bool { g, err := grant(); return err == nil && len(g.Scopes) == 2 }},
		{"user suspended", func() error {
			_, err := a.UpdateUser(ctx, "u@example.com", func(u storage.User) (storage.User, error) { u.Suspended = true; return u, nil }, ev)
			return err
		}, func() bool { u, err := user(); return err == nil && u.Suspended }},
		{"users put", func() error {
			return a.PutUsers(ctx, users, storage.SameEvent(ev))
		}, func() bool { u, err := user(); return err == nil && !u.Suspended }},
		{"organization changed", func() error {
			_, _, err := a.UpdateOrg(ctx, "example.com", func(o storage.Org, _ []storage.ProjectOrg) (storage.Org, error) {
				o.BlockedScopes = []string{"orders.read"}
				return o, nil
			}, ev)
			return err
		}, func() bool { o, err := org(); return err == nil && len(o.BlockedScopes) == 1 }},
		{"project made internal", func() error {
			return a.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: "example.com", Internal: true}, nil, ev)
		}, func() bool { p, err := project(); return err == nil && p.Internal }},
		{"signing keys rotated", func() error {
			signing = keysChanged()
			_, err := a.UpdateSigningKeys(ctx, func(k []storage.SigningKey) ([]storage.SigningKey, error) { return k, nil }, ev)
			return err
		}, func() bool { return signing != nil && signing() }},
		{"master key rotated (Reseal)", func() error {
			signing = keysChanged()
			return a.Reseal(ctx, func(_ string, sealed []byte) ([]byte, error) { return sealed, nil }, ev)
		}, func() bool { return signing != nil && signing() }},
		{"grant deleted", func() error { return a.DeleteGrant(ctx, "example.com", acct.ID, ev) },
			func() bool { _, err := grant(); return errors.Is(err, storage.ErrNotFound) }},
		{"user deleted", func() error { return a.DeleteUser(ctx, "u@example.com", ev) },
			func() bool { _, err := user(); return errors.Is(err, storage.ErrNotFound) }},
		{"project placement deleted", func() error { return a.DeleteProjectOrg(ctx, "example.com", "shop", nil, ev) },
			func() bool { _, err := project(); return errors.Is(err, storage.ErrNotFound) }},
		{"organization deleted", func() error { return a.DeleteOrg(ctx, "example.com", nil, ev) },
			func() bool { _, err := org(); return errors.Is(err, storage.ErrNotFound) }},
		{"account deleted", func() error { return a.DeleteAccount(ctx, acct.ID, nil, ev) },
			func() bool { _, err := b.GetAccount(ctx, acct.ID); return errors.Is(err, storage.ErrNotFound) }},
		{"API deleted", func() error { return a.DeleteAPI(ctx, "orders", nil, ev) },
			func() bool { return api().Name == "" }},
		// An account made on A ends B's cached answers that no account has
		// its email (AccountEmailAt's, which refuses a delegated sub that
		// is an account's) and that its ID and email name no account
		// (GetAccount's and GetAccountByEmail's, the token endpoint's).
		{"account created", func() error { return a.CreateAccount(ctx, acct, ev) },
			func() bool { f := found(acct.ID, acct.Email); return emailAt("job", "shop.example") && f }},
		{"accounts created", func() error {
			return a.CreateAccounts(ctx, []storage.Account{{ID: "300000000000000000001", Email: "bulk@bulk.example", Name: "bulk", Project: "bulk", CreatedAt: t0, UpdatedAt: t0}}, ev)
		}, func() bool {
			f := found("300000000000000000001", "bulk@bulk.example")
			return emailAt("bulk", "bulk.example") && f
		}},
	} {
		signing = nil
		if tc.seen() {
			t.Fatalf("%s: seen on B before the change", tc.name)
		}
		if err := tc.change(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for start := time.Now(); !tc.seen(); time.Sleep(5 * time.Millisecond) {
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s on A: not felt by B's cache after 5 s", tc.name)
			}
		}
	}
}
