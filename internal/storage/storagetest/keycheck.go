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

// errFull is what the key checks below refuse with: the account has as
// many keys as they allow (the admin API's cap).
var errFull = errors.New("full")

// keyIDs lists the IDs of keys, in order.
func keyIDs(keys []storage.Key) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

// testCreateKeyChecked: CreateKey calls its check with the account's
// keys, oldest first, in its transaction; a check that fails creates
// nothing and writes no event, one that passes creates the key; an
// account that does not exist is ErrNotFound without a call.
func testCreateKeyChecked(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	a := account("100000000000000000001", "job@proj.example")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	k1 := key("k1", a.ID)
	k1.Disabled = true // every key is given, disabled or not
	mustNil(t, s.CreateKey(ctx, k1, nil, ev("key.create")))
	k0 := key("k0", a.ID) // sorts first by ID, created later
	k0.CreatedAt = t0.Add(time.Second)
	mustNil(t, s.CreateKey(ctx, k0, nil, ev("key.create")))
	other := account("100000000000000000002", "other@proj.example")
	mustNil(t, s.CreateAccount(ctx, other, ev("account.create")))
	mustNil(t, s.CreateKey(ctx, key("k-other", other.ID), nil, ev("key.create")))

	var given [][]string
	check := func(refuse error) func([]storage.Key) error {
		return func(keys []storage.Key) error {
			given = append(given, keyIDs(keys))
			return refuse
		}
	}
	before := countEvents(t, s, "key.create")
	wantErr(t, s.CreateKey(ctx, key("k2", a.ID), check(errFull), ev("key.create")), errFull)
	wantErr(t, errOf(s.GetKey(ctx, "k2")), storage.ErrNotFound)
	if n := countEvents(t, s, "key.create"); n != before {
		t.Fatalf("a refused CreateKey wrote an event: %d key.create events, want %d", n, before)
	}
	mustNil(t, s.CreateKey(ctx, key("k2", a.ID), check(nil), ev("key.create")))
	mustNil(t, errOf(s.GetKey(ctx, "k2")))
	want := [][]string{{"k1", "k0"}, {"k1", "k0"}}
	if !slices.EqualFunc(given, want, slices.Equal) {
		t.Fatalf("checks given keys %v, want %v (the account's, oldest first)", given, want)
	}

	given = nil
	wantErr(t, s.CreateKey(ctx, key("k3", "100000000000000000009"), check(nil), ev("key.create")), storage.ErrNotFound)
	if given != nil {
		t.Fatalf("the check was called for an account that does not exist, with %v", given)
	}
}

// testCreateKeyCheckedConcurrent: two keys added to one account at once,
// each with a check that allows two keys, to an account that has one:
// only one is added. Without a lock both checks count one key, and the
// account ends with three (a cap on keys would not hold).
func testCreateKeyCheckedConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for first := range 2 {
		a := account(fmt.Sprintf("10000000000000000000%d", first), fmt.Sprintf("job%d@proj.example", first))
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
		mustNil(t, s.CreateKey(ctx, key(fmt.Sprintf("k%d", first), a.ID), nil, ev("key.create")))
		err := raceUpdates(s, first, func(i int, read func()) error {
			return s.CreateKey(ctx, key(fmt.Sprintf("k%d-%d", first, i), a.ID), func(keys []storage.Key) error {
				read()
				if len(keys) >= 2 {
					return errFull
				}
				return nil
			}, ev("key.create"))
		})
		keys, lerr := s.ListKeys(ctx, a.ID)
		mustNil(t, lerr)
		if len(keys) != 2 || !errors.Is(err, errFull) {
			t.Fatalf("change %d first: after two concurrent CreateKeys allowing two keys: keys %v, error %v; want two keys and one refused",
				first, keyIDs(keys), err)
		}
	}
}
