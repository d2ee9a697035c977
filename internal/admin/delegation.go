package admin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/validate"
)

// CreateOrg registers an organization (a domain) whose users service
// accounts may be allowed to act for, with the scopes it never allows for
// delegated access, in one transaction.
func (s *Service) CreateOrg(ctx context.Context, actor Actor, domain string, blocked ...string) (storage.Org, error) {
	domain = strings.ToLower(strings.TrimSpace(domain))
	if err := invalidErr(validate.Domain(domain)); err != nil {
		return storage.Org{}, err
	}
	// No organization under the account domain (RFC 9700 §4.15). A store
	// made before --account-domain was checked may have it in capitals or
	// with a final dot.
	if validate.UnderAccountDomain(domain, s.cfg.AccountDomain) {
		return storage.Org{}, invalid("The organization %s is under the account domain %s, whose addresses are service accounts' emails: its users could have the email of a service account. Use the organization's own domain.",
			showDomain(domain), s.cfg.AccountDomain)
	}
	// Nor at the domain of a service account's email: accounts made under
	// an earlier account domain keep their emails under it.
	if taken, err := s.store.AccountEmailAt(ctx, "", domain); err != nil {
		return storage.Org{}, err
	} else if taken {
		return storage.Org{}, invalid("The organization %s is the domain of service accounts' emails (made under an earlier account domain): its users could have the email of a service account. Use the organization's own domain.",
			showDomain(domain))
	}
	if err := checkBlockedScopes(blocked); err != nil {
		return storage.Org{}, err
	}
	o := storage.Org{Domain: domain, BlockedScopes: dedupe(blocked), CreatedAt: s.cfg.Now()}
	if o.BlockedScopes == nil {
		o.BlockedScopes = []string{}
	}
	data := map[string]string{"org": domain}
	if len(o.BlockedScopes) > 0 {
		data["blocked_scopes"] = strings.Join(o.BlockedScopes, " ")
	}
	err := s.store.CreateOrg(ctx, o, s.event(actor, "org.create", "", data))
	return o, storeErr(err, "The organization "+showDomain(domain))
}

// GetOrg returns an organization.
func (s *Service) GetOrg(ctx context.Context, domain string) (storage.Org, error) {
	o, err := s.store.GetOrg(ctx, strings.ToLower(domain))
	return o, storeErr(err, "The organization "+quoteClip(domain))
}

// GetOrgProjects returns an organization with the projects placed in it,
// read together: as they were at one moment.
func (s *Service) GetOrgProjects(ctx context.Context, domain string) (storage.Org, []storage.ProjectOrg, error) {
	o, projects, err := s.store.GetOrgProjects(ctx, strings.ToLower(domain))
	return o, projects, storeErr(err, "The organization "+quoteClip(domain))
}

// ListOrgs returns every organization.
func (s *Service) ListOrgs(ctx context.Context) ([]storage.Org, error) { return s.store.ListOrgs(ctx) }

// ListProjects returns the projects placed in an organization.
func (s *Service) ListProjects(ctx context.Context, domain string) ([]storage.ProjectOrg, error) {
	if _, err := s.GetOrg(ctx, domain); err != nil {
		return nil, err
	}
	return s.store.ListProjectOrgs(ctx, strings.ToLower(domain))
}

// DeleteOrg deletes an organization with its users, projects and grants.
func (s *Service) DeleteOrg(ctx context.Context, actor Actor, domain string) error {
	return s.DeleteOrgIf(ctx, actor, domain, Match{})
}

// DeleteOrgIf is DeleteOrg made only if the organization's state, its
// projects included, meets match, which the store checks in the delete's
// transaction: otherwise it fails with a 412 and deletes nothing.
func (s *Service) DeleteOrgIf(ctx context.Context, actor Actor, domain string, match Match) error {
	domain = strings.ToLower(domain)
	var check func(storage.Org, []storage.ProjectOrg) error
	if match.Tags != nil {
		check = func(o storage.Org, projects []storage.ProjectOrg) error {
			return match.checkDelete(orgETag(o, projects), "The organization "+showDomain(o.Domain))
		}
	}
	return storeErr(s.store.DeleteOrg(ctx, domain, check, s.event(actor, "org.delete", "", map[string]string{"org": domain})),
		"The organization "+quoteClip(domain))
}

