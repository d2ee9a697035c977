package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// orgFixture is a server with the organization example.com, an API with
// the scopes orders.read and orders.write, and an account job@shop.iam.test
// holding them.
func orgFixture(t *testing.T) (f *fixture, auth, clientID string) {
	t.Helper()
	f = newFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	if _, err := f.srv.Admin.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Admin.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}}); err != nil {
		t.Fatal(err)
	}
	a, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read", "orders.write"}})
	if err != nil {
		t.Fatal(err)
	}
	return f, "Bearer " + f.token(t, f.admin, admin.AdminScope, nil), a.ID
}

// Granting again replaces the scopes and keeps the grant's creation time,
// and the answer says so: it is the grant as stored, as a later GET shows.
func TestRegrantAnswersTheStoredGrant(t *testing.T) {
	f, auth, id := orgFixture(t)
	path := "/v1/orgs/example.com/delegations/" + id
	status, first, _ := f.call(t, "PUT", path, auth, admin.GrantRequest{Scopes: []string{"orders.read"}})
	if status != 200 {
		t.Fatalf("first grant: %d %v", status, first)
	}
	listed := func() map[string]any {
		t.Helper()
		status, body, _ := f.call(t, "GET", "/v1/orgs/example.com/delegations", auth, nil)
		ds, _ := body["delegations"].([]any)
		if status != 200 || len(ds) != 1 {
			t.Fatalf("GET delegations: %d %v, want the one grant", status, body)
		}
		return ds[0].(map[string]any)
	}
	stored := listed()
	if first["created_at"] != stored["created_at"] {
		t.Errorf("the first grant's answer has created_at %v, the store %v", first["created_at"], stored["created_at"])
	}
	status, again, _ := f.call(t, "PUT", path, auth, admin.GrantRequest{Scopes: []string{"orders.read", "orders.write"}})
	if status != 200 {
		t.Fatalf("second grant: %d %v", status, again)
	}
	after := listed()
	if fmt.Sprint(again) != fmt.Sprint(after) {
		t.Errorf("the re-grant answered %v; GET shows %v", again, after)
	}
	if after["created_at"] != stored["created_at"] || fmt.Sprint(after["scopes"]) != "[orders.read orders.write]" {
		t.Errorf("after the re-grant the store has %v, want the new scopes created at %v", after, stored["created_at"])
	}
}

// A grant or revocation naming the account by its email is refused, and
// the description says that this request is refused and what to send
// instead, not as if a grant to the email had been made.
func TestDelegationToEmailRefused(t *testing.T) {
	f, auth, id := orgFixture(t)
	path := "/v1/orgs/example.com/delegations/job@shop.iam.test"
	for _, tc := range []struct {
		method string
		body   any
	}{{"PUT", admin.GrantRequest{Scopes: []string{"orders.read"}}}, {"DELETE", nil}} {
		status, body, _ := f.call(t, tc.method, path, auth, tc.body)
		desc, _ := body["error_description"].(string)
		if status != 400 || body["error"] != "invalid_request" {
			t.Errorf("%s %s: %d %v, want 400 invalid_request", tc.method, path, status, body)
		}
		for _, want := range []string{"this request is refused", "send it again with", `keyward sa get "job@shop.iam.test" shows it`} {
			if !strings.Contains(desc, want) {
				t.Errorf("%s %s: %q, want it to contain %q", tc.method, path, desc, want)
			}
		}
		if strings.Contains(desc, "grant made to") {
			t.Errorf("%s %s: %q reads as if a grant had been made", tc.method, path, desc)
		}
	}
	status, body, _ := f.call(t, "GET", "/v1/orgs/example.com/delegations", auth, nil)
	if ds, _ := body["delegations"].([]any); status != 200 || len(ds) != 0 {
		t.Errorf("GET delegations after the refused grant to %s's email: %d %v, want none", id, status, body)
	}
}

// A PATCH of an organization answers it as GET does, projects included.
func TestUpdateOrgAnswersAsGet(t *testing.T) {
	f, auth, _ := orgFixture(t)
	if status, body, _ := f.call(t, "PUT", "/v1/orgs/example.com/projects/shop", auth, map[string]any{"internal": true}); status != 200 {
		t.Fatalf("placing a project: %d %v", status, body)
	}
	status, patched, _ := f.call(t, "PATCH", "/v1/orgs/example.com", auth, map[string]any{"blocked_scopes": []string{"orders.write"}})
	if status != 200 {
		t.Fatalf("PATCH: %d %v", status, patched)
	}
	_, got, _ := f.call(t, "GET", "/v1/orgs/example.com", auth, nil)
	if fmt.Sprint(patched) != fmt.Sprint(got) {
		t.Errorf("PATCH answered %v; GET shows %v", patched, got)
	}
	if fmt.Sprint(got["projects"]) != "[map[internal:true project:shop]]" {
		t.Errorf("GET shows projects %v, want shop, internal", got["projects"])
	}
}

