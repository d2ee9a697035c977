// Package tokenstate answers what a presented access token is and whether
// it is still active: the shared core of introspection (RFC 7662) and
// revocation (RFC 7009). A token is active only while it is unexpired, not
// revoked, its account is enabled and has not revoked it wholesale (or,
// for a token got with a certificate, the account's certificate tokens),
// and the key or secret it was obtained with is still enabled; a token of
// domain-wide delegation, also only while the token endpoint would issue
// it for its user now.
package tokenstate

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/delegation"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// OpaquePrefix starts every opaque access token.
const OpaquePrefix = oauth2.OpaqueTokenPrefix

// Store is what the resolver reads.
type Store interface {
	GetAccount(ctx context.Context, id string) (storage.Account, error)
	ListKeys(ctx context.Context, accountID string) ([]storage.Key, error)
	ListSecrets(ctx context.Context, accountID string) ([]storage.Secret, error)
	GetToken(ctx context.Context, hash []byte) (storage.TokenRecord, error)
	IsRevoked(ctx context.Context, jti string) (bool, error)
	GetUser(ctx context.Context, email string) (storage.User, error)
	GetGrant(ctx context.Context, org, clientID string) (storage.Grant, error)
	GetOrg(ctx context.Context, domain string) (storage.Org, error)
	GetProjectOrg(ctx context.Context, project string) (storage.ProjectOrg, error)
	AccountEmailAt(ctx context.Context, local, domain string) (bool, error)
}

// Verifier checks the signature of a JWT access token.
type Verifier interface {
	Verify(raw string, dest any) error
}

// Resolver finds and checks tokens.
type Resolver struct {
	store    Store
	verifier Verifier
	issuer   string
	now      func() time.Time

	// verified remembers the claims of JWTs whose signature checked out,
	// by the token's SHA-256, until they expire: a signature does not
	// change, while the state checks run on every call.
	mu       sync.Mutex
	verified map[[32]byte]oauth2.AccessClaims
}

// maxVerified bounds the signature cache.
const maxVerified = 100_000

// New returns a Resolver.
func New(store Store, verifier Verifier, issuer string, now func() time.Time) *Resolver {
	return &Resolver{store: store, verifier: verifier, issuer: issuer, now: now, verified: map[[32]byte]oauth2.AccessClaims{}}
}

// verifyJWT checks a JWT's signature, or finds it checked before.
func (r *Resolver) verifyJWT(raw string) (oauth2.AccessClaims, bool) {
	key := sha256.Sum256([]byte(raw))
	r.mu.Lock()
	c, ok := r.verified[key]
	r.mu.Unlock()
	if ok {
		return c, true
	}
	if err := r.verifier.Verify(raw, &c); err != nil || c.Issuer != r.issuer || c.ID == "" {
		return c, false
	}
	r.mu.Lock()
	if len(r.verified) >= maxVerified {
		// Full: forget a tenth, at random (map order), so the scan is rare.
		for k := range r.verified {
			delete(r.verified, k)
			if len(r.verified) <= maxVerified*9/10 {
				break
			}
		}
	}
	r.verified[key] = c
	r.mu.Unlock()
	return c, true
}

// Info is a token Keyward issued.
type Info struct {
	Claims oauth2.AccessClaims
	// Opaque says the token is opaque (stored), not a JWT.
	Opaque bool
	// Active is false when the token expired, was revoked or lost its
	// account or credential; Reason says why.
	Active bool
	Reason string
}

// ReasonRevoked is Info.Reason of a token revoked by its ID, at the
// revocation endpoint or by an administrator.
const ReasonRevoked = "revoked"

// ErrUnknown means the token is not one Keyward issued: malformed, signed
// by no published key, or an opaque token that does not exist.
var ErrUnknown = errors.New("unknown token")

// HashOpaque returns the stored hash of an opaque token. The token has 256
// random bits, so a plain SHA-256 cannot be reversed.
func HashOpaque(token string) []byte {
	// Copied to the stack when it fits, as Keyward's tokens do:
	// converting the string would allocate a copy of its own.
	var buf [64]byte
	var sum [sha256.Size]byte
	if len(token) <= len(buf) {
		sum = sha256.Sum256(buf[:copy(buf[:], token)])
	} else {
		sum = sha256.Sum256([]byte(token))
	}
	return sum[:]
}

