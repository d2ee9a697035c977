package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// errStale is what the checks below refuse with: the state they were
// given is not the one they expect (a stale If-Match, in the admin API).
var errStale = errors.New("stale")

// countEvents returns how many audit events of action the store holds.
func countEvents(t *testing.T, s storage.Storage, action string) int {
	t.Helper()
	evs, err := s.ListAuditEvents(context.Background(), storage.AuditFilter{Action: action, Limit: 1000})
	mustNil(t, err)
	return len(evs)
}

// testDeleteChecked: DeleteAccount, DeleteAPI, DeleteKey, DeleteSecret
// and DeleteOrg call their check with the stored state (an organization's
// with the projects placed in it), in their transaction; a check that fails deletes
// nothing and writes no event, one that passes deletes as without it, and
// a missing row is ErrNotFound without a call.
func testDeleteChecked(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a := account("100000000000000000001", "job@proj.example")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	api := storage.API{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read", "billing.write"}, Introspectors: []string{a.ID}, CreatedAt: t0}
	mustNil(t, s.CreateAPI(ctx, api, ev("api.create")))
	k := key("k1", a.ID)
	k.ExpiresAt = t0.Add(time.Hour)
	mustNil(t, s.CreateKey(ctx, k, nil, ev("key.create")))
	sec := secret("s1", a.ID, t0)
	sec.ExpiresAt = t0.Add(time.Hour)
	mustNil(t, s.CreateSecret(ctx, sec, nil, ev("secret.create")))
	stored, err := s.GetAccount(ctx, a.ID)
	mustNil(t, err)
	org := storage.Org{Domain: "example.com", BlockedScopes: []string{"mail.send"}, CreatedAt: t0}
	mustNil(t, s.CreateOrg(ctx, org, ev("org.create")))
	placed := []storage.ProjectOrg{{Project: "ads", Org: org.Domain, Internal: true}}
	mustNil(t, s.PutProjectOrg(ctx, placed[0], nil, ev("org.project")))
	mustNil(t, s.PutUsers(ctx, []storage.User{{Email: "ann@example.com", Org: org.Domain, CreatedAt: t0}}, storage.SameEvent(ev("user.add"))))
	calls := 0 // of the checks
	tests := []struct {
		name string
		// del deletes with a check (the API, the key and the secret
		// first: deleting the account takes it from the API's
		// introspectors, and its keys and secrets) that returns refuse after recording
		// whether what it was given is the stored state (nil: it was).
		del    func(refuse error, given *error) error
		exists func() error
		action string
	}{
		{"organization", func(refuse error, given *error) error {
			return s.DeleteOrg(ctx, org.Domain, func(got storage.Org, projects []storage.ProjectOrg) error {
				calls++
				if got.Domain != org.Domain || !slices.Equal(got.BlockedScopes, org.BlockedScopes) || !got.CreatedAt.Equal(t0.Truncate(time.Microsecond)) || !slices.Equal(projects, placed) {
					*given = fmt.Errorf("check given %+v with projects %+v, want %+v with %+v", got, projects, org, placed)
				}
				return refuse
			}, ev("org.delete"))
		}, func() error {
			// Its users and projects go with it, or stay with it.
			if _, err := s.GetOrg(ctx, org.Domain); err != nil {
				return err
			}
			if _, err := s.GetUser(ctx, "ann@example.com"); err != nil {
				return fmt.Errorf("its user: %w", err)
			}
			return errOf(s.GetProjectOrg(ctx, "ads"))
		}, "org.delete"},
		{"API", func(refuse error, given *error) error {
			return s.DeleteAPI(ctx, api.Name, func(got storage.API) error {
				calls++
				if got.Name != api.Name || got.Identifier != api.Identifier || !slices.Equal(got.Scopes, api.Scopes) || !slices.Equal(got.Introspectors, api.Introspectors) {
					*given = fmt.Errorf("check given %+v, want %+v", got, api)
				}
				return refuse
			}, ev("api.delete"))
		}, func() error { return errOf(s.GetAPI(ctx, api.Name)) }, "api.delete"},
		{"key", func(refuse error, given *error) error {
			return s.DeleteKey(ctx, k.ID, func(got storage.Key) error {
				calls++
				if got.ID != k.ID || got.AccountID != k.AccountID || string(got.PublicKey) != string(k.PublicKey) || !got.ExpiresAt.Equal(k.ExpiresAt) {
					*given = fmt.Errorf("check given %+v, want %+v", got, k)
				}
				return refuse
			}, ev("key.delete"))
		}, func() error { return errOf(s.GetKey(ctx, k.ID)) }, "key.delete"},
		{"secret", func(refuse error, given *error) error {
			return s.DeleteSecret(ctx, sec.ID, func(got storage.Secret) error {
				calls++
				if got.ID != sec.ID || got.AccountID != sec.AccountID || got.Hint != sec.Hint || !got.ExpiresAt.Equal(sec.ExpiresAt) {
					*given = fmt.Errorf("check given %+v, want %+v", got, sec)
				}
				return refuse
			}, ev("secret.delete"))
		}, func() error {
			secs, err := s.ListSecrets(ctx, a.ID)
			if err == nil && len(secs) == 0 {
				err = storage.ErrNotFound
			}
			return err
		}, "secret.delete"},
		{"account", func(refuse error, given *error) error {
			return s.DeleteAccount(ctx, a.ID, func(got storage.Account) error {
				calls++
				if got.ID != stored.ID || got.Email != stored.Email || !slices.Equal(got.Scopes, stored.Scopes) || !got.UpdatedAt.Equal(stored.UpdatedAt) {
					*given = fmt.Errorf("check given %+v, want %+v", got, stored)
				}
				return refuse
			}, ev("account.delete"))
		}, func() error { return errOf(s.GetAccount(ctx, a.ID)) }, "account.delete"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var given error
			wantErr(t, tt.del(fmt.Errorf("refused: %w", errStale), &given), errStale)
			mustNil(t, given)
			if err := tt.exists(); err != nil {
				t.Fatalf("after a refused delete: %v, want it still there", err)
			}
			if n := countEvents(t, s, tt.action); n != 0 {
				t.Fatalf("a refused delete wrote %d %s events", n, tt.action)
			}
			mustNil(t, tt.del(nil, &given))
			mustNil(t, given)
			wantErr(t, tt.exists(), storage.ErrNotFound)
			before := calls
			wantErr(t, tt.del(nil, new(error)), storage.ErrNotFound)
			if calls != before {
				t.Fatal("check called for a missing row")
			}
		})
	}
	// DeleteAPI's check is given no account deleted meanwhile as its
	// introspector: here, none is left.
	b := account("100000000000000000002", "other@proj.example")
	mustNil(t, s.CreateAccount(ctx, b, ev("account.create")))
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "stock", Identifier: "https://stock", Scopes: []string{"stock.read"}, Introspectors: []string{b.ID}, CreatedAt: t0}, ev("api.create")))
	mustNil(t, s.DeleteAccount(ctx, b.ID, nil, ev("account.delete")))
	mustNil(t, s.DeleteAPI(ctx, "stock", func(got storage.API) error {
		if len(got.Introspectors) != 0 {
			return fmt.Errorf("check given introspectors %v of a deleted account", got.Introspectors)
		}
		return nil
	}, ev("api.delete")))
}

