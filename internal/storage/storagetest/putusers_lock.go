package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

// deadlocked reports whether err is PostgreSQL's deadlock_detected (40P01).
func deadlocked(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "40P01") || strings.Contains(err.Error(), "deadlock"))
}

// testPutUsersDeleteOrg: a put of users of an organization, existing
// users first and a new one last, while the organization is deleted.
// DeleteOrg locks the organization's row, then deletes its users; a put
// that held users' rows before it took its share of the organization's
// row (which inserting a user takes) would wait for the deletion while
// the deletion waits for it: a deadlock on PostgreSQL. Whichever goes
// first, the other waits: the deletion succeeds, and the put either
// succeeds before it or finds the organization gone.
func testPutUsersDeleteOrg(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const n = 1500
	for i, delay := range []time.Duration{2 * time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond, 60 * time.Millisecond} {
		domain := fmt.Sprintf("d%d.example", i)
		mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: domain, CreatedAt: t0}, ev("org.create")))
		users := make([]storage.User, 0, n+1)
		for j := range n {
			users = append(users, storage.User{Email: fmt.Sprintf("u%04d@%s", j, domain), Org: domain, CreatedAt: t0})
		}
		mustNil(t, s.PutUsers(ctx, users, storage.SameEvent(ev("user.import"))))
		// The same users again (their rows exist), then a new one.
		users = append(users, storage.User{Email: "zz-new@" + domain, Org: domain, CreatedAt: t0})
		put := make(chan error, 1)
		go func() { put <- s.PutUsers(ctx, users, storage.SameEvent(ev("user.import"))) }()
		time.Sleep(delay)
		delErr := s.DeleteOrg(ctx, domain, nil, ev("org.delete"))
		putErr := <-put
		if deadlocked(delErr) || deadlocked(putErr) {
			t.Fatalf("delay %v: delete org %v, put users %v: a deadlock", delay, delErr, putErr)
		}
		if delErr != nil {
			t.Fatalf("delay %v: delete org: %v (put users: %v)", delay, delErr, putErr)
		}
		if putErr != nil && !errors.Is(putErr, storage.ErrNotFound) {
			t.Errorf("delay %v: put users of an organization deleted meanwhile: %v, want ErrNotFound", delay, putErr)
		}
	}
}

// testPutUsersConcurrent: two puts of the same existing users, in opposite
// orders, at once. Both succeed, one after the other: a store that locked
// the users' rows in the order given would deadlock on PostgreSQL.
func testPutUsersConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const n = 1500
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "other.org", CreatedAt: t0}, ev("org.create")))
	var users []storage.User
	for j := range n {
		d := []string{"example.com", "other.org"}[j%2]
		users = append(users, storage.User{Email: fmt.Sprintf("u%04d@%s", j, d), Org: d, CreatedAt: t0})
	}
	mustNil(t, s.PutUsers(ctx, users, storage.SameEvent(ev("user.import"))))
	reversed := slices.Clone(users)
	slices.Reverse(reversed)
	errs := make(chan error, 2)
	go func() { errs <- s.PutUsers(ctx, users, storage.SameEvent(ev("user.import"))) }()
	go func() { errs <- s.PutUsers(ctx, reversed, storage.SameEvent(ev("user.import"))) }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("two puts of the same users at once: %v", err)
		}
	}
}