// Resolve identifies raw and checks whether it is active. It returns
// ErrUnknown for tokens Keyward did not issue, and other errors only when
// the store fails.
func (r *Resolver) Resolve(ctx context.Context, raw string) (Info, error) {
	var info Info
	if strings.HasPrefix(raw, OpaquePrefix) {
		rec, err := r.store.GetToken(ctx, HashOpaque(raw))
		if errors.Is(err, storage.ErrNotFound) {
			return info, ErrUnknown
		}
		if err != nil {
			return info, err
		}
		info.Opaque = true
		info.Claims = oauth2.AccessClaims{
			Issuer: r.issuer, Subject: rec.Subject, Audience: rec.Audience, ClientID: rec.AccountID,
			IssuedAt: rec.IssuedAt.Unix(), Expiry: rec.ExpiresAt.Unix(), ID: rec.ID, Scope: rec.Scope, Credential: rec.Credential,
		}
		if rec.Thumbprint != "" || rec.JKT != "" {
			info.Claims.Confirmation = &oauth2.Confirmation{X5TS256: rec.Thumbprint, JKT: rec.JKT}
		}
		if rec.Actor != "" {
			info.Claims.Actor = &oauth2.Actor{Subject: rec.Actor}
		}
	} else {
		c, ok := r.verifyJWT(raw)
		if !ok {
			return info, ErrUnknown
		}
		info.Claims = c
	}
	reason, acct, err := r.check(ctx, info.Claims)
	// A token whose check the store failed is not active: a caller that
	// looked at Active before the error must not take it for one.
	info.Active, info.Reason = reason == "" && err == nil, reason
	if info.Opaque && info.Active {
		// The record has no email; the account check just read it, so an
		// opaque token answers with the client_email a JWT carries (an
		// account's email never changes).
		info.Claims.ClientEmail = acct.Email
		if info.Claims.Actor != nil {
			info.Claims.Actor.ClientEmail = acct.Email
		}
	}
	return info, err
}

// ByCertificate says whether a token's credential (its cred claim) is a
// CA-issued certificate, "cert:THUMBPRINT": the client authenticated with
// tls_client_auth. A self-signed certificate (self_signed_tls_client_auth)
// is one of the account's keys, "key:ID".
func ByCertificate(credential string) bool {
	return strings.HasPrefix(credential, "cert:")
}

// byCertificate says whether the client got token c by authenticating
// with a CA-issued certificate (tls_client_auth): its credential is
// cert:THUMBPRINT (client_credentials), or it is bound to a certificate
// (cnf x5t#S256) that is none of the account's keys. The latter is a
// token of the JWT-bearer grant, whose credential names the assertion's
// key, to a client that authenticated with a CA-issued certificate; one
// bound to a self-signed certificate registered as a key
// (self_signed_tls_client_auth) is not concerned. A self-signed
// certificate deleted since cannot be told from a CA-issued one, and
// counts as one: the token ends, as every token did when a binding change
// ended them all.
func (r *Resolver) byCertificate(ctx context.Context, accountID string, c oauth2.AccessClaims) (bool, error) {
	if ByCertificate(c.Credential) {
		return true, nil
	}
	if c.Confirmation == nil || c.Confirmation.X5TS256 == "" {
		return false, nil
	}
	keys, err := r.store.ListKeys(ctx, accountID)
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		if k.Certificate != nil && oauth2.ThumbprintDER(k.Certificate) == c.Confirmation.X5TS256 {
			return false, nil
		}
	}
	return true, nil
}

