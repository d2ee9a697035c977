package admin_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// usersBody is a UsersRequest of the emails, active.
func usersBody(emails ...string) admin.UsersRequest {
	var in admin.UsersRequest
	for _, e := range emails {
		in.Users = append(in.Users, admin.UserInput{Email: e})
	}
	return in
}

// POST /v1/users puts users of several organizations in one transaction:
// all of them, or, when any is bad, none, each bad one named by its
// position.
func TestPutUsersOfOrgs(t *testing.T) {
	many := make([]string, 25)
	for i := range many {
		many[i] = fmt.Sprintf("user%d@nowhere.test", i)
	}
	// A body over the 1 MiB every admin request has.
	huge := make([]string, 0, 40_000)
	for i := range cap(huge) {
		huge = append(huge, fmt.Sprintf("user%05d@example.com", i))
	}
	// Many organizations that do not exist, between users of ones that
	// do, a malformed email and one given twice: each bad user is named
	// by its position, in order, whatever its fault.
	var mixed []string
	var mixedWant []string
	for i := range 1500 {
		switch {
		case i == 3:
			mixed = append(mixed, "a@b@c")
			mixedWant = append(mixedWant, `user 4: "a@b@c" is not an email address`)
		case i == 7:
			mixed = append(mixed, "USER0001@example.com")
			mixedWant = append(mixedWant, "user 8: user0001@example.com is also user 2")
		case i%2 == 1:
			mixed = append(mixed, fmt.Sprintf("user%04d@example.com", i))
		default:
			mixed = append(mixed, fmt.Sprintf("u@missing%04d.test", i))
			mixedWant = append(mixedWant, fmt.Sprintf("user %d: there is no organization missing%04d.test", i+1, i))
		}
	}
	mixedWant = append(mixedWant[:20], fmt.Sprintf("and %d more.", len(mixedWant)-20))
	tests := []struct {
		name   string
		body   any
		status int
		want   []string // in the description; for a 200, the users added
	}{
		{"many missing organizations", usersBody(mixed...), 400,
			[]string{"Nothing was imported; fix these and retry: " + strings.Join(mixedWant, "; ")}},
		{"two organizations", usersBody("Alice@Example.com", "carol@other.org", "bob@example.com"), 200,
			[]string{"alice@example.com", "bob@example.com", "carol@other.org"}},
		{"one user", usersBody("dave@other.org"), 200, []string{"dave@other.org"}},
		{"a missing organization", usersBody("alice@example.com", "carol@other.org", "bob@nowhere.test"), 400,
			[]string{"Nothing was imported; fix these and retry: user 3: there is no organization nowhere.test."}},
		{"every missing organization", usersBody("x@a.test", "alice@example.com", "y@b.test"), 400,
			[]string{"user 1: there is no organization a.test; user 3: there is no organization b.test"}},
		{"a malformed email", usersBody("alice@example.com", "a@b@c", "not-an-email"), 400,
			[]string{`user 2: "a@b@c" is not an email address`, `user 3: "not-an-email" is not an email address`}},
		{"an email twice", usersBody("alice@example.com", "carol@other.org", "ALICE@example.com"), 400,
			[]string{"user 3: alice@example.com is also user 1"}},
		{"a long email twice, clipped", usersBody(strings.Repeat("a", 60)+"@example.com", strings.Repeat("A", 60)+"@example.com"), 400,
			[]string{`user 2: "` + strings.Repeat("a", 48) + `"… (72 bytes) is also user 1`}},
		{"more than 20 bad users", usersBody(many...), 400,
			[]string{"user 20: there is no organization nowhere.test; and 5 more."}},
		{"no users", usersBody(), 400, []string{"No users given."}},
		{"an unknown field", `{"users":[{"email":"alice@example.com"}],"org":"example.com"}`, 400, []string{`a field this endpoint does not take: "org"`}},
		{"over the body limit", usersBody(huge...), 413, []string{"larger than 1048576 bytes", "several requests"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			ctx, op := context.Background(), admin.Actor{ID: "op"}
			for _, d := range []string{"example.com", "other.org"} {
				if _, err := f.srv.Admin.CreateOrg(ctx, op, d); err != nil {
					t.Fatal(err)
				}
			}
			auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
			status, body, _ := f.call(t, "POST", "/v1/users", auth, tt.body)
			var added []string
			for _, d := range []string{"example.com", "other.org"} {
				us, err := f.store.ListUsers(ctx, d, storage.ListOptions{})
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range us {
					added = append(added, u.Email)
				}
			}
			if status != tt.status {
				t.Fatalf("%d %v, want %d", status, body, tt.status)
			}
			if status == 200 {
				if body["users"] != float64(len(tt.want)) || fmt.Sprint(added) != fmt.Sprint(tt.want) {
					t.Fatalf("answered %v and added %v, want %v", body, added, tt.want)
				}
				return
			}
			desc, _ := body["error_description"].(string)
			for _, w := range tt.want {
				if !strings.Contains(desc, w) {
					t.Errorf("description %q lacks %q", desc, w)
				}
			}
			if len(added) > 0 {
				t.Errorf("the refused request added %v", added)
			}
			if n := f.countEvents(t, "user.import") + f.countEvents(t, "user.put"); n != 0 {
				t.Errorf("%d user.import or user.put events for a refused request", n)
			}
		})
	}
}

