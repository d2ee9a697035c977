package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
)

const delegationIntro = `Domain-wide delegation lets a service account act for the users of an
organization (a domain such as example.com), as Google Workspace does: the
organization's administrator grants the account's numeric client ID a list
of scopes, and the account then signs JWT-bearer assertions with sub = a
user's email. The token says who acted for whom: sub is the user, act names
the service account. Changes take effect at once.`

func newOrgCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "org",
		Short: "Manage organizations (domains) for domain-wide delegation",
		Long:  delegationIntro,
	}
	f.register(cmd)
	show := func(c *adminClient, o admin.OrgView) error {
		return c.show(o, func(w *tabwriter.Writer) {
			fmt.Fprintf(w, "Domain:\t%s\n", cell(o.Domain))
			fmt.Fprintf(w, "Blocked scopes:\t%s\n", cell(dash(strings.Join(o.BlockedScopes, ", "))))
			for _, p := range o.Projects {
				internal := ""
				if p.Internal {
					internal = " (internal: its accounts act only for this organization's users)"
				}
				fmt.Fprintf(w, "Project:\t%s%s\n", cell(p.Project), internal)
			}
		})
	}
	var blockScopes []string
	create := &cobra.Command{
		Use:     "create DOMAIN",
		Short:   "Register an organization",
		Example: `  keyward org create example.com`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var o admin.OrgView
			if err := c.do(cmd.Context(), http.MethodPost, "/v1/orgs", admin.OrgRequest{Domain: args[0]}, &o); err != nil {
				return err
			}
			return show(c, o)
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List organizations",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var resp struct {
				Orgs []admin.OrgView `json:"orgs"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/orgs", nil, &resp); err != nil {
				return err
			}
			return c.show(resp, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "DOMAIN\tBLOCKED SCOPES")
				for _, o := range resp.Orgs {
					fmt.Fprintf(w, "%s\t%s\n", cell(o.Domain), cell(dash(strings.Join(o.BlockedScopes, ","))))
				}
			})
		},
	}
	get := &cobra.Command{
		Use:   "get DOMAIN",
		Short: "Show an organization, its policy and projects",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var o admin.OrgView
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/orgs/"+url.PathEscape(args[0]), nil, &o); err != nil {
				return err
			}
			return show(c, o)
		},
	}
	policy := &cobra.Command{
		Use:   "policy DOMAIN --block-scopes s1,s2",
		Short: "Set the scopes the organization never allows to be delegated",
		Long: `Set the scopes the organization blocks for all delegated access: an assertion
asking for one is refused with admin_policy_enforced, whatever the grants say.
--block-scopes "" clears the list.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("block-scopes") {
				return usageError{errors.New("--block-scopes is required (\"\" to clear)")}
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			scopes := splitList(blockScopes)
			if scopes == nil {
				scopes = []string{}
			}
			var o admin.OrgView
			if err := c.do(cmd.Context(), http.MethodPatch, "/v1/orgs/"+url.PathEscape(args[0]), admin.OrgRequest{BlockedScopes: &scopes}, &o); err != nil {
				return err
			}
			return show(c, o)
		},
	}
	policy.Flags().StringSliceVar(&blockScopes, "block-scopes", nil, "scopes never allowed for delegated access, comma-separated; \"\" clears them (required)")
	ifMatchFlag(&f, policy, "organization", func(args []string) []string { return []string{"org", "get", args[0]} })
	var internal bool
	addProject := &cobra.Command{
		Use:   "add-project DOMAIN PROJECT [--internal]",
		Short: "Place a project in the organization",
		Long: `Place a project in the organization. With --internal, the project's service
accounts may act only for this organization's users: an assertion for a
user of another organization is refused with org_internal. A project in
another organization is moved here; --if-match takes the ETag of DOMAIN,
the organization it is placed in or moved to, not of the one it leaves.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var p admin.ProjectView
			path := "/v1/orgs/" + url.PathEscape(args[0]) + "/projects/" + url.PathEscape(args[1])
			if err := c.do(cmd.Context(), http.MethodPut, path, admin.ProjectRequest{Internal: internal}, &p); err != nil {
				return err
			}
			return c.show(p, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "project %s is in %s (internal: %s)\n", cell(p.Project), cell(args[0]), yesNo(p.Internal))
			})
		},
	}
	addProject.Flags().BoolVar(&internal, "internal", false, "restrict the project's accounts to this organization's users")
	removeProject := simpleDelete(&f, "remove-project DOMAIN PROJECT", "Take a project out of the organization", 2,
		func(args []string) string {
			return "/v1/orgs/" + url.PathEscape(args[0]) + "/projects/" + url.PathEscape(args[1])
		})
	del := simpleDelete(&f, "delete DOMAIN", "Delete an organization with its users, projects and delegations", 1,
		func(args []string) string { return "/v1/orgs/" + url.PathEscape(args[0]) })
	// The ETag is the organization's, whose projects change: for a move,
	// the one the project is moved to.
	for _, c := range []*cobra.Command{addProject, removeProject, del} {
		ifMatchFlag(&f, c, "organization", func(args []string) []string { return []string{"org", "get", args[0]} })
	}
	cmd.AddCommand(create, list, get, policy, addProject, removeProject, del)
	return cmd
}

// simpleDelete is a command that sends DELETE to one path.
func simpleDelete(f *clientFlags, use, short string, nargs int, path func([]string) string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(nargs),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, path(args), nil, nil); err != nil {
				return err
			}
			what := strings.Join(args, " ")
			return c.show(map[string]string{"deleted": what}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "done: %s\n", what) })
		},
	}
}

func newUsersCommand() *cobra.Command {
	var f clientFlags
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage the users of organizations",
		Long: `The directory of users service accounts may act for. A user belongs to the
organization of its email's domain (create it first with 'keyward org
create'). A suspended or deleted user gets no new delegated tokens, and its
existing ones are reported inactive at once.`,
	}
	f.register(cmd)
	// knownOrgs connects to the server and lists the organizations that
	// exist.
	knownOrgs := func(cmd *cobra.Command) (*adminClient, map[string]bool, error) {
		c, err := f.client(cmd)
		if err != nil {
			return nil, nil, err
		}
		var resp struct {
			Orgs []admin.OrgView `json:"orgs"`
		}
		if err := c.do(cmd.Context(), http.MethodGet, "/v1/orgs", nil, &resp); err != nil {
			return nil, nil, err
		}
		known := map[string]bool{}
		for _, o := range resp.Orgs {
			known[o.Domain] = true
		}
		return c, known, nil
	}
	var suspended bool
	add := &cobra.Command{
		Use:   "add EMAIL...",
		Short: "Add users",
		Long: `Add or update users. Every email is checked first, then that its
organization exists: if any is bad, the command names each bad one (each
malformed email and each given twice, case aside, with its positions; when
none is, each whose organization does not exist) and adds no user. The
users, of one organization or several, are then sent as 'keyward users
import' sends them: 5,000 at a time (fewer if their emails are very long: a
batch is kept under 512 KiB), each batch in one transaction, all or none;
should a later batch fail, the error says how many users the batches before
it added and which users the failed batch sent (the server's error numbers
them from 1), and, if the server gave no answer or a 5xx, that whether that
batch was added is not known. (A server older than POST /v1/users takes them
one organization at a time; the command then says so.)`,
		Example: `  keyward users add alice@example.com bob@example.com`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var users []admin.UserInput
			var bad []string
			seen := map[string]int{} // email → its first argument's index
			for i, e := range args {
				email, err := admin.NormalizeEmail(e)
				if err != nil {
					bad = append(bad, err.Error())
					continue
				}
				if first, dup := seen[email]; dup {
					bad = append(bad, fmt.Sprintf("%s (argument %d) is %s (argument %d) again", e, i+1, args[first], first+1))
					continue
				}
				seen[email] = i
				users = append(users, admin.UserInput{Email: email, Suspended: suspended})
			}
			if len(bad) > 0 {
				return usageError{fmt.Errorf("nothing was added: %s", strings.Join(bad, "; "))}
			}
			c, known, err := knownOrgs(cmd)
			if err != nil {
				return err
			}
			for _, u := range users {
				if org := u.Org(); !known[org] {
					bad = append(bad, noOrg(u.Email, org).Error())
				}
			}
			if len(bad) > 0 {
				return fmt.Errorf("nothing was added: %s", strings.Join(bad, "; "))
			}
			return putUsers(cmd, c, users)
		},
	}
	add.Flags().BoolVar(&suspended, "suspended", false, "add them suspended")
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Add or update users in bulk from a CSV or JSON file",
		Long: `Read users from FILE (- for standard input) and add or update them. CSV: one