// SetBlockedScopes sets the scopes an organization never allows for
// delegated access.
func (s *Service) SetBlockedScopes(ctx context.Context, actor Actor, domain string, scopes []string) (storage.Org, error) {
	o, _, err := s.SetBlockedScopesIf(ctx, actor, domain, scopes, Match{})
	return o, err
}

// SetBlockedScopesIf is SetBlockedScopes made only if the organization's
// state, its projects included, meets match, which the store checks in
// the update's transaction: otherwise it fails with a 412 and changes
// nothing. It returns the organization as changed, with its projects.
func (s *Service) SetBlockedScopesIf(ctx context.Context, actor Actor, domain string, scopes []string, match Match) (storage.Org, []storage.ProjectOrg, error) {
	domain = strings.ToLower(domain)
	if err := checkBlockedScopes(scopes); err != nil {
		return storage.Org{}, nil, err
	}
	o, projects, err := s.store.UpdateOrg(ctx, domain, func(o storage.Org, projects []storage.ProjectOrg) (storage.Org, error) {
		if err := match.check(orgETag(o, projects), "The organization "+showDomain(o.Domain)); err != nil {
			return o, err
		}
		o.BlockedScopes = dedupe(scopes)
		return o, nil
	}, s.event(actor, "org.policy", "", map[string]string{"org": domain, "blocked_scopes": strings.Join(dedupe(scopes), " ")}))
	return o, projects, storeErr(err, "The organization "+quoteClip(domain))
}

// checkBlockedScopes refuses a blocked scope that cannot be a scope: it
// would block nothing ("a b" never matches a requested scope, and its
// author meant two).
func checkBlockedScopes(scopes []string) error {
	return invalidErr(validate.BlockedScopes(scopes))
}

// PlaceProject puts a project in an organization. An internal project's
// accounts may act only for that organization's users (org_internal).
func (s *Service) PlaceProject(ctx context.Context, actor Actor, domain, project string, internal bool) (storage.ProjectOrg, error) {
	return s.PlaceProjectIf(ctx, actor, domain, project, internal, Match{})
}

// PlaceProjectIf is PlaceProject made only if the state of the
// organization domain, its projects included, meets match, which the store
// checks in the change's transaction with the organization locked:
// otherwise it fails with a 412 and changes nothing. For a project moved
// from another organization, match is of domain, the one it is moved to;
// the other's state is not checked.
func (s *Service) PlaceProjectIf(ctx context.Context, actor Actor, domain, project string, internal bool, match Match) (storage.ProjectOrg, error) {
	domain = strings.ToLower(domain)
	if _, err := s.GetOrg(ctx, domain); err != nil {
		return storage.ProjectOrg{}, err
	}
	if !validate.Name(project) {
		return storage.ProjectOrg{}, invalid("The project %s must be %s.", quoteClip(project), validate.NameRule)
	}
	p := storage.ProjectOrg{Project: project, Org: domain, Internal: internal}
	err := s.store.PutProjectOrg(ctx, p, orgCheck(match, "placed or moved"), s.event(actor, "org.project", "", map[string]string{"org": domain, "project": project, "internal": fmt.Sprint(internal)}))
	return p, storeErr(err, "The organization "+quoteClip(domain))
}

// RemoveProject takes a project out of the organization domain, which
// must be the one it is in: the store deletes it only from there, so a
// move to another organization meanwhile is not undone.
func (s *Service) RemoveProject(ctx context.Context, actor Actor, domain, project string) error {
	return s.RemoveProjectIf(ctx, actor, domain, project, Match{})
}

// RemoveProjectIf is RemoveProject made only if the state of the
// organization domain, its projects included, meets match, which the store
// checks in the change's transaction with the organization locked:
// otherwise it fails with a 412 and changes nothing.
func (s *Service) RemoveProjectIf(ctx context.Context, actor Actor, domain, project string, match Match) error {
	domain = strings.ToLower(domain)
	if _, err := s.GetOrg(ctx, domain); err != nil {
		return err
	}
	err := s.store.DeleteProjectOrg(ctx, domain, project, orgCheck(match, "removed"), s.event(actor, "org.project_remove", "", map[string]string{"org": domain, "project": project}))
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("The project %s is not in the organization %s.", quoteClip(project), quoteClip(domain))
	}
	return err
}

