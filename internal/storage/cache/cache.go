// Package cache keeps the lookups of the token endpoint in memory: accounts
// by email and ID (and the names no account has), each account's keys, and
// the API catalog. It wraps a storage.Storage; every change made through it
// drops what it affects at once, and entries also expire after a TTL,
// which bounds how long a change made elsewhere (another replica) can go
// unseen. When an entry is missing or expired, the requests that want it
// at once share one load.
package cache

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyward/keyward/internal/storage"
)

// Options configure the cache.
type Options struct {
	// TTL bounds the age of an entry; 0 means 2 seconds. A negative TTL
	// keeps nothing: every lookup reads the store (those that miss at
	// once share one read).
	TTL time.Duration
	// MaxEntries bounds the number of cached accounts and key lists, and
	// of the names cached as no account's, whose bytes it bounds to 64 a
	// name on average (a longer name is not kept); 0 means 100,000.
	MaxEntries int
	Now        func() time.Time
}

// Store is a storage.Storage with cached reads.
type Store struct {
	storage.Storage
	ttl time.Duration
	max int
	now func() time.Time
	// flight shares a load among the requests that miss the same entry
	// at once: under load every entry expires with many requests waiting
	// for it, and without it each would query the store.
	flight singleflight.Group

	mu sync.RWMutex
	// version changes on every invalidation; a read that started before an
	// invalidation does not store its possibly stale result.
	version uint64
	byID    map[string]entry[storage.Account]
	byEmail map[string]entry[storage.Account]
	keys    map[string]entry[[]storage.Key]
	secrets map[string]entry[[]storage.Secret]
	apis    map[string]entry[[]storage.API] // one entry, under ""
	// tokens caches opaque tokens by hash and revoked holds IsRevoked
	// answers by jti; both drop on any revocation.
	tokens  map[string]entry[storage.TokenRecord]
	revoked map[string]entry[bool]
	// Delegation lookups: users by email, grants by org and client ID,
	// organizations and project placements.
	users    map[string]entry[storage.User]
	grants   map[string]entry[storage.Grant]
	orgs     map[string]entry[storage.Org]
	projects map[string]entry[storage.ProjectOrg]
	// emailAt holds AccountEmailAt's answers, by domain + "\x00" + local:
	// every delegated token request asks it, and it is nearly always
	// false. Any change to an account drops them all.
	emailAt map[string]entry[bool]
	// unknown holds the names GetAccount and GetAccountByEmail found no
	// account for, with the store's ErrNotFound: an unknown client ID,
	// email or iss then answers from memory as a known one does, not
	// after a read of the store that timing would tell apart. Any change
	// to an account drops them all. unknownBytes is the sum of their
	// names' lengths, bounded, as their number is, by evicting at random.
	unknown      map[unknownName]entry[error]
	unknownBytes int
}

// unknownName is a name no account has: an email, or else an ID.
type unknownName struct {
	email bool
	name  string
}

type entry[T any] struct {
	v       T
	expires time.Time
}