user a line, email[,status] with status active or suspended; a first row
that is not an email is the header, which must be email,status or email; a
line starting with # is a comment, skipped without a word, so quote an email
that starts with # ("#ops@example.com"); a # after spaces starts no comment
and is a bad row, as is a comment after a value (alice@example.com # Alice).
JSON: [{"email": …, "suspended": …}] or {"users": [...]}. Either may begin
with a byte order mark (U+FEFF), as Excel writes UTF-8 CSV; a line with one
anywhere else is a bad row. A file holds at most 100,000 users: split a
larger one. Every bad row is reported with its line number (the first 20)
and nothing is imported until all are fixed: a malformed email, a bad
status, an email listed twice, an organization that does not exist. Users of
any organizations are sent together, 5,000 at a time (fewer if their emails
are very long), each batch in one transaction, all or none (a batch is kept
under 512 KiB, so 5,000 long emails go in two); should a later batch fail,
the error says how many users the batches before it added and which users
the failed batch sent (the server's error numbers them from 1), and, if the
server gave no answer or a 5xx, that whether that batch was added is not
known. A user that exists is replaced, its status with it (a row without one
is active), so a file made before some users were suspended unsuspends them;
the audit event of each batch (user.import; user.put for a batch of one
user) names the users whose status it changed.`,
		Example: `  printf 'email,status\nalice@example.com,active\n' > users.csv
  printf 'bob@example.com,suspended\n' >> users.csv
  keyward users import users.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := readUsersFile(cmd, args[0])
			if err != nil {
				return err
			}
			// Every row's organization must exist, checked with the rest
			// before anything is sent, so that a bad row imports nothing.
			c, known, err := knownOrgs(cmd)
			if err != nil {
				return err
			}
			rows, err := admin.ParseUserRows(data, func(r admin.UserRow) error {
				if !known[r.Org()] {
					return noOrg(r.Email, r.Org())
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			users := make([]admin.UserInput, len(rows))
			for i, r := range rows {
				users[i] = r.UserInput
			}
			return putUsers(cmd, c, users)
		},
	}
	userOp := func(use, short, suffix string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " EMAIL",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := f.client(cmd)
				if err != nil {
					return err
				}
				var u admin.UserView
				if err := c.do(cmd.Context(), http.MethodPost, "/v1/users/"+url.PathEscape(args[0])+suffix, nil, &u); err != nil {
					return err
				}
				return c.show(u, func(w *tabwriter.Writer) { fmt.Fprintf(w, "%s: suspended %s\n", cell(u.Email), yesNo(u.Suspended)) })
			},
		}
	}
	var org string
	list := &cobra.Command{
		Use:   "list --org DOMAIN",
		Short: "List an organization's users",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if org == "" {
				return usageError{errors.New("--org is required")}
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			all := []admin.UserView{} // [] in -o json when there are none
			q := url.Values{"limit": {"1000"}}
			for {
				var page struct {
					Users []admin.UserView `json:"users"`
					Next  string           `json:"next_page_token"`
				}
				if err := c.do(cmd.Context(), http.MethodGet, "/v1/orgs/"+url.PathEscape(org)+"/users?"+q.Encode(), nil, &page); err != nil {
					return err
				}
				all = append(all, page.Users...)
				if page.Next == "" {
					break
				}
				q.Set("page_token", page.Next)
			}
			return c.show(map[string]any{"users": all}, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "EMAIL\tSUSPENDED")
				for _, u := range all {
					fmt.Fprintf(w, "%s\t%s\n", cell(u.Email), yesNo(u.Suspended))
				}
			})
		},
	}
	list.Flags().StringVar(&org, "org", "", "the organization's domain (required)")
	cmd.AddCommand(add, imp, list,
		userOp("suspend", "Suspend a user: no delegated tokens, existing ones inactive", "/suspend"),
		userOp("unsuspend", "Reinstate a suspended user", "/unsuspend"),
		simpleDelete(&f, "delete EMAIL", "Delete a user", 1, func(args []string) string { return "/v1/users/" + url.PathEscape(args[0]) }),
	)
	return cmd
}

