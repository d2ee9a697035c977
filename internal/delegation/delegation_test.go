package delegation_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/ascii"
	"github.com/keyward/keyward/internal/delegation"
	"github.com/keyward/keyward/internal/storage"
)

var t0 = time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)

// directory holds organizations, users by email, account 1's grants by
// organization and project placements, and service accounts' emails; it
// counts the reads of each kind, and fails those of fail.
type directory struct {
	orgs     map[string]storage.Org
	users    map[string]storage.User
	grants   map[string]storage.Grant
	projects map[string]storage.ProjectOrg
	accounts map[string]bool
	fail     string
	reads    map[string]int
}

func get[T any](d *directory, what string, m map[string]T, key string) (T, error) {
	d.reads[what]++
	v, ok := m[key]
	if d.fail == what {
		return v, errors.New("database is locked")
	}
	if !ok {
		return v, storage.ErrNotFound
	}
	return v, nil
}

func (d *directory) GetOrg(_ context.Context, domain string) (storage.Org, error) {
	return get(d, "org", d.orgs, domain)
}
func (d *directory) GetUser(_ context.Context, email string) (storage.User, error) {
	return get(d, "user", d.users, email)
}
func (d *directory) GetProjectOrg(_ context.Context, project string) (storage.ProjectOrg, error) {
	return get(d, "project", d.projects, project)
}

// AccountEmailAt compares as storage.Storage's: in ASCII lower case, the
// domain with or without a final dot, any local part when local is empty.
func (d *directory) AccountEmailAt(_ context.Context, local, domain string) (bool, error) {
	d.reads["account"]++
	if d.fail == "account" {
		return false, errors.New("database is locked")
	}
	for email := range d.accounts {
		i := strings.LastIndexByte(email, '@')
		if (local == "" || ascii.Lower(email[:i]) == ascii.Lower(local)) &&
			strings.TrimSuffix(ascii.Lower(email[i+1:]), ".") == strings.TrimSuffix(ascii.Lower(domain), ".") {
			return true, nil
		}
	}
	return false, nil
}
func (d *directory) GetGrant(_ context.Context, org, clientID string) (storage.Grant, error) {
	if clientID != "1" {
		org = "" // no grant to another account
	}
	return get(d, "grant", d.grants, org)
}