// The body of PUT …/projects/{project} has internal; the path names the
// project, so a project field naming another is refused, not silently
// ignored, and one naming the same (what older CLIs send) is accepted.
func TestPlaceProjectBody(t *testing.T) {
	f, auth, _ := orgFixture(t)
	path := "/v1/orgs/example.com/projects/shop"
	for _, body := range []string{`{"project":"other","internal":true}`, `{"project":"shop","extra":1}`} {
		status, got, _ := f.call(t, "PUT", path, auth, body)
		if status != 400 || got["error"] != "invalid_request" {
			t.Fatalf("PUT %s with %s: %d %v, want 400 invalid_request", path, body, status, got)
		}
		if p, _ := f.srv.Admin.ListProjects(context.Background(), "example.com"); len(p) != 0 {
			t.Fatalf("the refused request %s placed %v", body, p)
		}
	}
	for _, tt := range []struct {
		body any
		want string
	}{
		{`{"internal":true}`, "map[internal:true project:shop]"},
		{nil, "map[internal:false project:shop]"},                                   // the body may be left out
		{`{"project":"shop","internal":false}`, "map[internal:false project:shop]"}, // as keyward org add-project sent it before 2026-12-05
	} {
		if status, got, _ := f.call(t, "PUT", path, auth, tt.body); status != 200 || fmt.Sprint(got) != tt.want {
			t.Errorf("PUT %s with %v: %d %v, want 200 %s", path, tt.body, status, got, tt.want)
		}
	}
}

// A refusal of an organization, project, user or delegation route names a
// value from the path or the body cut to its first 48 bytes, with its
// length, once it is over 64 bytes (quoteClip): a domain of 60 KB in the
// path is not echoed back whole. Values of 64 bytes or fewer are named
// whole, as before.
func TestDelegationRoutesClipLongValues(t *testing.T) {
	f, auth, _ := orgFixture(t)
	long := strings.Repeat("a", 5000)
	// A domain name that is valid and over 64 bytes: an organization of it
	// is refused as existing, a user of it as of no organization.
	domain := strings.Repeat("b", 60) + "." + strings.Repeat("b", 60) + ".com"
	if _, err := f.srv.Admin.CreateOrg(context.Background(), admin.Actor{ID: "op"}, domain); err != nil {
		t.Fatal(err)
	}
	other := strings.Repeat("c", 60) + "." + strings.Repeat("c", 60) + ".com"
	tests := []struct {
		method, path string
		body         any
		status       int
		want         string
	}{
		{"POST", "/v1/orgs", admin.OrgRequest{Domain: long[:250]}, 400, `"` + long[:48] + `"… (250 bytes) is not a domain name`},
		{"POST", "/v1/orgs", admin.OrgRequest{Domain: domain}, 409, `The organization "` + domain[:48] + `"… (125 bytes) already exists.`},
		{"GET", "/v1/orgs/" + long, nil, 404, `The organization "` + long[:48] + `"… (5000 bytes) does not exist.`},
		{"PATCH", "/v1/orgs/" + long, map[string]any{"blocked_scopes": []string{}}, 404, `The organization "` + long[:48] + `"… (5000 bytes) does not exist.`},
		{"DELETE", "/v1/orgs/" + long, nil, 404, `The organization "` + long[:48] + `"… (5000 bytes) does not exist.`},
		{"GET", "/v1/orgs/" + long + "/delegations", nil, 404, `The organization "` + long[:48] + `"… (5000 bytes) does not exist.`},
		{"PUT", "/v1/orgs/example.com/projects/" + long, admin.ProjectRequest{}, 400, `The project "` + long[:48] + `"… (5000 bytes) must be`},
		{"DELETE", "/v1/orgs/example.com/projects/" + long, nil, 404, `The project "` + long[:48] + `"… (5000 bytes) is not in the organization "example.com".`},
		{"POST", "/v1/users/" + long + "@example.com/suspend", nil, 404, `The user "` + long[:48] + `"… (5012 bytes) does not exist.`},
		{"DELETE", "/v1/users/" + long + "@example.com", nil, 404, `The user "` + long[:48] + `"… (5012 bytes) does not exist.`},
		{"POST", "/v1/users", admin.UsersRequest{Users: []admin.UserInput{{Email: "a@" + other}}}, 400, `user 1: there is no organization "` + other[:48] + `"… (125 bytes)`},
		{"PUT", "/v1/orgs/example.com/delegations/" + long, admin.GrantRequest{Scopes: []string{"orders.read"}}, 404, `The service account with client ID "` + long[:48] + `"… (5000 bytes) does not exist.`},
		{"PUT", "/v1/orgs/example.com/delegations/" + long + "@x.com", admin.GrantRequest{Scopes: []string{"orders.read"}}, 400, `keyward sa get "` + long[:48] + `"… (5006 bytes) shows it`},
		{"DELETE", "/v1/orgs/example.com/delegations/" + long, nil, 404, `The delegation of "` + long[:48] + `"… (5000 bytes) in "example.com" does not exist.`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path[:min(len(tt.path), 40)], func(t *testing.T) {
			status, body, _ := f.call(t, tt.method, tt.path, auth, tt.body)
			desc, _ := body["error_description"].(string)
			if status != tt.status || !strings.Contains(desc, tt.want) || len(desc) > 600 {
				t.Errorf("%d %q (%d bytes), want %d with %q", status, desc[:min(len(desc), 300)], len(desc), tt.status, tt.want)
			}
		})
	}
}

