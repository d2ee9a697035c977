package tokenstate_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/tokenstate"
)

var t0 = time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)

// store is a tokenstate.Store of one account, its keys and opaque tokens.
type store struct {
	acct   storage.Account
	keys   []storage.Key
	tokens map[string]storage.TokenRecord
	// emails are other accounts' emails, in lower case.
	emails []string
}

func (s *store) GetAccount(_ context.Context, id string) (storage.Account, error) {
	if id != s.acct.ID {
		return storage.Account{}, storage.ErrNotFound
	}
	return s.acct, nil
}
func (s *store) ListKeys(context.Context, string) ([]storage.Key, error)       { return s.keys, nil }
func (s *store) ListSecrets(context.Context, string) ([]storage.Secret, error) { return nil, nil }
func (s *store) GetToken(_ context.Context, hash []byte) (storage.TokenRecord, error) {
	t, ok := s.tokens[string(hash)]
	if !ok {
		return t, storage.ErrNotFound
	}
	return t, nil
}
func (s *store) IsRevoked(context.Context, string) (bool, error) { return false, nil }
func (s *store) GetUser(context.Context, string) (storage.User, error) {
	return storage.User{}, storage.ErrNotFound
}
func (s *store) GetGrant(context.Context, string, string) (storage.Grant, error) {
	return storage.Grant{}, storage.ErrNotFound
}
func (s *store) GetOrg(_ context.Context, domain string) (storage.Org, error) {
	return storage.Org{Domain: domain}, nil
}
func (s *store) GetProjectOrg(context.Context, string) (storage.ProjectOrg, error) {
	return storage.ProjectOrg{}, storage.ErrNotFound
}
func (s *store) AccountEmailAt(_ context.Context, local, domain string) (bool, error) {
	// In ASCII lower case, as storage.Storage's.
	return slices.Contains(s.emails, strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, local+"@"+domain)), nil
}

type noJWT struct{}

func (noJWT) Verify(string, any) error { return errors.New("no JWTs here") }

