package cache_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
	"unsafe"
	"weak"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/cache"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/storage/storagetest"
)

func openSQLite(t testing.TB) storage.Storage {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The cache is a storage.Storage too, and must behave as one.
func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		base, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "keyward.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return storagetest.WatchPool(cache.New(base, cache.Options{}), base.WriterStats)
	})
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var ev = storage.AuditEvent{Action: "test", Outcome: storage.OutcomeSuccess}

func TestInvalidation(t *testing.T) {
	ctx := context.Background()
	base := openSQLite(t)
	defer base.Close()
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := cache.New(base, cache.Options{TTL: time.Minute, Now: c.now})
	a := storage.Account{ID: "1", Email: "a@p.example", Name: "a", Project: "p", CreatedAt: c.t, UpdatedAt: c.t}
	if err := s.CreateAccount(ctx, a, ev); err != nil {
		t.Fatal(err)
	}
	disable := func(st storage.Storage) {
		t.Helper()
		if _, err := st.UpdateAccount(ctx, "1", func(a storage.Account) (storage.Account, error) { a.Disabled = !a.Disabled; return a, nil }, ev); err != nil {
			t.Fatal(err)
		}
	}
	disabled := func() (byID, byEmail bool) {
		t.Helper()
		x, err := s.GetAccount(ctx, "1")
		if err != nil {
			t.Fatal(err)
		}
		y, err := s.GetAccountByEmail(ctx, "a@p.example")
		if err != nil {
			t.Fatal(err)
		}
		return x.Disabled, y.Disabled
	}

	disabled() // cache both entries
	disable(s)
	if id, email := disabled(); !id || !email {
		t.Fatalf("after a change through the cache: disabled by ID %v, by email %v; want both true at once", id, email)
	}

	disable(base) // a change the cache does not see (another replica)
	if id, _ := disabled(); !id {
		t.Fatal("the cache read through before its TTL")
	}
	c.t = c.t.Add(2 * time.Minute)
	if id, email := disabled(); id || email {
		t.Fatal("the cache kept an entry past its TTL")
	}

	disabled()
	disable(base)
	s.Invalidate("1")
	if id, email := disabled(); !id || !email {
		t.Fatal("Invalidate did not drop the account")
	}

	// Keys and the catalog.
	if keys, _ := s.ListKeys(ctx, "1"); len(keys) != 0 {
		t.Fatal("unexpected keys")
	}
	if err := s.CreateKey(ctx, storage.Key{ID: "k", AccountID: "1", Algorithm: "RS256", PublicKey: []byte{1}, Origin: "generated", CreatedAt: c.t}, nil, ev); err != nil {
		t.Fatal(err)
	}
	keys, _ := s.ListKeys(ctx, "1")
	if len(keys) != 1 {
		t.Fatal("new key not visible at once")
	}
	if _, err := s.UpdateKey(ctx, "k", func(k storage.Key) (storage.Key, error) { k.Disabled = true; return k, nil }, ev); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.ListKeys(ctx, "1"); !keys[0].Disabled {
		t.Fatal("disabled key not visible at once")
	}
	if err := s.DeleteKey(ctx, "k", nil, ev); err != nil {
		t.Fatal(err)
	}
	if keys, _ := s.ListKeys(ctx, "1"); len(keys) != 0 {
		t.Fatal("deleted key still listed")
	}
	s.ListAPIs(ctx)
	if err := s.CreateAPI(ctx, storage.API{Name: "x", Identifier: "https://x", Scopes: []string{"x.read"}, CreatedAt: c.t}, ev); err != nil {
		t.Fatal(err)
	}
	if apis, _ := s.ListAPIs(ctx); len(apis) != 1 {
		t.Fatal("new API not visible at once")
	}
	// Deleting an account drops its grants and introspector entries,
	// cached or not.
	if _, err := s.UpdateAPI(ctx, "x", func(a storage.API) (storage.API, error) { a.Introspectors = []string{"1"}; return a, nil }, ev); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: c.t}, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: "1", Scopes: []string{"x.read"}, CreatedAt: c.t}, ev); err != nil {
		t.Fatal(err)
	}
	s.ListAPIs(ctx)
	if _, err := s.GetGrant(ctx, "example.com", "1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, "1", nil, ev); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAccountByEmail(ctx, "a@p.example"); err == nil {
		t.Fatal("deleted account still found by email")
	}
	if _, err := s.GetGrant(ctx, "example.com", "1"); err == nil {
		t.Fatal("the deleted account's grant is still found")
	}
	if apis, _ := s.ListAPIs(ctx); len(apis) != 1 || len(apis[0].Introspectors) != 0 {
		t.Fatalf("the deleted account is still an introspector: %+v", apis)
	}
}

