package token

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// The service-account flow's descriptions of unauthorized delegation.
const (
	noDelegation    = "Unauthorized client or scope in request."
	noGrantedScopes = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."
	badUser         = "Invalid email or User ID"
)

// delegate checks that acct may act for the user subject with scopes
// (domain-wide delegation) and returns the scopes the grant allows.
//
// The checks run in this order, so that a client learns only what its
// authorization entitles it to: without a grant in the user's organization
// it learns nothing about the organization's users or policy.
//  1. a grant in the user's organization, covering at least one requested
//     scope (else unauthorized_client);
//  2. covering every requested scope (else access_denied);
//  3. no requested scope blocked by the organization (admin_policy_enforced);
//  4. the account's project, if internal to an organization, is internal to
//     the user's (org_internal);
//  5. the user exists and is active (invalid_grant).
func (h *Handler) delegate(ctx context.Context, acct storage.Account, subject string, scopes []string) ([]string, error) {
	_, domain, ok := strings.Cut(subject, "@")
	domain = strings.ToLower(domain)
	if !ok || domain == "" || strings.Contains(domain, "@") {
		return nil, oauth2.Errorf(oauth2.ErrInvalidGrant, "%s: the sub claim must be the email of a user of an organization.", badUser)
	}
	org, err := h.dir.GetOrg(ctx, domain)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oauth2.Errorf(oauth2.ErrUnauthorizedClient, "%s", noDelegation)
	} else if err != nil {
		return nil, oauth2.StoreUnavailable(err)
	}
	grant, err := h.dir.GetGrant(ctx, domain, acct.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oauth2.Errorf(oauth2.ErrUnauthorizedClient, "%s", noDelegation)
	} else if err != nil {
		return nil, oauth2.StoreUnavailable(err)
	}
	var missing []string
	for _, s := range scopes {
		if !slices.Contains(grant.Scopes, s) {
			missing = append(missing, s)
		}
	}
	if len(scopes) > 0 && len(missing) == len(scopes) {
		return nil, oauth2.Errorf(oauth2.ErrUnauthorizedClient, "%s", noGrantedScopes)
	}
	if len(missing) > 0 {
		return nil, oauth2.Errorf(oauth2.ErrAccessDenied, "Domain-wide delegation in %s does not include the scope %s.", domain, oauth2.QuoteShort(missing[0]))
	}
	for _, s := range scopes {
		if slices.Contains(org.BlockedScopes, s) {
			return nil, oauth2.Errorf(oauth2.ErrAdminPolicyEnforced, "The administrator of %s does not allow the scope %q for delegated access.", domain, s)
		}
	}
	if p, err := h.dir.GetProjectOrg(ctx, acct.Project); err == nil && p.Internal && p.Org != domain {
		return nil, oauth2.Errorf(oauth2.ErrOrgInternal, "This client is restricted to users within its organization (%s).", p.Org)
	} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, oauth2.StoreUnavailable(err)
	}
	user, err := h.dir.GetUser(ctx, strings.ToLower(subject))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (user.Suspended || user.Org != domain)) {
		return nil, oauth2.Errorf(oauth2.ErrInvalidGrant, "%s", badUser)
	} else if err != nil {
		return nil, oauth2.StoreUnavailable(err)
	}
	return grant.Scopes, nil
}
