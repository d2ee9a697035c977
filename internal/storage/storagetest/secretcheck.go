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

// secretIDs lists the IDs of secs, in order, each with "-off" when it is
// disabled.
func secretIDs(secs []storage.Secret) []string {
	ids := make([]string, len(secs))
	for i, sec := range secs {
		ids[i] = sec.ID
		if sec.Disabled {
			ids[i] += "-off"
		}
	}
	return ids
}

// enabledSecrets counts the enabled secrets of secs.
func enabledSecrets(secs []storage.Secret) int {
	n := 0
	for _, sec := range secs {
		if !sec.Disabled {
			n++
		}
	}
	return n
}

// testCreateSecretChecked: CreateSecret calls its check with the
// account's secrets, oldest first, disabled ones included, in its
// transaction; a check that fails creates nothing and writes no event,
// one that passes creates the secret; an account that does not exist is
// ErrNotFound without a call.
func testCreateSecretChecked(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a := account("100000000000000000001", "job@proj.example")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	s1 := secret("s1", a.ID, t0)
	s1.Disabled = true
	mustNil(t, s.CreateSecret(ctx, s1, nil, ev("secret.create")))
	mustNil(t, s.CreateSecret(ctx, secret("s0", a.ID, t0.Add(time.Second)), nil, ev("secret.create"))) // sorts first by ID, created later
	other := account("100000000000000000002", "other@proj.example")
	mustNil(t, s.CreateAccount(ctx, other, ev("account.create")))
	mustNil(t, s.CreateSecret(ctx, secret("s-other", other.ID, t0), nil, ev("secret.create")))

	var given [][]string
	check := func(refuse error) func([]storage.Secret) error {
		return func(secs []storage.Secret) error {
			given = append(given, secretIDs(secs))
			return refuse
		}
	}
	later := t0.Add(2 * time.Second)
	before := countEvents(t, s, "secret.create")
	wantErr(t, s.CreateSecret(ctx, secret("s2", a.ID, later), check(errFull), ev("secret.create")), errFull)
	if secs, err := s.ListSecrets(ctx, a.ID); err != nil || len(secs) != 2 {
		t.Fatalf("after a refused CreateSecret: secrets %v, %v; want the two there were", secretIDs(secs), err)
	}
	if n := countEvents(t, s, "secret.create"); n != before {
		t.Fatalf("a refused CreateSecret wrote an event: %d secret.create events, want %d", n, before)
	}
	mustNil(t, s.CreateSecret(ctx, secret("s2", a.ID, later), check(nil), ev("secret.create")))
	want := [][]string{{"s1-off", "s0"}, {"s1-off", "s0"}}
	if !slices.EqualFunc(given, want, slices.Equal) {
		t.Fatalf("checks given secrets %v, want %v (the account's, oldest first)", given, want)
	}
	if secs, err := s.ListSecrets(ctx, a.ID); err != nil || !slices.Equal(secretIDs(secs), []string{"s1-off", "s0", "s2"}) {
		t.Fatalf("after CreateSecret passed its check: secrets %v, %v; want s2 added", secretIDs(secs), err)
	}

	given = nil
	wantErr(t, s.CreateSecret(ctx, secret("s3", "100000000000000000009", t0), check(nil), ev("secret.create")), storage.ErrNotFound)
	if given != nil {
		t.Fatalf("the check was called for an account that does not exist, with %v", given)
	}
}