// testPutUsersDuplicateLastWins: of an email given more than once in one
// put, the last one given is stored, as when the users were put one by
// one in the order given: sorting them by email for the locks, and
// upserting many at once, must keep that. A new user keeps the creation
// time of the first one given, an existing one its own.
func testPutUsersDuplicateLastWins(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "other.org", CreatedAt: t0}, ev("org.create")))
	created := func(j int) time.Time { return t0.Add(time.Duration(j) * time.Second).Truncate(time.Microsecond) }
	for _, tc := range []struct {
		name         string
		n, distinct  int
		existingFrom time.Time // zero: the users are new
	}{
		{"new", 100, 7, time.Time{}},
		{"existing", 100, 7, t0.Add(-time.Hour)},
		// More than one statement's worth, each email given 3 times.
		{"many new", 3000, 1000, time.Time{}},
		{"many existing", 3000, 1000, t0.Add(-time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			email := func(j int) string { return fmt.Sprintf("%s-%04d@example.com", tc.name, j%tc.distinct) }
			if !tc.existingFrom.IsZero() {
				var old []storage.User
				for j := range tc.distinct {
					old = append(old, storage.User{Email: email(j), Org: "other.org", CreatedAt: tc.existingFrom})
				}
				mustNil(t, s.PutUsers(ctx, old, storage.SameEvent(ev("user.import"))))
			}
			var users []storage.User
			for j := range tc.n {
				// Only the last one given of each email is suspended and
				// in example.com; the first is created first.
				last := j >= tc.n-tc.distinct
				org := map[bool]string{true: "example.com", false: "other.org"}[last]
				users = append(users, storage.User{Email: email(j), Org: org, Suspended: last, CreatedAt: created(j)})
			}
			mustNil(t, s.PutUsers(ctx, users, storage.SameEvent(ev("user.import"))))
			for j := range tc.distinct {
				want := storage.User{Email: email(j), Org: "example.com", Suspended: true, CreatedAt: created(j)}
				if !tc.existingFrom.IsZero() {
					want.CreatedAt = tc.existingFrom.Truncate(time.Microsecond)
				}
				u, err := s.GetUser(ctx, want.Email)
				if err != nil || u.Org != want.Org || u.Suspended != want.Suspended || !u.CreatedAt.Equal(want.CreatedAt) {
					t.Fatalf("GetUser(%s) = %+v, %v, want %+v: the last one given, created when first given or before", want.Email, u, err, want)
				}
			}
		})
	}
}

// testPutUsersManyOrgs: a put of users of more organizations than a
// backend locks in one statement, given in no order, puts them all; one
// whose organization is missing, wherever it is among them, is
// ErrNotFound naming it, and puts none of them.
func testPutUsersManyOrgs(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const n = 1100
	// The organizations, in one transaction: one each took most of the
	// test's time.
	var orgs []storage.Org
	for i := range n {
		orgs = append(orgs, storage.Org{Domain: fmt.Sprintf("org%04d.test", i), CreatedAt: t0})
	}
	mustNil(t, s.Load(ctx, storage.Bulk{Orgs: orgs}, []storage.AuditEvent{ev("org.import")}))
	var users []storage.User
	for i := range n {
		d := fmt.Sprintf("org%04d.test", (i*7)%n) // every one, out of order
		users = append(users, storage.User{Email: "u@" + d, Org: d, CreatedAt: t0})
	}
	mustNil(t, s.PutUsers(ctx, users, storage.SameEvent(ev("user.import"))))
	for _, u := range users {
		if got, err := s.GetUser(ctx, u.Email); err != nil || got.Org != u.Org {
			t.Fatalf("GetUser(%s) = %+v, %v; want it in %s", u.Email, got, err, u.Org)
		}
	}
	for _, missing := range []string{"aaa.test", "org0700.test0", "zzz.test"} {
		t.Run(missing, func(t *testing.T) {
			more := append(slices.Clone(users), storage.User{Email: "new@" + missing, Org: missing, CreatedAt: t0})
			for i := range more {
				more[i].Suspended = true
			}
			err := s.PutUsers(ctx, more, storage.SameEvent(ev("user.import")))
			if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), missing) {
				t.Fatalf("a put with a user of %s, which does not exist: %v, want ErrNotFound naming it", missing, err)
			}
			if u, err := s.GetUser(ctx, users[0].Email); err != nil || u.Suspended {
				t.Errorf("after the refused put, %s is %+v, %v; want it unchanged", users[0].Email, u, err)
			}
		})
	}
}

