// Package admin is the management side of Keyward: the rules for creating
// and changing APIs, service accounts and keys (Service), and the REST API
// that exposes them to the CLI and to automation (Handler).
package admin

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

// The built-in API through which Keyward manages itself.
const (
	BuiltinAPIName       = "keyward"
	BuiltinAPIIdentifier = "urn:keyward:admin"
	AdminScope           = oauth2.AdminScope
	// IntrospectScope lets an account introspect any token; an account
	// listed as an API's introspector may introspect that API's tokens.
	IntrospectScope  = oauth2.IntrospectScope
	AdminAccountName = "admin"
	AdminProject     = "keyward"
)

// Admin error codes, next to the OAuth ones.
const (
	ErrNotFound = "not_found"
	ErrConflict = "conflict"
)

// Store is the part of storage the admin service needs.
type Store interface {
	CreateAccount(ctx context.Context, a storage.Account, ev storage.AuditEvent, guards ...storage.Guard) error
	GetAccount(ctx context.Context, id string) (storage.Account, error)
	GetAccountByEmail(ctx context.Context, email string) (storage.Account, error)
	AccountEmailAt(ctx context.Context, local, domain string) (bool, error)
	ListAccounts(ctx context.Context, opts storage.ListOptions) ([]storage.Account, error)
	UpdateAccount(ctx context.Context, id string, fn func(storage.Account) (storage.Account, error), ev storage.AuditEvent, guards ...storage.Guard) (storage.Account, error)
	DeleteAccount(ctx context.Context, id string, check func(storage.Account) error, ev storage.AuditEvent, guards ...storage.Guard) error
	CountAccounts(ctx context.Context) (int, error)
	CreateKey(ctx context.Context, k storage.Key, check func([]storage.Key) error, ev storage.AuditEvent) error
	GetKey(ctx context.Context, id string) (storage.Key, error)
	ListKeys(ctx context.Context, accountID string) ([]storage.Key, error)
	UpdateKey(ctx context.Context, id string, fn func(storage.Key) (storage.Key, error), ev storage.AuditEvent, guards ...storage.Guard) (storage.Key, error)
	DeleteKey(ctx context.Context, id string, check func(storage.Key) error, ev storage.AuditEvent, guards ...storage.Guard) error
	CreateSecret(ctx context.Context, s storage.Secret, check func([]storage.Secret) error, ev storage.AuditEvent) error
	ListSecrets(ctx context.Context, accountID string) ([]storage.Secret, error)
	UpdateSecret(ctx context.Context, id string, fn func(storage.Secret) (storage.Secret, error), check func([]storage.Secret) error, ev storage.AuditEvent, guards ...storage.Guard) (storage.Secret, error)
	DeleteSecret(ctx context.Context, id string, check func(storage.Secret) error, ev storage.AuditEvent, guards ...storage.Guard) error
	CreateAPI(ctx context.Context, a storage.API, ev storage.AuditEvent) error
	GetAPI(ctx context.Context, name string) (storage.API, error)
	ListAPIs(ctx context.Context) ([]storage.API, error)
	UpdateAPI(ctx context.Context, name string, fn func(storage.API) (storage.API, error), ev storage.AuditEvent) (storage.API, error)
	Revoke(ctx context.Context, r storage.Revocation, ev storage.AuditEvent) error
	IsRevoked(ctx context.Context, jti string) (bool, error)
	GetTokenByID(ctx context.Context, jti string) (storage.TokenRecord, error)
	ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error)
	CreateOrg(ctx context.Context, o storage.Org, ev storage.AuditEvent) error
	GetOrg(ctx context.Context, domain string) (storage.Org, error)
	GetOrgs(ctx context.Context, domains []string) ([]storage.Org, error)
	GetOrgProjects(ctx context.Context, domain string) (storage.Org, []storage.ProjectOrg, error)
	ListOrgs(ctx context.Context) ([]storage.Org, error)
	UpdateOrg(ctx context.Context, domain string, fn func(storage.Org, []storage.ProjectOrg) (storage.Org, error), ev storage.AuditEvent) (storage.Org, []storage.ProjectOrg, error)
	DeleteOrg(ctx context.Context, domain string, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error
	PutUsers(ctx context.Context, users []storage.User, ev storage.UsersEvent) error
	GetUser(ctx context.Context, email string) (storage.User, error)
	UpdateUser(ctx context.Context, email string, fn func(storage.User) (storage.User, error), ev storage.AuditEvent) (storage.User, error)
	ListUsers(ctx context.Context, org string, opts storage.ListOptions) ([]storage.User, error)
	DeleteUser(ctx context.Context, email string, ev storage.AuditEvent) error
	PutProjectOrg(ctx context.Context, p storage.ProjectOrg, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error
	ListProjectOrgs(ctx context.Context, org string) ([]storage.ProjectOrg, error)
	DeleteProjectOrg(ctx context.Context, org, project string, check func(storage.Org, []storage.ProjectOrg) error, ev storage.AuditEvent) error
	PutGrant(ctx context.Context, g storage.Grant, ev storage.AuditEvent, guards ...storage.Guard) (storage.Grant, error)
	ListGrants(ctx context.Context, org string) ([]storage.Grant, error)
	DeleteGrant(ctx context.Context, org, clientID string, ev storage.AuditEvent) error
	DeleteAPI(ctx context.Context, name string, check func(storage.API) error, ev storage.AuditEvent) error
}

// Config configures the Service.
type Config struct {
	// Issuer is the server's base URL; key files point at its endpoints.
	Issuer string
	// AccountDomain is the domain of account emails: NAME@PROJECT.<domain>.
	AccountDomain string
	// DefaultTokenLifetime is the token lifetime of new accounts.
	DefaultTokenLifetime time.Duration
	// MaxTokenLifetime caps the token lifetime an account may have.
	MaxTokenLifetime time.Duration
	// Pepper keys the hashes of client secrets.
	Pepper []byte
	// CACertificates says this server takes CA-issued client
	// certificates (tls_client_auth): it verifies them against its
	// --tls-client-ca, and they reach it over TLS or in a trusted
	// proxy's header. Without it a certificate binding is no way in to
	// this server, and the last-administrator rule does not count one
	// (storage.Guard.NoCertificates).
	CACertificates bool
	Now            func() time.Time
}

// Service applies the management rules. Every change is audited in the same
// transaction as the change.
type Service struct {
	store Store
	cfg   Config
}

// NewService returns a Service.
func NewService(store Store, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{store: store, cfg: cfg}
}

// Actor identifies who makes a change, for the audit log.
type Actor struct {
	ID     string // account ID of the administrator, or "system"
	Source string // remote address
}

func (s *Service) event(actor Actor, action, accountID string, data map[string]string) storage.AuditEvent {
	return storage.AuditEvent{
		Time: s.cfg.Now(), Action: action, Outcome: storage.OutcomeSuccess,
		AccountID: accountID, Actor: actor.ID, Source: actor.Source, Data: data,
	}
}

func invalid(format string, args ...any) error {
	return oauth2.Errorf(oauth2.ErrInvalidRequest, format, args...)
}

func notFound(format string, args ...any) error {
	return &oauth2.Error{Code: ErrNotFound, Description: fmt.Sprintf(format, args...), Status: 404}
}

func conflict(format string, args ...any) error {
	return &oauth2.Error{Code: ErrConflict, Description: fmt.Sprintf(format, args...), Status: 409}
}

// quoteRef is quoteClip for an account or key named in a request path:
// one shaped like a credential (oauth2.IsCredential), a client secret
// given where the account goes, is not echoed, since the refusal's
// description is in its admin.refused event.
func quoteRef(s string) string {
	if oauth2.IsCredential(s) {
		return "(credential)"
	}
	return quoteClip(s)
}

// storeErr maps storage sentinels to client errors, describing the thing.
func storeErr(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return notFound("%s does not exist.", what)
	case errors.Is(err, storage.ErrAlreadyExists):
		return conflict("%s already exists.", what)
	default:
		return err
	}
}

// addErr is storeErr for a key or secret (what) added to account a: the
// store's ErrNotFound is of the account, deleted since it was looked up.
func addErr(err error, a storage.Account, what string) error {
	if errors.Is(err, storage.ErrNotFound) {
		return storeErr(err, "The service account "+quoteClip(a.Email))
	}
	return storeErr(err, what)
}

// --- APIs ---

// APIInput is what CreateAPI needs.
type APIInput struct {
	Name        string   `json:"name"`
	Identifier  string   `json:"identifier"`
	Description string   `json:"description"`
	Scopes      []string `json:"scopes"`
	// TokenFormat is jwt (the default) or opaque.
	TokenFormat string `json:"token_format,omitempty"`
}

// APIUpdate holds the fields UpdateAPI changes; nil leaves a field.
type APIUpdate struct {
	Description *string `json:"description"`
	TokenFormat *string `json:"token_format"`
	// Scopes is the API's whole new list of scopes, in order.
	Scopes *[]string `json:"scopes"`
	// Introspectors are service accounts (email or client ID) allowed to
	// introspect this API's tokens.
	Introspectors *[]string `json:"introspectors"`
}