func thumbprint(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// TestCertificateTokensRevoked: a change of the account's certificate
// binding (CertTokensRevokedBefore) ends the tokens got with a CA-issued
// certificate: those of client_credentials (credential cert:THUMBPRINT),
// and those of the JWT-bearer grant to a client that authenticated with
// such a certificate, whose credential names the assertion's key but
// which are bound to the certificate. Tokens got with a key, a secret or
// a self-signed certificate registered as a key stay active.
func TestCertificateTokensRevoked(t *testing.T) {
	selfSigned := []byte("the DER of a self-signed certificate")
	caIssued := thumbprint([]byte("the DER of a CA-issued certificate"))
	s := &store{
		acct: storage.Account{ID: "1", CertTokensRevokedBefore: t0},
		keys: []storage.Key{{ID: "k"}, {ID: "self", Certificate: selfSigned}},
	}
	for _, tt := range []struct {
		name       string
		credential string
		x5t        string
		issued     time.Time
		wantActive bool
	}{
		{"client_credentials, CA-issued certificate", "cert:" + caIssued, caIssued, t0.Add(-time.Minute), false},
		{"client_credentials, CA-issued certificate, after the change", "cert:" + caIssued, caIssued, t0.Add(time.Second), true},
		{"jwt-bearer, client authenticated with a CA-issued certificate", "key:k", caIssued, t0.Add(-time.Minute), false},
		{"jwt-bearer, client authenticated with a CA-issued certificate, after the change", "key:k", caIssued, t0.Add(time.Second), true},
		{"jwt-bearer, client authenticated with a self-signed certificate", "key:k", thumbprint(selfSigned), t0.Add(-time.Minute), true},
		{"self_signed_tls_client_auth", "key:self", thumbprint(selfSigned), t0.Add(-time.Minute), true},
		{"key", "key:k", "", t0.Add(-time.Minute), true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := tokenstate.OpaquePrefix + tt.name
			s.tokens = map[string]storage.TokenRecord{string(tokenstate.HashOpaque(raw)): {
				ID: "jti", AccountID: "1", Subject: "1", Scope: "orders.read", Credential: tt.credential, Thumbprint: tt.x5t,
				IssuedAt: tt.issued, ExpiresAt: tt.issued.Add(time.Hour),
			}}
			r := tokenstate.New(s, noJWT{}, "https://kw", func() time.Time { return t0.Add(2 * time.Second) })
			info, err := r.Resolve(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if info.Active != tt.wantActive {
				t.Errorf("active %v (%s), want %v", info.Active, info.Reason, tt.wantActive)
			}
		})
	}
}

// delegating is a store whose user alice may be acted for by account 1.
type delegating struct{ store }

func (delegating) GetUser(_ context.Context, email string) (storage.User, error) {
	return storage.User{Email: email, Org: "example.com"}, nil
}
func (delegating) GetGrant(_ context.Context, org, clientID string) (storage.Grant, error) {
	return storage.Grant{Org: org, ClientID: clientID, Scopes: []string{"calendar"}}, nil
}

// TestOpaqueClientEmail: an active opaque token names its account's email
// in client_email, and in act's client_email when delegated, as a JWT
// does; its record has none.
func TestOpaqueClientEmail(t *testing.T) {
	acct := storage.Account{ID: "1", Email: "job@proj.iam.test"}
	for _, tt := range []struct {
		name    string
		subject string
		actor   string
	}{
		{"own", "1", ""},
		{"delegated", "alice@example.com", "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := tokenstate.OpaquePrefix + tt.name
			s := &delegating{store{acct: acct, tokens: map[string]storage.TokenRecord{string(tokenstate.HashOpaque(raw)): {
				ID: "jti", AccountID: "1", Subject: tt.subject, Scope: "calendar", Actor: tt.actor, IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
			}}}}
			info, err := tokenstate.New(s, noJWT{}, "https://kw", func() time.Time { return t0 }).Resolve(context.Background(), raw)
			if err != nil || !info.Active {
				t.Fatalf("Resolve: %+v, %v", info, err)
			}
			if info.Claims.ClientEmail != acct.Email {
				t.Errorf("client_email %q, want %q", info.Claims.ClientEmail, acct.Email)
			}
			if tt.actor != "" && (info.Claims.Actor == nil || info.Claims.Actor.ClientEmail != acct.Email) {
				t.Errorf("act %+v, want client_email %q", info.Claims.Actor, acct.Email)
			}
		})
	}
}

// failingStore fails the lookups of the check after the token is found.
type failingStore struct{ *store }

func (failingStore) IsRevoked(context.Context, string) (bool, error) {
	return false, errors.New("database is locked")
}

// A token whose check the store failed is reported with the error and
// not as active: a caller that read Active first would otherwise take it
// for a live token.
func TestResolveStoreFailureNotActive(t *testing.T) {
	const raw = tokenstate.OpaquePrefix + "x"
	s := failingStore{&store{acct: storage.Account{ID: "1"}, tokens: map[string]storage.TokenRecord{string(tokenstate.HashOpaque(raw)): {
		ID: "jti", AccountID: "1", Subject: "1", Scope: "s", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
	}}}}
	info, err := tokenstate.New(s, noJWT{}, "https://kw", func() time.Time { return t0 }).Resolve(context.Background(), raw)
	if err == nil || info.Active {
		t.Fatalf("Resolve with the store failing: active %v, err %v; want an error and not active", info.Active, err)
	}
}

// directory is a tokenstate.Store of account 1 and the delegation
// directory: users by email, account 1's grants by organization,
// organizations, and the placement of account 1's project.
type directory struct {
	store
	users   map[string]storage.User
	grants  map[string]storage.Grant
	orgs    map[string]storage.Org
	project *storage.ProjectOrg
}

func (d *directory) GetOrg(_ context.Context, domain string) (storage.Org, error) {
	o, ok := d.orgs[domain]
	if !ok {
		return o, storage.ErrNotFound
	}
	return o, nil
}

func (d *directory) GetProjectOrg(_ context.Context, project string) (storage.ProjectOrg, error) {
	if d.project == nil || project != d.acct.Project {
		return storage.ProjectOrg{}, storage.ErrNotFound
	}
	return *d.project, nil
}

func (d *directory) GetUser(_ context.Context, email string) (storage.User, error) {
	u, ok := d.users[email]
	if !ok {
		return u, storage.ErrNotFound
	}
	return u, nil
}