func TestBounded(t *testing.T) {
	ctx := context.Background()
	base := openSQLite(t)
	defer base.Close()
	s := cache.New(base, cache.Options{MaxEntries: 3})
	for i := range 10 {
		id := string(rune('a' + i))
		if err := s.CreateAccount(ctx, storage.Account{ID: id, Email: id + "@p", Name: id, Project: "p"}, ev); err != nil {
			t.Fatal(err)
		}
		if _, err := s.GetAccount(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// Every account is still found (through the store when evicted).
	for i := range 10 {
		if _, err := s.GetAccount(ctx, string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
}

// Handlers index the API list once per list (internal/catalog), which
// works only if the cache hands out the same list until the catalog
// changes.
func TestListAPIsIsOneListUntilAChange(t *testing.T) {
	ctx := context.Background()
	base := openSQLite(t)
	defer base.Close()
	s := cache.New(base, cache.Options{TTL: time.Minute})
	now := time.Now()
	if err := s.CreateAPI(ctx, storage.API{Identifier: "https://a.internal", Name: "a", Scopes: []string{"a.read"}, CreatedAt: now}, ev); err != nil {
		t.Fatal(err)
	}
	first, err := s.ListAPIs(ctx)
	if err != nil || len(first) != 1 {
		t.Fatalf("ListAPIs = %v, %v", first, err)
	}
	again, _ := s.ListAPIs(ctx)
	if &again[0] != &first[0] {
		t.Error("the cache handed out a copy of an unchanged list")
	}
	if err := s.CreateAPI(ctx, storage.API{Identifier: "https://b.internal", Name: "b", Scopes: []string{"b.read"}, CreatedAt: now}, ev); err != nil {
		t.Fatal(err)
	}
	if changed, _ := s.ListAPIs(ctx); len(changed) != 2 {
		t.Errorf("after a change ListAPIs = %d APIs, want 2", len(changed))
	}
}

// gatedStore holds the first GetAccount, ListKeys, ListSecrets, ListAPIs
// and IsRevoked until released, and counts the calls of each.
type gatedStore struct {
	storage.Storage
	calls, keyCalls, secretCalls, apiCalls, revokedCalls atomic.Int32
	started, release                                     chan struct{}
}

func newGated(s storage.Storage) *gatedStore {
	return &gatedStore{Storage: s, started: make(chan struct{}), release: make(chan struct{})}
}

// hold counts a call in n and holds the first one until released.
func (g *gatedStore) hold(n *atomic.Int32) {
	if n.Add(1) == 1 {
		close(g.started)
		<-g.release
	}
}

func (g *gatedStore) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	g.hold(&g.calls)
	return g.Storage.GetAccount(ctx, id)
}

func (g *gatedStore) ListKeys(ctx context.Context, accountID string) ([]storage.Key, error) {
	g.hold(&g.keyCalls)
	return g.Storage.ListKeys(ctx, accountID)
}

func (g *gatedStore) ListSecrets(ctx context.Context, accountID string) ([]storage.Secret, error) {
	g.hold(&g.secretCalls)
	return g.Storage.ListSecrets(ctx, accountID)
}

func (g *gatedStore) ListAPIs(ctx context.Context) ([]storage.API, error) {
	g.hold(&g.apiCalls)
	return g.Storage.ListAPIs(ctx)
}

func (g *gatedStore) IsRevoked(ctx context.Context, jti string) (bool, error) {
	g.hold(&g.revokedCalls)
	return g.Storage.IsRevoked(ctx, jti)
}

// within runs f and fails the test if it has not returned after a while:
// a read that wrongly waits on a load the test holds (begun before a
// change, or while the reader's context has ended) would wait as long as
// the test holds it.
func within[T any](t *testing.T, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("a read waited on the load the test holds")
		panic("unreachable")
	}
}

// withAccount returns a SQLite store, closed when t ends, holding account
// "1", and the clock the tests give the cache.
func withAccount(t testing.TB) (storage.Storage, *clock) {
	base := openSQLite(t)
	t.Cleanup(func() { base.Close() })
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := storage.Account{ID: "1", Email: "a@p.example", Name: "a", Project: "p", CreatedAt: c.t, UpdatedAt: c.t}
	if err := base.CreateAccount(context.Background(), a, ev); err != nil {
		t.Fatal(err)
	}
	return base, c
}

// TestSharedLoad: the requests that miss one entry at once (as all do when
// it expires under load) share one load of it, but a request made after a
// change never gets a value loaded before it.
func TestSharedLoad(t *testing.T) {
	ctx := context.Background()
	base, c := withAccount(t)

	t.Run("one load for many", func(t *testing.T) {
		g := newGated(base)
		s := cache.New(g, cache.Options{TTL: time.Minute, Now: c.now})
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if got, err := s.GetAccount(ctx, "1"); err != nil || got.ID != "1" {
					t.Errorf("GetAccount = %+v, %v", got, err)
				}
			})
		}
		<-g.started
		// Every caller either waits on the load in flight or, coming after
		// it, finds its result cached: none loads again.
		close(g.release)
		wg.Wait()
		if n := g.calls.Load(); n != 1 {
			t.Fatalf("%d loads for 20 concurrent misses, want 1", n)
		}
	})

	t.Run("a waiter may give up", func(t *testing.T) {
		g := newGated(base)
		s := cache.New(g, cache.Options{TTL: time.Minute, Now: c.now})
		first := make(chan error, 1)
		go func() {
			_, err := s.GetAccount(ctx, "1")
			first <- err
		}()
		<-g.started
		waiter, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if err := within(t, func() error { _, err := s.GetAccount(waiter, "1"); return err }); err != context.DeadlineExceeded {
			t.Fatalf("a waiter whose context ended got %v, want its deadline", err)
		}
		close(g.release)
		if err := <-first; err != nil {
			t.Fatalf("the load failed for the caller that started it: %v", err)
		}
	})

	// A change made through the cache, or on another replica and announced
	// by a notification (Invalidate), while a load begun before it is in
	// flight: a read after it loads again and sees it, and the earlier
	// load's result is not cached over it.
	flip := func(st storage.Storage) {
		t.Helper()
		if _, err := st.UpdateAccount(ctx, "1", func(a storage.Account) (storage.Account, error) { a.Disabled = !a.Disabled; return a, nil }, ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name   string
		change func(s *cache.Store)
	}{
		{"a change through the cache", func(s *cache.Store) { flip(s) }},
		{"a notification for the account", func(s *cache.Store) { flip(base); s.Invalidate("1") }},
		{"a notification for everything", func(s *cache.Store) { flip(base); s.Invalidate("") }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			was, err := base.GetAccount(ctx, "1")
			if err != nil {
				t.Fatal(err)
			}
			g := newGated(base)
			s := cache.New(g, cache.Options{TTL: time.Minute, Now: c.now})
			before := make(chan storage.Account)
			go func() {
				got, _ := s.GetAccount(ctx, "1")
				before <- got
			}()
			<-g.started // that load has read nothing yet, but is in flight
			tt.change(s)
			got := within(t, func() storage.Account { a, _ := s.GetAccount(ctx, "1"); return a })
			if got.Disabled == was.Disabled {
				t.Fatalf("after the change GetAccount = %+v; want disabled = %v", got, !was.Disabled)
			}
			close(g.release)
			<-before
			if got, _ := s.GetAccount(ctx, "1"); got.Disabled == was.Disabled {
				t.Fatal("the load that began before the change was cached over the change")
			}
			if n := g.calls.Load(); n != 2 {
				t.Fatalf("%d loads, want 2", n)
			}
		})
	}

	// A key disabled, or a secret deleted, while its account's list loads.
	for _, tt := range []struct {
		name    string
		create  func() error
		change  func(s *cache.Store) error
		changed func(s *cache.Store) bool // lists, and says whether the change shows
	}{
		{"a key disabled during a key-list load",
			func() error {
				return base.CreateKey(ctx, storage.Key{ID: "k1", AccountID: "1", Algorithm: "RS256", PublicKey: []byte("spki-k1"),
					Origin: storage.KeyOriginGenerated, CreatedAt: c.t}, nil, ev)
			},
			func(s *cache.Store) error {
				_, err := s.UpdateKey(ctx, "k1", func(k storage.Key) (storage.Key, error) { k.Disabled = true; return k, nil }, ev)
				return err
			},
			func(s *cache.Store) bool { ks, _ := s.ListKeys(ctx, "1"); return len(ks) == 1 && ks[0].Disabled }},
		{"a secret deleted during a secret-list load",
			func() error {
				return base.CreateSecret(ctx, storage.Secret{ID: "s1", AccountID: "1", Hash: []byte("hash-s1"), Hint: "…s1", CreatedAt: c.t}, nil, ev)
			},
			func(s *cache.Store) error { return s.DeleteSecret(ctx, "s1", nil, ev) },
			func(s *cache.Store) bool { ss, _ := s.ListSecrets(ctx, "1"); return len(ss) == 0 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.create(); err != nil {
				t.Fatal(err)
			}
			g := newGated(base)
			s := cache.New(g, cache.Options{TTL: time.Minute, Now: c.now})
			go tt.changed(s) // the load begun before the change
			<-g.started
			if err := tt.change(s); err != nil {
				t.Fatal(err)
			}
			if !within(t, func() bool { return tt.changed(s) }) {
				t.Fatal("a read after the change does not show it")
			}
			close(g.release)
		})
	}

	t.Run("an API created during a catalog load", func(t *testing.T) {
		g := newGated(base)
		s := cache.New(g, cache.Options{TTL: time.Minute, Now: c.now})
		go s.ListAPIs(ctx)
		<-g.started
		if err := s.CreateAPI(ctx, storage.API{Identifier: "https://new.internal", Name: "new", Scopes: []string{"new.read"}, CreatedAt: c.t}, ev); err != nil {
			t.Fatal(err)
		}
		apis := within(t, func() []storage.API { l, _ := s.ListAPIs(ctx); return l })
		if !slices.ContainsFunc(apis, func(a storage.API) bool { return a.Identifier == "https://new.internal" }) {
			t.Fatalf("after CreateAPI the catalog is %+v", apis)
		}
		close(g.release)
	})

	t.Run("a revocation starts a new load", func(t *testing.T) {
		g := newGated(base)
		s := cache.New(g, cache.Options{TTL: time.Minute, Now: c.now})
		before := make(chan bool)
		go func() {
			revoked, _ := s.IsRevoked(ctx, "jti-1")
			before <- revoked
		}()
		<-g.started
		if err := s.Revoke(ctx, storage.Revocation{JTI: "jti-1", ExpiresAt: c.t.Add(time.Hour)}, ev); err != nil {
			t.Fatal(err)
		}
		if revoked := within(t, func() bool { r, _ := s.IsRevoked(ctx, "jti-1"); return r }); !revoked {
			t.Fatal("after Revoke, IsRevoked = false")
		}
		close(g.release)
		<-before
		if revoked, _ := s.IsRevoked(ctx, "jti-1"); !revoked {
			t.Fatal("the load that began before the revocation was cached over it")
		}
	})
}