// testDeleteCheckedConcurrent: a checked delete and an update of the same
// account, key, secret or API at once. Whichever reads the row first, the other sees
// what it committed: a delete whose check waits on the update sees the
// updated state (and its check, expecting the state before, refuses),
// and an update that waits on the delete finds the row gone. A store that
// let the delete check what it read before the update committed would
// delete a row changed since its check (the admin API's If-Match on
// DELETE would not hold).
func testDeleteCheckedConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	tests := []struct {
		name   string
		create func(n int) (id string, err error)
		// update changes the row, calling read in its fn.
		update func(id string, read func()) error
		// del deletes the row, calling read in its check, and refuses
		// (errStale) unless the row is as created.
		del func(id string, read func()) error
	}{
		{
			name: "account",
			create: func(n int) (string, error) {
				a := account(fmt.Sprintf("1000000000000000000%02d", n), fmt.Sprintf("job%d@proj.example", n))
				return a.ID, s.CreateAccount(ctx, a, ev("account.create"))
			},
			update: func(id string, read func()) error {
				_, err := s.UpdateAccount(ctx, id, func(a storage.Account) (storage.Account, error) {
					read()
					a.Description, a.UpdatedAt = "changed", time.Now()
					return a, nil
				}, ev("account.update"))
				return err
			},
			del: func(id string, read func()) error {
				return s.DeleteAccount(ctx, id, func(a storage.Account) error {
					read()
					if a.Description != "nightly job" {
						return errStale
					}
					return nil
				}, ev("account.delete"))
			},
		},
		{
			name: "key",
			create: func(n int) (string, error) {
				a := account(fmt.Sprintf("1000000000000000001%02d", n), fmt.Sprintf("keyed%d@proj.example", n))
				if err := s.CreateAccount(ctx, a, ev("account.create")); err != nil {
					return "", err
				}
				k := key(fmt.Sprintf("k%d", n), a.ID)
				return k.ID, s.CreateKey(ctx, k, nil, ev("key.create"))
			},
			update: func(id string, read func()) error {
				_, err := s.UpdateKey(ctx, id, func(k storage.Key) (storage.Key, error) {
					read()
					k.ExpiresAt = t0.Add(time.Hour)
					return k, nil
				}, ev("key.update"))
				return err
			},
			del: func(id string, read func()) error {
				return s.DeleteKey(ctx, id, func(k storage.Key) error {
					read()
					if !k.ExpiresAt.IsZero() {
						return errStale
					}
					return nil
				}, ev("key.delete"))
			},
		},
		{
			name: "secret",
			create: func(n int) (string, error) {
				a := account(fmt.Sprintf("1000000000000000002%02d", n), fmt.Sprintf("secreted%d@proj.example", n))
				if err := s.CreateAccount(ctx, a, ev("account.create")); err != nil {
					return "", err
				}
				sec := secret(fmt.Sprintf("s%d", n), a.ID, t0)
				return sec.ID, s.CreateSecret(ctx, sec, nil, ev("secret.create"))
			},
			update: func(id string, read func()) error {
				_, err := s.UpdateSecret(ctx, id, func(sec storage.Secret) (storage.Secret, error) {
					read()
					sec.ExpiresAt = t0.Add(time.Hour)
					return sec, nil
				}, nil, ev("secret.update"))
				return err
			},
			del: func(id string, read func()) error {
				return s.DeleteSecret(ctx, id, func(sec storage.Secret) error {
					read()
					if !sec.ExpiresAt.IsZero() {
						return errStale
					}
					return nil
				}, ev("secret.delete"))
			},
		},
		{
			name: "API",
			create: func(n int) (string, error) {
				id := fmt.Sprintf("api%d", n)
				return id, s.CreateAPI(ctx, storage.API{Name: id, Identifier: "https://" + id, Scopes: []string{id + ".read"}, CreatedAt: t0}, ev("api.create"))
			},
			update: func(id string, read func()) error {
				_, err := s.UpdateAPI(ctx, id, func(a storage.API) (storage.API, error) {
					read()
					a.Description = "changed"
					return a, nil
				}, ev("api.update"))
				return err
			},
			del: func(id string, read func()) error {
				return s.DeleteAPI(ctx, id, func(a storage.API) error {
					read()
					if a.Description != "" {
						return errStale
					}
					return nil
				}, ev("api.delete"))
			},
		},
	}
	n := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for first := range 2 { // 0: the update reads first; 1: the delete
				n++
				id, err := tt.create(n)
				mustNil(t, err)
				errs := make([]error, 2)
				raceUpdates(s, first, func(i int, read func()) error {
					if i == 0 {
						errs[0] = tt.update(id, read)
					} else {
						errs[1] = tt.del(id, read)
					}
					return nil
				})
				if first == 0 && (errs[0] != nil || !errors.Is(errs[1], errStale)) {
					t.Fatalf("the update read first: update %v, delete %v; want the delete's check to see the update and refuse", errs[0], errs[1])
				}
				if first == 1 && (errs[1] != nil || !errors.Is(errs[0], storage.ErrNotFound)) {
					t.Fatalf("the delete read first: delete %v, update %v; want the update to find the row deleted", errs[1], errs[0])
				}
			}
		})
	}
}