// check returns why the token is inactive, or "", and the token's account
// once it has read it.
func (r *Resolver) check(ctx context.Context, c oauth2.AccessClaims) (reason string, acct storage.Account, err error) {
	now := r.now()
	if now.Unix() >= c.Expiry {
		return "expired", acct, nil
	}
	if c.NotBefore != 0 && now.Unix() < c.NotBefore {
		return "not yet valid", acct, nil
	}
	revoked, err := r.store.IsRevoked(ctx, c.ID)
	if err != nil {
		return "", acct, err
	}
	if revoked {
		return ReasonRevoked, acct, nil
	}
	acct, err = r.store.GetAccount(ctx, c.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return "account deleted", acct, nil
	}
	if err != nil {
		return "", acct, err
	}
	if acct.Disabled {
		return "account disabled", acct, nil
	}
	// iat has whole seconds: a token issued in the second of the revocation
	// may be from just before it, so it is revoked too (the client simply
	// gets a new one).
	if !acct.TokensRevokedBefore.IsZero() && c.IssuedAt <= acct.TokensRevokedBefore.Unix() {
		return "account's tokens revoked", acct, nil
	}
	// A change of the account's certificate binding ends the tokens got
	// with a certificate it trusted, and only those.
	if !acct.CertTokensRevokedBefore.IsZero() && c.IssuedAt <= acct.CertTokensRevokedBefore.Unix() {
		byCert, err := r.byCertificate(ctx, acct.ID, c)
		if err != nil {
			return "", acct, err
		}
		if byCert {
			return "account's certificate tokens revoked", acct, nil
		}
	}
	if c.Actor != nil {
		if reason, err := r.checkDelegation(ctx, c, acct); reason != "" || err != nil {
			return reason, acct, err
		}
	}
	kind, id, _ := strings.Cut(c.Credential, ":")
	switch kind {
	case "key":
		keys, err := r.store.ListKeys(ctx, acct.ID)
		if err != nil {
			return "", acct, err
		}
		if !containsEnabled(keys, id, func(k storage.Key) (string, bool) { return k.ID, k.Disabled }) {
			return "key disabled or deleted", acct, nil
		}
	case "secret":
		secrets, err := r.store.ListSecrets(ctx, acct.ID)
		if err != nil {
			return "", acct, err
		}
		if !containsEnabled(secrets, id, func(s storage.Secret) (string, bool) { return s.ID, s.Disabled }) {
			return "secret disabled or deleted", acct, nil
		}
	}
	return "", acct, nil
}

// checkDelegation keeps a delegated token of acct active only while the
// token endpoint would issue it now (delegation.Check): the grant still
// covers its scopes, the organization blocks none of them, acct's project
// is not internal to another organization (org_internal), and its user is
// active and in the organization of its email's domain. A user deleted or
// a grant revoked is final for the token, even when added or made again.
// Check's order decides which reason a token that breaks several rules is
// given. Last, as at the token endpoint, its user's email must be no
// service account's: one issued before the endpoint refused that has a
// sub an API could take for the account's. Only delegated tokens pay for
// that read.
func (r *Resolver) checkDelegation(ctx context.Context, c oauth2.AccessClaims, acct storage.Account) (string, error) {
	_, refusal, err := delegation.Check(ctx, r.store, acct, c.Subject, strings.Fields(c.Scope), c.IssuedAt)
	if err != nil || refusal == nil {
		return "", err
	}
	switch refusal.Kind {
	case delegation.NoOrg, delegation.NoGrant:
		return "delegation revoked", nil // an organization is deleted with its users and grants
	case delegation.NoScopeGranted, delegation.ScopeNotGranted:
		return "delegation no longer covers " + refusal.Scope, nil
	case delegation.ScopeBlocked:
		return "organization blocks " + refusal.Scope, nil
	case delegation.OrgInternal:
		return "account's project internal to another organization", nil
	case delegation.UserElsewhere:
		return "delegated user in another organization", nil
	case delegation.UserSuspended:
		return "delegated user suspended", nil
	case delegation.AccountEmail:
		return "delegated user has a service account's email", nil
	default: // NoUser; BadSubject, which the token endpoint never issues
		return "delegated user deleted", nil
	}
}

func containsEnabled[T any](l []T, id string, f func(T) (string, bool)) bool {
	for _, x := range l {
		if xid, disabled := f(x); xid == id {
			return !disabled
		}
	}
	return false
}