func checkFormat(f string, allowEmpty bool) error {
	return invalidErr(validate.TokenFormat(f, allowEmpty))
}

// invalid_request of err, a validate rule's refusal; nil without one.
func invalidErr(err error) error {
	if err == nil {
		return nil
	}
	return invalid("%s", err)
}

// Limits of the free-text fields, in characters.
const (
	MaxDisplayNameLength = validate.MaxDisplayNameLength
	MaxDescriptionLength = validate.MaxDescriptionLength
)

// checkLabel refuses a display name or description that is too long or
// holds a control character (C0, DEL or C1, line breaks and tabs too), a
// line or paragraph separator, or an invisible format character
// validate.Label refuses (bidi marks, overrides and isolates, zero-width
// spaces, soft hyphens): they are shown on one line in terminals and the
// console, where such characters could rewrite what an administrator
// sees.
func checkLabel(field, v string, max int) error {
	return invalidErr(validate.Label(field, v, max))
}

// MaxIdentifierLength bounds an API identifier: it is indexed, and
// identifiers are URLs people type.
const MaxIdentifierLength = validate.MaxIdentifierLength

// MaxAPIScopes bounds an API's scopes: the store checks who holds them
// with one statement, whose parameters SQLite and PostgreSQL bound (a list
// of some 16,000 failed there, as a 503 no retry would mend).
const MaxAPIScopes = validate.MaxAPIScopes

// CreateAPI registers a resource server and its scopes.
func (s *Service) CreateAPI(ctx context.Context, actor Actor, in APIInput) (storage.API, error) {
	if err := invalidErr(validate.APIName(in.Name)); err != nil {
		return storage.API{}, err
	}
	if err := invalidErr(validate.APIIdentifier(in.Identifier)); err != nil {
		return storage.API{}, err
	}
	if oauth2.IsAssertionAudience(in.Identifier, s.cfg.Issuer) {
		return storage.API{}, invalid("The API identifier %s is this server's issuer or token endpoint URL (%s, %s): service accounts sign the JWTs they exchange for access tokens with that audience, so an API with it would receive self-signed JWTs it could exchange for its callers' tokens. Use the API's own URL, such as https://orders.internal.",
			quoteClip(in.Identifier), s.cfg.Issuer, oauth2.TokenEndpoint(s.cfg.Issuer))
	}
	if err := checkAPIScopes(in.Scopes); err != nil {
		return storage.API{}, err
	}
	if err := checkLabel("description", in.Description, MaxDescriptionLength); err != nil {
		return storage.API{}, err
	}
	if err := checkFormat(in.TokenFormat, true); err != nil {
		return storage.API{}, err
	}
	format := in.TokenFormat
	if format == "" {
		format = storage.TokenJWT
	}
	a := storage.API{Name: in.Name, Identifier: in.Identifier, Description: in.Description, Scopes: in.Scopes, TokenFormat: format, CreatedAt: s.cfg.Now()}
	err := s.store.CreateAPI(ctx, a, s.event(actor, "api.create", "", map[string]string{"api": a.Name, "identifier": a.Identifier, "scopes": strings.Join(a.Scopes, " ")}))
	// verify takes a self-signed JWT whose aud is the API's identifier in
	// other capitals of its scheme and host or with one trailing slash
	// added or left out (oauth2.NamesAPI): two APIs so identified would
	// each take the other's. The store checks it in the insert's
	// transaction, so two concurrent creations cannot both pass.
	if taken, ok := errors.AsType[*storage.IdentifierTakenError](err); ok {
		return a, conflict("The API identifier %s differs from the API %s's, %s, only in the case of its scheme or host or in a trailing slash: APIs that take service accounts' self-signed JWTs take those for either. Use another identifier.",
			quoteClip(in.Identifier), quoteClip(taken.API), quoteClip(taken.Identifier))
	}
	if errors.Is(err, storage.ErrAlreadyExists) {
		return a, s.apiTaken(ctx, a)
	}
	if held, ok := errors.AsType[*storage.ScopesHeldError](err); ok {
		return a, conflict("The API %q cannot be created while its scopes are granted already, left from a deleted API that had them: %s. They would get this API's access unnoticed: remove the scopes from these accounts (keyward sa update --scopes) and delegations (keyward delegation grant with fewer scopes, or revoke) first.", a.Name, holderList(held))
	}
	return a, err
}

// apiTaken describes CreateAPI's refusal of a, whose name, identifier or
// a scope another API has, naming what and that API if it can still be
// found.
func (s *Service) apiTaken(ctx context.Context, a storage.API) error {
	apis, err := s.store.ListAPIs(ctx)
	if err == nil {
		for _, o := range apis {
			switch {
			case o.Name == a.Name:
				return conflict("The API %q exists already.", a.Name)
			case o.Identifier == a.Identifier:
				return conflict("The API identifier %s is the API %s's already: each API has its own. Use another identifier.", quoteClip(a.Identifier), quoteClip(o.Name))
			}
		}
		for _, o := range apis {
			for _, sc := range o.Scopes {
				if slices.Contains(a.Scopes, sc) {
					return conflict("The scope %s belongs to the API %s: each scope belongs to one API. Remove it there first, or choose another name.", quoteClip(sc), quoteClip(o.Name))
				}
			}
		}
	}
	return conflict("An API with the name %q or the identifier %s exists already, or one of the scopes belongs to another API (each scope belongs to one API).", a.Name, quoteClip(a.Identifier))
}

// checkAPIScopes checks the scopes of an API: at least one, each a valid
// scope name, none twice.
func checkAPIScopes(scopes []string) error {
	return invalidErr(validate.APIScopes(scopes))
}

// holderList names the holders of a ScopesHeldError, and how many more
// there are.
func holderList(held *storage.ScopesHeldError) string {
	list := make([]string, len(held.Holders))
	for i, h := range held.Holders {
		if h.Email != "" {
			list[i] = fmt.Sprintf("account %s (%s)", showName(h.Email), strings.Join(h.Scopes, " "))
		} else {
			list[i] = fmt.Sprintf("delegation of client %s in %s (%s)", showName(h.ClientID), showDomain(h.Org), strings.Join(h.Scopes, " "))
		}
	}
	more := ""
	if n := held.Total - len(held.Holders); n > 0 {
		more = fmt.Sprintf("; and %d more", n)
	}
	return strings.Join(list, "; ") + more
}

// GetAPI returns an API by name.
func (s *Service) GetAPI(ctx context.Context, name string) (storage.API, error) {
	a, err := s.store.GetAPI(ctx, name)
	return a, storeErr(err, "The API "+quoteClip(name))
}

// ListAPIs returns every API.
func (s *Service) ListAPIs(ctx context.Context) ([]storage.API, error) { return s.store.ListAPIs(ctx) }

// UpdateAPI changes an API's description, token format, introspectors or
// scopes.
func (s *Service) UpdateAPI(ctx context.Context, actor Actor, name string, up APIUpdate) (storage.API, error) {
	return s.UpdateAPIIf(ctx, actor, name, up, Match{})
}

// UpdateAPIIf is UpdateAPI made only if the API's state meets match,
// which the store checks in the update's transaction: otherwise it fails
// with a 412 and changes nothing. A scope removed must be granted to no
// account or delegation, as DeleteAPI requires of all of them; a scope
// added must belong to no other API and be granted to none, left from a
// deleted API, as CreateAPI requires. The built-in API's scopes stay.
func (s *Service) UpdateAPIIf(ctx context.Context, actor Actor, name string, up APIUpdate, match Match) (storage.API, error) {
	data := map[string]string{"api": name}
	if up == (APIUpdate{}) {
		if _, err := s.GetAPI(ctx, name); err != nil {
			return storage.API{}, err
		}
		// Else an update of nothing, audited as one.
		return storage.API{}, invalid("Nothing to change: give at least one of description, token_format, scopes and introspectors.")
	}
	if up.Description != nil {
		if err := checkLabel("description", *up.Description, MaxDescriptionLength); err != nil {
			return storage.API{}, err
		}
		data["description"] = *up.Description
	}
	if up.TokenFormat != nil {
		if err := checkFormat(*up.TokenFormat, false); err != nil {
			return storage.API{}, err
		}
		data["token_format"] = *up.TokenFormat
	}
	if up.Scopes != nil {
		if err := checkAPIScopes(*up.Scopes); err != nil {
			return storage.API{}, err
		}
		data["scopes"] = strings.Join(*up.Scopes, " ")
	}
	var ids []string
	if up.Introspectors != nil {
		for _, ref := range *up.Introspectors {
			a, err := s.GetAccount(ctx, ref)
			if err != nil {
				return storage.API{}, err
			}
			ids = append(ids, a.ID)
		}
		ids = dedupe(ids)
		data["introspectors"] = strings.Join(ids, " ")
	}
	var oldScopes []string // as the update found them
	a, err := s.store.UpdateAPI(ctx, name, func(a storage.API) (storage.API, error) {
		if err := match.check(apiETag(a), "The API "+quoteClip(a.Name)); err != nil {
			return a, err
		}
		if up.Description != nil {
			a.Description = *up.Description
		}
		if up.TokenFormat != nil {
			a.TokenFormat = *up.TokenFormat
		}
		if up.Introspectors != nil {
			a.Introspectors = ids
		}
		if up.Scopes != nil && !slices.Equal(*up.Scopes, a.Scopes) {
			if a.Name == BuiltinAPIName {
				return a, conflict("The scopes of the built-in API %q cannot change: Keyward manages itself through them.", a.Name)
			}
			oldScopes = a.Scopes
			a.Scopes = slices.Clone(*up.Scopes)
		}
		return a, nil
	}, s.event(actor, "api.update", "", data))
	if held, ok := errors.AsType[*storage.ScopesHeldError](err); ok {
		return a, scopesHeldOnUpdate(name, held, oldScopes)
	}
	if errors.Is(err, storage.ErrAlreadyExists) && up.Scopes != nil {
		return a, s.scopeTaken(ctx, name, *up.Scopes)
	}
	if errors.Is(err, storage.ErrNotFound) && up.Introspectors != nil {
		// The API, or an introspector deleted since it was looked up.
		for _, id := range ids {
			if _, gerr := s.store.GetAccount(ctx, id); errors.Is(gerr, storage.ErrNotFound) {
				return a, storeErr(gerr, "The service account "+id)
			}
		}
	}
	return a, storeErr(err, "The API "+quoteClip(name))
}