// testOrgProjects: GetOrgProjects reads an organization with the projects
// placed in it, and UpdateOrg gives its fn, and returns, the same; a fn
// that fails changes nothing.
func testOrgProjects(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", BlockedScopes: []string{"mail.send"}, CreatedAt: t0}, ev("org.create")))
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "other.org", CreatedAt: t0}, ev("org.create")))
	want := func(t *testing.T, o storage.Org, projects []storage.ProjectOrg, blocked []string, wantProjects ...storage.ProjectOrg) {
		t.Helper()
		if o.Domain != "example.com" || !o.CreatedAt.Equal(t0.Truncate(time.Microsecond)) || !slices.Equal(o.BlockedScopes, blocked) || !slices.Equal(projects, wantProjects) {
			t.Fatalf("got %+v with projects %+v, want blocked scopes %v and projects %+v", o, projects, blocked, wantProjects)
		}
	}
	o, projects, err := s.GetOrgProjects(ctx, "example.com")
	mustNil(t, err)
	want(t, o, projects, []string{"mail.send"})
	for _, p := range []storage.ProjectOrg{{Project: "mail", Org: "example.com", Internal: false}, {Project: "cal", Org: "example.com", Internal: true}, {Project: "ops", Org: "other.org", Internal: true}} {
		mustNil(t, s.PutProjectOrg(ctx, p, nil, ev("org.project")))
	}
	placed := []storage.ProjectOrg{{Project: "cal", Org: "example.com", Internal: true}, {Project: "mail", Org: "example.com", Internal: false}} // by project
	o, projects, err = s.GetOrgProjects(ctx, "example.com")
	mustNil(t, err)
	want(t, o, projects, []string{"mail.send"}, placed...)

	var given []storage.ProjectOrg
	_, _, err = s.UpdateOrg(ctx, "example.com", func(o storage.Org, projects []storage.ProjectOrg) (storage.Org, error) {
		o.BlockedScopes = nil
		return o, fmt.Errorf("refused: %w", errStale)
	}, ev("org.policy"))
	wantErr(t, err, errStale)
	o, projects, err = s.UpdateOrg(ctx, "example.com", func(o storage.Org, projects []storage.ProjectOrg) (storage.Org, error) {
		given = projects
		o.BlockedScopes = append(o.BlockedScopes, "drive.read")
		return o, nil
	}, ev("org.policy"))
	mustNil(t, err)
	if !slices.Equal(given, placed) {
		t.Fatalf("UpdateOrg gave fn projects %+v, want %+v", given, placed)
	}
	want(t, o, projects, []string{"mail.send", "drive.read"}, placed...)
	o, projects, err = s.GetOrgProjects(ctx, "example.com")
	mustNil(t, err)
	want(t, o, projects, []string{"mail.send", "drive.read"}, placed...)
	if n := countEvents(t, s, "org.policy"); n != 1 {
		t.Fatalf("%d org.policy events, want 1: the refused update's is not written", n)
	}

	// A project moved away or removed is no longer the organization's.
	// The event of the move names the organization it left; the caller's
	// event, prepared (encoded) already as the journal prepares them, is
	// not changed.
	moved := ev("org.project")
	moved.Data = map[string]string{"org": "other.org", "project": "cal"}
	moved.Prepare()
	mustNil(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "cal", Org: "other.org"}, nil, moved))
	if _, ok := moved.Data[storage.AuditMovedFrom]; ok {
		t.Fatalf("PutProjectOrg changed the caller's event data: %v", moved.Data)
	}
	evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Action: "org.project", Limit: 1000})
	mustNil(t, err)
	for i, e := range evs {
		want := ""
		if i == len(evs)-1 {
			want = "example.com"
			if e.Data["project"] != "cal" || e.Data["org"] != "other.org" {
				t.Fatalf("the move's event has data %v, want the caller's with %s", e.Data, storage.AuditMovedFrom)
			}
		}
		if got := e.Data[storage.AuditMovedFrom]; got != want {
			t.Fatalf("org.project event %d of %d: %s %q, want %q (data %v)", i+1, len(evs), storage.AuditMovedFrom, got, want, e.Data)
		}
	}
	mustNil(t, s.DeleteProjectOrg(ctx, "example.com", "mail", nil, ev("org.project_remove")))
	o, projects, err = s.GetOrgProjects(ctx, "example.com")
	mustNil(t, err)
	want(t, o, projects, []string{"mail.send", "drive.read"})

	_, _, err = s.GetOrgProjects(ctx, "nowhere.example")
	wantErr(t, err, storage.ErrNotFound)
	_, _, err = s.UpdateOrg(ctx, "nowhere.example", func(o storage.Org, _ []storage.ProjectOrg) (storage.Org, error) { return o, nil }, ev("org.policy"))
	wantErr(t, err, storage.ErrNotFound)
}