// New wraps s.
func New(s storage.Storage, opts Options) *Store {
	if opts.TTL == 0 {
		opts.TTL = 2 * time.Second
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = 100_000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Store{
		Storage: s, ttl: opts.TTL, max: opts.MaxEntries, now: opts.Now,
		byID: map[string]entry[storage.Account]{}, byEmail: map[string]entry[storage.Account]{}, keys: map[string]entry[[]storage.Key]{},
		secrets: map[string]entry[[]storage.Secret]{}, apis: map[string]entry[[]storage.API]{},
		tokens:  map[string]entry[storage.TokenRecord]{},
		revoked: map[string]entry[bool]{},
		users:   map[string]entry[storage.User]{}, grants: map[string]entry[storage.Grant]{},
		orgs: map[string]entry[storage.Org]{}, projects: map[string]entry[storage.ProjectOrg]{},
		emailAt: map[string]entry[bool]{},
		unknown: map[unknownName]entry[error]{},
	}
}

// lookup returns a fresh cached value, or loads and caches it. kind names
// m, for sharing loads. load reads k from the store it is given: callers
// pass a function that captures nothing, so that a hit allocates nothing.
func lookup[T any](ctx context.Context, s *Store, kind string, m map[string]entry[T], k string, load func(storage.Storage, context.Context, string) (T, error)) (T, error) {
	val, v, ok := fresh(s, m, k)
	if ok {
		return val, nil
	}
	return loadMissed(ctx, s, kind, m, k, v, load)
}

// loadMissed is lookup's miss, of k in m while the cache was at version v:
// it loads k, sharing the load, and caches it unless the cache has
// changed meanwhile.
func loadMissed[T any](ctx context.Context, s *Store, kind string, m map[string]entry[T], k string, v uint64, load func(storage.Storage, context.Context, string) (T, error)) (T, error) {
	// The closures are made on a miss only: a hit allocates nothing.
	cached := func() (T, bool, error) { val, _, ok := fresh(s, m, k); return val, ok, nil }
	return shared(ctx, s, kind+"\x00"+k, v, cached, func(ctx context.Context) (T, error) {
		now := s.now()
		val, err := load(s.Storage, ctx, k)
		if err != nil {
			return val, err
		}
		s.mu.Lock()
		if s.version == v && s.ttl > 0 {
			put(s, m, k, val, now)
		}
		s.mu.Unlock()
		return val, nil
	})
}

// put caches val as k's in m, loaded at now, evicting an entry at random
// when m is full. s.mu is held. k is kept as a copy: a name looked up is
// often a slice of a request's body (a form's client_id, up to 64 KB),
// which the entry would otherwise keep alive for the TTL.
func put[T any](s *Store, m map[string]entry[T], k string, val T, now time.Time) {
	if len(m) >= s.max {
		for victim := range m { // map order is random: evict one at random
			delete(m, victim)
			break
		}
	}
	m[strings.Clone(k)] = entry[T]{v: val, expires: now.Add(s.ttl)}
}

// fresh returns m's entry for k, the cache's version, and whether the
// entry is there and unexpired.
func fresh[T any](s *Store, m map[string]entry[T], k string) (T, uint64, bool) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := m[k]
	return e.v, s.version, ok && now.Before(e.expires)
}

// maxLoad bounds a shared load, which no one request's context ends. It
// is no longer than the shortest wait of a request that joins it (the
// admin API's 20 s, the commit timeout's 20 s; /token gives up at 25 s):
// a load on a store that does not answer would otherwise hold a
// connection of the pool after every request waiting on it had given up,
// and a request coming later would join it rather than fail on its own.
const maxLoad = 20 * time.Second

