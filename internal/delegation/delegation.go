// Package delegation holds the rules of domain-wide delegation: whether a
// service account may act for a user of an organization with some scopes.
// The token endpoint applies them when it issues a delegated token, and
// tokenstate again whenever such a token is presented (introspection,
// revocation, the admin API), so that a token stays active only while it
// would be issued now; each maps a refusal to its own words.
package delegation

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/storage"
)

// Directory is what the rules read: at most one call of each method, but
// two of AccountEmailAt for a subject with characters beyond ASCII.
type Directory interface {
	GetOrg(ctx context.Context, domain string) (storage.Org, error)
	GetGrant(ctx context.Context, org, clientID string) (storage.Grant, error)
	GetProjectOrg(ctx context.Context, project string) (storage.ProjectOrg, error)
	GetUser(ctx context.Context, email string) (storage.User, error)
	AccountEmailAt(ctx context.Context, local, domain string) (bool, error)
}

// Kind is the rule a delegation breaks.
type Kind int

// The rules, in the order Check applies them.
const (
	// BadSubject: the subject is not an email, user@domain.
	BadSubject Kind = iota + 1
	// NoOrg: there is no organization of the subject's domain.
	NoOrg
	// NoGrant: the organization grants the account nothing, or (for a
	// token) made its grant after the token was issued.
	NoGrant
	// NoScopeGranted: the grant covers none of the scopes; Scope is the
	// first.
	NoScopeGranted
	// ScopeNotGranted: the grant covers some of the scopes, not Scope.
	ScopeNotGranted
	// ScopeBlocked: the organization blocks Scope for delegated access.
	ScopeBlocked
	// OrgInternal: the account's project is internal to Org, another
	// organization.
	OrgInternal
	// NoUser: the user does not exist, or (for a token) was added after
	// the token was issued.
	NoUser
	// UserElsewhere: the user is in an organization other than its
	// email's domain.
	UserElsewhere
	// UserSuspended: the user is suspended.
	UserSuspended
	// AccountEmail: the user's email is a service account's. The admin
	// API refuses an organization at the domain of account emails, but a
	// store may have one from before, or an import, with such a user,
	// and the token's sub would be the account's.
	AccountEmail
)

// Refusal says which rule a delegation breaks.
type Refusal struct {
	Kind Kind
	// Domain is the subject's domain, lower-cased: the organization the
	// account asked to act in (empty for BadSubject).
	Domain string
	// Scope is the scope refused (NoScopeGranted, ScopeNotGranted,
	// ScopeBlocked).
	Scope string
	// Org is the organization the account's project is internal to
	// (OrgInternal).
	Org string
}

// Check says whether acct may act for the user subject (an email) with
// scopes, and returns the scopes the organization's grant to acct allows.
// issuedAt is 0 when a token is being issued; for a token issued before,
// it is the token's iat (Unix seconds), and a grant made or user added
// after it refuses the token. Only a store failure is an error.
//
// Deleting a user or revoking a grant is final for the tokens issued
// before: a user added again with the same email, or a grant made again
// to the account in the same organization, is newer than the token (its
// CreatedAt, which a replacement keeps, is after the token's iat) and does
// not bring them back, as suspending and reinstating a user does. iat has
// whole seconds: a token issued in the second the user or grant was made
// is taken to be after it, as it most likely is.
//
// The rules run in the order of the kinds, so that a client learns only
// what its authorization entitles it to: without a grant in the user's
// organization it learns nothing about the organization's users or
// policy. For a token issued before, the order only decides which of
// several broken rules is reported: a token whose grant was revoked and
// whose user was deleted is refused as NoGrant.
func Check(ctx context.Context, dir Directory, acct storage.Account, subject string, scopes []string, issuedAt int64) ([]string, *Refusal, error) {
	granted, _, r, err := check(ctx, dir, acct, subject, scopes, issuedAt)
	return granted, r, err
}