// TestCachedAccount: CachedAccount answers from memory only, by ID or by
// email, as long as GetAccount and GetAccountByEmail would hit, and
// allocates nothing.
func TestCachedAccount(t *testing.T) {
	ctx := context.Background()
	base, c := withAccount(t)
	s := cache.New(base, cache.Options{TTL: time.Minute, Now: c.now})
	cached := func(name string) bool {
		t.Helper()
		a, ok := s.CachedAccount(name)
		if ok && a.ID != "1" {
			t.Fatalf("CachedAccount(%q) = account %q, want 1", name, a.ID)
		}
		return ok
	}
	for _, name := range []string{"1", "a@p.example", "2", ""} {
		if cached(name) {
			t.Errorf("CachedAccount(%q) before any lookup: found, want a miss (it never loads)", name)
		}
	}
	if _, err := s.GetAccount(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	if !cached("1") || cached("a@p.example") {
		t.Error("after GetAccount: want the ID cached, and the email not")
	}
	if _, err := s.GetAccountByEmail(ctx, "a@p.example"); err != nil {
		t.Fatal(err)
	}
	if !cached("a@p.example") {
		t.Error("after GetAccountByEmail: the email is not cached")
	}
	if !raceEnabled {
		if n := testing.AllocsPerRun(100, func() { s.CachedAccount("a@p.example") }); n != 0 {
			t.Errorf("a hit allocates %v times", n)
		}
	}
	c.t = c.t.Add(2 * time.Minute)
	if cached("1") || cached("a@p.example") {
		t.Error("CachedAccount answered past the TTL")
	}
	s.GetAccount(ctx, "1")
	s.Invalidate("1")
	if cached("1") {
		t.Error("CachedAccount answered after the account was invalidated")
	}
}

// TestHitAllocatesNothing: every token request makes several cache hits,
// and a hit allocates nothing (an allocation count, not a time: the same on
// every machine).
func TestHitAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	ctx := context.Background()
	base, c := withAccount(t)
	hash := sha256.Sum256([]byte("kwat_token"))
	tok := &storage.TokenRecord{Hash: hash[:], ID: "t1", AccountID: "1", IssuedAt: c.t, ExpiresAt: c.t.Add(time.Hour)}
	if _, err := base.Commit(ctx, []storage.Write{{Token: tok}}); err != nil {
		t.Fatal(err)
	}
	s := cache.New(base, cache.Options{TTL: time.Minute, Now: c.now})
	for _, tt := range []struct {
		name string
		hit  func() error
	}{
		{"GetToken", func() error { _, err := s.GetToken(ctx, hash[:]); return err }},
		{"GetAccount", func() error { _, err := s.GetAccount(ctx, "1"); return err }},
		{"GetAccountByEmail", func() error { _, err := s.GetAccountByEmail(ctx, "a@p.example"); return err }},
		{"GetAccount unknown", func() error { _, err := s.GetAccount(ctx, "2"); return notFound(err) }},
		{"GetAccountByEmail unknown", func() error { _, err := s.GetAccountByEmail(ctx, "b@p.example"); return notFound(err) }},
		{"ListKeys", func() error { _, err := s.ListKeys(ctx, "1"); return err }},
		{"ListSecrets", func() error { _, err := s.ListSecrets(ctx, "1"); return err }},
		{"IsRevoked", func() error { _, err := s.IsRevoked(ctx, "jti-1"); return err }},
		{"ListAPIs", func() error { _, err := s.ListAPIs(ctx); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.hit(); err != nil { // the miss that fills the cache
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(100, func() {
				if err := tt.hit(); err != nil {
					t.Fatal(err)
				}
			}); n != 0 {
				t.Errorf("a hit allocates %v times", n)
			}
		})
	}
}

// notFound is nil for storage.ErrNotFound, and else err or an error
// saying that it was found.
func notFound(err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err == nil:
		return errors.New("found, want ErrNotFound")
	}
	return err
}