// A value from the path, decoded, or an email of the body is named
// quoted, its control characters escaped (quoteClip), unless it is a
// domain name or a printable email: an ESC, a newline or a C1 control
// (U+009B, CSI, which net/mail accepts in an email) does not reach the
// CLI's terminal raw, however short.
func TestDelegationRoutesQuotePathValues(t *testing.T) {
	f, auth, _ := orgFixture(t)
	const ctl = "a\x1b[31m\nb"
	esc := url.PathEscape(ctl)
	tests := []struct {
		method, path string
		body         any
		status       int
		want         string
	}{
		{"PUT", "/v1/orgs/example.com/delegations/" + esc + "@x.com", admin.GrantRequest{Scopes: []string{"orders.read"}}, 400, `keyward sa get "a\x1b[31m\nb@x.com" shows it`},
		{"DELETE", "/v1/orgs/example.com/delegations/" + esc + "@x.com", nil, 400, `keyward sa get "a\x1b[31m\nb@x.com" shows it`},
		{"DELETE", "/v1/orgs/example.com/delegations/" + esc, nil, 404, `The delegation of "a\x1b[31m\nb" in "example.com" does not exist.`},
		{"DELETE", "/v1/orgs/" + esc + "/delegations/123", nil, 404, `The delegation of "123" in "a\x1b[31m\nb" does not exist.`},
		// A malformed email is named before the organization is looked up.
		{"POST", "/v1/orgs/" + esc + "/users", admin.UsersRequest{Users: []admin.UserInput{{Email: "a@b@c"}, {Email: "d@other.org"}}}, 400, `user 2: d@other.org is not in "a\x1b[31m\nb"`},
		{"POST", "/v1/orgs/example.com/users", admin.UsersRequest{Users: []admin.UserInput{{Email: "u@ex\u009bample.com"}}}, 400, `user 1: "u@ex\u009bample.com" is not an email address: it contains the control character U+009B`},
		{"POST", "/v1/users", admin.UsersRequest{Users: []admin.UserInput{{Email: "u@ex\u009bample.com"}}}, 400, `user 1: "u@ex\u009bample.com" is not an email address: it contains the control character U+009B`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, body, _ := f.call(t, tt.method, tt.path, auth, tt.body)
			desc, _ := body["error_description"].(string)
			if status != tt.status || !strings.Contains(desc, tt.want) || strings.ContainsAny(desc, "\x1b\n\u009b") {
				t.Errorf("%d %q, want %d with %q", status, desc, tt.status, tt.want)
			}
		})
	}
}

// orgDeletingStore deletes an organization just before a grant is put in
// it: an organization deleted between the admin API's lookup and the put.
type orgDeletingStore struct{ storage.Storage }

func (s orgDeletingStore) PutGrant(ctx context.Context, g storage.Grant, ev storage.AuditEvent, guards ...storage.Guard) (storage.Grant, error) {
	if err := s.Storage.DeleteOrg(ctx, g.Org, nil, storage.AuditEvent{Time: time.Now(), Action: "org.delete", Outcome: storage.OutcomeSuccess, Actor: "test"}); err != nil {
		return storage.Grant{}, err
	}
	return s.Storage.PutGrant(ctx, g, ev, guards...)
}

// A grant in an organization deleted meanwhile (after the admin API found
// it) is a 404 naming the organization, not a 503 of a store failure.
func TestGrantInOrgDeletedMeanwhile(t *testing.T) {
	st := openSQLite(t)
	f := newFixtureOn(t, orgDeletingStore{st})
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	if _, err := f.srv.Admin.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Admin.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	a, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	status, out, _ := f.call(t, "PUT", "/v1/orgs/example.com/delegations/"+a.ID, auth, admin.GrantRequest{Scopes: []string{"orders.read"}})
	want := `The organization "example.com" does not exist.`
	if desc, _ := out["error_description"].(string); status != 404 || desc != want {
		t.Fatalf("%d %v, want 404 with %q", status, out, want)
	}
}