// scopesHeldOnUpdate describes UpdateAPI's refusal of held scopes: the
// holders hold scopes the update removes, or, if none of those, scopes it
// adds (the store checks removals first).
func scopesHeldOnUpdate(name string, held *storage.ScopesHeldError, old []string) error {
	var scopes []string
	for _, h := range held.Holders {
		for _, sc := range h.Scopes {
			if !slices.Contains(scopes, sc) {
				scopes = append(scopes, sc)
			}
		}
	}
	if slices.ContainsFunc(scopes, func(sc string) bool { return slices.Contains(old, sc) }) {
		return conflict("The scopes %s cannot be removed from the API %s while they are granted: %s. Remove them from these accounts (keyward sa update --scopes) and delegations (keyward delegation grant with fewer scopes, or revoke) first.",
			strings.Join(scopes, " "), quoteClip(name), holderList(held))
	}
	return conflict("The scopes %s cannot be added to the API %s while they are granted already, left from a deleted API that had them: %s. They would get this API's access unnoticed: remove the scopes from these accounts (keyward sa update --scopes) and delegations (keyward delegation grant with fewer scopes, or revoke) first.",
		strings.Join(scopes, " "), quoteClip(name), holderList(held))
}

// scopeTaken describes UpdateAPI's refusal of a scope another API has,
// naming it if it can still be found.
func (s *Service) scopeTaken(ctx context.Context, name string, scopes []string) error {
	apis, err := s.store.ListAPIs(ctx)
	if err == nil {
		for _, a := range apis {
			if a.Name == name {
				continue
			}
			for _, sc := range a.Scopes {
				if slices.Contains(scopes, sc) {
					return conflict("The scope %s belongs to the API %s: each scope belongs to one API. Remove it there first, or choose another name.", quoteClip(sc), quoteClip(a.Name))
				}
			}
		}
	}
	return conflict("One of the scopes belongs to another API (each scope belongs to one API).")
}

// DeleteAPI removes an API; its scopes can then no longer be requested.
// An API whose scopes are still granted, to service accounts or in
// domain-wide delegations, is not deleted: the grants would linger and
// come back to life if an API with the same scopes were created again.
// The error names who holds them, so they can be removed first.
func (s *Service) DeleteAPI(ctx context.Context, actor Actor, name string) error {
	return s.DeleteAPIIf(ctx, actor, name, Match{})
}

// DeleteAPIIf is DeleteAPI made only if the API's state meets match,
// which the store checks in the delete's transaction: otherwise it fails
// with a 412 and deletes nothing.
func (s *Service) DeleteAPIIf(ctx context.Context, actor Actor, name string, match Match) error {
	if name == BuiltinAPIName {
		return conflict("The built-in API %q cannot be deleted: Keyward manages itself through it.", name)
	}
	var check func(storage.API) error
	if match.Tags != nil {
		check = func(a storage.API) error { return match.checkDelete(apiETag(a), "The API "+quoteClip(a.Name)) }
	}
	err := s.store.DeleteAPI(ctx, name, check, s.event(actor, "api.delete", "", map[string]string{"api": name}))
	if held, ok := errors.AsType[*storage.ScopesHeldError](err); ok {
		return conflict("The API %s cannot be deleted while its scopes are granted: %s. Remove the scopes from these accounts (keyward sa update --scopes) and delegations (keyward delegation grant with fewer scopes, or revoke) first.", quoteClip(name), holderList(held))
	}
	return storeErr(err, "The API "+quoteClip(name))
}

// --- service accounts ---

// AccountInput is what CreateAccount needs.
type AccountInput struct {
	Name                 string   `json:"name"`
	Project              string   `json:"project"`
	DisplayName          string   `json:"display_name"`
	Description          string   `json:"description"`
	Scopes               []string `json:"scopes"`
	TokenLifetimeSeconds int64    `json:"token_lifetime_seconds"`
	// TokenFormat overrides the APIs' token format: "", jwt or opaque.
	TokenFormat string `json:"token_format,omitempty"`
}

// AccountUpdate holds the fields UpdateAccount changes; nil leaves a field.
type AccountUpdate struct {
	DisplayName          *string             `json:"display_name"`
	Description          *string             `json:"description"`
	Scopes               *[]string           `json:"scopes"`
	TokenLifetimeSeconds *int64              `json:"token_lifetime_seconds"`
	AuthMethods          *[]string           `json:"auth_methods"`
	TLS                  *storage.TLSBinding `json:"tls_binding"`
	TokenFormat          *string             `json:"token_format"`
}

// Email returns the email of the account NAME in PROJECT.
func (s *Service) Email(name, project string) string {
	return name + "@" + project + "." + s.cfg.AccountDomain
}

func (s *Service) checkScopes(ctx context.Context, scopes []string) error {
	apis, err := s.store.ListAPIs(ctx)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, a := range apis {
		for _, sc := range a.Scopes {
			known[sc] = true
		}
	}
	for _, sc := range scopes {
		if !known[sc] {
			return invalid("The scope %s is not defined by any API; create the API first (keyward api create).", quoteClip(sc))
		}
	}
	return nil
}

func (s *Service) lifetime(secs int64) (time.Duration, error) {
	if secs == 0 {
		return s.cfg.DefaultTokenLifetime, nil
	}
	// Compared in seconds: a huge secs overflows time.Duration.
	if secs < 60 || secs > int64(s.cfg.MaxTokenLifetime/time.Second) {
		return 0, invalid("The token lifetime must be between 60 and %d seconds.", int64(s.cfg.MaxTokenLifetime/time.Second))
	}
	return time.Duration(secs) * time.Second, nil
}

// CreateAccount creates a service account with a new numeric client ID.
func (s *Service) CreateAccount(ctx context.Context, actor Actor, in AccountInput) (storage.Account, error) {
	if !validate.Name(in.Name) {
		return storage.Account{}, invalid("The account name %s must be %s.", quoteClip(in.Name), validate.NameRule)
	}
	if !validate.Name(in.Project) {
		return storage.Account{}, invalid("The project %s must be %s.", quoteClip(in.Project), validate.NameRule)
	}
	if err := checkLabel("display name", in.DisplayName, MaxDisplayNameLength); err != nil {
		return storage.Account{}, err
	}
	if err := checkLabel("description", in.Description, MaxDescriptionLength); err != nil {
		return storage.Account{}, err
	}
	if err := s.checkScopes(ctx, in.Scopes); err != nil {
		return storage.Account{}, err
	}
	life, err := s.lifetime(in.TokenLifetimeSeconds)
	if err != nil {
		return storage.Account{}, err
	}
	if err := checkFormat(in.TokenFormat, true); err != nil {
		return storage.Account{}, err
	}
	if err := s.checkEmailDomainFree(ctx, in.Project); err != nil {
		return storage.Account{}, err
	}
	now := s.cfg.Now()
	a := storage.Account{
		Email: s.Email(in.Name, in.Project), Name: in.Name, Project: in.Project,
		DisplayName: in.DisplayName, Description: in.Description, Scopes: dedupe(in.Scopes),
		TokenLifetime: life, AuthMethods: storage.DefaultAuthMethods, TokenFormat: in.TokenFormat, CreatedAt: now, UpdatedAt: now,
	}
	for range 5 {
		a.ID = NewClientID()
		err = s.store.CreateAccount(ctx, a, s.event(actor, "account.create", a.ID, map[string]string{"email": a.Email, "scopes": strings.Join(a.Scopes, " ")}), s.guard())
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return a, s.guardErr(err, a, "")
		}
		if _, gerr := s.store.GetAccountByEmail(ctx, a.Email); gerr == nil {
			return a, conflict("The service account %s already exists.", a.Email)
		}
		// The random client ID collided; draw another.
	}
	return a, err
}