// TestCheck: account 1 of project ops may act for alice@example.com with
// calendar and mail, which example.com grants it and does not block; each
// case breaks the rules one way (or several: the first rule broken is
// reported), at issuance (iat 0) or for a token issued at t0.
func TestCheck(t *testing.T) {
	acct := storage.Account{ID: "1", Project: "ops"}
	for _, tt := range []struct {
		name    string
		subject string
		scopes  []string
		iat     int64
		// change alters the directory.
		change func(d *directory)
		want   *delegation.Refusal
	}{
		{name: "allowed"},
		{name: "allowed, the subject in capitals", subject: "Alice@EXAMPLE.com"},
		{name: "allowed, some of the granted scopes", scopes: []string{"mail"}},
		// No scope requested: nothing to refuse of the grant (the token
		// endpoint refuses the request for it after).
		{name: "allowed, no scope", scopes: []string{}},
		{name: "not an email", subject: "alice", want: &delegation.Refusal{Kind: delegation.BadSubject}},
		{name: "no domain", subject: "alice@", want: &delegation.Refusal{Kind: delegation.BadSubject}},
		{name: "two @", subject: "alice@b@example.com", want: &delegation.Refusal{Kind: delegation.BadSubject}},
		{name: "no organization", subject: "dave@nowhere.example", want: &delegation.Refusal{Kind: delegation.NoOrg, Domain: "nowhere.example"}},
		{name: "organization deleted, with its users and grants", change: func(d *directory) { d.orgs, d.users, d.grants = nil, nil, nil },
			want: &delegation.Refusal{Kind: delegation.NoOrg, Domain: "example.com"}},
		{name: "no grant", change: func(d *directory) { delete(d.grants, "example.com") }, want: &delegation.Refusal{Kind: delegation.NoGrant, Domain: "example.com"}},
		{name: "no grant, said before the user is missing", change: func(d *directory) { d.grants, d.users = nil, nil },
			want: &delegation.Refusal{Kind: delegation.NoGrant, Domain: "example.com"}},
		{name: "grant to the account in another organization only", subject: "carol@other.org", want: &delegation.Refusal{Kind: delegation.NoGrant, Domain: "other.org"}},
		{name: "no requested scope granted", scopes: []string{"drive", "admin"}, want: &delegation.Refusal{Kind: delegation.NoScopeGranted, Domain: "example.com", Scope: "drive"}},
		{name: "a requested scope not granted", scopes: []string{"calendar", "drive", "admin"}, want: &delegation.Refusal{Kind: delegation.ScopeNotGranted, Domain: "example.com", Scope: "drive"}},
		{name: "scope blocked", change: func(d *directory) {
			d.orgs["example.com"] = storage.Org{Domain: "example.com", BlockedScopes: []string{"drive", "mail"}}
		},
			want: &delegation.Refusal{Kind: delegation.ScopeBlocked, Domain: "example.com", Scope: "mail"}},
		{name: "scope not granted, said before it is blocked", scopes: []string{"calendar", "drive"},
			change: func(d *directory) {
				d.orgs["example.com"] = storage.Org{Domain: "example.com", BlockedScopes: []string{"calendar"}}
			},
			want: &delegation.Refusal{Kind: delegation.ScopeNotGranted, Domain: "example.com", Scope: "drive"}},
		{name: "project internal to another organization", change: func(d *directory) {
			d.projects["ops"] = storage.ProjectOrg{Project: "ops", Org: "other.org", Internal: true}
		},
			want: &delegation.Refusal{Kind: delegation.OrgInternal, Domain: "example.com", Org: "other.org"}},
		{name: "project internal to the user's organization", change: func(d *directory) {
			d.projects["ops"] = storage.ProjectOrg{Project: "ops", Org: "example.com", Internal: true}
		}},
		{name: "project in another organization, not internal", change: func(d *directory) { d.projects["ops"] = storage.ProjectOrg{Project: "ops", Org: "other.org"} }},
		{name: "project internal elsewhere, said before the user is missing", change: func(d *directory) {
			d.projects["ops"] = storage.ProjectOrg{Project: "ops", Org: "other.org", Internal: true}
			d.users = nil
		}, want: &delegation.Refusal{Kind: delegation.OrgInternal, Domain: "example.com", Org: "other.org"}},
		{name: "no user", subject: "zoe@example.com", want: &delegation.Refusal{Kind: delegation.NoUser, Domain: "example.com"}},
		{name: "user in another organization", change: func(d *directory) {
			d.users["alice@example.com"] = storage.User{Email: "alice@example.com", Org: "other.org"}
		},
			want: &delegation.Refusal{Kind: delegation.UserElsewhere, Domain: "example.com"}},
		{name: "user suspended", change: func(d *directory) {
			d.users["alice@example.com"] = storage.User{Email: "alice@example.com", Org: "example.com", Suspended: true}
		},
			want: &delegation.Refusal{Kind: delegation.UserSuspended, Domain: "example.com"}},
		{name: "user's email a service account's", change: func(d *directory) { d.accounts = map[string]bool{"alice@example.com": true} },
			want: &delegation.Refusal{Kind: delegation.AccountEmail, Domain: "example.com"}},
		{name: "user's email a service account's in other ASCII capitals", change: func(d *directory) { d.accounts = map[string]bool{"Alice@EXAMPLE.com.": true} },
			want: &delegation.Refusal{Kind: delegation.AccountEmail, Domain: "example.com"}},
		{name: "user suspended, said before the email is an account's", change: func(d *directory) {
			d.users["alice@example.com"] = storage.User{Email: "alice@example.com", Org: "example.com", Suspended: true}
			d.accounts = map[string]bool{"alice@example.com": true}
		},
			want: &delegation.Refusal{Kind: delegation.UserSuspended, Domain: "example.com"}},

		// A token issued at t0.
		{name: "token", iat: t0.Unix()},
		{name: "token, user added again since", iat: t0.Unix(), change: func(d *directory) { setCreated(d, "user", t0.Add(time.Second)) },
			want: &delegation.Refusal{Kind: delegation.NoUser, Domain: "example.com"}},
		{name: "token, user added in its second", iat: t0.Unix(), change: func(d *directory) { setCreated(d, "user", t0.Add(999*time.Millisecond)) }},
		{name: "token, grant made again since", iat: t0.Unix(), change: func(d *directory) { setCreated(d, "grant", t0.Add(time.Second)) },
			want: &delegation.Refusal{Kind: delegation.NoGrant, Domain: "example.com"}},
		{name: "token, grant made in its second", iat: t0.Unix(), change: func(d *directory) { setCreated(d, "grant", t0.Add(999*time.Millisecond)) }},
		{name: "token, grant made again and user added again", iat: t0.Unix(), change: func(d *directory) {
			setCreated(d, "grant", t0.Add(time.Minute))
			setCreated(d, "user", t0.Add(time.Minute))
		}, want: &delegation.Refusal{Kind: delegation.NoGrant, Domain: "example.com"}},
		{name: "issuance, grant and user just made", change: func(d *directory) {
			setCreated(d, "grant", t0.Add(time.Minute))
			setCreated(d, "user", t0.Add(time.Minute))
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &directory{
				orgs: map[string]storage.Org{"example.com": {Domain: "example.com", BlockedScopes: []string{"drive"}}, "other.org": {Domain: "other.org"}},
				users: map[string]storage.User{
					"alice@example.com": {Email: "alice@example.com", Org: "example.com", CreatedAt: t0.Add(-time.Hour)},
					"carol@other.org":   {Email: "carol@other.org", Org: "other.org", CreatedAt: t0.Add(-time.Hour)},
				},
				grants:   map[string]storage.Grant{"example.com": {Org: "example.com", ClientID: "1", Scopes: []string{"calendar", "mail"}, CreatedAt: t0.Add(-time.Hour)}},
				projects: map[string]storage.ProjectOrg{},
				reads:    map[string]int{},
			}
			if tt.change != nil {
				tt.change(d)
			}
			subject, scopes := tt.subject, tt.scopes
			if subject == "" {
				subject = "alice@example.com"
			}
			if scopes == nil {
				scopes = []string{"calendar", "mail"}
			}
			granted, got, err := delegation.Check(context.Background(), d, acct, subject, scopes, tt.iat)
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Fatalf("refusal %+v, want %+v", got, tt.want)
			}
			if want := []string{"calendar", "mail"}; got == nil && !slices.Equal(granted, want) {
				t.Errorf("granted %q, want %q", granted, want)
			}
			if got != nil && granted != nil {
				t.Errorf("granted %q with a refusal", granted)
			}
			for what, n := range d.reads {
				if n > 1 {
					t.Errorf("%d reads of the %s, want at most 1", n, what)
				}
			}
		})
	}
}

