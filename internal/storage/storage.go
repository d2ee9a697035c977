// Package storage defines what Keyward persists and the Storage interface
// every backend implements. Backends live in subpackages (sqlite, postgres)
// and all pass the conformance suite in storagetest.
package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Backends wrap them; callers test with errors.Is.
var (
	// ErrNotFound: the thing asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a unique name, identifier or scope is taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrReplay: a single-use assertion ID (jti) was used before.
	ErrReplay = errors.New("assertion id already used")
	// ErrLastHolder: a change guarded by Guard.KeepHeld would leave no
	// enabled account holding the scope.
	ErrLastHolder = errors.New("no enabled account would hold the scope")
	// ErrLastCredential: a change guarded by Guard.KeepSignIn would leave
	// no enabled account holding the scope able to get tokens.
	ErrLastCredential = errors.New("no enabled account holding the scope could get tokens")
	// ErrUnknownScope: a change guarded by Guard.KnownScopes grants a scope
	// that belongs to no API.
	ErrUnknownScope = errors.New("the scope belongs to no API")
	// ErrScopesHeld: an API whose scopes accounts or delegation grants
	// hold cannot be deleted, nor created, nor have those scopes removed
	// or added: the holders would be left from a deleted API with those
	// scopes. DeleteAPI, CreateAPI and UpdateAPI return it as a
	// *ScopesHeldError.
	ErrScopesHeld = errors.New("the API's scopes are held")
	// ErrNotEmpty: Load found the store not empty (see NotEmptyError).
	ErrNotEmpty = errors.New("the store is not empty")
	// ErrBusy: Commit, or Ping's read of the tables, gave up waiting for
	// a lock another transaction or process held (SQLite's busy_timeout,
	// PostgreSQL's lock_timeout or statement_timeout); the cause is
	// wrapped with it. Trying again at once would wait as long.
	ErrBusy = errors.New("the store is busy")
	// ErrCannotServe: Ping reached the database, which answered that it
	// cannot read the tables token requests need (a table gone, the
	// role's privileges on it revoked, an empty SQLite file); the
	// database's error is wrapped with it. A Ping that could not reach
	// the database, or lost its connection, does not wrap it.
	ErrCannotServe = errors.New("the database answers but cannot read the tables token requests need")
	// ErrCommitUnknown: a transaction's commit failed with the connection
	// lost (or its context done) once its COMMIT may have been sent: the
	// database may have carried it out, or may yet, after a read that
	// finds it not done. The cause is wrapped with it, its text unchanged.
	// It errs on the safe side: any commit error that is not the
	// database's own answer carries it, so it is also set for commits
	// surely not carried out, whose COMMIT was never sent (the context
	// ended before it: database/sql returns ctx.Err() and rolls back) or
	// was answered with a rollback (pgx's ErrTxCommitRollback, of a
	// transaction an earlier statement's error aborted). SQLite's commits
	// never fail so: it has no connection to lose.
	ErrCommitUnknown = errors.New("the commit's outcome is not known")
)

// Guard is a precondition of a change to an account, a key, a secret or a
// delegation grant. The store checks it inside the change's transaction,
// after applying the change: if it fails, nothing is written. Guarded
// changes, CreateAPI, UpdateAPI and DeleteAPI are serialized against each
// other, across processes sharing the store, so two of them cannot each
// pass by counting on what the other one undoes (write skew). Changes made
// without a guard are not checked.
type Guard struct {
	// KeepHeld, if set, is a scope that some enabled account must still
	// hold after the change when the changed account held it, enabled,
	// before: otherwise the change fails with ErrLastHolder. (Keyward keeps
	// its admin scope held, so the API never locks every administrator out.)
	KeepHeld string
	// KnownScopes: every scope the change grants that the account or grant
	// did not hold before must belong to an API, or the change fails with
	// ErrUnknownScope. With DeleteAPI refusing while its scopes are held,
	// no account or grant is left holding the scope of a deleted API.
	KnownScopes bool
	// KeepSignIn, if set, is a scope such that some enabled account
	// holding it must still be able to get tokens after a change to a key
	// or a secret that was a way in for such an account before, or to such
	// an account (disabling or deleting it, taking the scope, the methods or
	// the binding it gets tokens with): otherwise the change fails with
	// ErrLastCredential. (Keyward keeps an administrator able to get an
	// admin token: changing credentials or administrators never locks the
	// API out.) An account gets tokens with:
	//   - an enabled key that has not expired at Now: the JWT-bearer grant
	//     takes any key of the account, whatever its AuthMethods, and
	//     self_signed_tls_client_auth's certificates are keys too;
	//   - an enabled secret that has not expired at Now, if its AuthMethods
	//     allow client_secret_basic or client_secret_post;
	//   - a CA-issued certificate, if its AuthMethods allow tls_client_auth,
	//     a TLSBinding is set and NoCertificates is false. Whether the
	//     server trusts the CA that issues it is configuration the store
	//     does not see: a binding counts, and without one tls_client_auth
	//     does not.
	// KeepSignIn does not apply to grants.
	KeepSignIn string
	// NoCertificates says the server takes no CA-issued client
	// certificates (it has no --tls-client-ca): for KeepSignIn, a
	// certificate binding is then no way in.
	NoCertificates bool
	// Now is when KeepSignIn judges keys and secrets expired; zero means
	// the store's clock.
	Now time.Time
}