// orgCountingStore counts the lookups of organizations.
type orgCountingStore struct {
	storage.Storage
	getOrg, getOrgs *atomic.Int64
}

func (s orgCountingStore) GetOrg(ctx context.Context, domain string) (storage.Org, error) {
	s.getOrg.Add(1)
	return s.Storage.GetOrg(ctx, domain)
}

func (s orgCountingStore) GetOrgs(ctx context.Context, domains []string) ([]storage.Org, error) {
	s.getOrgs.Add(1)
	return s.Storage.GetOrgs(ctx, domains)
}

// POST /v1/users looks its users' organizations up with one call of the
// store however many domains they are in, not one call per domain.
func TestPutUsersOfOrgsLookups(t *testing.T) {
	counts := orgCountingStore{getOrg: new(atomic.Int64), getOrgs: new(atomic.Int64)}
	st := openSQLite(t)
	counts.Storage = st
	f := newFixtureOn(t, counts)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	if _, err := f.srv.Admin.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	tests := []struct {
		name   string
		emails []string
		status int
	}{
		{"missing organizations", nil, 400},
		{"existing organizations", []string{"alice@example.com", "bob@example.com"}, 200},
	}
	for i := range 1000 {
		tests[0].emails = append(tests[0].emails, fmt.Sprintf("u@d%04d.test", i))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counts.getOrg.Store(0)
			counts.getOrgs.Store(0)
			if status, body, _ := f.call(t, "POST", "/v1/users", auth, usersBody(tt.emails...)); status != tt.status {
				t.Fatalf("%d %v, want %d", status, body, tt.status)
			}
			if n, m := counts.getOrg.Load(), counts.getOrgs.Load(); n+m != 1 {
				t.Errorf("%d GetOrg and %d GetOrgs calls for users of %d domains, want 1 call", n, m, len(tt.emails))
			}
		})
	}
}

