package token

import (
	"context"
	"time"

	"github.com/keyward/keyward/internal/delegation"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// The service-account flow's descriptions of unauthorized delegation.
const (
	noDelegation    = "Unauthorized client or scope in request."
	noGrantedScopes = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
	badUser         = "Not a valid email."
)

// delegate checks that acct may act for the user subject with scopes
// (domain-wide delegation) and returns the scopes the grant allows, and
// the later of the creation of the grant and of the user.
//
// The rules and their order are delegation.Check's, so that a client
// learns only what its authorization entitles it to: without a grant in
// the user's organization it learns nothing about the organization's
// users or policy.
//  1. a grant in the user's organization, covering at least one requested
//     scope (else unauthorized_client);
//  2. covering every requested scope (else access_denied);
//  3. no requested scope blocked by the organization (admin_policy_enforced);
//  4. the account's project, if internal to an organization, is internal to
//     the user's (org_internal);
//  5. the user exists, is active and is in the organization of its
//     email's domain (invalid_grant);
//  6. the user's email is no service account's (invalid_grant, as for a
//     user that does not exist): an organization at the domain of emails
//     made under an earlier account domain, which the admin API refuses
//     now but a store may have from before, or an import, could have a
//     user with one, and the token's sub would be the account's.
func (h *Handler) delegate(ctx context.Context, acct storage.Account, subject string, scopes []string) ([]string, time.Time, error) {
	granted, since, r, err := delegation.CheckNew(ctx, h.dir, acct, subject, scopes)
	if err != nil {
		return nil, time.Time{}, oauth2.StoreUnavailable(err)
	}
	if r == nil {
		return granted, since, nil
	}
	switch r.Kind {
	case delegation.BadSubject:
		return nil, time.Time{}, oauth2.Errorf(oauth2.ErrInvalidGrant, "%s The sub claim must be the email of a user of an organization.", badUser)
	case delegation.NoOrg, delegation.NoGrant:
		return nil, time.Time{}, oauth2.Errorf(oauth2.ErrUnauthorizedClient, "%s", noDelegation)
	case delegation.NoScopeGranted:
		return nil, time.Time{}, oauth2.Errorf(oauth2.ErrUnauthorizedClient, "%s", noGrantedScopes)
	case delegation.ScopeNotGranted:
		return nil, time.Time{}, oauth2.Errorf(oauth2.ErrAccessDenied, "Domain-wide delegation in %s does not include the scope %s.", r.Domain, oauth2.QuoteForDescription(r.Scope))
	case delegation.ScopeBlocked:
		return nil, time.Time{}, oauth2.Errorf(oauth2.ErrAdminPolicyEnforced, "The administrator of %s does not allow the scope %s for delegated access.", r.Domain, oauth2.QuoteForDescription(r.Scope))
	case delegation.OrgInternal:
		return nil, time.Time{}, oauth2.Errorf(oauth2.ErrOrgInternal, "This client is restricted to users within its organization. Its project is internal to %s.", r.Org)
	default: // NoUser, UserElsewhere, UserSuspended, AccountEmail
		return nil, time.Time{}, oauth2.Errorf(oauth2.ErrInvalidGrant, "%s", badUser)
	}
}