// checkEmailDomainFree refuses a new account in project when an
// organization is at the domain of its email, PROJECT.<account domain>:
// one made while the account domain was another, which CreateOrg refuses
// now (and so cannot be made between this read and the account). A user
// of it could have the account's email, and a delegated token for that
// user the sub of the account's self-signed JWTs. One read by the
// organizations' key.
func (s *Service) checkEmailDomainFree(ctx context.Context, project string) error {
	domain := strings.TrimSuffix(strings.ToLower(project+"."+s.cfg.AccountDomain), ".")
	_, err := s.store.GetOrg(ctx, domain)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	return conflict("The organization %s is at the domain of project %s's service account emails (NAME@%s), made before the account domain was %s: its users could have the email of a service account. Put the account in another project.",
		showDomain(domain), project, showDomain(domain), s.cfg.AccountDomain)
}

// NewClientID returns a random 21-digit numeric client ID.
func NewClientID() string {
	// 10^20 ≤ n < 10^21: 21 digits without a leading zero, ~69 bits.
	lo := new(big.Int).Exp(big.NewInt(10), big.NewInt(20), nil)
	span := new(big.Int).Sub(new(big.Int).Mul(lo, big.NewInt(10)), lo)
	n, _ := rand.Int(rand.Reader, span)
	return n.Add(n, lo).String()
}

func dedupe(l []string) []string {
	out := []string{}
	for _, s := range l {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// GetAccount finds an account by email or numeric client ID.
func (s *Service) GetAccount(ctx context.Context, ref string) (storage.Account, error) {
	var (
		a   storage.Account
		err error
	)
	if strings.Contains(ref, "@") {
		a, err = s.store.GetAccountByEmail(ctx, ref)
	} else {
		a, err = s.store.GetAccount(ctx, ref)
	}
	if errors.Is(err, storage.ErrNotFound) && validate.Name(ref) {
		// An account's bare name, as 'keyward sa create NAME' took it.
		return a, notFound("The service account %s does not exist. Name an account by its email, NAME@PROJECT.%s, or its client ID.", quoteRef(ref), s.cfg.AccountDomain)
	}
	return a, storeErr(err, "The service account "+quoteRef(ref))
}

// ListAccounts pages through accounts.
func (s *Service) ListAccounts(ctx context.Context, opts storage.ListOptions) ([]storage.Account, error) {
	return s.store.ListAccounts(ctx, opts)
}

// UpdateAccount changes an account's descriptive fields, scopes or lifetime.
func (s *Service) UpdateAccount(ctx context.Context, actor Actor, ref string, up AccountUpdate) (storage.Account, error) {
	return s.UpdateAccountIf(ctx, actor, ref, up, Match{})
}

// UpdateAccountIf is UpdateAccount made only if the account's state meets
// match, which the store checks in the update's transaction, on the row
// it changes: otherwise it fails with a 412 and changes nothing.
func (s *Service) UpdateAccountIf(ctx context.Context, actor Actor, ref string, up AccountUpdate, match Match) (storage.Account, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return a, err
	}
	if up == (AccountUpdate{}) {
		// Else an update of nothing, audited as one.
		return a, invalid("Nothing to change: give at least one of display_name, description, scopes, token_lifetime_seconds, auth_methods, tls_binding and token_format.")
	}
	data := map[string]string{}
	var life time.Duration
	if up.Scopes != nil {
		if err := s.checkScopes(ctx, *up.Scopes); err != nil {
			return a, err
		}
		if actor.ID == a.ID && slices.Contains(a.Scopes, AdminScope) && !slices.Contains(*up.Scopes, AdminScope) {
			return a, conflict("An administrator cannot remove %s from its own account; use another administrator account.", AdminScope)
		}
		data["scopes"] = strings.Join(dedupe(*up.Scopes), " ") // as stored
	}
	if up.TokenLifetimeSeconds != nil {
		if life, err = s.lifetime(*up.TokenLifetimeSeconds); err != nil {
			return a, err
		}
		data["token_lifetime_seconds"] = strconv.FormatInt(int64(life/time.Second), 10)
	}
	if up.DisplayName != nil {
		if err := checkLabel("display name", *up.DisplayName, MaxDisplayNameLength); err != nil {
			return a, err
		}
		data["display_name"] = *up.DisplayName
	}
	if up.Description != nil {
		if err := checkLabel("description", *up.Description, MaxDescriptionLength); err != nil {
			return a, err
		}
		data["description"] = *up.Description
	}
	if up.AuthMethods != nil {
		if err := checkAuthMethods(*up.AuthMethods); err != nil {
			return a, err
		}
		data["auth_methods"] = strings.Join(dedupe(*up.AuthMethods), " ")
	}
	if up.TokenFormat != nil {
		if err := checkFormat(*up.TokenFormat, true); err != nil {
			return a, err
		}
		data["token_format"] = *up.TokenFormat
	}
	if up.TLS != nil {
		if err := checkTLSBinding(up.TLS); err != nil {
			return a, err
		}
		b, _ := json.Marshal(up.TLS)
		data["tls_binding"] = string(b)
	}
	updated, err := s.store.UpdateAccount(ctx, a.ID, func(old storage.Account) (storage.Account, error) {
		if err := match.check(accountETag(old), "The service account "+showName(old.Email)); err != nil {
			return old, err
		}
		if up.DisplayName != nil {
			old.DisplayName = *up.DisplayName
		}
		if up.Description != nil {
			old.Description = *up.Description
		}
		if up.Scopes != nil {
			old.Scopes = dedupe(*up.Scopes)
		}
		if up.TokenLifetimeSeconds != nil {
			old.TokenLifetime = life
		}
		trusted, had := certificateTrust(old)
		if up.AuthMethods != nil {
			old.AuthMethods = dedupe(*up.AuthMethods)
		}
		if up.TLS != nil {
			old.TLS = *up.TLS
		}
		if up.TokenFormat != nil {
			old.TokenFormat = *up.TokenFormat
		}
		old.UpdatedAt = s.cfg.Now()
		if now, has := certificateTrust(old); had && (!has || now != trusted) {
			// The certificates the account trusted until now are not
			// trusted any more: the tokens got with them end too (their
			// credential names only a thumbprint, which cannot be checked
			// against a binding). Those got with its keys (a self-signed
			// certificate is one) or secrets are not concerned.
			old.CertTokensRevokedBefore = later(old.CertTokensRevokedBefore, old.UpdatedAt)
			// The audit event, written after this function, records it.
			data["cert_tokens_revoked_before"] = old.CertTokensRevokedBefore.UTC().Format(time.RFC3339Nano)
		} else {
			delete(data, "cert_tokens_revoked_before") // from a try that was rolled back
		}
		return old, nil
	}, s.event(actor, "account.update", a.ID, data), s.guard())
	change := "this change" // of the methods or the binding it gets tokens with
	if up.Scopes != nil && !slices.Contains(*up.Scopes, AdminScope) {
		change = "removing the scope"
	}
	// ErrNotFound: the account was deleted since GetAccount found it.
	return updated, storeErr(s.guardErr(err, a, change), "The service account "+quoteRef(ref))
}

// certificateTrust is the binding CA-issued certificates authenticate
// account a with (tls_client_auth), if any does.
func certificateTrust(a storage.Account) (storage.TLSBinding, bool) {
	return a.TLS, slices.Contains(a.AuthMethods, storage.AuthTLS) && !a.TLS.IsZero()
}

// SetAccountDisabled disables or enables an account. A disabled account
// gets no new tokens from its next request on.
func (s *Service) SetAccountDisabled(ctx context.Context, actor Actor, ref string, disabled bool) (storage.Account, error) {
	return s.SetAccountDisabledIf(ctx, actor, ref, disabled, Match{})
}

// SetAccountDisabledIf is SetAccountDisabled made only if the account's
// state meets match, which the store checks in the update's transaction:
// otherwise it fails with a 412 and changes nothing.
func (s *Service) SetAccountDisabledIf(ctx context.Context, actor Actor, ref string, disabled bool, match Match) (storage.Account, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return a, err
	}
	if disabled && actor.ID == a.ID {
		return a, conflict("An administrator cannot disable its own account; use another administrator account.")
	}
	action := "account.enable"
	if disabled {
		action = "account.disable"
	}
	updated, err := s.store.UpdateAccount(ctx, a.ID, func(old storage.Account) (storage.Account, error) {
		if err := match.check(accountETag(old), "The service account "+showName(old.Email)); err != nil {
			return old, err
		}
		old.Disabled = disabled
		old.UpdatedAt = s.cfg.Now()
		return old, nil
	}, s.event(actor, action, a.ID, nil), s.guard())
	return updated, storeErr(s.guardErr(err, a, "disabling it"), "The service account "+quoteRef(ref))
}

// RevokeAccountTokens revokes every token issued to the account until now:
// introspection reports them inactive at once.
func (s *Service) RevokeAccountTokens(ctx context.Context, actor Actor, ref string) (storage.Account, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return a, err
	}
	now := s.cfg.Now()
	data := map[string]string{}
	updated, err := s.store.UpdateAccount(ctx, a.ID, func(old storage.Account) (storage.Account, error) {
		old.TokensRevokedBefore, old.UpdatedAt = later(old.TokensRevokedBefore, now), now
		// The audit event, written after this function, records it.
		data["before"] = old.TokensRevokedBefore.UTC().Format(time.RFC3339Nano)
		return old, nil
	}, s.event(actor, "account.revoke_tokens", a.ID, data))
	return updated, storeErr(err, "The service account "+quoteRef(ref))
}