// CheckNew is Check for a token being issued now (issuedAt 0), which also
// returns, when the delegation is allowed, the later of the creation of
// the grant and of the user: a token issued in an earlier second is not
// the grant's.
func CheckNew(ctx context.Context, dir Directory, acct storage.Account, subject string, scopes []string) ([]string, time.Time, *Refusal, error) {
	return check(ctx, dir, acct, subject, scopes, 0)
}

func check(ctx context.Context, dir Directory, acct storage.Account, subject string, scopes []string, issuedAt int64) ([]string, time.Time, *Refusal, error) {
	written := subject
	subject = strings.ToLower(subject)
	_, domain, ok := strings.Cut(subject, "@")
	if !ok || domain == "" || strings.Contains(domain, "@") {
		return nil, time.Time{}, &Refusal{Kind: BadSubject}, nil
	}
	refuse := func(k Kind, scope string) ([]string, time.Time, *Refusal, error) {
		return nil, time.Time{}, &Refusal{Kind: k, Domain: domain, Scope: scope}, nil
	}
	newer := func(created int64) bool { return issuedAt != 0 && issuedAt < created }
	org, err := dir.GetOrg(ctx, domain)
	if errors.Is(err, storage.ErrNotFound) {
		return refuse(NoOrg, "")
	} else if err != nil {
		return nil, time.Time{}, nil, err
	}
	grant, err := dir.GetGrant(ctx, domain, acct.ID)
	if errors.Is(err, storage.ErrNotFound) || err == nil && newer(grant.CreatedAt.Unix()) {
		return refuse(NoGrant, "")
	} else if err != nil {
		return nil, time.Time{}, nil, err
	}
	var missing []string
	for _, s := range scopes {
		if !slices.Contains(grant.Scopes, s) {
			missing = append(missing, s)
		}
	}
	if len(scopes) > 0 && len(missing) == len(scopes) {
		return refuse(NoScopeGranted, missing[0])
	}
	if len(missing) > 0 {
		return refuse(ScopeNotGranted, missing[0])
	}
	for _, s := range scopes {
		if slices.Contains(org.BlockedScopes, s) {
			return refuse(ScopeBlocked, s)
		}
	}
	if p, err := dir.GetProjectOrg(ctx, acct.Project); err == nil && p.Internal && p.Org != domain {
		return nil, time.Time{}, &Refusal{Kind: OrgInternal, Domain: domain, Org: p.Org}, nil
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, time.Time{}, nil, err
	}
	user, err := dir.GetUser(ctx, subject)
	switch {
	case errors.Is(err, storage.ErrNotFound) || err == nil && newer(user.CreatedAt.Unix()):
		return refuse(NoUser, "")
	case err != nil:
		return nil, time.Time{}, nil, err
	case user.Org != domain:
		return refuse(UserElsewhere, "")
	case user.Suspended:
		return refuse(UserSuspended, "")
	}
	if taken, err := accountEmail(ctx, dir, written, subject); err != nil {
		return nil, time.Time{}, nil, err
	} else if taken {
		return refuse(AccountEmail, "")
	}
	since := grant.CreatedAt
	if user.CreatedAt.After(since) {
		since = user.CreatedAt
	}
	return grant.Scopes, since, nil, nil
}

// accountEmail reports whether the subject, as written or as lowered
// (the user's email), is an account's email. AccountEmailAt compares in
// ASCII lower case only: the sub as written finds an account email
// written the same, whatever its letters (ÉLISE@…, which lowered would
// be élise@… and no longer match), and the lowered sub finds one written
// as the user's email is stored (élise@… for a sub ÉLISE@…), asked only
// for a subject with characters beyond ASCII.
func accountEmail(ctx context.Context, dir Directory, written, lowered string) (bool, error) {
	local, domain, _ := strings.Cut(written, "@")
	taken, err := dir.AccountEmailAt(ctx, local, domain)
	if err != nil || taken || strings.IndexFunc(written, func(r rune) bool { return r >= utf8.RuneSelf }) < 0 {
		return taken, err
	}
	local, domain, _ = strings.Cut(lowered, "@")
	return dir.AccountEmailAt(ctx, local, domain)
}