// setCreated sets CreatedAt of alice, or of account 1's grant in
// example.com.
func setCreated(d *directory, what string, at time.Time) {
	if what == "user" {
		u := d.users["alice@example.com"]
		u.CreatedAt = at
		d.users["alice@example.com"] = u
		return
	}
	g := d.grants["example.com"]
	g.CreatedAt = at
	d.grants["example.com"] = g
}

// TestCheckStoreFailure: a failed read is an error, not a refusal.
func TestCheckStoreFailure(t *testing.T) {
	for _, what := range []string{"org", "grant", "project", "user", "account"} {
		t.Run(what, func(t *testing.T) {
			d := &directory{
				orgs:     map[string]storage.Org{"example.com": {Domain: "example.com"}},
				users:    map[string]storage.User{"alice@example.com": {Email: "alice@example.com", Org: "example.com"}},
				grants:   map[string]storage.Grant{"example.com": {Org: "example.com", ClientID: "1", Scopes: []string{"calendar"}}},
				projects: map[string]storage.ProjectOrg{},
				fail:     what,
				reads:    map[string]int{},
			}
			granted, r, err := delegation.Check(context.Background(), d, storage.Account{ID: "1", Project: "ops"}, "alice@example.com", []string{"calendar"}, 0)
			if err == nil || r != nil || granted != nil {
				t.Fatalf("Check with the %s read failing: %q, %+v, %v; want an error alone", what, granted, r, err)
			}
		})
	}
}