// testUpdateUser: UpdateUser changes a user's suspension in one
// transaction, keeping the rest; a user that does not exist (deleted
// meanwhile) is ErrNotFound and is not created, and a fn that fails
// changes nothing; neither writes an event.
func testUpdateUser(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))
	ann := storage.User{Email: "ann@example.com", Org: "example.com", CreatedAt: t0}
	mustNil(t, s.PutUsers(ctx, []storage.User{ann}, storage.SameEvent(ev("user.put"))))
	suspend := func(u storage.User) (storage.User, error) { u.Suspended = true; return u, nil }

	got, err := s.UpdateUser(ctx, ann.Email, func(u storage.User) (storage.User, error) {
		if u.Email != ann.Email || u.Org != ann.Org || u.Suspended || !u.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
			return u, fmt.Errorf("fn given %+v, want %+v", u, ann)
		}
		return suspend(u)
	}, ev("user.suspend"))
	mustNil(t, err)
	stored, err := s.GetUser(ctx, ann.Email)
	mustNil(t, err)
	if !got.Suspended || stored != got {
		t.Fatalf("UpdateUser returned %+v, GetUser then %+v: want the same, suspended", got, stored)
	}
	_, err = s.UpdateUser(ctx, ann.Email, func(u storage.User) (storage.User, error) {
		u.Suspended = false
		return u, fmt.Errorf("refused: %w", errStale)
	}, ev("user.unsuspend"))
	wantErr(t, err, errStale)
	_, err = s.UpdateUser(ctx, ann.Email, func(u storage.User) (storage.User, error) {
		u.Org, u.Suspended = "other.org", false
		return u, nil
	}, ev("user.unsuspend"))
	if err == nil {
		t.Fatal("UpdateUser moved a user to another organization")
	}
	if u, err := s.GetUser(ctx, ann.Email); err != nil || !u.Suspended || u.Org != ann.Org {
		t.Fatalf("after refused updates: %+v, %v; want the user unchanged", u, err)
	}

	mustNil(t, s.DeleteUser(ctx, ann.Email, ev("user.delete")))
	_, err = s.UpdateUser(ctx, ann.Email, suspend, ev("user.suspend"))
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetUser(ctx, ann.Email)
	wantErr(t, err, storage.ErrNotFound)
	if n, m := countEvents(t, s, "user.suspend"), countEvents(t, s, "user.unsuspend"); n != 1 || m != 0 {
		t.Fatalf("user.suspend events %d, user.unsuspend %d; want 1 and 0", n, m)
	}
}