// BenchmarkHit measures a cache hit, which every token request makes
// several of: it allocates nothing.
// Run with: go test ./internal/storage/cache -run '^$' -bench Hit
func BenchmarkHit(b *testing.B) {
	ctx := context.Background()
	base, c := withAccount(b)
	s := cache.New(base, cache.Options{TTL: time.Minute, Now: c.now})
	b.Run("GetAccount", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.GetAccount(ctx, "1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ListAPIs", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.ListAPIs(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// hangingStore is a store whose GetAccount does not answer until its
// context ends, as a dead database's connection.
type hangingStore struct{ storage.Storage }

func (hangingStore) GetAccount(ctx context.Context, _ string) (storage.Account, error) {
	<-ctx.Done()
	return storage.Account{}, ctx.Err()
}

// TestSharedLoadGivesUp: a shared load on a store that does not answer is
// given up within 20 s, the admin API's request bound and the commit
// timeout, the shortest wait of a request that joins it: it must not hold
// a connection of the pool after all its waiters have gone.
func TestSharedLoadGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := cache.New(hangingStore{}, cache.Options{TTL: time.Minute})
		start := time.Now()
		_, err := s.GetAccount(context.Background(), "1")
		if err != context.DeadlineExceeded {
			t.Fatalf("GetAccount on a store that does not answer = %v, want the load's deadline", err)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Fatalf("the shared load was given up after %s, want at most 20s", took)
		}
	})
}

// countingEmailAt counts the AccountEmailAt calls that reach the store.
type countingEmailAt struct {
	storage.Storage
	n atomic.Int32
}

func (c *countingEmailAt) AccountEmailAt(ctx context.Context, local, domain string) (bool, error) {
	c.n.Add(1)
	return c.Storage.AccountEmailAt(ctx, local, domain)
}

// The token endpoint asks AccountEmailAt for every delegated token, whose
// user is nearly never an account: the answer, false too, is cached like
// the other delegation lookups, dropped at once by an account made through
// the cache, and by the TTL for one made elsewhere (another replica).
func TestAccountEmailAtCached(t *testing.T) {
	ctx := context.Background()
	base := openSQLite(t)
	defer base.Close()
	counted := &countingEmailAt{Storage: base}
	c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s := cache.New(counted, cache.Options{TTL: time.Minute, Now: c.now})
	at := func(local, domain string, want bool, calls int32) {
		t.Helper()
		if got, err := s.AccountEmailAt(ctx, local, domain); err != nil || got != want {
			t.Fatalf("AccountEmailAt(%q, %q) = %v, %v; want %v", local, domain, got, err, want)
		}
		if n := counted.n.Load(); n != calls {
			t.Fatalf("AccountEmailAt(%q, %q): %d reads of the store so far, want %d", local, domain, n, calls)
		}
	}
	at("a", "p.example", false, 1)
	at("a", "p.example", false, 1) // cached
	at("", "p.example", false, 2)  // another question
	at("b", "p.example", false, 3)

	// Made through the cache: seen at once.
	if err := s.CreateAccount(ctx, storage.Account{ID: "1", Email: "a@p.example", Name: "a", Project: "p", CreatedAt: c.t, UpdatedAt: c.t}, ev); err != nil {
		t.Fatal(err)
	}
	at("a", "p.example", true, 4)
	at("", "p.example", true, 5)
	at("b", "p.example", false, 6)

	// Made elsewhere: seen after the TTL, or at once on Invalidate.
	if err := base.CreateAccount(ctx, storage.Account{ID: "2", Email: "b@p.example", Name: "b", Project: "p", CreatedAt: c.t, UpdatedAt: c.t}, ev); err != nil {
		t.Fatal(err)
	}
	at("b", "p.example", false, 6)
	c.t = c.t.Add(2 * time.Minute)
	at("b", "p.example", true, 7)
	at("c", "p.example", false, 8)
	if err := base.CreateAccount(ctx, storage.Account{ID: "3", Email: "c@p.example", Name: "c", Project: "p", CreatedAt: c.t, UpdatedAt: c.t}, ev); err != nil {
		t.Fatal(err)
	}
	at("c", "p.example", false, 8)
	s.Invalidate("3")
	at("c", "p.example", true, 9)

	// Deleted through the cache: gone at once.
	if err := s.DeleteAccount(ctx, "1", nil, ev); err != nil {
		t.Fatal(err)
	}
	at("a", "p.example", false, 10)
	if err := s.CreateAccounts(ctx, []storage.Account{{ID: "4", Email: "a@p.example", Name: "a", Project: "p", CreatedAt: c.t, UpdatedAt: c.t}}, ev); err != nil {
		t.Fatal(err)
	}
	at("a", "p.example", true, 11)
}

// readsCounted is a store whose every lookup the cache wraps answers at
// once, with nothing found missing, and counts its reads by lookup.
type readsCounted struct {
	storage.Storage // nil: the cache must not reach anything else
	mu              sync.Mutex
	n               map[string]int
}

func (r *readsCounted) read(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n[name]++
}

func (r *readsCounted) GetAccount(context.Context, string) (storage.Account, error) {
	r.read("GetAccount")
	return storage.Account{ID: "1"}, nil
}
func (r *readsCounted) GetAccountByEmail(context.Context, string) (storage.Account, error) {
	r.read("GetAccountByEmail")
	return storage.Account{ID: "1"}, nil
}
func (r *readsCounted) ListKeys(context.Context, string) ([]storage.Key, error) {
	r.read("ListKeys")
	return nil, nil
}
func (r *readsCounted) ListSecrets(context.Context, string) ([]storage.Secret, error) {
	r.read("ListSecrets")
	return nil, nil
}
func (r *readsCounted) GetToken(context.Context, []byte) (storage.TokenRecord, error) {
	r.read("GetToken")
	return storage.TokenRecord{}, nil
}
func (r *readsCounted) IsRevoked(context.Context, string) (bool, error) {
	r.read("IsRevoked")
	return false, nil
}
func (r *readsCounted) ListAPIs(context.Context) ([]storage.API, error) {
	r.read("ListAPIs")
	return nil, nil
}
func (r *readsCounted) GetUser(context.Context, string) (storage.User, error) {
	r.read("GetUser")
	return storage.User{}, nil
}
func (r *readsCounted) GetGrant(context.Context, string, string) (storage.Grant, error) {
	r.read("GetGrant")
	return storage.Grant{}, nil
}
func (r *readsCounted) GetOrg(context.Context, string) (storage.Org, error) {
	r.read("GetOrg")
	return storage.Org{}, nil
}
func (r *readsCounted) GetProjectOrg(context.Context, string) (storage.ProjectOrg, error) {
	r.read("GetProjectOrg")
	return storage.ProjectOrg{}, nil
}
func (r *readsCounted) AccountEmailAt(context.Context, string, string) (bool, error) {
	r.read("AccountEmailAt")
	return false, nil
}

// A negative TTL (--cache-ttl 0) keeps nothing: every lookup the cache
// serves reads the store each time, the delegation lookups, key lists,
// catalog, tokens, revocations and AccountEmailAt's answers as well as the
// accounts, and CachedAccount finds nothing. A zero TTL is the 2 s
// default, which keeps each.
func TestNegativeTTLKeepsNothing(t *testing.T) {
	ctx := context.Background()
	lookups := map[string]func(*cache.Store) error{
		"GetAccount":        func(s *cache.Store) error { _, err := s.GetAccount(ctx, "1"); return err },
		"GetAccountByEmail": func(s *cache.Store) error { _, err := s.GetAccountByEmail(ctx, "a@p.example"); return err },
		"ListKeys":          func(s *cache.Store) error { _, err := s.ListKeys(ctx, "1"); return err },
		"ListSecrets":       func(s *cache.Store) error { _, err := s.ListSecrets(ctx, "1"); return err },
		"GetToken":          func(s *cache.Store) error { _, err := s.GetToken(ctx, []byte("h")); return err },
		"IsRevoked":         func(s *cache.Store) error { _, err := s.IsRevoked(ctx, "jti"); return err },
		"ListAPIs":          func(s *cache.Store) error { _, err := s.ListAPIs(ctx); return err },
		"GetUser":           func(s *cache.Store) error { _, err := s.GetUser(ctx, "u@o.example"); return err },
		"GetGrant":          func(s *cache.Store) error { _, err := s.GetGrant(ctx, "o.example", "1"); return err },
		"GetOrg":            func(s *cache.Store) error { _, err := s.GetOrg(ctx, "o.example"); return err },
		"GetProjectOrg":     func(s *cache.Store) error { _, err := s.GetProjectOrg(ctx, "p"); return err },
		"AccountEmailAt":    func(s *cache.Store) error { _, err := s.AccountEmailAt(ctx, "u", "o.example"); return err },
	}
	for _, c := range []struct {
		ttl   time.Duration
		reads int
	}{{-1, 3}, {0, 1}} {
		store := &readsCounted{n: map[string]int{}}
		s := cache.New(store, cache.Options{TTL: c.ttl})
		for name, lookup := range lookups {
			for range 3 {
				if err := lookup(s); err != nil {
					t.Fatalf("TTL %v: %s: %v", c.ttl, name, err)
				}
			}
			if got := store.n[name]; got != c.reads {
				t.Errorf("TTL %v: %s read the store %d times for 3 lookups, want %d", c.ttl, name, got, c.reads)
			}
		}
		for _, name := range []string{"1", "a@p.example"} {
			if _, ok := s.CachedAccount(name); ok != (c.ttl == 0) {
				t.Errorf("TTL %v: CachedAccount(%q) found = %v, want %v", c.ttl, name, ok, c.ttl == 0)
			}
		}
	}
}

// TestMissLooksOnce: a miss looks its entry up once before it loads
// (then once more in the shared load, for a load that ended meanwhile),
// GetToken's as every other lookup's; GetToken's looked it up a second
// time, by the string of the hash, before loading. Each lookup reads the
// clock once, so the clock's reads count them.
func TestMissLooksOnce(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		miss func(*cache.Store) error
	}{
		{"IsRevoked", func(s *cache.Store) error { _, err := s.IsRevoked(ctx, "jti"); return err }},
		{"GetAccount", func(s *cache.Store) error { _, err := s.GetAccount(ctx, "1"); return err }},
		{"ListKeys", func(s *cache.Store) error { _, err := s.ListKeys(ctx, "1"); return err }},
		{"GetToken", func(s *cache.Store) error { _, err := s.GetToken(ctx, []byte("h")); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			store := &readsCounted{n: map[string]int{}}
			var reads atomic.Int64 // the shared load reads it on a goroutine of its own
			now := func() time.Time { reads.Add(1); return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }
			s := cache.New(store, cache.Options{TTL: time.Minute, Now: now})
			if err := tt.miss(s); err != nil {
				t.Fatal(err)
			}
			if store.n[tt.name] != 1 {
				t.Errorf("the store was read %d times, want 1", store.n[tt.name])
			}
			// Two lookups of the entry and the load's own reading.
			if clockReads := reads.Load(); clockReads != 3 {
				t.Errorf("a miss read the clock %d times, want 3: two lookups of the entry and the load's", clockReads)
			}
			reads.Store(0)
			if err := tt.miss(s); err != nil {
				t.Fatal(err)
			}
			if clockReads := reads.Load(); store.n[tt.name] != 1 || clockReads != 1 {
				t.Errorf("a hit read the store %d times in all and the clock %d times, want 1 and 1", store.n[tt.name], clockReads)
			}
		})
	}
}