// shared runs load once for all the callers that miss key while the cache
// is at version v, and gives each its result; a caller whose ctx ends
// first stops waiting, and the load goes on for the others. The version is
// part of the key: a caller that comes after an invalidation starts a load
// of its own, and never gets a value read before the change. The load
// first asks cached: a caller that missed just before an earlier load
// ended finds its result there (a value, or the error cached for an
// account not found), and does not load again.
func shared[T any](ctx context.Context, s *Store, key string, v uint64, cached func() (T, bool, error), load func(context.Context) (T, error)) (T, error) {
	ch := s.flight.DoChan(strconv.FormatUint(v, 36)+"\x00"+key, func() (any, error) {
		if val, ok, err := cached(); ok {
			return val, err
		}
		// Not the first caller's context: its end must not fail the others.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), maxLoad)
		defer cancel()
		return load(ctx)
	})
	var zero T
	select {
	case r := <-ch:
		if r.Err != nil {
			return zero, r.Err
		}
		return r.Val.(T), nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// AccountEmailAt implements storage.Storage. Unlike the other lookups it
// caches a false answer too (for the TTL at most, and dropped by any change
// to an account made through this cache): the token endpoint asks it for
// every delegated token, of a user that is nearly never an account.
func (s *Store) AccountEmailAt(ctx context.Context, local, domain string) (bool, error) {
	return lookup(ctx, s, "emailAt", s.emailAt, domain+"\x00"+local, accountEmailAt)
}

// accountEmailAt loads the answer of key domain + "\x00" + local. A
// domain holds no NUL (the token endpoint asks only of an organization's
// domain, the admin API only of a valid one), so the first is the
// separator.
func accountEmailAt(st storage.Storage, ctx context.Context, key string) (bool, error) {
	domain, local, _ := strings.Cut(key, "\x00")
	return st.AccountEmailAt(ctx, local, domain)
}

// GetAccount implements storage.Storage. It caches an ID no account has
// too, as GetAccountByEmail does an email.
func (s *Store) GetAccount(ctx context.Context, id string) (storage.Account, error) {
	return s.account(ctx, "byID", s.byID, unknownName{name: id}, storage.Storage.GetAccount)
}

// GetAccountByEmail implements storage.Storage. Unlike the other lookups
// but AccountEmailAt it caches a miss too (ErrNotFound, for the TTL at
// most, dropped by any change to an account made through this cache or
// announced by Invalidate): the token endpoint looks up every client ID,
// email and iss a request names, and an unknown one that read the store
// each time while a known one came from memory would answer measurably
// later, telling which names are accounts. A name is cached as unknown
// when first looked up, so a name looked up once in a TTL still reads
// the store, while an account's name others use may be in memory already.
func (s *Store) GetAccountByEmail(ctx context.Context, email string) (storage.Account, error) {
	return s.account(ctx, "byEmail", s.byEmail, unknownName{email: true, name: email}, storage.Storage.GetAccountByEmail)
}

// account is GetAccount's and GetAccountByEmail's lookup of n.name in m,
// with the names no account has cached in s.unknown. A hit, an account
// or an unknown name, allocates nothing.
func (s *Store) account(ctx context.Context, kind string, m map[string]entry[storage.Account], n unknownName,
	load func(storage.Storage, context.Context, string) (storage.Account, error)) (storage.Account, error) {
	a, v, ok, err := s.freshAccount(m, n)
	if ok {
		return a, err
	}
	// The closures are made on a miss only.
	cached := func() (storage.Account, bool, error) { a, _, ok, err := s.freshAccount(m, n); return a, ok, err }
	return shared(ctx, s, kind+"\x00"+n.name, v, cached, func(ctx context.Context) (storage.Account, error) {
		now := s.now()
		a, err := load(s.Storage, ctx, n.name)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return a, err
		}
		s.mu.Lock()
		if s.version == v && s.ttl > 0 {
			if err == nil {
				put(s, m, n.name, a, now)
			} else {
				s.putUnknown(n, err, now)
			}
		}
		s.mu.Unlock()
		return a, err
	})
}

// freshAccount returns n's fresh entry in m, or else its fresh entry in
// s.unknown (the zero account and the store's ErrNotFound), the cache's
// version, and whether either was found.
func (s *Store) freshAccount(m map[string]entry[storage.Account], n unknownName) (storage.Account, uint64, bool, error) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	if e, ok := m[n.name]; ok && now.Before(e.expires) {
		return e.v, s.version, true, nil
	}
	if e, ok := s.unknown[n]; ok && now.Before(e.expires) {
		return storage.Account{}, s.version, true, e.v
	}
	return storage.Account{}, s.version, false, nil
}

// putUnknown caches n as no account's, with the store's answer err,
// loaded at now. It keeps at most s.max names and 64 bytes a name on
// average, evicting at random; a longer name than that budget is not
// kept. The name is copied: a request's name may be a cut of its whole
// body, which the cache would otherwise keep. s.mu is held.
func (s *Store) putUnknown(n unknownName, err error, now time.Time) {
	budget := 64 * s.max
	if len(n.name) > budget {
		return
	}
	if _, ok := s.unknown[n]; ok { // expired: replaced
		delete(s.unknown, n)
		s.unknownBytes -= len(n.name)
	}
	for victim := range s.unknown { // map order is random: evict at random
		if len(s.unknown) < s.max && s.unknownBytes+len(n.name) <= budget {
			break
		}
		delete(s.unknown, victim)
		s.unknownBytes -= len(victim.name)
	}
	n.name = strings.Clone(n.name)
	s.unknown[n] = entry[error]{v: err, expires: now.Add(s.ttl)}
	s.unknownBytes += len(n.name)
}

// dropUnknown drops every name cached as no account's. s.mu is held.
func (s *Store) dropUnknown() {
	clear(s.unknown)
	s.unknownBytes = 0
}

// CachedAccount returns the account that name names, as the token
// endpoint's lookup reads it (an email when name contains "@", else a
// numeric ID), when a fresh entry holds it; it never loads. A hit costs
// what GetAccount's does. The token endpoint keys its per-client throttle
// by the account's ID with it, before it may look anything up.
func (s *Store) CachedAccount(name string) (storage.Account, bool) {
	m := s.byID
	if strings.Contains(name, "@") {
		m = s.byEmail
	}
	a, _, ok := fresh(s, m, name)
	return a, ok
}