// testPutUsersFlipped: a put gives its event the users whose Suspended
// it changes, as given, sorted by email: not the users it creates, nor
// those it leaves as they were (of an email given twice, the last one
// given counts); more than one statement's worth of them too. The event
// is written with the put.
func testPutUsersFlipped(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))
	user := func(name string, suspended bool) storage.User {
		return storage.User{Email: name + "@example.com", Org: "example.com", Suspended: suspended, CreatedAt: t0}
	}
	var old []storage.User
	for i := range 1200 {
		old = append(old, user(fmt.Sprintf("many-%04d", i), i%2 == 0))
	}
	old = append(old, user("ann", false), user("bob", true), user("cat", true), user("eve", false))
	mustNil(t, s.PutUsers(ctx, old, func(flipped []storage.User) storage.AuditEvent {
		if len(flipped) != 0 {
			t.Errorf("a put of new users flipped %d", len(flipped))
		}
		return ev("user.import")
	}))

	put := []storage.User{
		user("cat", false),                    // unsuspended
		user("bob", true),                     // as it was
		user("dan", true),                     // new
		user("eve", true), user("eve", false), // the last one given: as it was
		user("ann", true), // suspended
	}
	for i := 1199; i >= 0; i-- { // every one flipped, given in reverse
		put = append(put, user(fmt.Sprintf("many-%04d", i), i%2 != 0))
	}
	var got []storage.User
	mustNil(t, s.PutUsers(ctx, put, func(flipped []storage.User) storage.AuditEvent {
		got = flipped
		e := ev("user.import")
		e.Data = map[string]string{"flipped": fmt.Sprint(len(flipped))}
		return e
	}))
	want := []storage.User{user("ann", true), user("cat", false)}
	for i := range 1200 {
		want = append(want, user(fmt.Sprintf("many-%04d", i), i%2 != 0))
	}
	if len(got) != len(want) {
		t.Fatalf("flipped %d users, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Email != want[i].Email || got[i].Suspended != want[i].Suspended {
			t.Fatalf("flipped[%d] = %s suspended %v, want %s suspended %v", i, got[i].Email, got[i].Suspended, want[i].Email, want[i].Suspended)
		}
	}
	evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Newest: true, Limit: 1})
	mustNil(t, err)
	if len(evs) != 1 || evs[0].Action != "user.import" || evs[0].Data["flipped"] != "1202" {
		t.Fatalf("the put's event: %+v, want user.import with flipped 1202", evs)
	}
}

// testPutUsersFlippedConcurrent: a put that waits for an update of a
// user it replaces gives its event the flag the update committed, not
// the one from before: it reads the flags under the users' locks. The
// update's fn, in its transaction, starts the put and waits for it to
// wait (or end, or a bound). A put that read the flag without the lock
// read it from before the update, then, waiting for the row only to
// write it, undid the update with no record of it in its event.
func testPutUsersFlippedConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))
	for _, suspended := range []bool{false, true} {
		t.Run(fmt.Sprintf("put suspended %v", suspended), func(t *testing.T) {
			u := storage.User{Email: fmt.Sprintf("u-%v@example.com", suspended), Org: "example.com", Suspended: suspended, CreatedAt: t0}
			mustNil(t, s.PutUsers(ctx, []storage.User{u}, storage.SameEvent(ev("user.put"))))
			var (
				flipped []storage.User
				perr    error
				done    = make(chan struct{})
				waited  = waitMark(s)
			)
			_, err := s.UpdateUser(ctx, u.Email, func(old storage.User) (storage.User, error) {
				go func() {
					defer close(done)
					perr = s.PutUsers(ctx, []storage.User{u}, func(f []storage.User) storage.AuditEvent {
						flipped = f
						return ev("user.put")
					})
				}()
				awaitPeer(nil, done, waited)
				old.Suspended = !suspended
				return old, nil
			}, ev("user.update"))
			mustNil(t, err)
			<-done
			mustNil(t, perr)
			got, err := s.GetUser(ctx, u.Email)
			mustNil(t, err)
			if got.Suspended != suspended {
				t.Fatalf("after the update and the put, suspended %v, want the put's %v", got.Suspended, suspended)
			}
			if len(flipped) != 1 || flipped[0].Email != u.Email || flipped[0].Suspended != suspended {
				t.Fatalf("the put's event was given %+v, want %s (suspended %v), whose flag the update had changed", flipped, u.Email, suspended)
			}
		})
	}
}