// orgCheck is the store's check of a change of an organization's projects
// that match must allow, or nil for the zero Match; done says what was not
// done to the project ("removed").
func orgCheck(match Match, done string) func(storage.Org, []storage.ProjectOrg) error {
	if match.Tags == nil {
		return nil
	}
	return func(o storage.Org, projects []storage.ProjectOrg) error {
		return match.precondition(orgETag(o, projects), "The organization "+showDomain(o.Domain), "the project was not "+done,
			"Read the organization again and, if you still mean to, send the request with its new ETag.")
	}
}

// UserInput is a user to add or import.
type UserInput struct {
	Email     string `json:"email"`
	Suspended bool   `json:"suspended"`
}

// Org returns the organization of the user: its email's domain.
func (u UserInput) Org() string { return emailDomain(u.Email) }

// emailDomain returns the domain of a well-formed email: what follows its
// last @.
func emailDomain(e string) string { return validate.EmailDomain(e) }

// NormalizeEmail checks that e is a bare email address (RFC 5322
// addr-spec, no display name) and lower-cases it.
func NormalizeEmail(e string) (string, error) { return normalizeEmail(e) }

// normalizeEmail checks an email and lower-cases it.
func normalizeEmail(e string) (string, error) { return validate.Email(e) }

// PutUsers adds or replaces users in the directory of the organization
// domain, in one transaction: each email must be of that domain.
func (s *Service) PutUsers(ctx context.Context, actor Actor, domain string, in []UserInput) (int, error) {
	domain = strings.ToLower(domain)
	if len(in) == 0 {
		if _, err := s.GetOrg(ctx, domain); err != nil {
			return 0, err
		}
		return 0, invalid("No users given.")
	}
	now := s.cfg.Now()
	users := make([]storage.User, 0, len(in))
	var errs []string
	malformed := false
	for i, u := range in {
		email, err := normalizeEmail(u.Email)
		if err != nil {
			errs = append(errs, fmt.Sprintf("user %d: %v", i+1, err))
			malformed = true
			continue
		}
		if emailDomain(email) != domain {
			errs = append(errs, fmt.Sprintf("user %d: %s is not in %s: a user belongs to the organization of its email's domain", i+1, showName(email), showDomain(domain)))
			continue
		}
		users = append(users, storage.User{Email: email, Org: domain, Suspended: u.Suspended, CreatedAt: now})
	}
	// A malformed email (a@b@c) is named as such before the organization
	// is looked up, not reported as a missing organization b@c.
	if !malformed {
		if _, err := s.GetOrg(ctx, domain); err != nil {
			return 0, err
		}
	}
	if len(errs) > 0 {
		return 0, badUsers(errs)
	}
	err := s.store.PutUsers(ctx, users, s.usersEvent(actor, users, nil))
	if err != nil && len(s.goneOrgs(ctx, []string{domain})) > 0 {
		return 0, notFound("The organization %s does not exist: it was deleted while its users were being added, and nothing was imported.", domain)
	}
	return len(users), err
}

// MaxAuditOrgs bounds how many organizations the audit event of
// PutUsersOfOrgs lists (in orgs, sorted); org_count counts them all.
const MaxAuditOrgs = 10

// PutUsersOfOrgs adds or replaces users of any organizations, each in the
// organization of its email's domain, all in one transaction: all or
// nothing. Every email must be well-formed and given once, and its
// organization must exist; otherwise it names each bad user (the first 20)
// by its position, from 1, and adds none. An organization deleted while
// the users are put is a 409, and none is added either.
func (s *Service) PutUsersOfOrgs(ctx context.Context, actor Actor, in []UserInput) (int, error) {
	if len(in) == 0 {
		return 0, invalid("No users given.")
	}
	now := s.cfg.Now()
	// First each email on its own, then, with one lookup of all their
	// domains (not one per domain), whether their organizations exist;
	// errs stay in the order of the users either way.
	errs := make([]string, len(in))
	users := make([]storage.User, 0, len(in))
	seen := map[string]int{} // email → position
	var domains []string
	for i, u := range in {
		email, err := normalizeEmail(u.Email)
		if err != nil {
			errs[i] = fmt.Sprintf("user %d: %v", i+1, err)
			continue
		}
		if first, dup := seen[email]; dup {
			errs[i] = fmt.Sprintf("user %d: %s is also user %d", i+1, showName(email), first)
			continue
		}
		seen[email] = i + 1
		domain := emailDomain(email)
		domains = append(domains, domain)
		users = append(users, storage.User{Email: email, Org: domain, Suspended: u.Suspended, CreatedAt: now})
	}
	found, err := s.store.GetOrgs(ctx, domains)
	if err != nil {
		return 0, err
	}
	orgs := make([]string, 0, len(found)) // sorted, as GetOrgs returns them
	for _, o := range found {
		orgs = append(orgs, o.Domain)
	}
	for _, u := range users {
		if _, ok := slices.BinarySearch(orgs, u.Org); !ok {
			i := seen[u.Email] - 1
			errs[i] = fmt.Sprintf("user %d: there is no organization %s", i+1, showDomain(u.Org))
		}
	}
	errs = slices.DeleteFunc(errs, func(e string) bool { return e == "" })
	if len(errs) > 0 {
		return 0, badUsers(errs)
	}
	data := map[string]string{"org_count": fmt.Sprint(len(orgs)), "orgs": strings.Join(orgs[:min(len(orgs), MaxAuditOrgs)], " ")}
	if err := s.store.PutUsers(ctx, users, s.usersEvent(actor, users, data)); err != nil {
		if gone := s.goneOrgs(ctx, orgs); len(gone) > 0 {
			if len(gone) == 1 {
				return 0, conflict("Nothing was imported: the organization %s was deleted while the users were being added. Create it again, or leave its users out, and retry.", gone[0])
			}
			return 0, conflict("Nothing was imported: the organizations %s were deleted while the users were being added. Create them again, or leave their users out, and retry.", strings.Join(gone, ", "))
		}
		return 0, err
	}
	return len(users), nil
}