// ListKeys implements storage.Storage.
func (s *Store) ListKeys(ctx context.Context, accountID string) ([]storage.Key, error) {
	return lookup(ctx, s, "keys", s.keys, accountID, storage.Storage.ListKeys)
}

// ListSecrets implements storage.Storage.
func (s *Store) ListSecrets(ctx context.Context, accountID string) ([]storage.Secret, error) {
	return lookup(ctx, s, "secrets", s.secrets, accountID, storage.Storage.ListSecrets)
}

// GetToken implements storage.Storage. Opaque tokens never change (a
// revocation is IsRevoked's, and drops this cache too).
func (s *Store) GetToken(ctx context.Context, hash []byte) (storage.TokenRecord, error) {
	// A hit, as most introspections are, looks the hash up as it is: a
	// string of it, an allocation, is made only to load and keep it.
	rec, v, ok := freshToken(s, hash)
	if ok {
		return rec, nil
	}
	return loadMissed(ctx, s, "tokens", s.tokens, string(hash), v, getToken)
}

// freshToken is fresh for s.tokens, looked up by hash's bytes: Go makes
// no string of them for a map index, so a hit allocates nothing.
func freshToken(s *Store, hash []byte) (storage.TokenRecord, uint64, bool) {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.tokens[string(hash)]
	return e.v, s.version, ok && now.Before(e.expires)
}

func getToken(st storage.Storage, ctx context.Context, hash string) (storage.TokenRecord, error) {
	return st.GetToken(ctx, []byte(hash))
}

// IsRevoked implements storage.Storage.
func (s *Store) IsRevoked(ctx context.Context, jti string) (bool, error) {
	return lookup(ctx, s, "revoked", s.revoked, jti, storage.Storage.IsRevoked)
}

// Revoke implements storage.Storage.
func (s *Store) Revoke(ctx context.Context, r storage.Revocation, ev storage.AuditEvent) error {
	defer s.InvalidateRevocations()
	return s.Storage.Revoke(ctx, r, ev)
}

// InvalidateRevocations drops the cached tokens and revocation answers: a
// token was revoked, here or on another replica.
func (s *Store) InvalidateRevocations() {
	s.mu.Lock()
	s.version++
	clear(s.tokens)
	clear(s.revoked)
	s.mu.Unlock()
}

// ListAPIs implements storage.Storage.
func (s *Store) ListAPIs(ctx context.Context) ([]storage.API, error) {
	return lookup(ctx, s, "apis", s.apis, "", listAPIs)
}

func listAPIs(st storage.Storage, ctx context.Context, _ string) ([]storage.API, error) {
	return st.ListAPIs(ctx)
}

// invalidate drops the entries of an account ("" for none) and, with all,
// every key list and the catalog too. It drops every AccountEmailAt
// answer and every name cached as no account's: neither is known to hold
// once an account is made.
func (s *Store) invalidate(accountID string, all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version++
	clear(s.emailAt)
	s.dropUnknown()
	if all {
		clear(s.keys)
		clear(s.secrets)
		s.clearDelegation()
		clear(s.apis)
	}
	if accountID == "" {
		return
	}
	if a, ok := s.byID[accountID]; ok {
		delete(s.byEmail, a.v.Email)
	}
	for email, a := range s.byEmail {
		if a.v.ID == accountID {
			delete(s.byEmail, email)
		}
	}
	delete(s.byID, accountID)
	delete(s.keys, accountID)
	delete(s.secrets, accountID)
}

// Invalidate drops everything cached about an account; "" drops everything.
// It is how changes made by another replica are applied at once.
func (s *Store) Invalidate(accountID string) {
	if accountID == "" {
		s.mu.Lock()
		s.version++
		clear(s.byID)
		clear(s.byEmail)
		clear(s.keys)
		clear(s.secrets)
		clear(s.tokens)
		clear(s.revoked)
		s.clearDelegation()
		clear(s.apis)
		clear(s.emailAt)
		s.dropUnknown()
		s.mu.Unlock()
		return
	}
	s.invalidate(accountID, false)
}

// The mutations below pass through and drop what they affect. Of the
// negative lookups (ErrNotFound, a false answer) only the accounts' are
// cached, GetAccount's, GetAccountByEmail's and AccountEmailAt's, and every
// account change drops them all, so creations need no invalidation beyond
// that and the catalog.