// testProjectOrgChecked: PutProjectOrg and DeleteProjectOrg call their
// check with the organization the change names and the projects placed in
// it before the change, in their transaction; a check that fails changes
// nothing and writes no event, one that passes changes as without it. A
// missing organization, or a project DeleteProjectOrg does not find in it,
// is ErrNotFound without a call.
func testProjectOrgChecked(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for _, d := range []string{"example.com", "other.org"} {
		mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: d, BlockedScopes: []string{"mail.send"}, CreatedAt: t0}, ev("org.create")))
	}
	mustNil(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "ads", Org: "example.com"}, nil, ev("org.project")))
	mustNil(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: "other.org", Internal: true}, nil, ev("org.project")))
	calls := 0
	// check returns refuse after recording in given whether it was given
	// example.com with the projects want.
	check := func(refuse error, given *error, want ...storage.ProjectOrg) func(storage.Org, []storage.ProjectOrg) error {
		return func(o storage.Org, projects []storage.ProjectOrg) error {
			calls++
			if o.Domain != "example.com" || !slices.Equal(o.BlockedScopes, []string{"mail.send"}) || !o.CreatedAt.Equal(t0.Truncate(time.Microsecond)) || !slices.Equal(projects, want) {
				*given = fmt.Errorf("check given %+v with projects %+v, want example.com with %+v", o, projects, want)
			}
			return refuse
		}
	}
	projectsOf := func(domain string) []storage.ProjectOrg {
		_, projects, err := s.GetOrgProjects(ctx, domain)
		mustNil(t, err)
		return projects
	}
	ads := storage.ProjectOrg{Project: "ads", Org: "example.com"}
	tests := []struct {
		name string
		// change makes the change with check.
		change func(check func(storage.Org, []storage.ProjectOrg) error) error
		action string
		// before are example.com's projects before it, after after it;
		// other is other.org's after it.
		before, after, other []storage.ProjectOrg
	}{
		{"place", func(check func(storage.Org, []storage.ProjectOrg) error) error {
			return s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "mail", Org: "example.com"}, check, ev("org.project"))
		}, "org.project", []storage.ProjectOrg{ads}, []storage.ProjectOrg{ads, {Project: "mail", Org: "example.com"}}, []storage.ProjectOrg{{Project: "shop", Org: "other.org", Internal: true}}},
		{"move", func(check func(storage.Org, []storage.ProjectOrg) error) error {
			return s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: "example.com"}, check, ev("org.project"))
		}, "org.project", []storage.ProjectOrg{ads, {Project: "mail", Org: "example.com"}}, []storage.ProjectOrg{ads, {Project: "mail", Org: "example.com"}, {Project: "shop", Org: "example.com"}}, nil},
		{"remove", func(check func(storage.Org, []storage.ProjectOrg) error) error {
			return s.DeleteProjectOrg(ctx, "example.com", "mail", check, ev("org.project_remove"))
		}, "org.project_remove", []storage.ProjectOrg{ads, {Project: "mail", Org: "example.com"}, {Project: "shop", Org: "example.com"}}, []storage.ProjectOrg{ads, {Project: "shop", Org: "example.com"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, other := countEvents(t, s, tt.action), projectsOf("other.org")
			var given error
			wantErr(t, tt.change(check(fmt.Errorf("refused: %w", errStale), &given, tt.before...)), errStale)
			mustNil(t, given)
			if got := projectsOf("example.com"); !slices.Equal(got, tt.before) || !slices.Equal(projectsOf("other.org"), other) {
				t.Fatalf("after a refused change: projects %+v and %+v, want %+v and %+v", got, projectsOf("other.org"), tt.before, other)
			}
			if n := countEvents(t, s, tt.action); n != events {
				t.Fatalf("a refused change wrote %d %s events", n-events, tt.action)
			}
			mustNil(t, tt.change(check(nil, &given, tt.before...)))
			mustNil(t, given)
			if got := projectsOf("example.com"); !slices.Equal(got, tt.after) || !slices.Equal(projectsOf("other.org"), tt.other) {
				t.Fatalf("after the change: projects %+v and %+v, want %+v and %+v", got, projectsOf("other.org"), tt.after, tt.other)
			}
		})
	}
	before := calls
	refuse := func(storage.Org, []storage.ProjectOrg) error { calls++; return errStale }
	wantErr(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "cal", Org: "nowhere.example"}, refuse, ev("org.project")), storage.ErrNotFound)
	wantErr(t, s.DeleteProjectOrg(ctx, "nowhere.example", "ads", refuse, ev("org.project_remove")), storage.ErrNotFound)
	wantErr(t, s.DeleteProjectOrg(ctx, "example.com", "mail", refuse, ev("org.project_remove")), storage.ErrNotFound)
	mustNil(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "cal", Org: "other.org"}, nil, ev("org.project")))
	wantErr(t, s.DeleteProjectOrg(ctx, "example.com", "cal", refuse, ev("org.project_remove")), storage.ErrNotFound)
	if calls != before {
		t.Fatal("check called for a missing organization or project")
	}
	if _, err := s.GetProjectOrg(ctx, "cal"); err != nil {
		t.Fatalf("a project removed from an organization it is not in: %v", err)
	}
}