func newDelegationCommand() *cobra.Command {
	var (
		f             clientFlags
		org, clientID string
		scopes        []string
	)
	cmd := &cobra.Command{
		Use:   "delegation",
		Short: "Grant service accounts domain-wide delegation",
		Long:  delegationIntro,
		Example: `  # An account that adds events to the calendars of every user of example.com:
  keyward api create calendar --identifier https://calendar.internal \
    --scopes calendar.events
  keyward sa create calendar-sync --project ops --scopes calendar.events
  keyward org create example.com
  keyward users add alice@example.com bob@example.com
  # CLIENT_ID: the account's numeric Client ID, which sa create printed
  keyward delegation grant --org example.com --client-id CLIENT_ID \
    --scopes calendar.events`,
	}
	f.register(cmd)
	need := func(what ...string) error {
		for i := 0; i < len(what); i += 2 {
			if what[i+1] == "" {
				return usageError{fmt.Errorf("--%s is required", what[i])}
			}
		}
		return nil
	}
	grant := &cobra.Command{
		Use:   "grant --org DOMAIN --client-id ID --scopes s1,s2",
		Short: "Let a service account act for the organization's users, in scopes",
		Long: `Grant the service account with the numeric client ID (not its email: a grant
to the email would never match, and is refused) the scopes for acting on
behalf of the organization's users. Granting again replaces the scopes.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need("org", org, "client-id", clientID, "scopes", strings.Join(splitList(scopes), ",")); err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var g admin.GrantView
			path := "/v1/orgs/" + url.PathEscape(org) + "/delegations/" + url.PathEscape(clientID)
			if err := c.do(cmd.Context(), http.MethodPut, path, admin.GrantRequest{Scopes: splitList(scopes)}, &g); err != nil {
				return err
			}
			return c.show(g, func(w *tabwriter.Writer) {
				fmt.Fprintf(w, "%s may act for the users of %s with %s\n", cell(g.ClientID), cell(g.Org), cell(strings.Join(g.Scopes, ", ")))
			})
		},
	}
	grant.Flags().StringVar(&org, "org", "", "the organization's domain (required)")
	grant.Flags().StringVar(&clientID, "client-id", "", "the service account's numeric client ID (required)")
	grant.Flags().StringSliceVar(&scopes, "scopes", nil, "the scopes it may act with, comma-separated (required)")
	list := &cobra.Command{
		Use:   "list --org DOMAIN",
		Short: "List an organization's delegations",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need("org", org); err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			var resp struct {
				Delegations []admin.GrantView `json:"delegations"`
			}
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/orgs/"+url.PathEscape(org)+"/delegations", nil, &resp); err != nil {
				return err
			}
			return c.show(resp, func(w *tabwriter.Writer) {
				fmt.Fprintln(w, "CLIENT ID\tSCOPES")
				for _, g := range resp.Delegations {
					fmt.Fprintf(w, "%s\t%s\n", cell(g.ClientID), cell(strings.Join(g.Scopes, ",")))
				}
			})
		},
	}
	list.Flags().StringVar(&org, "org", "", "the organization's domain (required)")
	revoke := &cobra.Command{
		Use:   "revoke --org DOMAIN --client-id ID",
		Short: "Revoke a delegation: no new tokens, existing ones inactive at once",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := need("org", org, "client-id", clientID); err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			if err := c.do(cmd.Context(), http.MethodDelete, "/v1/orgs/"+url.PathEscape(org)+"/delegations/"+url.PathEscape(clientID), nil, nil); err != nil {
				return err
			}
			return c.show(map[string]string{"revoked": clientID}, func(w *tabwriter.Writer) { fmt.Fprintf(w, "revoked the delegation of %s in %s\n", clientID, org) })
		},
	}
	revoke.Flags().StringVar(&org, "org", "", "the organization's domain (required)")
	revoke.Flags().StringVar(&clientID, "client-id", "", "the service account's numeric client ID (required)")
	cmd.AddCommand(grant, list, revoke)
	return cmd
}

// noOrg is the error of a user whose organization does not exist.
func noOrg(email, org string) error {
	return fmt.Errorf("%s: there is no organization %s; to create it, run: %s", email, org, shellCommand("keyward", "org", "create", org))
}

// importBatch is the most users keyward users add and import send in one
// request, and so in one transaction; importBatchBytes is about the most
// JSON they send in one (see batchLen), well under the 1 MiB the admin API
// reads (admin.MaxBodyBytes). The console's import (IMPORT_BATCH and
// IMPORT_BATCH_BYTES in internal/console/static/userimport.js) batches
// with the same numbers.
const (
	importBatch      = 5000
	importBatchBytes = 512 << 10
)

// putUsers sends users already checked (well-formed, given once, each of
// an existing organization) to POST /v1/users, users of any organizations
// together, in batches (see postUsers), each one transaction. Should a
// request fail (an organization deleted meanwhile, the server down), the
// error says what earlier requests added. A server older than that route
// (the admin API's 404 for it, see noRoute) is sent each organization's
// users on their own instead, by putPerOrg.
func putUsers(cmd *cobra.Command, c *adminClient, users []admin.UserInput) error {
	added, requests, err := postUsers(cmd.Context(), c, "/v1/users", users)
	if requests == 0 && noRoute(err) {
		return putPerOrg(cmd, c, users)
	}
	if err != nil {
		return putError(added, len(users), "", err)
	}
	return c.show(map[string]int{"users": added}, func(w *tabwriter.Writer) {
		if requests == 1 {
			fmt.Fprintf(w, "%s added or updated, in one transaction\n", counted(added, "user"))
			return
		}
		fmt.Fprintf(w, "%s added or updated, in %d transactions of at most %d\n", counted(added, "user"), requests, importBatch)
	})
}

// postUsers posts users to path in requests of at most importBatch users
// and well under the 1 MiB the admin API reads (see batchLen). It returns
// how many users the server added and how many requests succeeded, and
// stops at the first that fails, with its error, a *batchError.
func postUsers(ctx context.Context, c *adminClient, path string, users []admin.UserInput) (added, requests int, err error) {
	for sent := 0; sent < len(users); requests++ {
		n := batchLen(users[sent:], importBatch)
		var resp map[string]int
		if err := c.do(ctx, http.MethodPost, path, admin.UsersRequest{Users: users[sent : sent+n]}, &resp); err != nil {
			return added, requests, &batchError{from: sent, to: sent + n, err: err}
		}
		added += resp["users"]
		sent += n
	}
	return added, requests, nil
}

// batchError is the error of a request of postUsers that sent users
// from+1 to to of those it was given: the server's error numbers them
// from 1.
type batchError struct {
	from, to int
	err      error
}

func (e *batchError) Error() string { return e.err.Error() }
func (e *batchError) Unwrap() error { return e.err }

// batchLen is how many of users the next request sends: at most limit,
// and users are taken while the JSON counted is under importBatchBytes,
// each user as its email's JSON and 40 bytes more. An email is counted as
// long as its JSON is, not its bytes: '&', '<' and '>' are sent as six
// bytes each (\u0026): 2,000 emails mostly of '&'s were over 1 MiB.
func batchLen(users []admin.UserInput, limit int) int {
	n, size := 0, 0
	for n < len(users) && n < limit && size < importBatchBytes {
		size += jsonLen(users[n].Email) + 40
		n++
	}
	return n
}

// jsonLen is the length of s as encoding/json writes a string, quotes
// included.
func jsonLen(s string) int {
	b, _ := json.Marshal(s) // a string always encodes
	return len(b)
}

// noRoute reports whether err is the answer of a Keyward server that has
// no such route: an older one, without POST /v1/users, whose admin API
// answers a route it lacks with its own JSON error, a 404 not_found (or a
// 405 invalid_request, had it another method there). A 404 or 405 of
// something else in front of the server (a proxy that passes only the
// routes it knows, say) is not: sending each organization's users on
// their own would give up the all or none that was asked for.
func noRoute(err error) bool {
	var ae *apiError
	if !errors.As(err, &ae) {
		return false
	}
	return (ae.Status == http.StatusNotFound && ae.Code == admin.ErrNotFound) ||
		(ae.Status == http.StatusMethodNotAllowed && ae.Code == oauth2.ErrInvalidRequest)
}

// putError is the error err of a request of users (of org's, if not "")
// that failed after the requests before it had added added of the total
// users. It names the users the request sent when the server's error,
// which numbers a request's users from 1, would otherwise name them by
// the wrong positions. Unless the admin API (or a proxy) refused the
// request, it says that whether the request added its users is not
// known: without an answer, or with a 5xx, it may have been committed.
func putError(added, total int, org string, err error) error {
	var sent string
	if be := (*batchError)(nil); errors.As(err, &be) && (org != "" || be.from > 0) {
		sent = fmt.Sprintf(" (it sent users %d to %d, which the error numbers from 1)", be.from+1, be.to)
		if org != "" {
			sent = fmt.Sprintf(" (it sent users %d to %d of %s, which the error numbers from 1)", be.from+1, be.to, org)
		}
	}
	if ae := (*apiError)(nil); !errors.As(err, &ae) || ae.Status >= 500 {
		// The users the failed request sent: all of them, unless a
		// batchError says which.
		its := "its users"
		if be := (*batchError)(nil); (errors.As(err, &be) && be.to-be.from == 1) || (be == nil && total == 1) {
			its = "its user"
		}
		if added == 0 {
			return fmt.Errorf("no user is known to be added: a request failed%s, and whether it added %s is not known: %w", sent, its, err)
		}
		return fmt.Errorf("%d of the %s %s added before a request failed%s; whether it added %s is not known: %w", added, counted(total, "user"), wasWere(added), sent, its, err)
	}
	if added == 0 && sent == "" {
		return fmt.Errorf("nothing was added: %w", err)
	}
	if added == 0 {
		return fmt.Errorf("nothing was added: a request failed%s: %w", sent, err)
	}
	return fmt.Errorf("%d of the %s %s added before a request failed%s; the rest were not: %w", added, counted(total, "user"), wasWere(added), sent, err)
}

// putPerOrg sends users to a server without POST /v1/users: each
// organization's to POST /v1/orgs/{domain}/users, in batches as postUsers
// sends them, each one transaction, so that a failure part way leaves the
// users of the organizations before it added.
func putPerOrg(cmd *cobra.Command, c *adminClient, users []admin.UserInput) error {
	byOrg := map[string][]admin.UserInput{}
	var orgs []string
	for _, u := range users {
		domain := u.Org()
		if byOrg[domain] == nil {
			orgs = append(orgs, domain)
		}
		byOrg[domain] = append(byOrg[domain], u)
	}
	total := 0
	for _, domain := range orgs {
		added, _, err := postUsers(cmd.Context(), c, "/v1/orgs/"+url.PathEscape(domain)+"/users", byOrg[domain])
		total += added
		if err != nil {
			return putError(total, len(users), domain, err)
		}
	}
	return c.show(map[string]int{"users": total}, func(w *tabwriter.Writer) {
		fmt.Fprintf(w, "%s added or updated (the server is older than POST /v1/users: each organization's in its own transaction)\n", counted(total, "user"))
	})
}

// wasWere is the verb of "N of the users … added": was for one, were for
// any other count.
func wasWere(n int) string {
	if n == 1 {
		return "was"
	}
	return "were"
}

// maxUsersFile bounds a users import file: its 100,000 users' rows are
// at most about 30 MiB. A larger one was named by mistake (a /dev/zero
// was read until memory ran out).
const maxUsersFile = 64 << 20

// readUsersFile reads the CSV file of users import, or standard input for
// "-", of at most maxUsersFile bytes.
func readUsersFile(cmd *cobra.Command, path string) ([]byte, error) {
	if path == "-" {
		return readUpTo(cmd.InOrStdin(), "standard input", "a users file", maxUsersFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readUpTo(f, path, "a users file", maxUsersFile)
}