// CreateAccount implements storage.Storage.
func (s *Store) CreateAccount(ctx context.Context, a storage.Account, ev storage.AuditEvent, guards ...storage.Guard) error {
	defer s.invalidate(a.ID, false)
	return s.Storage.CreateAccount(ctx, a, ev, guards...)
}

// CreateAccounts implements storage.Storage.
func (s *Store) CreateAccounts(ctx context.Context, accounts []storage.Account, ev storage.AuditEvent) error {
	defer s.invalidate("", false)
	return s.Storage.CreateAccounts(ctx, accounts, ev)
}

// UpdateAccount implements storage.Storage.
func (s *Store) UpdateAccount(ctx context.Context, id string, fn func(storage.Account) (storage.Account, error), ev storage.AuditEvent, guards ...storage.Guard) (storage.Account, error) {
	defer s.invalidate(id, false)
	return s.Storage.UpdateAccount(ctx, id, fn, ev, guards...)
}

// DeleteAccount implements storage.Storage.
func (s *Store) DeleteAccount(ctx context.Context, id string, check func(storage.Account) error, ev storage.AuditEvent, guards ...storage.Guard) error {
	defer s.invalidate(id, true) // its grants and introspector entries go too
	return s.Storage.DeleteAccount(ctx, id, check, ev, guards...)
}

// CreateKey implements storage.Storage.
func (s *Store) CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error {
	defer s.invalidate(k.AccountID, false)
	return s.Storage.CreateKey(ctx, k, check, ev)
}

// UpdateKey implements storage.Storage.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(storage.Key) (storage.Key, error), ev storage.AuditEvent, guards ...storage.Guard) (storage.Key, error) {
	defer s.invalidate("", true) // the key's account is not known before the call
	return s.Storage.UpdateKey(ctx, id, fn, ev, guards...)
}

// DeleteKey implements storage.Storage.
func (s *Store) DeleteKey(ctx context.Context, id string, check func(storage.Key) error, ev storage.AuditEvent, guards ...storage.Guard) error {
	defer s.invalidate("", true)
	return s.Storage.DeleteKey(ctx, id, check, ev, guards...)
}

// CreateSecret implements storage.Storage.
func (s *Store) CreateSecret(ctx context.Context, sec storage.Secret, check func([]storage.Secret) error, ev storage.AuditEvent) error {
	defer s.invalidate(sec.AccountID, false)
	return s.Storage.CreateSecret(ctx, sec, check, ev)
}

// UpdateSecret implements storage.Storage.
func (s *Store) UpdateSecret(ctx context.Context, id string, fn func(storage.Secret) (storage.Secret, error), check func([]storage.Secret) error, ev storage.AuditEvent, guards ...storage.Guard) (storage.Secret, error) {
	defer s.invalidate("", true)
	return s.Storage.UpdateSecret(ctx, id, fn, check, ev, guards...)
}

// DeleteSecret implements storage.Storage.
func (s *Store) DeleteSecret(ctx context.Context, id string, check func(storage.Secret) error, ev storage.AuditEvent, guards ...storage.Guard) error {
	defer s.invalidate("", true)
	return s.Storage.DeleteSecret(ctx, id, check, ev, guards...)
}

// CreateAPI implements storage.Storage.
func (s *Store) CreateAPI(ctx context.Context, a storage.API, ev storage.AuditEvent) error {
	defer s.invalidate("", true)
	return s.Storage.CreateAPI(ctx, a, ev)
}

// UpdateAPI implements storage.Storage.
func (s *Store) UpdateAPI(ctx context.Context, name string, fn func(storage.API) (storage.API, error), ev storage.AuditEvent) (storage.API, error) {
	defer s.invalidate("", true)
	return s.Storage.UpdateAPI(ctx, name, fn, ev)
}

// DeleteAPI implements storage.Storage.
func (s *Store) DeleteAPI(ctx context.Context, name string, check func(storage.API) error, ev storage.AuditEvent) error {
	defer s.invalidate("", true)
	return s.Storage.DeleteAPI(ctx, name, check, ev)
}

func (s *Store) clearDelegation() {
	clear(s.users)
	clear(s.grants)
	clear(s.orgs)
	clear(s.projects)
}

// GetUser implements storage.Storage.
func (s *Store) GetUser(ctx context.Context, email string) (storage.User, error) {
	return lookup(ctx, s, "users", s.users, email, storage.Storage.GetUser)
}