// testProjectOrgCheckedConcurrent: a checked placement of a project and an
// update of the organization it is placed in at once. Both lock the
// organization, so whichever reads it first, the other sees what it
// committed: a placement whose check waits on the update sees the new
// policy (and its check, expecting the one before, refuses), and an
// update that waits on the placement is given the project placed. A store
// that let either read before the other committed would let the admin
// API's If-Match of one pass on a state the other had changed.
func testProjectOrgCheckedConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for first := range 2 { // 0: the update reads first; 1: the placement
		domain := fmt.Sprintf("o%d.example", first)
		mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: domain, CreatedAt: t0}, ev("org.create")))
		var given []storage.ProjectOrg // to the update
		errs := make([]error, 2)
		raceUpdates(s, first, func(i int, read func()) error {
			if i == 0 {
				_, _, errs[0] = s.UpdateOrg(ctx, domain, func(o storage.Org, projects []storage.ProjectOrg) (storage.Org, error) {
					read()
					given = projects
					o.BlockedScopes = []string{"mail.send"}
					return o, nil
				}, ev("org.policy"))
			} else {
				errs[1] = s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: domain}, func(o storage.Org, _ []storage.ProjectOrg) error {
					read()
					if len(o.BlockedScopes) != 0 {
						return errStale
					}
					return nil
				}, ev("org.project"))
			}
			return nil
		})
		if first == 0 && (errs[0] != nil || !errors.Is(errs[1], errStale)) {
			t.Fatalf("the update read first: update %v, placement %v; want the placement's check to see the update and refuse", errs[0], errs[1])
		}
		if first == 1 && (errs[1] != nil || errs[0] != nil || len(given) != 1) {
			t.Fatalf("the placement read first: placement %v, update %v given projects %+v; want the update given the project placed", errs[1], errs[0], given)
		}
	}
}