// badUsers is the error of a put of users some of which are bad: errs
// names each, and the first 20 are reported.
func badUsers(errs []string) error {
	if len(errs) > 20 {
		errs = append(errs[:20], fmt.Sprintf("and %d more", len(errs)-20))
	}
	return invalid("Nothing was imported; fix these and retry: %s.", strings.Join(errs, "; "))
}

// MaxAuditFlips bounds how many emails the audit event of a put of users
// lists in unsuspended_emails and in newly_suspended_emails (sorted);
// unsuspended and newly_suspended count them all.
const MaxAuditFlips = 20

// usersEvent is the audit event of a put of users by actor, with data
// added to its own: user.put of one user (its email and suspended flag),
// user.import of more (their count). A put replaces each user that exists,
// its suspended flag with it, so the event also names the users whose flag
// the put changed, as the store finds them in the put's transaction:
// re-importing an old directory export unsuspends the users suspended
// since, and an explicit unsuspend is recorded by email too.
func (s *Service) usersEvent(actor Actor, users []storage.User, data map[string]string) storage.UsersEvent {
	action := "user.put"
	if len(users) > 1 {
		action = "user.import"
	}
	if data == nil {
		data = map[string]string{}
	}
	data["count"] = fmt.Sprint(len(users))
	if len(users) == 1 {
		data["email"], data["suspended"] = users[0].Email, fmt.Sprint(users[0].Suspended)
	}
	return func(flipped []storage.User) storage.AuditEvent {
		data := maps.Clone(data)
		var unsuspended, suspended []string
		for _, u := range flipped {
			if u.Suspended {
				suspended = append(suspended, u.Email)
			} else {
				unsuspended = append(unsuspended, u.Email)
			}
		}
		for key, emails := range map[string][]string{"unsuspended": unsuspended, "newly_suspended": suspended} {
			if len(emails) > 0 {
				data[key] = fmt.Sprint(len(emails))
				data[key+"_emails"] = strings.Join(emails[:min(len(emails), MaxAuditFlips)], " ")
			}
		}
		return s.event(actor, action, "", data)
	}
}

// goneOrgs returns those of orgs that do not exist (any more), asked after
// a put of their users failed: the store refuses a user of an organization
// deleted since it was checked. It returns none when it cannot tell.
func (s *Service) goneOrgs(ctx context.Context, orgs []string) []string {
	found, err := s.store.GetOrgs(ctx, orgs)
	if err != nil {
		return nil
	}
	exists := make(map[string]bool, len(found))
	for _, o := range found {
		exists[o.Domain] = true
	}
	var gone []string
	for _, o := range orgs {
		if !exists[o] {
			gone = append(gone, o)
		}
	}
	return gone
}