// HoldersListed caps the holders a ScopesHeldError lists.
const HoldersListed = 10

// ScopesHeldError is DeleteAPI's refusal: accounts or delegation grants
// hold some of the API's scopes, and would hold them again, unnoticed, if
// an API with those scopes were created later. It is also CreateAPI's:
// accounts or grants hold some of the new API's scopes, left from a
// deleted API before DeleteAPI refused. And UpdateAPI's, for the scopes
// it removes or, on the same grounds as CreateAPI, adds.
// errors.Is(err, ErrScopesHeld) holds for it.
type ScopesHeldError struct {
	// Op is what was refused: "create api", "update api" or "delete api".
	Op  string
	API string
	// Holders are the first HoldersListed holders: accounts by ID, then
	// delegation grants by organization and client ID.
	Holders []ScopeHolder
	// Total is how many holders there are, listed or not.
	Total int
}

// IdentifierTakenError is CreateAPI's refusal of an identifier that is
// another API's but for the case of its scheme or host or one trailing
// slash (oauth2.NamesAPI): a self-signed JWT for either would be taken by
// both. The store checks it inside the insert's transaction, serialized
// against other API creations. It is ErrAlreadyExists.
type IdentifierTakenError struct {
	// API and Identifier are the other API's name and identifier.
	API, Identifier string
}

func (e *IdentifierTakenError) Error() string {
	return fmt.Sprintf("create api: the identifier is the API %q's, %s, but for case or a trailing slash", e.API, e.Identifier)
}

// Is reports whether target is ErrAlreadyExists.
func (e *IdentifierTakenError) Is(target error) bool { return target == ErrAlreadyExists }

// NotEmptyError is Load's error when the store holds what Load would
// merge into: Holds says what ("2 service accounts, 1 organization").
// It is ErrNotEmpty.
type NotEmptyError struct{ Holds string }

func (e *NotEmptyError) Error() string {
	return "load: " + ErrNotEmpty.Error() + ": it holds " + e.Holds
}

// Is reports whether target is ErrNotEmpty.
func (e *NotEmptyError) Is(target error) bool { return target == ErrNotEmpty }

// LoadError is Load's error writing one item of its Bulk: Kind names the
// kind of item ("key", "service account"), ID the item (empty for the
// users, written together) and Err is the cause, which may hold the
// database's own text.
type LoadError struct {
	Kind, ID string
	Err      error
}

func (e *LoadError) Error() string {
	if e.ID == "" {
		return fmt.Sprintf("load: %s: %v", e.Kind, e.Err)
	}
	return fmt.Sprintf("load: %s %s: %v", e.Kind, e.ID, e.Err)
}

// Unwrap returns the cause.
func (e *LoadError) Unwrap() error { return e.Err }

// ScopeHolder is an account (AccountID and Email set) or a delegation
// grant (Org and ClientID set) holding some of an API's scopes.
type ScopeHolder struct {
	AccountID, Email string
	Org, ClientID    string
	// Scopes are the API's scopes it holds, in the API's order.
	Scopes []string
}

func (e *ScopesHeldError) Error() string {
	return fmt.Sprintf("%s %s: %v (%d holders)", e.Op, e.API, ErrScopesHeld, e.Total)
}

// Is makes errors.Is(err, ErrScopesHeld) true.
func (e *ScopesHeldError) Is(target error) bool { return target == ErrScopesHeld }

// Account is a service account: a non-human identity that holds keys and
// obtains access tokens.
type Account struct {
	// ID is the numeric client ID: 21 decimal digits, as Google's.
	ID string
	// Email is the unique, email-shaped name: NAME@PROJECT.<domain>.
	Email       string
	Name        string
	Project     string
	DisplayName string
	Description string
	// Scopes are the scopes the account may request.
	Scopes []string
	// TokenLifetime is the lifetime of the access tokens it gets.
	TokenLifetime time.Duration
	// AuthMethods are the client authentication methods it may use.
	AuthMethods []string
	// TLS names the certificate subject tls_client_auth accepts.
	TLS TLSBinding
	// TokenFormat overrides the format of the APIs' tokens: "", TokenJWT
	// or TokenOpaque.
	TokenFormat string
	// TokensRevokedBefore revokes every token issued before it.
	TokensRevokedBefore time.Time
	// CertTokensRevokedBefore revokes the tokens issued before it to a
	// client that authenticated with a CA-issued certificate
	// (tls_client_auth: credential "cert:THUMBPRINT", or, of the
	// JWT-bearer grant, bound to a certificate that is none of the
	// account's keys): a change of the account's certificate binding ends
	// those, and no others.
	CertTokensRevokedBefore time.Time
	Disabled                bool
	CreatedAt               time.Time
	UpdatedAt               time.Time
}