// later returns the later of a revocation time set before, t0, and t: a
// revocation made by a clock behind the one that made t0 (another
// replica's, or one stepped back) must not bring back the tokens t0
// revoked.
func later(t0, t time.Time) time.Time {
	if t0.After(t) {
		return t0
	}
	return t
}

// Revoked says what RevokeTokenID knew of the token it revoked.
type Revoked struct {
	// OnRecord: an opaque token with the ID is stored (kept, revoked, until
	// it expires, so later use of it is audited with its account);
	// AccountID is its account.
	OnRecord  bool
	AccountID string
	// Already: the ID was on the revocation list before.
	Already bool
}

// maxTokenIDLength bounds the token ID RevokeTokenID takes.
const maxTokenIDLength = 128

// LongestTokenLifetime bounds the lifetime of every access token Keyward
// issues: --max-token-lifetime may be at most this.
const LongestTokenLifetime = 24 * time.Hour

// RevokeTokenID revokes one token by its ID (jti). The revocation is kept
// for LongestTokenLifetime, after which the token has expired anyway,
// whatever the lifetimes allowed when it was issued: a token issued under
// a longer --max-token-lifetime than the server has now outlived a
// revocation kept as long as the current one.
// Only opaque tokens are stored: an ID Keyward has no record of may be a
// JWT's, or a typo, and is put on the revocation list all the same; the
// result says which it was.
func (s *Service) RevokeTokenID(ctx context.Context, actor Actor, jti string) (Revoked, error) {
	if jti == "" {
		return Revoked{}, invalid("A token ID (jti) is required.")
	}
	if len(jti) > maxTokenIDLength {
		return Revoked{}, invalid("The token ID (jti) is %d bytes long; at most %d are allowed (Keyward's are 22).", len(jti), maxTokenIDLength)
	}
	if oauth2.IsCredential(jti) {
		// Not echoed, nor recorded: the event and the revocation list
		// would keep it, still valid, in plain text. Checked first, so
		// that no other refusal quotes it (one with a line break after
		// it, read from a file, holds a control character).
		return Revoked{}, invalid("The token ID (jti) is an access token or a client secret itself, not a token's ID (Keyward's are 22 characters): " +
			"give the token's jti, which introspection reports and its token.issued event in the audit log names token_id. A client secret is ended by disabling or deleting it.")
	}
	if strings.ContainsFunc(jti, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return Revoked{}, invalid("The token ID (jti) %s holds a control character; Keyward's are 22 characters of base64url.", quoteClip(jti))
	}
	// JSON carries invalid UTF-8 as U+FFFD, which the decoder puts in its
	// place: a byte that is no character, given as the ID.
	if !utf8.ValidString(jti) || strings.ContainsRune(jti, utf8.RuneError) {
		return Revoked{}, invalid("The token ID (jti) %s is not valid UTF-8 (U+FFFD stands where a byte was that is no character); Keyward's are 22 characters of base64url.", quoteClip(jti))
	}
	var r Revoked
	var err error
	if r.Already, err = s.store.IsRevoked(ctx, jti); err != nil {
		return r, err
	}
	switch t, err := s.store.GetTokenByID(ctx, jti); {
	case err == nil:
		r.OnRecord, r.AccountID = true, t.AccountID
	case !errors.Is(err, storage.ErrNotFound):
		return r, err
	}
	result := "revoked"
	switch {
	case r.Already:
		result = "already revoked"
	case !r.OnRecord:
		result = "revoked; no token with this ID on record"
	}
	now := s.cfg.Now()
	err = s.store.Revoke(ctx, storage.Revocation{JTI: jti, AccountID: r.AccountID, RevokedAt: now, ExpiresAt: now.Add(LongestTokenLifetime)},
		s.event(actor, "token.revoke", r.AccountID, map[string]string{"token_id": jti, "result": result}))
	return r, err
}

// DeleteAccount deletes an account and its keys.
func (s *Service) DeleteAccount(ctx context.Context, actor Actor, ref string) error {
	return s.DeleteAccountIf(ctx, actor, ref, Match{})
}

// DeleteAccountIf is DeleteAccount made only if the account's state meets
// match, which the store checks in the delete's transaction, on the row
// it deletes: otherwise it fails with a 412 and deletes nothing.
func (s *Service) DeleteAccountIf(ctx context.Context, actor Actor, ref string, match Match) error {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return err
	}
	if actor.ID == a.ID {
		return conflict("An administrator cannot delete its own account; use another administrator account.")
	}
	var check func(storage.Account) error
	if match.Tags != nil {
		check = func(old storage.Account) error {
			return match.checkDelete(accountETag(old), "The service account "+showName(old.Email))
		}
	}
	err = s.store.DeleteAccount(ctx, a.ID, check, s.event(actor, "account.delete", a.ID, map[string]string{"email": a.Email}), s.guard())
	return storeErr(s.guardErr(err, a, "deleting it"), "The service account "+quoteRef(ref))
}

// guard is what every change of an account, a key, a secret or a
// delegation grant keeps true, checked by the store in the change's
// transaction: an enabled account holds the admin scope and can get
// tokens from this server with a key, a secret or, if it takes CA-issued
// client certificates, a certificate (see storage.Guard.KeepSignIn), so
// the API never locks every administrator out (keyward recover-admin is
// the break-glass, not the plan), and no account or grant is given a
// scope of an API deleted since checkScopes looked.
func (s *Service) guard() storage.Guard {
	return storage.Guard{KeepHeld: AdminScope, KnownScopes: true, KeepSignIn: AdminScope,
		NoCertificates: !s.cfg.CACertificates, Now: s.cfg.Now()}
}

// waysIn is how an administrator can get tokens from this server, for
// the conflicts of the last-administrator rule.
func (s *Service) waysIn() string {
	if s.cfg.CACertificates {
		return "with a key, a secret or a bound certificate"
	}
	return "with a key or a secret"
}

// lastWayInTodo ends the conflicts of the last-administrator rule with
// what to do: create (as "another key for an administrator") first; on a
// server that takes no CA-issued client certificates, it says first why
// a certificate binding does not count, and that --tls-client-ca would.
func (s *Service) lastWayInTodo(create string) string {
	if s.cfg.CACertificates {
		return "Create " + create + " first (keyward keys create), then try again."
	}
	return "A certificate binding (tls_client_auth) does not count: this server has no --tls-client-ca, so it takes no CA-issued client certificate. Create " +
		create + " first (keyward keys create), then try again; or give this server --tls-client-ca."
}

// guardErr turns a change of a that guard refused into the conflict the
// client sees; change says what would have removed the last administrator
// ("disabling it").
func (s *Service) guardErr(err error, a storage.Account, change string) error {
	switch {
	case errors.Is(err, storage.ErrLastHolder):
		return conflict("%s is the last enabled account with the %s scope: %s would leave no administrator. Give another account the scope first.",
			showName(a.Email), AdminScope, change)
	case errors.Is(err, storage.ErrLastCredential):
		return conflict("%s is the last enabled administrator that can get tokens (%s): %s would leave no one able to use the admin API. %s",
			showName(a.Email), s.waysIn(), change, s.lastWayInTodo("a key for another administrator"))
	case errors.Is(err, storage.ErrUnknownScope):
		return conflict("An API whose scopes this change grants was deleted meanwhile; check the scopes (keyward api list) and try again.")
	}
	return err
}

func checkAuthMethods(methods []string) error {
	return invalidErr(validate.AuthMethods(methods))
}

// checkTLSBinding checks a tls_client_auth binding and puts it in the form
// the mTLS client authentication compares with a certificate.
func checkTLSBinding(b *storage.TLSBinding) error {
	nb, err := clientauth.NormalizeBinding(*b)
	if err != nil {
		return invalid("%s.", upperFirst(err.Error()))
	}
	*b = nb
	return nil
}

// --- secrets ---

// SecretPrefix starts every client secret, so secret scanners can spot a
// leaked one.
const SecretPrefix = oauth2.SecretPrefix

// NewSecret returns a new client secret: the prefix and 256 random bits.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// MaxActiveSecrets is how many enabled, unexpired secrets an account may
// have at once: two, for rotation without downtime.
const MaxActiveSecrets = 2

// MaxSecrets is how many secrets an account may have, enabled or disabled,
// expired or not. Authentication with a secret compares its hash with
// each of the account's secrets, and every replica caches them all with
// the account (loading every one again after each change): the cap
// bounds both. An account that has more (from before the cap) keeps them;
// only adding one is refused, until deletions bring it under the cap.
const MaxSecrets = 10

// CreatedSecret is a new secret: shown once, stored only as a hash.
type CreatedSecret struct {
	storage.Secret
	Value string
}

