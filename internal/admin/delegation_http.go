package admin

import (
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// OrgView is an organization as the admin API shows it.
type OrgView struct {
	Domain        string        `json:"domain"`
	BlockedScopes []string      `json:"blocked_scopes"`
	Projects      []ProjectView `json:"projects,omitempty"`
	CreatedAt     time.Time     `json:"created_at"`
}

// ProjectView is a project placed in an organization.
type ProjectView struct {
	Project  string `json:"project"`
	Internal bool   `json:"internal"`
}

// ProjectRequest places a project in an organization; the path names the
// project.
type ProjectRequest struct {
	Internal bool `json:"internal"`
	// Project may repeat the path's project, as keyward CLIs before
	// 2026-12-05 sent it; any other value is refused.
	Project string `json:"project,omitempty"`
}

// UserView is a directory user.
type UserView struct {
	Email     string    `json:"email"`
	Org       string    `json:"org"`
	Suspended bool      `json:"suspended"`
	CreatedAt time.Time `json:"created_at"`
}

// GrantView is a domain-wide delegation.
type GrantView struct {
	Org       string    `json:"org"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
}

func orgView(o storage.Org, projects []storage.ProjectOrg) OrgView {
	v := OrgView{Domain: o.Domain, BlockedScopes: o.BlockedScopes, CreatedAt: o.CreatedAt}
	if v.BlockedScopes == nil {
		v.BlockedScopes = []string{}
	}
	for _, p := range projects {
		v.Projects = append(v.Projects, ProjectView{p.Project, p.Internal})
	}
	return v
}

// OrgRequest creates an organization or changes its policy.
type OrgRequest struct {
	Domain        string    `json:"domain,omitempty"`
	BlockedScopes *[]string `json:"blocked_scopes,omitempty"`
}

// UsersRequest adds or imports users.
type UsersRequest struct {
	Users []UserInput `json:"users"`
}

// GrantRequest grants delegation scopes.
type GrantRequest struct {
	Scopes []string `json:"scopes"`
}

func (h *Handler) registerDelegation(routes map[string]func(*http.Request, Actor) (int, any, error)) {
	routes["GET /v1/orgs"] = h.listOrgs
	routes["POST /v1/orgs"] = h.createOrg
	routes["GET /v1/orgs/{domain}"] = h.getOrg
	routes["PATCH /v1/orgs/{domain}"] = h.updateOrg
	routes["DELETE /v1/orgs/{domain}"] = h.deleteOrg
	routes["PUT /v1/orgs/{domain}/projects/{project}"] = h.placeProject
	routes["DELETE /v1/orgs/{domain}/projects/{project}"] = h.removeProject
	routes["GET /v1/orgs/{domain}/users"] = h.listUsers
	routes["POST /v1/orgs/{domain}/users"] = h.putUsers
	routes["POST /v1/users"] = h.putUsersOfOrgs
	routes["POST /v1/users/{email}/suspend"] = h.suspendUser
	routes["POST /v1/users/{email}/unsuspend"] = h.unsuspendUser
	routes["DELETE /v1/users/{email}"] = h.deleteUser
	routes["GET /v1/orgs/{domain}/delegations"] = h.listDelegations
	routes["PUT /v1/orgs/{domain}/delegations/{client_id}"] = h.grantDelegation
	routes["DELETE /v1/orgs/{domain}/delegations/{client_id}"] = h.revokeDelegation
}

func (h *Handler) listOrgs(r *http.Request, _ Actor) (int, any, error) {
	orgs, err := h.svc.ListOrgs(r.Context())
	out := []OrgView{}
	for _, o := range orgs {
		out = append(out, orgView(o, nil))
	}
	return 200, map[string]any{"orgs": out}, err
}

func (h *Handler) createOrg(r *http.Request, actor Actor) (int, any, error) {
	var in OrgRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var blocked []string
	if in.BlockedScopes != nil {
		blocked = *in.BlockedScopes
	}
	// One transaction: the organization is made with its policy or not at
	// all.
	o, err := h.svc.CreateOrg(r.Context(), actor, in.Domain, blocked...)
	return 201, orgBody(o, nil), err
}

// orgBody is an organization's view, with its projects, and its ETag.
func orgBody(o storage.Org, projects []storage.ProjectOrg) tagged {
	return tagged{orgETag(o, projects), orgView(o, projects)}
}

func (h *Handler) getOrg(r *http.Request, _ Actor) (int, any, error) {
	// One read: the ETag and the body name the same state.
	o, projects, err := h.svc.GetOrgProjects(r.Context(), r.PathValue("domain"))
	return 200, orgBody(o, projects), err
}

func (h *Handler) updateOrg(r *http.Request, actor Actor) (int, any, error) {
	var in OrgRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if in.BlockedScopes == nil {
		return 0, nil, invalid("Nothing to change: give blocked_scopes.")
	}
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	// The organization as GET shows it, with its projects, as the update
	// left it.
	o, projects, err := h.svc.SetBlockedScopesIf(r.Context(), actor, r.PathValue("domain"), *in.BlockedScopes, match)
	return 200, orgBody(o, projects), err
}

func (h *Handler) deleteOrg(r *http.Request, actor Actor) (int, any, error) {
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	return 204, nil, h.svc.DeleteOrgIf(r.Context(), actor, r.PathValue("domain"), match)
}

func (h *Handler) placeProject(r *http.Request, actor Actor) (int, any, error) {
	var in ProjectRequest
	if err := decodeOptional(r, &in); err != nil {
		return 0, nil, err
	}
	if in.Project != "" && in.Project != r.PathValue("project") {
		return 0, nil, invalid("The body names project %s but the path names %s: the path names the project, so leave project out of the body.", quoteClip(in.Project), quoteClip(r.PathValue("project")))
	}
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	// If-Match names the organization the path names, the one the project
	// is placed in or moved to. The answer is the project, with no ETag:
	// the organization's new one is read with GET.
	p, err := h.svc.PlaceProjectIf(r.Context(), actor, r.PathValue("domain"), r.PathValue("project"), in.Internal, match)
	return 200, ProjectView{p.Project, p.Internal}, err
}

func (h *Handler) removeProject(r *http.Request, actor Actor) (int, any, error) {
	match, err := ifMatch(r)
	if err != nil {
		return 0, nil, err
	}
	return 204, nil, h.svc.RemoveProjectIf(r.Context(), actor, r.PathValue("domain"), r.PathValue("project"), match)
}

func (h *Handler) listUsers(r *http.Request, _ Actor) (int, any, error) {
	q := r.URL.Query()
	limit, err := parseLimit(q.Get("limit"))
	if err != nil {
		return 0, nil, err
	}
	after := q.Get("page_token")
	if after != "" && !userPageToken(after) {
		return 0, nil, invalid("page_token must be the next_page_token of the previous page (an email).")
	}
	opts := storage.ListOptions{After: after, Limit: limit}
	users, err := h.svc.ListUsers(r.Context(), r.PathValue("domain"), opts)
	out := []UserView{}
	for _, u := range users {
		out = append(out, UserView{u.Email, u.Org, u.Suspended, u.CreatedAt})
	}
	resp := map[string]any{"users": out}
	if len(users) == opts.PageLimit() {
		resp["next_page_token"] = users[len(users)-1].Email
	}
	return 200, resp, err
}

func (h *Handler) putUsers(r *http.Request, actor Actor) (int, any, error) {
	var in UsersRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	n, err := h.svc.PutUsers(r.Context(), actor, r.PathValue("domain"), in.Users)
	return 200, map[string]int{"users": n}, err
}

// putUsersOfOrgs puts users of any organizations in one transaction; the
// body has the limit of any other (MaxBodyBytes), and no count of its own.
func (h *Handler) putUsersOfOrgs(r *http.Request, actor Actor) (int, any, error) {
	var in UsersRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	n, err := h.svc.PutUsersOfOrgs(r.Context(), actor, in.Users)
	return 200, map[string]int{"users": n}, err
}

func (h *Handler) suspendUser(r *http.Request, actor Actor) (int, any, error) {
	u, err := h.svc.SetUserSuspended(r.Context(), actor, r.PathValue("email"), true)
	return 200, UserView{u.Email, u.Org, u.Suspended, u.CreatedAt}, err
}

func (h *Handler) unsuspendUser(r *http.Request, actor Actor) (int, any, error) {
	u, err := h.svc.SetUserSuspended(r.Context(), actor, r.PathValue("email"), false)
	return 200, UserView{u.Email, u.Org, u.Suspended, u.CreatedAt}, err
}

func (h *Handler) deleteUser(r *http.Request, actor Actor) (int, any, error) {
	return 204, nil, h.svc.DeleteUser(r.Context(), actor, r.PathValue("email"))
}

func (h *Handler) listDelegations(r *http.Request, _ Actor) (int, any, error) {
	grants, err := h.svc.ListDelegations(r.Context(), r.PathValue("domain"))
	out := []GrantView{}
	for _, g := range grants {
		out = append(out, GrantView{g.Org, g.ClientID, g.Scopes, g.CreatedAt})
	}
	return 200, map[string]any{"delegations": out}, err
}

func (h *Handler) grantDelegation(r *http.Request, actor Actor) (int, any, error) {
	var in GrantRequest
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	g, err := h.svc.GrantDelegation(r.Context(), actor, r.PathValue("domain"), r.PathValue("client_id"), in.Scopes)
	return 200, GrantView{g.Org, g.ClientID, g.Scopes, g.CreatedAt}, err
}

func (h *Handler) revokeDelegation(r *http.Request, actor Actor) (int, any, error) {
	return 204, nil, h.svc.RevokeDelegation(r.Context(), actor, r.PathValue("domain"), r.PathValue("client_id"))
}

// userPageToken reports whether after can be a next_page_token of the
// users list: a stored email. One Email refuses now (with a control or
// invisible character, stored before it was refused, or imported) still
// ends a page, so it is taken if it is lower-cased, has an @ and is no
// longer than an email: it only says where the next page starts.
func userPageToken(after string) bool {
	if e, err := normalizeEmail(after); err == nil {
		return e == after
	}
	return strings.Contains(after, "@") && strings.ToLower(after) == after && len(after) <= 254
}