// testProjectOrgMovesCrossed: two checked moves at once in opposite
// directions between two organizations, each checking (as the admin
// API's If-Match does) that the organization it moves a project to still
// has the projects it had before either move. Each move changes the other
// one's destination, the organization its project leaves, so whichever
// locks first, the other must see what it committed and refuse: a store
// that locked only the destination let both checks pass on states the
// other move was changing, and both moves were made. Locking both
// organizations in one order, the later move waits; in two orders, the
// moves would deadlock on PostgreSQL.
func testProjectOrgMovesCrossed(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for first := range 2 {
		a, b := fmt.Sprintf("a%d.example", first), fmt.Sprintf("b%d.example", first)
		for _, d := range []string{a, b} {
			mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: d, CreatedAt: t0}, ev("org.create")))
		}
		x, y := storage.ProjectOrg{Project: fmt.Sprintf("x%d", first), Org: a}, storage.ProjectOrg{Project: fmt.Sprintf("y%d", first), Org: b}
		mustNil(t, s.PutProjectOrg(ctx, x, nil, ev("org.project")))
		mustNil(t, s.PutProjectOrg(ctx, y, nil, ev("org.project")))
		// moves[i] moves a project to the organization whose projects,
		// before either move, are before[i].
		moves := []storage.ProjectOrg{{Project: x.Project, Org: b}, {Project: y.Project, Org: a}}
		before := [][]storage.ProjectOrg{{y}, {x}}
		errs := make([]error, 2)
		raceUpdates(s, first, func(i int, read func()) error {
			errs[i] = s.PutProjectOrg(ctx, moves[i], func(_ storage.Org, projects []storage.ProjectOrg) error {
				read()
				if !slices.Equal(projects, before[i]) {
					return errStale
				}
				return nil
			}, ev("org.project"))
			return nil
		})
		if deadlocked(errs[0]) || deadlocked(errs[1]) {
			t.Fatalf("first %d: moves %v and %v: a deadlock", first, errs[0], errs[1])
		}
		second := 1 - first
		if errs[first] != nil || !errors.Is(errs[second], errStale) {
			t.Fatalf("move %d locked first: moves %v and %v; want it made and the other's check to see it and refuse", first, errs[first], errs[second])
		}
		_, inA, err := s.GetOrgProjects(ctx, a)
		mustNil(t, err)
		_, inB, err := s.GetOrgProjects(ctx, b)
		mustNil(t, err)
		wantA, wantB := []storage.ProjectOrg(nil), []storage.ProjectOrg{moves[0], y}
		if first == 1 {
			wantA, wantB = []storage.ProjectOrg{x, moves[1]}, nil
		}
		if !slices.Equal(inA, wantA) || !slices.Equal(inB, wantB) {
			t.Fatalf("move %d made: projects %+v and %+v, want %+v and %+v", first, inA, inB, wantA, wantB)
		}
	}

	// Unchecked, the crossed moves race from the start, many times: each
	// takes its first lock before the other its second often enough that
	// locks taken in two orders deadlock. Both are made, in either order.
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "a.example", CreatedAt: t0}, ev("org.create")))
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "b.example", CreatedAt: t0}, ev("org.create")))
	for round := range 50 {
		x, y := storage.ProjectOrg{Project: fmt.Sprintf("x%02d", round), Org: "a.example"}, storage.ProjectOrg{Project: fmt.Sprintf("y%02d", round), Org: "b.example"}
		mustNil(t, s.PutProjectOrg(ctx, x, nil, ev("org.project")))
		mustNil(t, s.PutProjectOrg(ctx, y, nil, ev("org.project")))
		errs := make(chan error, 2)
		go func() {
			errs <- s.PutProjectOrg(ctx, storage.ProjectOrg{Project: x.Project, Org: "b.example"}, nil, ev("org.project"))
		}()
		go func() {
			errs <- s.PutProjectOrg(ctx, storage.ProjectOrg{Project: y.Project, Org: "a.example"}, nil, ev("org.project"))
		}()
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatalf("round %d: crossed unchecked moves: %v", round, err)
			}
		}
		gotX, err := s.GetProjectOrg(ctx, x.Project)
		mustNil(t, err)
		gotY, err := s.GetProjectOrg(ctx, y.Project)
		mustNil(t, err)
		if gotX.Org != "b.example" || gotY.Org != "a.example" {
			t.Fatalf("round %d: after crossed moves %+v and %+v, want each in the other organization", round, gotX, gotY)
		}
	}
}

// testProjectOrgMovesSame: one project moved to two organizations at
// once. The later move read where the project was before the earlier one
// committed, and waits for the earlier one's lock of that organization;
// then the project is elsewhere, in an organization it has not locked, so
// it reads again and locks that one. Both are made, the later last, its
// check called once, with its destination's projects.
func testProjectOrgMovesSame(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for _, d := range []string{"a.example", "b.example", "c.example"} {
		mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: d, CreatedAt: t0}, ev("org.create")))
	}
	mustNil(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: "a.example"}, nil, ev("org.project")))
	to := []string{"b.example", "c.example"}
	errs, calls := make([]error, 2), make([]int, 2)
	raceUpdates(s, 0, func(i int, read func()) error {
		errs[i] = s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: to[i]}, func(o storage.Org, projects []storage.ProjectOrg) error {
			if calls[i]++; calls[i] == 1 {
				read()
			}
			if o.Domain != to[i] || len(projects) != 0 {
				return fmt.Errorf("check given %s with projects %+v, want %s with none", o.Domain, projects, to[i])
			}
			return nil
		}, ev("org.project"))
		return nil
	})
	if errs[0] != nil || errs[1] != nil || calls[0] != 1 || calls[1] != 1 {
		t.Fatalf("moves %v and %v, checks called %v times; want both made, each checked once", errs[0], errs[1], calls)
	}
	if p, err := s.GetProjectOrg(ctx, "shop"); err != nil || p.Org != "c.example" {
		t.Fatalf("after both moves: %+v, %v; want the project in c.example", p, err)
	}
}