// CreateSecret generates a client secret for the account.
func (s *Service) CreateSecret(ctx context.Context, actor Actor, ref string, expiresInSeconds int64) (CreatedSecret, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return CreatedSecret{}, err
	}
	exp, err := s.expiry(expiresInSeconds)
	if err != nil {
		return CreatedSecret{}, err
	}
	now := s.cfg.Now()
	value := NewSecret()
	sec := storage.Secret{
		ID: sakey.NewKeyID()[:16], AccountID: a.ID, Hash: clientauth.HashSecret(s.cfg.Pepper, value),
		Hint: SecretPrefix + "…" + value[len(value)-4:], ExpiresAt: exp, CreatedAt: now,
	}
	err = s.store.CreateSecret(ctx, sec, checkNewSecret(a, now), s.event(actor, "secret.create", a.ID, map[string]string{"secret_id": sec.ID}))
	return CreatedSecret{Secret: sec, Value: value}, addErr(err, a, "The secret")
}

// activeSecrets counts the enabled secrets of secs unexpired at now.
func activeSecrets(secs []storage.Secret, now time.Time) int {
	n := 0
	for _, sec := range secs {
		if !sec.Disabled && !sec.Expired(now) {
			n++
		}
	}
	return n
}

// checkNewSecret is the check of a secret added to a: the account's
// secrets, as the store has them in the transaction adding it, must leave
// room for it (MaxSecrets), and for one more active at now
// (MaxActiveSecrets).
func checkNewSecret(a storage.Account, now time.Time) func([]storage.Secret) error {
	return func(secs []storage.Secret) error {
		if len(secs) >= MaxSecrets {
			return conflict("%s already has %d secrets, and an account may have at most %d, disabled and expired ones included. Delete a secret it no longer uses first (see keyward secrets list; a disabled or expired one, say: keyward secrets delete %s SECRET_ID), then try again.",
				showName(a.Email), len(secs), MaxSecrets, showName(a.Email))
		}
		if n := activeSecrets(secs, now); n >= MaxActiveSecrets {
			return activeSecretsErr(a, n, "try again (to rotate: create the new secret, deploy it, then delete the old)")
		}
		return nil
	}
}

// activeSecretsErr is the refusal of a change that would give a, which
// has n active secrets, one more; then says what to do after making room.
func activeSecretsErr(a storage.Account, n int, then string) error {
	return conflict("%s already has %d active (enabled, unexpired) secrets, and an account may have at most %d at once. Disable or delete one of them first, then %s.",
		showName(a.Email), n, MaxActiveSecrets, then)
}

// ListSecrets returns an account's secrets (their hashes stay inside).
func (s *Service) ListSecrets(ctx context.Context, ref string) ([]storage.Secret, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.store.ListSecrets(ctx, a.ID)
}

// GetSecret returns one of an account's secrets (its hash stays inside).
func (s *Service) GetSecret(ctx context.Context, ref, id string) (storage.Secret, error) {
	_, sec, err := s.accountSecret(ctx, ref, id)
	return sec, err
}

func (s *Service) accountSecret(ctx context.Context, ref, id string) (storage.Account, storage.Secret, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return a, storage.Secret{}, err
	}
	secs, err := s.store.ListSecrets(ctx, a.ID)
	if err != nil {
		return a, storage.Secret{}, err
	}
	for _, sec := range secs {
		if sec.ID == id {
			return a, sec, nil
		}
	}
	if oauth2.IsCredential(id) {
		// Not echoed: the refusal's audit event would keep it.
		return a, storage.Secret{}, notFound("There is no secret with that ID: it is a client secret or token itself, not a secret's ID. "+
			"Find the ID of the secret with keyward secrets list %s (its hint shows the last characters of its value).", showName(a.Email))
	}
	return a, storage.Secret{}, notFound("The secret %s of %s does not exist.", quoteClip(id), showName(a.Email))
}

// SetSecretDisabled disables or enables a secret.
func (s *Service) SetSecretDisabled(ctx context.Context, actor Actor, ref, id string, disabled bool) (storage.Secret, error) {
	return s.SetSecretDisabledIf(ctx, actor, ref, id, disabled, Match{})
}

// SetSecretDisabledIf is SetSecretDisabled made only if the secret's
// state meets match, which the store checks in the update's transaction:
// otherwise it fails with a 412 and changes nothing.
func (s *Service) SetSecretDisabledIf(ctx context.Context, actor Actor, ref, id string, disabled bool, match Match) (storage.Secret, error) {
	a, sec, err := s.accountSecret(ctx, ref, id)
	if err != nil {
		return sec, err
	}
	action := "secret.enable"
	if disabled {
		action = "secret.disable"
	}
	// Enabling is checked against MaxActiveSecrets in the transaction that
	// enables, as CreateSecret is: a secret disabled while another was
	// created would otherwise make a third active one. It is judged only
	// when the change makes the secret active (not when it was enabled
	// already, or has expired), so an account over the cap from before
	// keeps what it has.
	now := s.cfg.Now()
	var made bool // whether the change makes the secret active
	var check func([]storage.Secret) error
	if !disabled {
		check = func(secs []storage.Secret) error {
			if n := activeSecrets(secs, now); made && n > MaxActiveSecrets {
				return activeSecretsErr(a, n-1, "enable the secret "+showName(sec.ID)+" again")
			}
			return nil
		}
	}
	updated, err := s.store.UpdateSecret(ctx, sec.ID, func(old storage.Secret) (storage.Secret, error) {
		if err := match.check(secretETag(old), secretWhat(old, a)); err != nil {
			return old, err
		}
		made = old.Disabled && !disabled && !old.Expired(now)
		old.Disabled = disabled
		return old, nil
	}, check, s.event(actor, action, a.ID, map[string]string{"secret_id": sec.ID}), s.guard())
	return updated, storeErr(s.credentialErr(err, "secret", sec.ID, a, "disabling it"), "The secret")
}

// DeleteSecret deletes a secret for good.
func (s *Service) DeleteSecret(ctx context.Context, actor Actor, ref, id string) error {
	return s.DeleteSecretIf(ctx, actor, ref, id, Match{})
}

// DeleteSecretIf is DeleteSecret made only if the secret's state meets
// match, which the store checks in the delete's transaction, on the row it
// deletes: otherwise it fails with a 412 and deletes nothing.
func (s *Service) DeleteSecretIf(ctx context.Context, actor Actor, ref, id string, match Match) error {
	a, sec, err := s.accountSecret(ctx, ref, id)
	if err != nil {
		return err
	}
	var check func(storage.Secret) error
	if match.Tags != nil {
		check = func(old storage.Secret) error { return match.checkDelete(secretETag(old), secretWhat(old, a)) }
	}
	err = s.store.DeleteSecret(ctx, sec.ID, check, s.event(actor, "secret.delete", a.ID, map[string]string{"secret_id": sec.ID}), s.guard())
	return storeErr(s.credentialErr(err, "secret", sec.ID, a, "deleting it"), "The secret")
}

// secretWhat names the secret sec of a in a 412.
func secretWhat(sec storage.Secret, a storage.Account) string {
	return fmt.Sprintf("The secret %s of %s", showName(sec.ID), showName(a.Email))
}

// --- keys ---

// Endpoints returns the URLs key files point at.
func (s *Service) Endpoints() sakey.Endpoints {
	return sakey.Endpoints{
		Auth:  s.cfg.Issuer + "/authorize",
		Token: s.cfg.Issuer + "/token",
		X509:  s.cfg.Issuer + "/service_accounts/v1/metadata/x509/",
	}
}

func (s *Service) expiry(secs int64) (time.Time, error) {
	if secs < 0 {
		return time.Time{}, invalid("The lifetime must be positive, or 0 for never.")
	}
	if secs > maxExpirySeconds { // beyond, the arithmetic overflows into the past
		return time.Time{}, invalid("The lifetime may be at most 100 years (%d seconds).", int64(maxExpirySeconds))
	}
	if secs == 0 {
		return time.Time{}, nil
	}
	return s.cfg.Now().Add(time.Duration(secs) * time.Second), nil
}

// maxExpirySeconds bounds the lifetime of a key or secret: 100 years.
const maxExpirySeconds = 100 * 365 * 24 * 60 * 60

// CreateKey generates a key pair for the account and returns the key file,
// the only copy of the private key.
func (s *Service) CreateKey(ctx context.Context, actor Actor, ref string, expiresInSeconds int64) (sakey.KeyFile, error) {
	_, kf, err := s.createKey(ctx, actor, ref, expiresInSeconds)
	return kf, err
}

// createKey is CreateKey, returning the key as stored too (for its ETag).
func (s *Service) createKey(ctx context.Context, actor Actor, ref string, expiresInSeconds int64) (storage.Key, sakey.KeyFile, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return storage.Key{}, sakey.KeyFile{}, err
	}
	exp, err := s.expiry(expiresInSeconds)
	if err != nil {
		return storage.Key{}, sakey.KeyFile{}, err
	}
	// Refused before the key pair is generated, which costs: the store
	// checks again, in the transaction that adds the key.
	keys, err := s.store.ListKeys(ctx, a.ID)
	if err != nil {
		return storage.Key{}, sakey.KeyFile{}, err
	}
	if err := checkNewKey(a, nil)(keys); err != nil {
		return storage.Key{}, sakey.KeyFile{}, err
	}
	k, kf, err := sakey.Generate(a, s.Endpoints(), s.cfg.Now(), exp)
	if err != nil {
		return k, kf, err
	}
	err = s.store.CreateKey(ctx, k, checkNewKey(a, nil), s.keyEvent(actor, "key.create", k))
	return k, kf, addErr(err, a, "The key")
}