// A put of users of several organizations is one audit event, with the
// count of users and the organizations (MaxAuditOrgs of them, and how
// many there are).
func TestPutUsersOfOrgsAudit(t *testing.T) {
	f := newFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	var emails []string
	for i := range admin.MaxAuditOrgs + 2 {
		d := fmt.Sprintf("org%02d.test", i)
		if _, err := f.srv.Admin.CreateOrg(ctx, op, d); err != nil {
			t.Fatal(err)
		}
		emails = append(emails, "a@"+d, "b@"+d)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if status, body, _ := f.call(t, "POST", "/v1/users", auth, usersBody(emails...)); status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	evs, err := f.store.ListAuditEvents(ctx, storage.AuditFilter{Action: "user.import", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d user.import events, want 1", len(evs))
	}
	d := evs[0].Data
	wantOrgs := "org00.test org01.test org02.test org03.test org04.test org05.test org06.test org07.test org08.test org09.test"
	if d["count"] != "24" || d["org_count"] != "12" || d["orgs"] != wantOrgs {
		t.Fatalf("event data %v, want count 24, org_count 12, orgs %s", d, wantOrgs)
	}
	if status, body, _ := f.call(t, "POST", "/v1/users", auth, admin.UsersRequest{Users: []admin.UserInput{{Email: "c@org03.test", Suspended: true}}}); status != 200 {
		t.Fatalf("%d %v", status, body)
	}
	evs, _ = f.store.ListAuditEvents(ctx, storage.AuditFilter{Action: "user.put", Limit: 10})
	if len(evs) != 1 || fmt.Sprint(evs[0].Data) != "map[count:1 email:c@org03.test org_count:1 orgs:org03.test suspended:true]" {
		t.Fatalf("user.put events %v, want the one with c@org03.test", evs)
	}
}

// deletingStore deletes the organization org just before it puts users:
// an organization deleted between the admin API's check and the put.
type deletingStore struct {
	storage.Storage
	org string
}

func (s deletingStore) PutUsers(ctx context.Context, users []storage.User, ev storage.UsersEvent) error {
	if err := s.Storage.DeleteOrg(ctx, s.org, nil, storage.AuditEvent{Time: time.Now(), Action: "org.delete", Outcome: storage.OutcomeSuccess, Actor: "test"}); err != nil {
		return err
	}
	return s.Storage.PutUsers(ctx, users, ev)
}

// An organization deleted while its users are being put (after the check
// that it exists) is a 404 for POST /v1/orgs/{domain}/users and a 409 for
// POST /v1/users that say so, not a 500, and no user is added: on SQLite
// and, when KEYWARD_TEST_POSTGRES_DSN is set, on PostgreSQL, whose foreign
// keys refuse the put.
func TestPutUsersOrgDeletedMeanwhile(t *testing.T) {
	tests := []struct {
		name, path string
		body       admin.UsersRequest
		status     int
		want       string
	}{
		{"one organization", "/v1/orgs/other.org/users", usersBody("carol@other.org", "dave@other.org"), 404,
			"The organization other.org does not exist: it was deleted while its users were being added, and nothing was imported."},
		{"several organizations", "/v1/users", usersBody("alice@example.com", "carol@other.org"), 409,
			"Nothing was imported: the organization other.org was deleted while the users were being added."},
	}
	open := map[string]func(*testing.T) storage.Storage{
		"sqlite": func(t *testing.T) storage.Storage {
			st := openSQLite(t)
			return st
		},
		"postgres": func(t *testing.T) storage.Storage {
			st, err := postgres.Open(context.Background(), pgtest.SchemaDSN(t), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, tt := range tests {
			t.Run(backend+"/"+tt.name, func(t *testing.T) {
				f := newFixtureOn(t, deletingStore{open[backend](t), "other.org"})
				ctx, op := context.Background(), admin.Actor{ID: "op"}
				for _, d := range []string{"example.com", "other.org"} {
					if _, err := f.srv.Admin.CreateOrg(ctx, op, d); err != nil {
						t.Fatal(err)
					}
				}
				auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
				status, body, _ := f.call(t, "POST", tt.path, auth, tt.body)
				if desc, _ := body["error_description"].(string); status != tt.status || !strings.Contains(desc, tt.want) {
					t.Fatalf("%d %v, want %d with %q", status, body, tt.status, tt.want)
				}
				if us, _ := f.store.ListUsers(ctx, "example.com", storage.ListOptions{}); len(us) != 0 {
					t.Errorf("example.com has users %v after the refused request", us)
				}
				if n := f.countEvents(t, "user.import"); n != 0 {
					t.Errorf("%d user.import events for a refused request", n)
				}
			})
		}
	}
}

// An email given twice, in any case, is refused by POST /v1/users, which
// names both positions, and taken by POST /v1/orgs/{domain}/users, where
// the last one given is stored and each one given is counted: both as
// docs/ADMIN-API.md says.
func TestPutUsersEmailTwice(t *testing.T) {
	twice := admin.UsersRequest{Users: []admin.UserInput{{Email: "alice@example.com"}, {Email: "ALICE@example.com", Suspended: true}}}
	tests := []struct {
		path      string
		status    int
		want      string // in the body, as fmt.Sprint shows it
		stored    bool
		suspended bool
	}{
		{"/v1/users", 400, "user 2: alice@example.com is also user 1", false, false},
		{"/v1/orgs/example.com/users", 200, "users:2", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			f := newFixture(t)
			ctx := context.Background()
			if _, err := f.srv.Admin.CreateOrg(ctx, admin.Actor{ID: "op"}, "example.com"); err != nil {
				t.Fatal(err)
			}
			auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
			status, body, _ := f.call(t, "POST", tt.path, auth, twice)
			if status != tt.status || !strings.Contains(fmt.Sprint(body), tt.want) {
				t.Fatalf("%d %v, want %d with %s", status, body, tt.status, tt.want)
			}
			u, err := f.store.GetUser(ctx, "alice@example.com")
			if stored := err == nil; stored != tt.stored || u.Suspended != tt.suspended {
				t.Errorf("stored %+v (%v), want stored %v, suspended %v", u, err, tt.stored, tt.suspended)
			}
		})
	}
}