func (d *directory) GetGrant(_ context.Context, org, clientID string) (storage.Grant, error) {
	g, ok := d.grants[org]
	if !ok || clientID != d.acct.ID {
		return g, storage.ErrNotFound
	}
	return g, nil
}

// TestDelegatedTokenState: a delegated token issued at t0 for alice is
// active only while the token endpoint would issue it: alice is active,
// the grant covers its scope, example.com does not block it, and account
// 1's project ops is not internal to another organization. A user deleted
// and added again, or a grant revoked and made again, after the token was
// issued does not bring it back, while a user reinstated or a grant
// replaced (both keep their created_at) does.
func TestDelegatedTokenState(t *testing.T) {
	for _, tt := range []struct {
		name string
		// user and grant change alice and account 1's grant in
		// example.com; returning false deletes them.
		user       func(*storage.User) bool
		grant      func(*storage.Grant) bool
		blocked    []string            // example.com's blocked scopes
		project    *storage.ProjectOrg // where ops is placed
		wantReason string
	}{
		{name: "scope blocked by the organization since", blocked: []string{"mail", "calendar"}, wantReason: "organization blocks calendar"},
		{name: "another scope blocked", blocked: []string{"mail"}},
		{name: "project moved, internal, to another organization", project: &storage.ProjectOrg{Project: "ops", Org: "other.org", Internal: true}, wantReason: "account's project internal to another organization"},
		{name: "project internal to the user's organization", project: &storage.ProjectOrg{Project: "ops", Org: "example.com", Internal: true}},
		{name: "project in another organization, not internal", project: &storage.ProjectOrg{Project: "ops", Org: "other.org"}},
		{name: "active"},
		{name: "user suspended", user: func(u *storage.User) bool { u.Suspended = true; return true }, wantReason: "delegated user suspended"},
		{name: "user deleted", user: func(*storage.User) bool { return false }, wantReason: "delegated user deleted"},
		{name: "user deleted and added again", user: func(u *storage.User) bool { u.CreatedAt = t0.Add(time.Minute); return true }, wantReason: "delegated user deleted"},
		{name: "user added in the token's second", user: func(u *storage.User) bool { u.CreatedAt = t0.Add(500 * time.Millisecond); return true }},
		{name: "grant revoked", grant: func(*storage.Grant) bool { return false }, wantReason: "delegation revoked"},
		{name: "grant revoked and made again", grant: func(g *storage.Grant) bool { g.CreatedAt = t0.Add(time.Minute); return true }, wantReason: "delegation revoked"},
		{name: "grant made in the token's second", grant: func(g *storage.Grant) bool { g.CreatedAt = t0.Add(500 * time.Millisecond); return true }},
		{name: "grant replaced without the scope", grant: func(g *storage.Grant) bool { g.Scopes = []string{"mail"}; return true }, wantReason: "delegation no longer covers calendar"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const raw = tokenstate.OpaquePrefix + "delegated"
			d := &directory{
				store: store{acct: storage.Account{ID: "1", Project: "ops"}, tokens: map[string]storage.TokenRecord{string(tokenstate.HashOpaque(raw)): {
					ID: "jti", AccountID: "1", Subject: "alice@example.com", Scope: "calendar", Actor: "1", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
				}}},
				users: map[string]storage.User{}, grants: map[string]storage.Grant{},
				orgs:    map[string]storage.Org{"example.com": {Domain: "example.com", BlockedScopes: tt.blocked}},
				project: tt.project,
			}
			u := storage.User{Email: "alice@example.com", Org: "example.com", CreatedAt: t0.Add(-time.Hour)}
			if tt.user == nil || tt.user(&u) {
				d.users[u.Email] = u
			}
			g := storage.Grant{Org: "example.com", ClientID: "1", Scopes: []string{"calendar"}, CreatedAt: t0.Add(-time.Hour)}
			if tt.grant == nil || tt.grant(&g) {
				d.grants[g.Org] = g
			}
			info, err := tokenstate.New(d, noJWT{}, "https://kw", func() time.Time { return t0.Add(2 * time.Minute) }).Resolve(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if info.Active != (tt.wantReason == "") || info.Reason != tt.wantReason {
				t.Errorf("active %v, reason %q; want reason %q", info.Active, info.Reason, tt.wantReason)
			}
		})
	}
}