// Client authentication methods (RFC 7591 §2, RFC 8705 §2).
const (
	AuthSecretBasic   = "client_secret_basic"
	AuthSecretPost    = "client_secret_post"
	AuthPrivateKeyJWT = "private_key_jwt"
	AuthTLS           = "tls_client_auth"
	AuthSelfSignedTLS = "self_signed_tls_client_auth"
)

// AuthMethods lists every client authentication method.
var AuthMethods = []string{AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT, AuthTLS, AuthSelfSignedTLS}

// DefaultAuthMethods are the methods of a new account.
var DefaultAuthMethods = []string{AuthSecretBasic, AuthSecretPost, AuthPrivateKeyJWT}

// TLSBinding says which CA-issued client certificate authenticates an
// account with tls_client_auth (RFC 8705 §2.1.2): exactly one field is set.
type TLSBinding struct {
	SubjectDN string `json:"tls_client_auth_subject_dn,omitempty"`
	SANDNS    string `json:"tls_client_auth_san_dns,omitempty"`
	SANURI    string `json:"tls_client_auth_san_uri,omitempty"`
	SANIP     string `json:"tls_client_auth_san_ip,omitempty"`
	SANEmail  string `json:"tls_client_auth_san_email,omitempty"`
}

// IsZero reports whether no certificate is bound.
func (b TLSBinding) IsZero() bool { return b == TLSBinding{} }

// Secret is a client secret, stored only as a keyed hash.
type Secret struct {
	ID        string
	AccountID string
	// Hash is HMAC-SHA-256 of the secret under the server's pepper.
	Hash []byte
	// Hint is a few characters of the secret, to tell secrets apart.
	Hint       string
	Disabled   bool
	ExpiresAt  time.Time // zero means never
	CreatedAt  time.Time
	LastUsedAt time.Time // zero means never; updated lazily
}

// Expired reports whether the secret has expired at now.
func (s Secret) Expired(now time.Time) bool {
	return !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt)
}

// Key origins.
const (
	KeyOriginGenerated = "generated" // generated by Keyward; private key returned once
	KeyOriginUploaded  = "uploaded"  // public key registered by the user
)

// Key is the public half of a service account's key pair.
type Key struct {
	// ID is the key ID (kid, the key file's private_key_id): 40 hex digits.
	ID        string
	AccountID string
	// Algorithm is the only JWS algorithm the key verifies: RS256 or ES256.
	Algorithm string
	// PublicKey is the DER-encoded SubjectPublicKeyInfo.
	PublicKey []byte
	// Certificate is a DER-encoded X.509 certificate for the key, if any:
	// Keyward self-signs one for generated keys; uploads may bring one.
	Certificate []byte
	Origin      string
	Disabled    bool
	// ExpiresAt is when the key stops being valid; zero means never.
	ExpiresAt time.Time
	CreatedAt time.Time
}

// Expired reports whether the key has expired at now.
func (k Key) Expired(now time.Time) bool {
	return !k.ExpiresAt.IsZero() && !now.Before(k.ExpiresAt)
}

// API is a resource server tokens are issued for. Each scope belongs to
// exactly one API, so a token's audience follows from its scopes.
type API struct {
	// Name is a short unique handle (orders), used in paths and the CLI.
	Name string
	// Identifier is the audience value (a URI, https://orders.internal).
	Identifier  string
	Description string
	Scopes      []string
	// TokenFormat is the format of tokens for this API: TokenJWT or
	// TokenOpaque.
	TokenFormat string
	// Introspectors are the accounts allowed to introspect tokens whose
	// audience is this API.
	Introspectors []string
	CreatedAt     time.Time
}

// Access-token formats.
const (
	TokenJWT    = "jwt"
	TokenOpaque = "opaque"
)