// countingAccounts counts the GetAccount and GetAccountByEmail calls
// that reach the store.
type countingAccounts struct {
	storage.Storage
	n atomic.Int32
}

func (c *countingAccounts) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	c.n.Add(1)
	return c.Storage.GetAccount(ctx, id)
}

func (c *countingAccounts) GetAccountByEmail(ctx context.Context, email string) (storage.Account, error) {
	c.n.Add(1)
	return c.Storage.GetAccountByEmail(ctx, email)
}

// TestUnknownAccountCached: a name no account has (a client ID, an
// email, a JWT-bearer iss) is cached as unknown for the TTL, as an
// account is, so a guesser's repeated lookups of it answer from memory
// as a known account's do, not after a read of the store; CachedAccount
// does not find it. An account made with that name is found at once when
// made through the cache (created, imported, loaded) or announced by
// another replica (Invalidate), and after the TTL otherwise.
func TestUnknownAccountCached(t *testing.T) {
	ctx := context.Background()
	b := storage.Account{ID: "2", Email: "b@p.example", Name: "b", Project: "p"}
	for _, by := range []struct {
		name   string
		lookup func(*cache.Store) (storage.Account, error)
		key    string
	}{
		{"by ID", func(s *cache.Store) (storage.Account, error) { return s.GetAccount(ctx, b.ID) }, b.ID},
		{"by email", func(s *cache.Store) (storage.Account, error) { return s.GetAccountByEmail(ctx, b.Email) }, b.Email},
	} {
		for _, tt := range []struct {
			name   string
			create func(s *cache.Store, base storage.Storage, c *clock) error
		}{
			{"created through the cache", func(s *cache.Store, _ storage.Storage, _ *clock) error { return s.CreateAccount(ctx, b, ev) }},
			{"imported through the cache", func(s *cache.Store, _ storage.Storage, _ *clock) error {
				return s.CreateAccounts(ctx, []storage.Account{b}, ev)
			}},
			{"loaded through the cache", func(s *cache.Store, _ storage.Storage, _ *clock) error {
				return s.Load(ctx, storage.Bulk{Accounts: []storage.Account{b}}, []storage.AuditEvent{ev})
			}},
			{"created elsewhere and announced", func(s *cache.Store, base storage.Storage, _ *clock) error {
				if err := base.CreateAccount(ctx, b, ev); err != nil {
					return err
				}
				s.Invalidate(b.ID)
				return nil
			}},
			{"created elsewhere, all announced", func(s *cache.Store, base storage.Storage, _ *clock) error {
				if err := base.CreateAccount(ctx, b, ev); err != nil {
					return err
				}
				s.Invalidate("")
				return nil
			}},
			{"created elsewhere, past the TTL", func(s *cache.Store, base storage.Storage, c *clock) error {
				if err := base.CreateAccount(ctx, b, ev); err != nil {
					return err
				}
				c.t = c.t.Add(2 * time.Minute)
				return nil
			}},
		} {
			t.Run(by.name+"/"+tt.name, func(t *testing.T) {
				base := openSQLite(t) // empty, for Load
				t.Cleanup(func() { base.Close() })
				c := &clock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
				counted := &countingAccounts{Storage: base}
				s := cache.New(counted, cache.Options{TTL: time.Minute, Now: c.now})
				for i := range 3 {
					if a, err := by.lookup(s); !errors.Is(err, storage.ErrNotFound) {
						t.Fatalf("lookup %d of an unknown name = %+v, %v; want ErrNotFound", i+1, a, err)
					}
				}
				if n := counted.n.Load(); n != 1 {
					t.Fatalf("3 lookups of an unknown name read the store %d times, want 1", n)
				}
				if a, ok := s.CachedAccount(by.key); ok {
					t.Fatalf("CachedAccount(%q) of an unknown name = %+v, found", by.key, a)
				}
				if err := tt.create(s, base, c); err != nil {
					t.Fatal(err)
				}
				if a, err := by.lookup(s); err != nil || a.ID != b.ID {
					t.Fatalf("after the account was made the lookup = %+v, %v; want account %s", a, err, b.ID)
				}
			})
		}
	}

	t.Run("a negative TTL keeps nothing", func(t *testing.T) {
		base, c := withAccount(t)
		counted := &countingAccounts{Storage: base}
		s := cache.New(counted, cache.Options{TTL: -1, Now: c.now})
		for range 3 {
			s.GetAccount(ctx, b.ID)
		}
		if n := counted.n.Load(); n != 3 {
			t.Fatalf("3 lookups read the store %d times, want 3", n)
		}
	})
}