// SetUserSuspended suspends or reinstates a user. A suspended user's
// delegated tokens are inactive at once, and no new ones are issued. The
// store changes the user in one transaction: a user deleted meanwhile is
// a 404, not created again.
func (s *Service) SetUserSuspended(ctx context.Context, actor Actor, email string, suspended bool) (storage.User, error) {
	email = strings.ToLower(email)
	action := "user.unsuspend"
	if suspended {
		action = "user.suspend"
	}
	u, err := s.store.UpdateUser(ctx, email, func(u storage.User) (storage.User, error) {
		u.Suspended = suspended
		return u, nil
	}, s.event(actor, action, "", map[string]string{"email": email}))
	return u, storeErr(err, "The user "+quoteClip(email))
}

// DeleteUser removes a user from the directory.
func (s *Service) DeleteUser(ctx context.Context, actor Actor, email string) error {
	email = strings.ToLower(email)
	return storeErr(s.store.DeleteUser(ctx, email, s.event(actor, "user.delete", "", map[string]string{"email": email})),
		"The user "+quoteClip(email))
}

// ListUsers pages through an organization's users.
func (s *Service) ListUsers(ctx context.Context, domain string, opts storage.ListOptions) ([]storage.User, error) {
	if _, err := s.GetOrg(ctx, domain); err != nil {
		return nil, err
	}
	return s.store.ListUsers(ctx, strings.ToLower(domain), opts)
}

// ErrClientEmail is the refusal of a request to grant or revoke delegation
// that names the service account by its email instead of its numeric
// client ID, and what to send instead.
const ErrClientEmail = "Domain-wide delegation is granted to the service account's numeric client ID, not its email, so this request is refused: send it again with the account's 21-digit client ID in place of the email (keyward sa get %s shows it)."

// GrantDelegation lets the account with the numeric clientID act for the
// users of the organization, with scopes.
func (s *Service) GrantDelegation(ctx context.Context, actor Actor, domain, clientID string, scopes []string) (storage.Grant, error) {
	domain = strings.ToLower(domain)
	if strings.Contains(clientID, "@") {
		return storage.Grant{}, invalid(ErrClientEmail, quoteClip(clientID))
	}
	if _, err := s.GetOrg(ctx, domain); err != nil {
		return storage.Grant{}, err
	}
	a, err := s.store.GetAccount(ctx, clientID)
	if err != nil {
		return storage.Grant{}, storeErr(err, "The service account with client ID "+quoteClip(clientID))
	}
	if len(scopes) == 0 {
		return storage.Grant{}, invalid("A delegation needs at least one scope.")
	}
	for _, sc := range scopes {
		if !oauth2.Delegable(sc) {
			return storage.Grant{}, invalid("The scope %s cannot be delegated: Keyward's own scopes are for the account itself, and the admin API refuses tokens that act for a user.", sc)
		}
	}
	if err := s.checkScopes(ctx, scopes); err != nil {
		return storage.Grant{}, err
	}
	g := storage.Grant{Org: domain, ClientID: a.ID, Scopes: dedupe(scopes), CreatedAt: s.cfg.Now()}
	// The store's answer, not g: a grant replaced keeps its created_at.
	stored, err := s.store.PutGrant(ctx, g, s.event(actor, "delegation.grant", a.ID, map[string]string{"org": domain, "scopes": strings.Join(g.Scopes, " ")}), s.guard())
	// ErrNotFound: the account or the organization was deleted since it
	// was looked up.
	if errors.Is(err, storage.ErrNotFound) {
		if _, gerr := s.store.GetAccount(ctx, a.ID); errors.Is(gerr, storage.ErrNotFound) {
			return stored, storeErr(gerr, "The service account with client ID "+quoteClip(clientID))
		}
	}
	return stored, storeErr(s.guardErr(err, a, ""), "The organization "+quoteClip(domain))
}

// ListDelegations returns an organization's grants.
func (s *Service) ListDelegations(ctx context.Context, domain string) ([]storage.Grant, error) {
	if _, err := s.GetOrg(ctx, domain); err != nil {
		return nil, err
	}
	return s.store.ListGrants(ctx, strings.ToLower(domain))
}

// RevokeDelegation removes a grant: no new delegated tokens, and the
// existing ones are inactive at once.
func (s *Service) RevokeDelegation(ctx context.Context, actor Actor, domain, clientID string) error {
	domain = strings.ToLower(domain)
	if strings.Contains(clientID, "@") {
		return invalid(ErrClientEmail, quoteClip(clientID))
	}
	return storeErr(s.store.DeleteGrant(ctx, domain, clientID, s.event(actor, "delegation.revoke", clientID, map[string]string{"org": domain})),
		fmt.Sprintf("The delegation of %s in %s", quoteClip(clientID), quoteClip(domain)))
}