// TokenRecord is an opaque access token, stored under the SHA-256 of the
// token; the token itself is never stored.
type TokenRecord struct {
	Hash      []byte
	ID        string // jti
	AccountID string
	Subject   string
	Scope     string
	Audience  []string
	// Credential names what the client authenticated with: "key:ID",
	// "secret:ID" or "cert:THUMBPRINT".
	Credential string
	// Thumbprint is the x5t#S256 of the certificate the token is bound to.
	Thumbprint string
	// JKT is the JWK SHA-256 thumbprint of the DPoP key the token is bound
	// to (RFC 9449 §6).
	JKT string
	// Actor is the account that acts for Subject in a delegated token.
	Actor     string
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Org is an organization: a domain whose users service accounts may act
// for, when the organization grants it (domain-wide delegation).
type Org struct {
	Domain string
	// BlockedScopes may never be granted to delegated access.
	BlockedScopes []string
	CreatedAt     time.Time
}

// User is a user of an organization's directory.
type User struct {
	Email     string
	Org       string // domain
	Suspended bool
	CreatedAt time.Time
}

// ProjectOrg places a project in an organization. An internal project's
// accounts may act only for that organization's users.
type ProjectOrg struct {
	Project  string
	Org      string
	Internal bool
}

// Grant is a domain-wide delegation: an organization lets a service
// account (by numeric client ID) act for its users with these scopes.
type Grant struct {
	Org       string
	ClientID  string
	Scopes    []string
	CreatedAt time.Time
}

// Revocation revokes one token ID until the token would have expired.
type Revocation struct {
	JTI       string
	AccountID string
	RevokedAt time.Time
	ExpiresAt time.Time
}

// SigningKey is one of the server's own token-signing keys.
type SigningKey struct {
	ID        string // kid
	Algorithm string // ES256, RS256 or EdDSA
	// Sealed is the PKCS#8 private key encrypted under the master key.
	Sealed    []byte
	CreatedAt time.Time
	// ActivatedAt is when the key began signing; zero while it is the next key.
	ActivatedAt time.Time
	// RetiredAt is when another key replaced it; zero while it signs or waits.
	RetiredAt time.Time
}

// SealedValue is one of the server's own secrets other than signing keys
// (the client-secret pepper), encrypted under the master key with
// SealedValueAAD(Name) as authenticated data.
type SealedValue struct {
	Name      string
	Sealed    []byte
	CreatedAt time.Time
}

// PruneLimits bound what one PruneAudit call deletes.
type PruneLimits struct {
	// ThroughSeq, if set, is the last event that may go: the last one an
	// export wrote, say.
	ThroughSeq int64
	// MaxEvents, if set, caps the events deleted, so that one transaction
	// does not hold the write lock for long.
	MaxEvents int64
}

// SealedValueAAD is the authenticated data a sealed value is encrypted with:
// its name, in a namespace apart from signing-key IDs.
func SealedValueAAD(name string) string { return "sealed-value:" + name }

// UsedJTI records a single-use assertion ID until the assertion expires.
type UsedJTI struct {
	// Issuer scopes the ID: the account ID of the assertion's signer.
	Issuer    string
	JTI       string
	ExpiresAt time.Time
}

// Write is what one request makes durable before it is answered. The store
// applies many of them in one transaction (group commit).
type Write struct {
	// JTIs are inserted atomically; if any is already used the write fails
	// with ErrReplay, none of its JTIs stay used and none of its events are
	// written.
	JTIs []UsedJTI
	// Token, if set, is an opaque token to store.
	Token *TokenRecord
	// Events are appended to the audit log.
	Events []AuditEvent
}

// Bulk is a whole configuration for Load to write at once: what an
// export of another store holds.
type Bulk struct {
	APIs []API
	// ReplaceAPIs are APIs the store has already, by name and identifier,
	// that Load rewrites to these: description, creation time, token
	// format, introspectors and scopes, with UpdateAPI's checks of the
	// scopes. Load fails with ErrNotFound when one is missing or has
	// another identifier.
	ReplaceAPIs  []API
	Accounts     []Account
	Keys         []Key
	Secrets      []Secret
	Orgs         []Org
	Users        []User
	Projects     []ProjectOrg
	Grants       []Grant
	SealedValues []SealedValue
	// ReplaceSealedValues are sealed values the store has already, by
	// name (the client-secret pepper a first start seals under its master
	// key, before it makes an account), that Load rewrites to these:
	// sealed bytes and creation time. Load fails with ErrNotFound when one
	// is missing.
	ReplaceSealedValues []SealedValue
	// DropSealedValues names sealed values that Load deletes if the store
	// has them (the client-secret pepper a first start sealed, under an
	// import of a file from a release that exported none): a store
	// without accounts has no secret hashed with it.
	DropSealedValues []string
	// SigningKeys, if any, replace the store's signing keys.
	SigningKeys []SigningKey
	// Check, if set, is called by Load inside its transaction, once it
	// holds its locks and before it writes anything, with the store's
	// signing keys and sealed values as they are then (what was read
	// before Load may have changed since: a first start may have sealed
	// its own meanwhile). An error it returns fails Load as it is, with
	// nothing written.
	Check func(keys []SigningKey, values []SealedValue) error
	// Waiting, if set, is called once by Load if it must wait for a
	// server's start (LockFirstStart) to end, before the wait, which
	// lasts until that start lets go of its lock or ctx is done.
	Waiting func()
}

// Change notifications. A backend shared by several processes tells them
// what changed, so caches drop it at once: an account ID (its digits),
// ChangeAll, ChangeSigningKeys or ChangeRevocations. A listener takes a
// payload it does not know as ChangeAll: a later release may send one.
const (
	ChangeAll         = "*"
	ChangeSigningKeys = "signing_keys"
	// ChangeRevocations: a token was revoked.
	ChangeRevocations = "revocations"
)

// ListOptions pages through a listing ordered by a stable key.
type ListOptions struct {
	// After is the last key of the previous page; "" starts at the beginning.
	After string
	// Limit caps the number of items; 0 means the backend's default (100).
	Limit int
	// Project, when set, keeps only accounts of that project.
	Project string
}

// DefaultListLimit is the page size when ListOptions.Limit is zero.
const DefaultListLimit = 100

// PageLimit returns the effective page size of o.
func (o ListOptions) PageLimit() int {
	if o.Limit <= 0 || o.Limit > 1000 {
		return DefaultListLimit
	}
	return o.Limit
}

// Storage is the persistence interface. Every method is safe for concurrent
// use. Mutations of accounts, keys and APIs take the audit event that
// records them and write it in the same transaction.
type Storage interface {
	// CreateAccount creates a; with guards, see Guard.
	CreateAccount(ctx context.Context, a Account, ev AuditEvent, guards ...Guard) error
	// CreateAccounts creates many accounts in one transaction, recorded by
	// one audit event (bulk loads).
	CreateAccounts(ctx context.Context, accounts []Account, ev AuditEvent) error
	GetAccount(ctx context.Context, id string) (Account, error)
	GetAccountByEmail(ctx context.Context, email string) (Account, error)
	// AccountEmailAt reports whether the email of an account, whatever its
	// capitals (in the local part too), is local@domain, or, with local
	// empty, is at domain (the part after its last @), either with or
	// without a final dot (the same domain). It compares in ASCII lower
	// case, whatever the database's locale: local and domain as written
	// find an email written the same, or differing only in the case of
	// ASCII letters, but not one that differs in the case of other letters
	// (É is not é); so pass them as written, or lowered in ASCII only. It
	// reads every account, not only those whose email is
	// NAME@PROJECT.<account domain> as the admin API makes it (an import
	// keeps one that is not, with a warning): an indexed read, whatever
	// the number of accounts.
	AccountEmailAt(ctx context.Context, local, domain string) (bool, error)
	ListAccounts(ctx context.Context, opts ListOptions) ([]Account, error)
	// UpdateAccount applies fn to the stored account in one transaction,
	// checking guards (see Guard) in it. fn must not change ID or Email.
	UpdateAccount(ctx context.Context, id string, fn func(Account) (Account, error), ev AuditEvent, guards ...Guard) (Account, error)
	// DeleteAccount deletes the account, its keys, its secrets and its
	// delegation grants, and removes it from the APIs' introspectors, in
	// one transaction, checking guards (see Guard) in it. A check that is
	// not nil is called in that transaction with the account as stored,
	// which no other change can alter until it commits: if it returns an
	// error, DeleteAccount returns that error and deletes nothing (the
	// admin API's If-Match).
	DeleteAccount(ctx context.Context, id string, check func(Account) error, ev AuditEvent, guards ...Guard) error
	// CountAccounts returns how many accounts exist.
	CountAccounts(ctx context.Context) (int, error)

	// CreateKey creates k, or fails with ErrNotFound when its account does
	// not exist. A check that is not nil is called in its transaction with
	// the account's keys, oldest first, as the last change to commit left
	// them: no other CreateKey of the account can add one until this one
	// commits, so two at once are checked one after the other, the second
	// seeing the first's key. If check returns an error, CreateKey returns
	// that error and creates nothing (the admin API's cap on an account's
	// keys).
	CreateKey(ctx context.Context, k Key, check func(keys []Key) error, ev AuditEvent) error
	GetKey(ctx context.Context, id string) (Key, error)
	// ListKeys returns the account's keys, oldest first.
	ListKeys(ctx context.Context, accountID string) ([]Key, error)
	// UpdateKey applies fn to the stored key in one transaction, checking
	// guards (see Guard) in it.
	UpdateKey(ctx context.Context, id string, fn func(Key) (Key, error), ev AuditEvent, guards ...Guard) (Key, error)
	// DeleteKey deletes the key, checking guards (see Guard) in the same
	// transaction. A check that is not nil is called in it with the key as
	// stored, as DeleteAccount's.
	DeleteKey(ctx context.Context, id string, check func(Key) error, ev AuditEvent, guards ...Guard) error

	// CreateSecret creates s, or fails with ErrNotFound when its account
	// does not exist. A check that is not nil is called in its transaction
	// with the account's secrets, oldest first, as the last change to
	// commit left them, as CreateKey's with its keys: no other CreateSecret
	// or UpdateSecret with a check of the account can call its check until
	// this one commits, so two at once are checked one after the other,
	// the second seeing the first's change. If check returns an error,
	// CreateSecret returns that error and creates nothing (the admin API's
	// caps on an account's secrets).
	CreateSecret(ctx context.Context, s Secret, check func(secrets []Secret) error, ev AuditEvent) error
	// ListSecrets returns the account's secrets, oldest first.
	ListSecrets(ctx context.Context, accountID string) ([]Secret, error)
	// UpdateSecret applies fn to the stored secret in one transaction,
	// checking guards (see Guard) in it. A check that is not nil is called
	// in it after fn with the account's secrets, oldest first, as they are
	// with fn's change, serialized with the checks of CreateSecret and of
	// other UpdateSecrets of the account as CreateSecret describes. If
	// check returns an error, UpdateSecret returns that error and changes
	// nothing (the admin API's cap on active secrets, when one is enabled).
	UpdateSecret(ctx context.Context, id string, fn func(Secret) (Secret, error), check func(secrets []Secret) error, ev AuditEvent, guards ...Guard) (Secret, error)
	// DeleteSecret deletes the secret, checking guards (see Guard) in the
	// same transaction. A check that is not nil is called in it with the
	// secret as stored, as DeleteAccount's.
	DeleteSecret(ctx context.Context, id string, check func(Secret) error, ev AuditEvent, guards ...Guard) error
	// TouchSecrets records when secrets were last used. It is not audited:
	// use is recorded by the token events. Nor does it announce a change
	// to the other replicas: they show the time it records once their
	// cached secrets expire (their TTL). Each replica touches the secrets
	// it saw used every half minute; an announcement would drop, on every
	// replica, everything cached of each account whose secret was used,
	// the busiest ones first, for a time no request depends on.
	TouchSecrets(ctx context.Context, lastUsed map[string]time.Time) error

	// CreateAPI fails with ErrAlreadyExists when the name, identifier or
	// any scope is taken, with an *IdentifierTakenError when another API's
	// identifier differs from its identifier only in the case of the
	// scheme or host or in one trailing slash (oauth2.NamesAPI), and with
	// a *ScopesHeldError when accounts or grants already hold some of its
	// scopes (see ErrScopesHeld).
	CreateAPI(ctx context.Context, a API, ev AuditEvent) error
	GetAPI(ctx context.Context, name string) (API, error)
	ListAPIs(ctx context.Context) ([]API, error)
	// UpdateAPI applies fn to the stored API; all but its name,
	// identifier and creation time may change. Scopes it removes must be
	// held by no account or grant, and scopes it adds by none either (left
	// from a deleted API), or it fails with a *ScopesHeldError; a scope it
	// adds that another API has fails with ErrAlreadyExists; an
	// introspector it adds that is no account's ID, with ErrNotFound. It
	// is serialized against guarded changes (see Guard).
	UpdateAPI(ctx context.Context, name string, fn func(API) (API, error), ev AuditEvent) (API, error)
	// DeleteAPI deletes the API and its scopes, or fails with a
	// *ScopesHeldError when an account or a delegation grant holds any of
	// them. It is serialized against guarded changes (see Guard). A check
	// that is not nil is called in its transaction with the API as
	// stored, as DeleteAccount's.
	DeleteAPI(ctx context.Context, name string, check func(API) error, ev AuditEvent) error

	CreateOrg(ctx context.Context, o Org, ev AuditEvent) error
	GetOrg(ctx context.Context, domain string) (Org, error)
	// GetOrgs returns those of the organizations named by domains that
	// exist, in the byte order of their domains (Go's string order), each
	// once; a domain that does not exist is left
	// out, not an error. It reads them with a bounded number of queries
	// however many domains there are (one per few hundred).
	GetOrgs(ctx context.Context, domains []string) ([]Org, error)
	// GetOrgProjects returns the organization and the projects placed in
	// it, by project, in one consistent read: the projects are those
	// placed when the organization was read, whatever commits meanwhile.
	GetOrgProjects(ctx context.Context, domain string) (Org, []ProjectOrg, error)
	ListOrgs(ctx context.Context) ([]Org, error)
	// UpdateOrg applies fn to the stored organization in one transaction;
	// only BlockedScopes may change. fn is also given the projects placed
	// in it, as GetOrgProjects reads them, and UpdateOrg returns them with
	// the organization as changed.
	UpdateOrg(ctx context.Context, domain string, fn func(Org, []ProjectOrg) (Org, error), ev AuditEvent) (Org, []ProjectOrg, error)
	// DeleteOrg deletes the organization with its users, project
	// placements and grants, locking its row first, as PutProjectOrg,
	// DeleteProjectOrg and UpdateOrg do. A check that is not nil is
	// called in its transaction, once the row is locked, with the
	// organization and the projects placed in it, as UpdateOrg's fn is
	// given them: if it returns an error, DeleteOrg returns that error and
	// deletes nothing (the admin API's If-Match).
	DeleteOrg(ctx context.Context, domain string, check func(Org, []ProjectOrg) error, ev AuditEvent) error
	// PutUsers creates or replaces users in one transaction: ErrNotFound
	// if an organization of theirs does not exist. It takes a share of
	// their organizations' rows first, then the users' rows in the order
	// of their emails, so that it waits for, or is waited for by, a
	// DeleteOrg or another PutUsers, rather than deadlocking with it.
	// The event ev makes of the users whose Suspended it changes is
	// written in the same transaction.
	PutUsers(ctx context.Context, users []User, ev UsersEvent) error
	GetUser(ctx context.Context, email string) (User, error)
	// UpdateUser applies fn to the stored user in one transaction; only
	// Suspended may change. A user that does not exist is ErrNotFound,
	// never created.
	UpdateUser(ctx context.Context, email string, fn func(User) (User, error), ev AuditEvent) (User, error)
	// ListUsers pages through an organization's users by email.
	ListUsers(ctx context.Context, org string, opts ListOptions) ([]User, error)
	DeleteUser(ctx context.Context, email string, ev AuditEvent) error
	// PutProjectOrg places a project in the organization p.Org (or moves
	// it there from another), in one transaction that first locks p.Org
	// as UpdateOrg does: ErrNotFound if it does not exist. A move locks the
	// organization the project leaves too, whose projects change as well:
	// both rows, in the order of their domains, so that two moves in
	// opposite directions wait for each other and never deadlock. A check
	// that is not nil is called in that transaction with p.Org and the
	// projects placed in it before the change, as UpdateOrg's fn is given
	// them: if it returns an error, PutProjectOrg returns that error and
	// changes nothing (the admin API's If-Match). Only p.Org is checked:
	// an organization the project is moved out of is locked, not checked,
	// and named in ev's data under AuditMovedFrom (ev's own data is not
	// changed).
	PutProjectOrg(ctx context.Context, p ProjectOrg, check func(Org, []ProjectOrg) error, ev AuditEvent) error
	GetProjectOrg(ctx context.Context, project string) (ProjectOrg, error)
	ListProjectOrgs(ctx context.Context, org string) ([]ProjectOrg, error)
	// DeleteProjectOrg takes project out of org; ErrNotFound if it is not
	// there (in no organization, or in another), without calling check. It
	// locks org and calls a check that is not nil as PutProjectOrg does.
	DeleteProjectOrg(ctx context.Context, org, project string, check func(Org, []ProjectOrg) error, ev AuditEvent) error
	// PutGrant creates or replaces the grant of (org, client ID), checking
	// guards (see Guard; KeepHeld and KeepSignIn do not apply to grants) in
	// the same transaction, and returns the grant as stored: a replaced
	// grant gets g's scopes and keeps its CreatedAt. It fails with
	// ErrNotFound when the organization does not exist, or, with guards,
	// when no account has the client ID (deleted since the caller looked
	// it up).
	PutGrant(ctx context.Context, g Grant, ev AuditEvent, guards ...Guard) (Grant, error)
	GetGrant(ctx context.Context, org, clientID string) (Grant, error)
	ListGrants(ctx context.Context, org string) ([]Grant, error)
	DeleteGrant(ctx context.Context, org, clientID string, ev AuditEvent) error

	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// UpdateSigningKeys replaces the whole set of signing keys with what fn
	// returns, holding a lock that serializes it against every other
	// UpdateSigningKeys call, across processes sharing the store.
	UpdateSigningKeys(ctx context.Context, fn func([]SigningKey) ([]SigningKey, error), ev AuditEvent) ([]SigningKey, error)

	// GetSealedValue returns the named sealed value, or ErrNotFound.
	GetSealedValue(ctx context.Context, name string) (SealedValue, error)
	// CreateSealedValue stores v, or fails with ErrAlreadyExists when a
	// value of that name exists. It is serialized against Load and
	// UpdateSigningKeys, as Reseal is.
	CreateSealedValue(ctx context.Context, v SealedValue, ev AuditEvent) error
	// ListSealedValues returns every sealed value, by name.
	ListSealedValues(ctx context.Context) ([]SealedValue, error)
	// Reseal replaces what is sealed under the master key — every signing
	// key and every sealed value — with what fn returns for it, in one
	// transaction under the signing keys' lock: all or nothing. fn gets the
	// authenticated data the item was sealed with (a signing key's ID, or
	// SealedValueAAD of a value's name) and its sealed bytes.
	Reseal(ctx context.Context, fn func(aad string, sealed []byte) ([]byte, error), ev AuditEvent) error

	// LockFirstStart holds, until unlock is called, a lock that Load
	// waits for and holds until it commits, across the processes sharing
	// the store: a server holds it from before it seals its pepper and
	// signing keys until its bootstrap has made the administrator, so that
	// an import commits wholly before or after that. It is a no-op where
	// another lock serializes them (SQLite's data directory's). If another
	// process holds it, waiting, if set, is called once before the wait,
	// which lasts until that process lets go of it or ctx is done.
	LockFirstStart(ctx context.Context, waiting func()) (unlock func(), err error)

	// Load writes b into an empty store, with evs, in one transaction: all
	// or nothing, so a failure or a crash part way leaves the store as it
	// was. It fails with a *NotEmptyError (ErrNotEmpty) when the store has
	// an account, an organization or an API other than those of b.APIs
	// and b.ReplaceAPIs (the sealed values and signing keys a first start
	// makes may be there),
	// with ErrNotFound when an API of b.ReplaceAPIs or a sealed value of
	// b.ReplaceSealedValues is not, with ErrAlreadyExists when an API, a
	// sealed value or any other unique name in b is taken, and with a
	// *ScopesHeldError as CreateAPI does; an item it fails to write is
	// named by a *LoadError in the chain. Users, project placements and grants are put as
	// PutUsers, PutProjectOrg and PutGrant put them. It is serialized
	// against guarded changes (see Guard), signing-key updates, sealed
	// values' creations, every change that adds an account and a server's
	// start (LockFirstStart), so the store is still empty when it
	// commits, whatever other processes on the same database do.
	Load(ctx context.Context, b Bulk, evs []AuditEvent) error

	// Commit applies writes in one transaction. The returned slice has one
	// entry per write: nil, or ErrReplay for a write whose JTI was used. A
	// non-nil error means nothing was written.
	Commit(ctx context.Context, writes []Write) ([]error, error)
	// GetToken returns the opaque token with the given hash.
	GetToken(ctx context.Context, hash []byte) (TokenRecord, error)
	// GetTokenByID returns the opaque token with the given ID (jti), or
	// ErrNotFound. JWT access tokens are not stored: their IDs never are.
	GetTokenByID(ctx context.Context, jti string) (TokenRecord, error)
	// Revoke records a revocation. The opaque token with that ID, if there
	// is one, stays until it expires (IsRevoked says it is revoked), so
	// that a use of it after its revocation is traced to its ID and
	// account. Revoking twice is not an error.
	Revoke(ctx context.Context, r Revocation, ev AuditEvent) error
	// IsRevoked reports whether a token ID was revoked.
	IsRevoked(ctx context.Context, jti string) (bool, error)
	// DeleteExpired removes used JTIs, revocations and opaque tokens that
	// expired before now, so the store does not grow without bound. It
	// commits in batches: on error, the count is of the rows deleted
	// before it, which stay deleted.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)

	// ListAuditEvents returns the events f selects, in sequence order, or
	// in reverse sequence order (newest first) with f.Newest. An event
	// whose stored data or time it cannot read is listed with the others,
	// marked so (AuditEvent.UnreadableData, UnreadableTime), not an error.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)
	// PruneAudit deletes the oldest audit events — those before the first
	// event at or after before, within limits, and never the newest event —
	// and appends ev, completed by CompletePrune, in the same transaction,
	// so the chain stays verifiable from the first event kept (VerifyLog).
	// It returns how many events it deleted; with none, ev is not written.
	PruneAudit(ctx context.Context, before time.Time, limits PruneLimits, ev AuditEvent) (int64, error)

	// SignInExpiry reports the latest time until which some enabled
	// account holding scope can still get tokens, by the rules of
	// Guard.KeepSignIn at now: an enabled, unexpired key; an enabled,
	// unexpired secret if the account allows client_secret_basic or
	// client_secret_post; and, if certificates (the server takes
	// CA-issued client certificates: Guard.NoCertificates false), a
	// certificate binding with tls_client_auth, which never expires. until
	// is the zero Time when some way in never expires; ok is false when
	// none is usable at now.
	SignInExpiry(ctx context.Context, scope string, certificates bool, now time.Time) (until time.Time, ok bool, err error)

	// Ping checks that the store is reachable and can serve: that it can
	// read the tables token requests need (cheaply: no table scans). An
	// error the database answered to that read wraps ErrCannotServe,
	// unless it gave up waiting for a lock (a lock or statement timeout,
	// SQLite's busy), which wraps ErrBusy.
	Ping(ctx context.Context) error
	Close() error
}