// TestUnknownAccountsBounded: a flood of names no account has keeps at
// most MaxEntries of them, and at most 64 bytes a name on average, in
// memory; each name is kept apart from the request it came in (a cut of
// a 64 KB body would keep all of it).
func TestUnknownAccountsBounded(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name    string
		names   []string
		maxKept int // of the names, after all were looked up
	}{
		{"by number", []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, 3},
		{"by bytes", []string{strings.Repeat("a", 96), strings.Repeat("b", 96), strings.Repeat("c", 96), strings.Repeat("d", 96)}, 2},
		{"too long to keep", []string{strings.Repeat("x", 193)}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := openSQLite(t)
			defer base.Close()
			counted := &countingAccounts{Storage: base}
			s := cache.New(counted, cache.Options{TTL: time.Minute, MaxEntries: 3})
			for _, name := range tt.names {
				if _, err := s.GetAccount(ctx, name); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("GetAccount(%q) = %v, want ErrNotFound", name, err)
				}
			}
			counted.n.Store(0)
			// A name looked up again that was not kept reads the store
			// (and is kept, perhaps in the place of one not yet looked
			// up again): at least len - maxKept reads.
			for _, name := range tt.names {
				s.GetAccount(ctx, name)
			}
			if n, least := int(counted.n.Load()), len(tt.names)-tt.maxKept; n < least {
				t.Fatalf("%d names looked up again read the store %d times, want at least %d: more than %d kept", len(tt.names), n, least, tt.maxKept)
			}
		})
	}
}