// testUpdateSecretChecked: UpdateSecret calls its check after fn with the
// account's secrets, oldest first, the updated one as fn changed it; a
// check that fails changes nothing and writes no event; a secret that
// does not exist is ErrNotFound without a call.
func testUpdateSecretChecked(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a := account("100000000000000000001", "job@proj.example")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	mustNil(t, s.CreateSecret(ctx, secret("s1", a.ID, t0), nil, ev("secret.create")))
	s2 := secret("s2", a.ID, t0.Add(time.Second))
	s2.Disabled = true
	mustNil(t, s.CreateSecret(ctx, s2, nil, ev("secret.create")))
	other := account("100000000000000000002", "other@proj.example")
	mustNil(t, s.CreateAccount(ctx, other, ev("account.create")))
	mustNil(t, s.CreateSecret(ctx, secret("s-other", other.ID, t0), nil, ev("secret.create")))

	var given [][]string
	check := func(refuse error) func([]storage.Secret) error {
		return func(secs []storage.Secret) error {
			given = append(given, secretIDs(secs))
			return refuse
		}
	}
	enable := func(sec storage.Secret) (storage.Secret, error) { sec.Disabled = false; return sec, nil }
	before := countEvents(t, s, "secret.enable")
	wantErr(t, errOf(s.UpdateSecret(ctx, "s2", enable, check(errFull), ev("secret.enable"))), errFull)
	if secs, err := s.ListSecrets(ctx, a.ID); err != nil || !slices.Equal(secretIDs(secs), []string{"s1", "s2-off"}) {
		t.Fatalf("after a refused UpdateSecret: secrets %v, %v; want s2 still disabled", secretIDs(secs), err)
	}
	if n := countEvents(t, s, "secret.enable"); n != before {
		t.Fatalf("a refused UpdateSecret wrote an event: %d secret.enable events, want %d", n, before)
	}
	got, err := s.UpdateSecret(ctx, "s2", enable, check(nil), ev("secret.enable"))
	mustNil(t, err)
	if got.Disabled {
		t.Fatal("UpdateSecret passed its check and returned the secret disabled")
	}
	want := [][]string{{"s1", "s2"}, {"s1", "s2"}}
	if !slices.EqualFunc(given, want, slices.Equal) {
		t.Fatalf("checks given secrets %v, want %v (the account's, oldest first, with the change)", given, want)
	}
	if secs, err := s.ListSecrets(ctx, a.ID); err != nil || !slices.Equal(secretIDs(secs), []string{"s1", "s2"}) {
		t.Fatalf("after UpdateSecret passed its check: secrets %v, %v; want s2 enabled", secretIDs(secs), err)
	}

	given = nil
	wantErr(t, errOf(s.UpdateSecret(ctx, "nope", enable, check(nil), ev("secret.enable"))), storage.ErrNotFound)
	if given != nil {
		t.Fatalf("the check was called for a secret that does not exist, with %v", given)
	}
}

// testSecretChecksConcurrent: two secrets made active in one account at
// once, each with a check that allows two enabled secrets, in an account
// that has one: two CreateSecrets, or a CreateSecret and an UpdateSecret
// enabling a disabled secret. Only one takes effect. Without the lock of
// the account's row both checks count one enabled secret (the enabling
// one counting its own), and the account ends with three (the admin
// API's cap on active secrets would not hold).
func testSecretChecksConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	const allowed = 2
	n := 0
	for _, enable := range []bool{false, true} {
		for first := range 2 {
			n++
			a := account(fmt.Sprintf("1000000000000000000%02d", n), fmt.Sprintf("job%d@proj.example", n))
			mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
			prefix := fmt.Sprintf("a%d-", n)
			mustNil(t, s.CreateSecret(ctx, secret(prefix+"s1", a.ID, t0), nil, ev("secret.create")))
			off := secret(prefix+"s2", a.ID, t0.Add(time.Second))
			off.Disabled = true
			mustNil(t, s.CreateSecret(ctx, off, nil, ev("secret.create")))
			err := raceUpdates(s, first, func(i int, read func()) error {
				if enable && i == 1 {
					_, err := s.UpdateSecret(ctx, off.ID, func(sec storage.Secret) (storage.Secret, error) {
						sec.Disabled = false
						return sec, nil
					}, func(secs []storage.Secret) error {
						read()
						if enabledSecrets(secs) > allowed { // with the enabled one
							return errFull
						}
						return nil
					}, ev("secret.enable"))
					return err
				}
				return s.CreateSecret(ctx, secret(fmt.Sprintf("%snew%d", prefix, i), a.ID, t0.Add(2*time.Second)), func(secs []storage.Secret) error {
					read()
					if enabledSecrets(secs) >= allowed {
						return errFull
					}
					return nil
				}, ev("secret.create"))
			})
			secs, lerr := s.ListSecrets(ctx, a.ID)
			mustNil(t, lerr)
			if enabledSecrets(secs) != allowed || !errors.Is(err, errFull) {
				t.Fatalf("enable %v, change %d first: after two concurrent changes allowing %d enabled secrets: secrets %v, error %v; want %d enabled and one change refused",
					enable, first, allowed, secretIDs(secs), err, allowed)
			}
		}
	}
}