// TestDelegatedTokenUserInAnotherOrganization: the token endpoint refuses
// to act for a user whose organization is not its email's domain (an
// import may hold one), so such a user's delegated token is inactive
// too, even where the account has a grant in the user's organization.
func TestDelegatedTokenUserInAnotherOrganization(t *testing.T) {
	const raw = tokenstate.OpaquePrefix + "delegated"
	grant := func(org string) storage.Grant {
		return storage.Grant{Org: org, ClientID: "1", Scopes: []string{"calendar"}, CreatedAt: t0.Add(-time.Hour)}
	}
	d := &directory{
		store: store{acct: storage.Account{ID: "1", Project: "ops"}, tokens: map[string]storage.TokenRecord{string(tokenstate.HashOpaque(raw)): {
			ID: "jti", AccountID: "1", Subject: "alice@example.com", Scope: "calendar", Actor: "1", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
		}}},
		users:  map[string]storage.User{"alice@example.com": {Email: "alice@example.com", Org: "other.org", CreatedAt: t0.Add(-time.Hour)}},
		grants: map[string]storage.Grant{"example.com": grant("example.com"), "other.org": grant("other.org")},
		orgs:   map[string]storage.Org{"example.com": {Domain: "example.com"}, "other.org": {Domain: "other.org"}},
	}
	info, err := tokenstate.New(d, noJWT{}, "https://kw", func() time.Time { return t0.Add(time.Minute) }).Resolve(context.Background(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if want := "delegated user in another organization"; info.Active || info.Reason != want {
		t.Errorf("active %v, reason %q; want reason %q", info.Active, info.Reason, want)
	}
}

// TestDelegatedTokenUserWithAccountEmail: a delegated token issued before
// the token endpoint refused a user whose email is a service account's
// (one under an earlier account domain, whatever its capitals) is
// inactive, as the endpoint would not issue it now.
func TestDelegatedTokenUserWithAccountEmail(t *testing.T) {
	for _, tt := range []struct {
		name, sub  string
		wantReason string
	}{
		{"an account's email", "Job@Shop.Old.Test", "delegated user has a service account's email"},
		{"another user", "alice@shop.old.test", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const raw = tokenstate.OpaquePrefix + "delegated"
			user := strings.ToLower(tt.sub)
			d := &directory{
				store: store{acct: storage.Account{ID: "1", Project: "ops"}, emails: []string{"job@shop.old.test"}, tokens: map[string]storage.TokenRecord{string(tokenstate.HashOpaque(raw)): {
					ID: "jti", AccountID: "1", Subject: tt.sub, Scope: "calendar", Actor: "1", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
				}}},
				users:  map[string]storage.User{user: {Email: user, Org: "shop.old.test", CreatedAt: t0.Add(-time.Hour)}},
				grants: map[string]storage.Grant{"shop.old.test": {Org: "shop.old.test", ClientID: "1", Scopes: []string{"calendar"}, CreatedAt: t0.Add(-time.Hour)}},
				orgs:   map[string]storage.Org{"shop.old.test": {Domain: "shop.old.test"}},
			}
			info, err := tokenstate.New(d, noJWT{}, "https://kw", func() time.Time { return t0.Add(time.Minute) }).Resolve(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if info.Active != (tt.wantReason == "") || info.Reason != tt.wantReason {
				t.Errorf("active %v, reason %q; want reason %q", info.Active, info.Reason, tt.wantReason)
			}
		})
	}
}

// TestDelegatedTokenReasonOrder: a delegated token that breaks several
// rules is given the reason of the one the token endpoint checks first.
func TestDelegatedTokenReasonOrder(t *testing.T) {
	for _, tt := range []struct {
		name       string
		change     func(d *directory)
		wantReason string
	}{
		{"organization deleted with its users and grants", func(d *directory) { d.orgs, d.users, d.grants = nil, nil, nil }, "delegation revoked"},
		{"user deleted and grant revoked", func(d *directory) { d.users, d.grants = nil, nil }, "delegation revoked"},
		{"user suspended and scope blocked", func(d *directory) {
			d.users["alice@example.com"] = storage.User{Email: "alice@example.com", Org: "example.com", Suspended: true}
			d.orgs["example.com"] = storage.Org{Domain: "example.com", BlockedScopes: []string{"calendar"}}
		}, "organization blocks calendar"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const raw = tokenstate.OpaquePrefix + "delegated"
			d := &directory{
				store: store{acct: storage.Account{ID: "1", Project: "ops"}, tokens: map[string]storage.TokenRecord{string(tokenstate.HashOpaque(raw)): {
					ID: "jti", AccountID: "1", Subject: "alice@example.com", Scope: "calendar", Actor: "1", IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
				}}},
				users:  map[string]storage.User{"alice@example.com": {Email: "alice@example.com", Org: "example.com", CreatedAt: t0.Add(-time.Hour)}},
				grants: map[string]storage.Grant{"example.com": {Org: "example.com", ClientID: "1", Scopes: []string{"calendar"}, CreatedAt: t0.Add(-time.Hour)}},
				orgs:   map[string]storage.Org{"example.com": {Domain: "example.com"}},
			}
			tt.change(d)
			info, err := tokenstate.New(d, noJWT{}, "https://kw", func() time.Time { return t0.Add(time.Minute) }).Resolve(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			if info.Active || info.Reason != tt.wantReason {
				t.Errorf("active %v, reason %q; want reason %q", info.Active, info.Reason, tt.wantReason)
			}
		})
	}
}

// TestOpaqueConfirmation: an opaque token's record carries what the
// token is bound to, which its claims give back as cnf, for introspection
// (RFC 8705 §3.2, RFC 9449 §6.2): x5t#S256 and jkt, or no cnf at all.
func TestOpaqueConfirmation(t *testing.T) {
	x5t := thumbprint([]byte("the DER of a client certificate"))
	for _, tt := range []struct {
		name     string
		x5t, jkt string
		want     *oauth2.Confirmation
	}{
		{"certificate-bound", x5t, "", &oauth2.Confirmation{X5TS256: x5t}},
		{"DPoP-bound", "", "jkt", &oauth2.Confirmation{JKT: "jkt"}},
		{"bearer", "", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := &store{acct: storage.Account{ID: "1"}, keys: []storage.Key{{ID: "k"}}}
			raw := tokenstate.OpaquePrefix + tt.name
			s.tokens = map[string]storage.TokenRecord{string(tokenstate.HashOpaque(raw)): {
				ID: "jti", AccountID: "1", Subject: "1", Scope: "orders.read", Credential: "key:k", Thumbprint: tt.x5t, JKT: tt.jkt,
				IssuedAt: t0, ExpiresAt: t0.Add(time.Hour),
			}}
			info, err := tokenstate.New(s, noJWT{}, "https://kw", func() time.Time { return t0.Add(time.Second) }).Resolve(context.Background(), raw)
			if err != nil || !info.Active {
				t.Fatalf("Resolve: %+v, %v; want active", info, err)
			}
			if got := info.Claims.Confirmation; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("cnf %+v, want %+v", got, tt.want)
			}
		})
	}
}

// hashSink keeps the hashes TestHashOpaque makes, as a store's lookup
// keeps them, so that they are counted as made on the heap.
var hashSink []byte

// TestHashOpaque: an opaque token's hash is its plain SHA-256, whatever
// its length, and a token of Keyward's size costs only the hash's own
// allocation.
func TestHashOpaque(t *testing.T) {
	for _, n := range []int{0, 1, 43, 64, 65, 1000} {
		raw := tokenstate.OpaquePrefix + strings.Repeat("x", n)
		if got, want := tokenstate.HashOpaque(raw), sha256.Sum256([]byte(raw)); !slices.Equal(got, want[:]) {
			t.Errorf("HashOpaque of a %d-byte token = %x, want %x", len(raw), got, want)
		}
	}
	raw := tokenstate.OpaquePrefix + strings.Repeat("x", 43)
	if n := testing.AllocsPerRun(100, func() { hashSink = tokenstate.HashOpaque(raw) }); n > 1 {
		t.Errorf("HashOpaque: %v allocations, want 1", n)
	}
}