// TestCachedNameKeepsNoRequest: a name looked up is often a slice of a
// request's body (a form's client_id, a Basic header), up to 64 KB; the
// entry cached under it must not keep that body alive for the TTL, or
// one request per account would pin its body, MaxEntries of them.
func TestCachedNameKeepsNoRequest(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		prefix string
		lookup func(*cache.Store, string) error
	}{
		{"by ID", "1", func(s *cache.Store, n string) error { _, err := s.GetAccount(ctx, n); return err }},
		{"by email", "a@p.example", func(s *cache.Store, n string) error { _, err := s.GetAccountByEmail(ctx, n); return err }},
		{"unknown ID", "2", func(s *cache.Store, n string) error {
			if _, err := s.GetAccount(ctx, n); !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("GetAccount of an unknown ID: %v, want not found", err)
			}
			return nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base, c := withAccount(t)
			s := cache.New(base, cache.Options{TTL: time.Hour, Now: c.now})
			body := tt.prefix + "&" + strings.Repeat("x", 1<<20) // the name is its first bytes
			freed := weak.Make(unsafe.StringData(body))
			if err := tt.lookup(s, body[:len(tt.prefix)]); err != nil {
				t.Fatal(err)
			}
			body = ""
			runtime.GC()
			runtime.GC()
			if freed.Value() != nil {
				t.Errorf("the 1 MB request the name %q was cut from is still reachable after its lookup was cached", tt.prefix)
			}
			if err := tt.lookup(s, strings.Clone(tt.prefix)); err != nil { // still cached, and s still alive
				t.Fatal(err)
			}
		})
	}
}