// An organization under the account domain is refused: its users could
// have a service account's email (NAME@PROJECT.iam.test), and a delegated
// token for one would have the sub that the account's self-signed JWTs
// have. The account domain itself and look-alike domains are not under it.
func TestOrgUnderAccountDomainRefused(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	tests := []struct {
		name, domain string
		wantStatus   int
	}{
		{"unrelated", "example.com", 201},
		{"the account domain", "iam.test", 201},
		{"look-alike", "xiam.test", 201},
		{"a project's", "shop.iam.test", 400},
		{"upper case", "Shop.IAM.test", 400},
		{"deeper", "a.shop.iam.test", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := f.call(t, "POST", "/v1/orgs", auth, admin.OrgRequest{Domain: tt.domain})
			if code != tt.wantStatus {
				t.Fatalf("POST /v1/orgs %s: %d %v, want %d", tt.domain, code, out, tt.wantStatus)
			}
			if tt.wantStatus == 400 && !strings.Contains(fmt.Sprint(out["error_description"]), "under the account domain iam.test") {
				t.Errorf("description %q, want it to say the domain is under the account domain", out["error_description"])
			}
		})
	}
}

// Accounts made under an earlier account domain keep their emails under
// it: an organization at the domain of one of those emails, whatever its
// capitals, is refused as well; one above or beside it is not.
func TestOrgAtOldAccountEmailDomainRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i, email := range []string{"old@shop.old.test", "Caps@Shop.CAPS.test"} {
		local, _, _ := strings.Cut(email, "@")
		a := storage.Account{ID: fmt.Sprintf("10000000000000000007%d", i), Email: email, Name: strings.ToLower(local), Project: "shop"}
		if err := f.store.CreateAccount(ctx, a, storage.AuditEvent{Time: time.Now(), Action: "account.create", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	// One an import kept whose email is not of its name and project
	// (NAME@PROJECT.<account domain>).
	imported := storage.Account{ID: "100000000000000000079", Email: "Odd@Imported.Test", Name: "job", Project: "shop"}
	if err := f.store.CreateAccount(ctx, imported, storage.AuditEvent{Time: time.Now(), Action: "account.create", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	tests := []struct {
		name, domain string
		wantStatus   int
	}{
		{"an old account's email domain", "shop.old.test", 400},
		{"an imported account's email domain", "imported.test", 400},
		{"beside it", "ported.test", 201},
		{"upper case", "Shop.Old.Test", 400},
		{"an email domain stored in capitals", "shop.caps.test", 400},
		{"the old account domain", "old.test", 201},
		{"another project under it", "web.old.test", 201},
		{"below it", "a.shop.old.test", 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := f.call(t, "POST", "/v1/orgs", auth, admin.OrgRequest{Domain: tt.domain})
			if code != tt.wantStatus {
				t.Fatalf("POST /v1/orgs %s: %d %v, want %d", tt.domain, code, out, tt.wantStatus)
			}
			if tt.wantStatus == 400 && !strings.Contains(fmt.Sprint(out["error_description"]), "is the domain of service accounts' emails") {
				t.Errorf("description %q, want it to say the domain is that of service accounts' emails", out["error_description"])
			}
		})
	}
}

// The reverse: an organization made while the account domain was another
// may be at PROJECT.<account domain> now. A new account in that project,
// whose email would be at the organization's domain, is refused, naming
// it; one in another project is not.
func TestAccountAtOrgDomainRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.store.CreateOrg(ctx, storage.Org{Domain: "shop.iam.test", BlockedScopes: []string{}, CreatedAt: time.Now()},
		storage.AuditEvent{Time: time.Now(), Action: "org.create", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	tests := []struct {
		name, project string
		wantStatus    int
	}{
		{"the organization's project", "shop", 409},
		{"another project", "web", 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: "job", Project: tt.project})
			if code != tt.wantStatus {
				t.Fatalf("POST /v1/service-accounts in %s: %d %v, want %d", tt.project, code, out, tt.wantStatus)
			}
			if tt.wantStatus == 409 && !strings.Contains(fmt.Sprint(out["error_description"]), "The organization shop.iam.test is at the domain of project shop's service account emails") {
				t.Errorf("description %q, want it to name the organization", out["error_description"])
			}
		})
	}
	if _, err := f.store.GetAccountByEmail(ctx, "job@shop.iam.test"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetAccountByEmail(job@shop.iam.test): %v, want ErrNotFound", err)
	}
}