// GetGrant implements storage.Storage.
func (s *Store) GetGrant(ctx context.Context, org, clientID string) (storage.Grant, error) {
	return lookup(ctx, s, "grants", s.grants, org+"\x00"+clientID, getGrant)
}

// GetOrg implements storage.Storage.
func (s *Store) GetOrg(ctx context.Context, domain string) (storage.Org, error) {
	return lookup(ctx, s, "orgs", s.orgs, domain, storage.Storage.GetOrg)
}

// GetProjectOrg implements storage.Storage.
func (s *Store) GetProjectOrg(ctx context.Context, project string) (storage.ProjectOrg, error) {
	return lookup(ctx, s, "projects", s.projects, project, storage.Storage.GetProjectOrg)
}

// TouchSecrets implements storage.Storage. It drops the cached secret
// lists, so their last use shows (it runs every half minute, not per
// request).
func (s *Store) TouchSecrets(ctx context.Context, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	defer func() {
		s.mu.Lock()
		s.version++
		clear(s.secrets)
		s.mu.Unlock()
	}()
	return s.Storage.TouchSecrets(ctx, lastUsed)
}

// The delegation changes are rare: each drops everything cached about
// delegation (and, being notified as ChangeAll, on other replicas too).

// UpdateOrg implements storage.Storage.
func (s *Store) UpdateOrg(ctx context.Context, domain string, fn func(storage.Org, []storage.ProjectOrg) (storage.Org, error), ev storage.AuditEvent) (storage.Org, []storage.ProjectOrg, error) {
	defer s.invalidate("", true)
	return s.Storage.UpdateOrg(ctx, domain, fn, ev)
}

// DeleteOrg implements storage.Storage.
func (s *Store) DeleteOrg(ctx context.Context, domain string, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error {
	defer s.invalidate("", true)
	return s.Storage.DeleteOrg(ctx, domain, check, ev)
}

// PutUsers implements storage.Storage.
func (s *Store) PutUsers(ctx context.Context, users []storage.User, ev storage.UsersEvent) error {
	defer s.invalidate("", true)
	return s.Storage.PutUsers(ctx, users, ev)
}

// UpdateUser implements storage.Storage.
func (s *Store) UpdateUser(ctx context.Context, email string, fn func(storage.User) (storage.User, error), ev storage.AuditEvent) (storage.User, error) {
	defer s.invalidate("", true)
	return s.Storage.UpdateUser(ctx, email, fn, ev)
}

// DeleteUser implements storage.Storage.
func (s *Store) DeleteUser(ctx context.Context, email string, ev storage.AuditEvent) error {
	defer s.invalidate("", true)
	return s.Storage.DeleteUser(ctx, email, ev)
}

// PutProjectOrg implements storage.Storage.
func (s *Store) PutProjectOrg(ctx context.Context, p storage.ProjectOrg, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error {
	defer s.invalidate("", true)
	return s.Storage.PutProjectOrg(ctx, p, check, ev)
}

// DeleteProjectOrg implements storage.Storage.
func (s *Store) DeleteProjectOrg(ctx context.Context, org, project string, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error {
	defer s.invalidate("", true)
	return s.Storage.DeleteProjectOrg(ctx, org, project, check, ev)
}

// PutGrant implements storage.Storage.
func (s *Store) PutGrant(ctx context.Context, g storage.Grant, ev storage.AuditEvent, guards ...storage.Guard) (storage.Grant, error) {
	defer s.invalidate("", true)
	return s.Storage.PutGrant(ctx, g, ev, guards...)
}

// DeleteGrant implements storage.Storage.
func (s *Store) DeleteGrant(ctx context.Context, org, clientID string, ev storage.AuditEvent) error {
	defer s.invalidate("", true)
	return s.Storage.DeleteGrant(ctx, org, clientID, ev)
}

// getGrant loads the grant of key org + "\x00" + clientID. A client ID
// is an account's, digits only, so the last NUL is the separator.
func getGrant(st storage.Storage, ctx context.Context, key string) (storage.Grant, error) {
	i := strings.LastIndexByte(key, 0)
	return st.GetGrant(ctx, key[:i], key[i+1:])
}

// Load implements storage.Storage. It drops everything cached.
func (s *Store) Load(ctx context.Context, b storage.Bulk, evs []storage.AuditEvent) error {
	defer s.Invalidate("")
	return s.Storage.Load(ctx, b, evs)
}