// MaxKeys is how many keys an account may have, as Google's service
// accounts: enabled or disabled, expired or not, generated or uploaded.
// An assertion whose kid names no key of the account is tried against
// each of them (disabled ones too, to answer that the key is disabled),
// and every replica caches them with the account: the cap bounds both.
// An account that has more (from before the cap) keeps them; only adding
// one is refused, until deletions bring it under the cap.
const MaxKeys = 10

// checkNewKey is the check of a key added to a: the account's keys, as
// the store has them in the transaction adding it, must leave room for
// it, and (for an upload, spki set) none may have the same public key.
func checkNewKey(a storage.Account, spki []byte) func([]storage.Key) error {
	return func(keys []storage.Key) error {
		if spki != nil {
			for _, k := range keys {
				if bytes.Equal(k.PublicKey, spki) {
					return conflict("This public key is already the key %s of %s; to replace its certificate or expiry, delete that key first.", showName(k.ID), showName(a.Email))
				}
			}
		}
		if len(keys) >= MaxKeys {
			return conflict("%s already has %d keys, and an account may have at most %d, disabled and expired ones included. Delete a key it no longer uses first (see keyward keys list; a disabled or expired key, say: keyward keys delete %s KEY_ID), then try again.",
				showName(a.Email), len(keys), MaxKeys, showName(a.Email))
		}
		return nil
	}
}

func (s *Service) keyEvent(actor Actor, action string, k storage.Key) storage.AuditEvent {
	return s.event(actor, action, k.AccountID, map[string]string{"key_id": k.ID, "algorithm": k.Algorithm, "origin": k.Origin})
}

// UploadKey registers a public key or certificate the user holds.
func (s *Service) UploadKey(ctx context.Context, actor Actor, ref string, pemData []byte, expiresInSeconds int64) (storage.Key, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return storage.Key{}, err
	}
	p, err := sakey.ParsePublic(pemData)
	if err != nil {
		return storage.Key{}, invalid("The public key cannot be used: %s.", err.Error())
	}
	exp, err := s.expiry(expiresInSeconds)
	if err != nil {
		return storage.Key{}, err
	}
	if !p.NotAfter.IsZero() && (exp.IsZero() || p.NotAfter.Before(exp)) {
		exp = p.NotAfter
	}
	now := s.cfg.Now()
	if !exp.IsZero() && !exp.After(now) {
		return storage.Key{}, invalid("The certificate has already expired.")
	}
	// A certificate not yet valid is refused as an expired one is: the key
	// would be usable at once, self_signed_tls_client_auth included.
	// validate.NotBeforeSkew spares one made a moment ago on a clock a
	// little fast.
	if validate.NotYetValid(p.NotBefore, now) {
		return storage.Key{}, invalid("The certificate is not valid until %s; upload it then.", p.NotBefore.UTC().Format(time.RFC3339))
	}
	k := storage.Key{
		ID: sakey.NewKeyID(), AccountID: a.ID, Algorithm: p.Algorithm, PublicKey: p.SPKI, Certificate: p.Certificate,
		Origin: storage.KeyOriginUploaded, ExpiresAt: exp, CreatedAt: now,
	}
	return k, addErr(s.store.CreateKey(ctx, k, checkNewKey(a, p.SPKI), s.keyEvent(actor, "key.upload", k)), a, "The key")
}

// ListKeys returns an account's keys.
func (s *Service) ListKeys(ctx context.Context, ref string) ([]storage.Key, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return nil, err
	}
	return s.store.ListKeys(ctx, a.ID)
}

// accountKey finds the account ref and its key kid.
func (s *Service) accountKey(ctx context.Context, ref, kid string) (storage.Account, storage.Key, error) {
	a, err := s.GetAccount(ctx, ref)
	if err != nil {
		return a, storage.Key{}, err
	}
	k, err := s.store.GetKey(ctx, kid)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && k.AccountID != a.ID) {
		return a, k, notFound("The key %s of %s does not exist.", quoteRef(kid), showName(a.Email))
	}
	return a, k, err
}

// GetKey returns one key of an account.
func (s *Service) GetKey(ctx context.Context, ref, kid string) (storage.Key, error) {
	_, k, err := s.accountKey(ctx, ref, kid)
	return k, err
}

// SetKeyDisabled disables or enables a key. Assertions signed with a
// disabled key are refused with disabled_client.
func (s *Service) SetKeyDisabled(ctx context.Context, actor Actor, ref, kid string, disabled bool) (storage.Key, error) {
	return s.SetKeyDisabledIf(ctx, actor, ref, kid, disabled, Match{})
}

// SetKeyDisabledIf is SetKeyDisabled made only if the key's state meets
// match, which the store checks in the update's transaction: otherwise it
// fails with a 412 and changes nothing.
func (s *Service) SetKeyDisabledIf(ctx context.Context, actor Actor, ref, kid string, disabled bool, match Match) (storage.Key, error) {
	a, k, err := s.accountKey(ctx, ref, kid)
	if err != nil {
		return k, err
	}
	action := "key.enable"
	if disabled {
		action = "key.disable"
	}
	updated, err := s.store.UpdateKey(ctx, k.ID, func(old storage.Key) (storage.Key, error) {
		if err := match.check(keyETag(old), keyWhat(old, a)); err != nil {
			return old, err
		}
		old.Disabled = disabled
		return old, nil
	}, s.keyEvent(actor, action, k), s.guard())
	return updated, storeErr(s.credentialErr(err, "key", k.ID, a, "disabling it"), "The key")
}

// DeleteKey deletes a key for good.
func (s *Service) DeleteKey(ctx context.Context, actor Actor, ref, kid string) error {
	return s.DeleteKeyIf(ctx, actor, ref, kid, Match{})
}

// DeleteKeyIf is DeleteKey made only if the key's state meets match, which
// the store checks in the delete's transaction, on the row it deletes:
// otherwise it fails with a 412 and deletes nothing.
func (s *Service) DeleteKeyIf(ctx context.Context, actor Actor, ref, kid string, match Match) error {
	a, k, err := s.accountKey(ctx, ref, kid)
	if err != nil {
		return err
	}
	var check func(storage.Key) error
	if match.Tags != nil {
		check = func(old storage.Key) error { return match.checkDelete(keyETag(old), keyWhat(old, a)) }
	}
	err = s.store.DeleteKey(ctx, k.ID, check, s.keyEvent(actor, "key.delete", k), s.guard())
	return storeErr(s.credentialErr(err, "key", k.ID, a, "deleting it"), "The key")
}

// keyWhat names the key k of a in a 412.
func keyWhat(k storage.Key, a storage.Account) string {
	return fmt.Sprintf("The key %s of %s", showName(k.ID), showName(a.Email))
}

// credentialErr turns a change of the key or secret id of a that guard
// refused into the conflict the client sees; change says what would have
// locked the administrators out ("disabling it").
func (s *Service) credentialErr(err error, kind, id string, a storage.Account, change string) error {
	if errors.Is(err, storage.ErrLastCredential) {
		return conflict("The %s %s of %s is the last credential with which any administrator (an enabled account with the %s scope) can get tokens: %s would leave no one able to use the admin API. %s",
			kind, showName(id), showName(a.Email), AdminScope, change, s.lastWayInTodo("another key for an administrator"))
	}
	return err
}

// --- bootstrap ---

// ErrBootstrappedElsewhere is Bootstrap's error when another server
// sharing the store created the administrator account at the same time:
// the key file Bootstrap saved is no account's, and that server's is the
// one to use.
var ErrBootstrappedElsewhere = errors.New("another server sharing the store created the administrator account at the same time")