// testProjectOrgMoveUpdate: an update of an organization, checking (as
// the admin API's If-Match does) that it still has the projects it had,
// while a project is moved out of it. The move locks the organization it
// leaves too, so whichever reads first, the other sees what it committed:
// an update that waits on the move is given the projects without the one
// moved (and its check refuses), and a move that waits on the update
// makes its move after it. A store that let the update read while the
// move held only its destination would let the update's check pass on a
// state the move was changing.
func testProjectOrgMoveUpdate(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for first := range 2 { // 0: the update reads first; 1: the move
		from, to := fmt.Sprintf("from%d.example", first), fmt.Sprintf("a-to%d.example", first) // to sorts first
		for _, d := range []string{from, to} {
			mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: d, CreatedAt: t0}, ev("org.create")))
		}
		p := storage.ProjectOrg{Project: fmt.Sprintf("shop%d", first), Org: from}
		mustNil(t, s.PutProjectOrg(ctx, p, nil, ev("org.project")))
		errs := make([]error, 2)
		raceUpdates(s, first, func(i int, read func()) error {
			if i == 0 {
				_, _, errs[0] = s.UpdateOrg(ctx, from, func(o storage.Org, projects []storage.ProjectOrg) (storage.Org, error) {
					read()
					if !slices.Equal(projects, []storage.ProjectOrg{p}) {
						return o, errStale
					}
					o.BlockedScopes = []string{"mail.send"}
					return o, nil
				}, ev("org.policy"))
			} else {
				errs[1] = s.PutProjectOrg(ctx, storage.ProjectOrg{Project: p.Project, Org: to}, func(storage.Org, []storage.ProjectOrg) error {
					read()
					return nil
				}, ev("org.project"))
			}
			return nil
		})
		if deadlocked(errs[0]) || deadlocked(errs[1]) {
			t.Fatalf("first %d: update %v, move %v: a deadlock", first, errs[0], errs[1])
		}
		o, projects, err := s.GetOrgProjects(ctx, from)
		mustNil(t, err)
		if first == 0 && (errs[0] != nil || errs[1] != nil || !slices.Equal(o.BlockedScopes, []string{"mail.send"})) {
			t.Fatalf("the update read first: update %v, move %v, blocked scopes %v; want both made, the update first", errs[0], errs[1], o.BlockedScopes)
		}
		if first == 1 && (errs[1] != nil || !errors.Is(errs[0], errStale) || len(o.BlockedScopes) != 0) {
			t.Fatalf("the move read first: move %v, update %v, blocked scopes %v; want the update's check to see the project moved and refuse", errs[1], errs[0], o.BlockedScopes)
		}
		if len(projects) != 0 {
			t.Fatalf("first %d: %s still has projects %+v after the move", first, from, projects)
		}
	}
}

// testDeleteOrgPlacing: an organization deleted while a project in it is
// placed again (made internal, say), the placement having locked the
// organization first. The deletion waits for it, then deletes the
// organization with the project: neither fails. A deletion that took the
// organization's projects before its row would hold the project's row the
// placement waits for while waiting for the organization's row the
// placement holds, and one of them would fail as a deadlock.
func testDeleteOrgPlacing(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))
	mustNil(t, s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: "example.com"}, nil, ev("org.project")))
	errs := make([]error, 2)
	raceUpdates(s, 0, func(i int, read func()) error {
		if i == 0 {
			errs[0] = s.PutProjectOrg(ctx, storage.ProjectOrg{Project: "shop", Org: "example.com", Internal: true}, func(storage.Org, []storage.ProjectOrg) error {
				read() // holding the organization's row while the deletion begins
				return nil
			}, ev("org.project"))
		} else {
			// Not read: the placement goes on once raceUpdates' bound
			// has passed, the deletion having begun.
			errs[1] = s.DeleteOrg(ctx, "example.com", nil, ev("org.delete"))
		}
		return nil
	})
	if errs[0] != nil || errs[1] != nil {
		t.Fatalf("placement %v, deletion %v; want both made, one after the other", errs[0], errs[1])
	}
	_, err := s.GetProjectOrg(ctx, "shop")
	wantErr(t, err, storage.ErrNotFound)
	_, err = s.GetOrg(ctx, "example.com")
	wantErr(t, err, storage.ErrNotFound)
}