// Bootstrap prepares an empty store: it registers the built-in API and
// creates the administrator account with one key. save receives the key
// file before anything is stored, so a failure to save it leaves the store
// empty and the next start tries again. A first start that stopped after
// creating the administrator account but before storing its key (the store
// then holds that one account and no key) is finished: the account gets a
// new key, saved the same way — but only if it never had one. Otherwise
// Bootstrap does nothing when the store already has accounts.
//
// Replicas of an empty PostgreSQL store starting at once may both find it
// empty: the one whose administrator account is stored second fails with
// ErrBootstrappedElsewhere, having saved a key file no account has, which
// the caller discards; the store is as the other one made it. One that
// starts between the other's account and its key finds the account
// without a key and finishes it, as an interrupted first start: of the
// two keys, the one stored second fails with ErrBootstrappedElsewhere
// (firstAdminKey).
func (s *Service) Bootstrap(ctx context.Context, save func(sakey.KeyFile) error) (storage.Account, bool, error) {
	n, err := s.store.CountAccounts(ctx)
	if err != nil {
		return storage.Account{}, false, err
	}
	if n == 1 {
		return s.finishBootstrap(ctx, save)
	}
	if n > 0 {
		return storage.Account{}, false, nil
	}
	system := Actor{ID: "system"}
	now := s.cfg.Now()
	a := storage.Account{
		ID: NewClientID(), Email: s.Email(AdminAccountName, AdminProject), Name: AdminAccountName, Project: AdminProject,
		DisplayName: "Keyward administrator", Description: "Created on first start.", Scopes: []string{AdminScope},
		TokenLifetime: s.cfg.DefaultTokenLifetime, AuthMethods: storage.DefaultAuthMethods, CreatedAt: now, UpdatedAt: now,
	}
	k, kf, err := sakey.Generate(a, s.Endpoints(), now, time.Time{})
	if err != nil {
		return a, false, err
	}
	if err := save(kf); err != nil {
		return a, false, err
	}
	if _, err := s.store.GetAPI(ctx, BuiltinAPIName); errors.Is(err, storage.ErrNotFound) {
		_, err = s.CreateAPI(ctx, system, APIInput{
			Name: BuiltinAPIName, Identifier: BuiltinAPIIdentifier, Description: "Keyward's own admin API.", Scopes: []string{AdminScope, IntrospectScope},
		})
		if err != nil {
			// Another replica starting at once may have made it meanwhile.
			if _, gerr := s.store.GetAPI(ctx, BuiltinAPIName); gerr != nil {
				return a, false, fmt.Errorf("create the built-in API: %w", err)
			}
		}
	} else if err != nil {
		return a, false, err
	}
	if err := s.store.CreateAccount(ctx, a, s.event(system, "account.create", a.ID, map[string]string{"email": a.Email, "scopes": AdminScope})); errors.Is(err, storage.ErrAlreadyExists) {
		return a, false, ErrBootstrappedElsewhere
	} else if err != nil {
		return a, false, fmt.Errorf("create the administrator account: %w", err)
	}
	if err := s.store.CreateKey(ctx, k, firstAdminKey, s.keyEvent(system, "key.create", k)); err != nil {
		return a, false, fmt.Errorf("create the administrator key: %w", err)
	}
	return a, true, nil
}

// firstAdminKey is the check, in the transaction that stores it, of the
// administrator key a first start makes: that the account has no key yet.
// A replica starting at once finds the account without its key, in the
// moment between the two writes of Bootstrap, and finishes it as an
// interrupted first start: the second of the two keys to be stored is
// refused, so only one replica keeps a key file.
func firstAdminKey(keys []storage.Key) error {
	if len(keys) > 0 {
		return ErrBootstrappedElsewhere
	}
	return nil
}

// finishBootstrap gives the administrator account a key when it is the only
// account and has none.
func (s *Service) finishBootstrap(ctx context.Context, save func(sakey.KeyFile) error) (storage.Account, bool, error) {
	a, err := s.store.GetAccountByEmail(ctx, s.Email(AdminAccountName, AdminProject))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Account{}, false, nil
	} else if err != nil {
		return a, false, err
	}
	// Interrupted means the account is as the first start created it and
	// never had a key: an administrator who deleted its keys (signing in
	// with a secret or a certificate instead) must not get a new one at
	// every start. The audit log alone cannot tell once it was pruned.
	if !a.UpdatedAt.Equal(a.CreatedAt) {
		return a, false, nil
	}
	created, err := s.store.ListAuditEvents(ctx, storage.AuditFilter{AccountID: a.ID, Action: "key.create", Limit: 1})
	if err != nil || len(created) > 0 {
		return a, false, err
	}
	keys, err := s.store.ListKeys(ctx, a.ID)
	if err != nil || len(keys) > 0 {
		return a, false, err
	}
	secrets, err := s.store.ListSecrets(ctx, a.ID)
	if err != nil || len(secrets) > 0 {
		return a, false, err
	}
	if _, err := s.newAdminKey(ctx, Actor{ID: "system"}, a, save, firstAdminKey); err != nil {
		return a, false, err
	}
	return a, true, nil
}

// newAdminKey generates a key for the administrator account a, hands its
// key file to save and only then stores the key, so the key never exists
// without the one copy of its private key. check, if not nil, is called
// with the account's keys in the transaction that stores it. The key is
// returned once the store was asked to store it: with an error then, it
// may be stored all the same (the commit's answer lost).
func (s *Service) newAdminKey(ctx context.Context, actor Actor, a storage.Account, save func(sakey.KeyFile) error, check func([]storage.Key) error) (storage.Key, error) {
	k, kf, err := sakey.Generate(a, s.Endpoints(), s.cfg.Now(), time.Time{})
	if err != nil {
		return storage.Key{}, err
	}
	if err := save(kf); err != nil {
		return storage.Key{}, err
	}
	// Not capped (MaxKeys): an administrator account with the most keys,
	// all lost, must still get one.
	if err := s.store.CreateKey(ctx, k, check, s.keyEvent(actor, "key.create", k)); err != nil {
		return k, fmt.Errorf("create the administrator key: %w", err)
	}
	return k, nil
}

// ErrKeyStoredUnknown is RecoverAdmin's error when storing the new key
// failed in a way the commit may have outlived (a cancel or a lost
// connection during COMMIT) and the key could not be looked up to tell,
// or was not found after a COMMIT whose answer was lost
// (storage.ErrCommitUnknown), which the database may yet carry out: the
// key may be stored, and its key file is then its one copy.
var ErrKeyStoredUnknown = errors.New("whether the new key was stored is not known")

// keyStored looks up the key k, which storing may have failed to report,
// on a context of its own: the caller's may be cancelled.
func (s *Service) keyStored(k storage.Key) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := s.store.GetKey(ctx, k.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return got.AccountID == k.AccountID && bytes.Equal(got.PublicKey, k.PublicKey), nil
}

// ErrAdminDisabled is returned by RecoverAdmin when the administrator
// account is disabled and enabling it was not asked for.
var ErrAdminDisabled = errors.New("the administrator account is disabled")

// Recovery is what RecoverAdmin did.
type Recovery struct {
	Account storage.Account
	// KeyStored: the new key is in the store (and its key file was saved),
	// even if a later step failed.
	KeyStored bool
	// OtherKeys are the account's keys before the new one, left as they
	// were: those enabled and unexpired stay valid.
	OtherKeys []storage.Key
}

// RecoverAdmin is the way back in when every administrator key is lost: it
// gives the administrator account a new key and, if it lost them, the admin
// scope back and (with enable) its enabled state. It is meant for an
// operator with direct access to the store, not for the API; actor names
// who ran it in the audit log. The key file is saved first and the key
// stored next, before anything else changes: a failure up to then changes
// nothing, so a disabled account is never re-enabled with only its old
// (perhaps leaked) keys. A failure to store the key that its commit may
// have outlived (a cancel or a lost connection during COMMIT) is told by
// looking the key up: stored, RecoverAdmin goes on; not to be looked up,
// or not found after storage.ErrCommitUnknown, it fails with
// ErrKeyStoredUnknown.
func (s *Service) RecoverAdmin(ctx context.Context, actor Actor, enable bool, save func(sakey.KeyFile) error) (Recovery, error) {
	a, err := s.store.GetAccountByEmail(ctx, s.Email(AdminAccountName, AdminProject))
	if errors.Is(err, storage.ErrNotFound) {
		return Recovery{}, fmt.Errorf("the store has no administrator account %s: is this the right database, and --account-domain the server's?",
			s.Email(AdminAccountName, AdminProject))
	} else if err != nil {
		return Recovery{}, err
	}
	r := Recovery{Account: a}
	if a.Disabled && !enable {
		return r, ErrAdminDisabled
	}
	if r.OtherKeys, err = s.store.ListKeys(ctx, a.ID); err != nil {
		return r, err
	}
	if k, err := s.newAdminKey(ctx, actor, a, save, nil); err != nil && k.ID == "" {
		return r, err
	} else if err != nil {
		// The store's error may be the commit's lost answer (a cancel
		// or a dropped connection during COMMIT), the key stored or
		// not: it is looked up to tell.
		switch stored, lerr := s.keyStored(k); {
		case lerr != nil:
			return r, fmt.Errorf("%w: %w; looking the key up: %w", ErrKeyStoredUnknown, err, lerr)
		case !stored && errors.Is(err, storage.ErrCommitUnknown):
			// A COMMIT sent, its answer lost (PostgreSQL): the
			// database may carry it out after the look-up.
			return r, fmt.Errorf("%w: %w; the key was not found, but the database may yet commit it", ErrKeyStoredUnknown, err)
		case !stored:
			return r, err
		}
	}
	r.KeyStored = true
	if a.Disabled {
		if r.Account, err = s.SetAccountDisabled(ctx, actor, a.ID, false); err != nil {
			return r, err
		}
	}
	if !slices.Contains(r.Account.Scopes, AdminScope) {
		scopes := append(slices.Clone(r.Account.Scopes), AdminScope)
		if r.Account, err = s.UpdateAccount(ctx, actor, a.ID, AccountUpdate{Scopes: &scopes}); err != nil {
			return r, err
		}
	}
	return r, nil
}

// upperFirst makes an error message a sentence.
func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
