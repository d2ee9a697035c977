package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
)

const adminScope = "keyward.admin"

// holder returns an account with scopes, enabled or not.
func holder(n int, disabled bool, scopes ...string) storage.Account {
	a := account(fmt.Sprintf("1000000000000000000%02d", n), fmt.Sprintf("a%02d@proj.example", n))
	a.Scopes, a.Disabled = scopes, disabled
	return a
}

func setScopes(scopes ...string) func(storage.Account) (storage.Account, error) {
	return func(a storage.Account) (storage.Account, error) { a.Scopes = scopes; return a, nil }
}

func setDisabled(d bool) func(storage.Account) (storage.Account, error) {
	return func(a storage.Account) (storage.Account, error) { a.Disabled = d; return a, nil }
}

// A change guarded by KeepHeld fails, writing nothing, when it would leave
// no enabled account holding the scope; exactly that scope counts, not one
// it is a prefix of, and disabled accounts do not count.
func testGuardKeepHeld(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	keep := storage.Guard{KeepHeld: adminScope}
	a, b := holder(1, false, "orders.read", adminScope), holder(2, false, adminScope)
	reader, off := holder(3, false, adminScope+".read", "keyward"), holder(4, true, adminScope)
	for _, x := range []storage.Account{a, b, reader, off} {
		mustNil(t, s.CreateAccount(ctx, x, ev("account.create")))
	}
	before := len(verifyAll(t, s))

	_, err := s.UpdateAccount(ctx, a.ID, setScopes("orders.read"), ev("account.update"), keep)
	mustNil(t, err) // b is left
	for name, err := range map[string]error{
		"removing the scope": func() error {
			_, err := s.UpdateAccount(ctx, b.ID, setScopes(), ev("account.update"), keep)
			return err
		}(),
		"disabling": func() error {
			_, err := s.UpdateAccount(ctx, b.ID, setDisabled(true), ev("account.disable"), keep)
			return err
		}(),
		"deleting": s.DeleteAccount(ctx, b.ID, nil, ev("account.delete"), keep),
	} {
		if !errors.Is(err, storage.ErrLastHolder) {
			t.Errorf("%s the last holder: err = %v, want ErrLastHolder", name, err)
		}
	}
	if got, err := s.GetAccount(ctx, b.ID); err != nil || got.Disabled || !slices.Equal(got.Scopes, []string{adminScope}) {
		t.Fatalf("the last holder changed after refused changes: %+v, %v", got, err)
	}
	if n := len(verifyAll(t, s)); n != before+1 {
		t.Errorf("%d audit events after one change and three refusals, want %d", n, before+1)
	}

	// Changes that keep the holder one, or of accounts that hold nothing
	// to keep, pass.
	_, err = s.UpdateAccount(ctx, b.ID, func(x storage.Account) (storage.Account, error) { x.Description = "last"; return x, nil }, ev("account.update"), keep)
	mustNil(t, err)
	_, err = s.UpdateAccount(ctx, reader.ID, setDisabled(true), ev("account.disable"), keep)
	mustNil(t, err)
	mustNil(t, s.DeleteAccount(ctx, a.ID, nil, ev("account.delete"), keep))

	// Enabling the disabled holder makes b's demotion possible; then the
	// former is the last.
	_, err = s.UpdateAccount(ctx, off.ID, setDisabled(false), ev("account.enable"), keep)
	mustNil(t, err)
	_, err = s.UpdateAccount(ctx, b.ID, setDisabled(true), ev("account.disable"), keep)
	mustNil(t, err)
	wantErr(t, s.DeleteAccount(ctx, off.ID, nil, ev("account.delete"), keep), storage.ErrLastHolder)
	// A scope granted again counts again.
	_, err = s.UpdateAccount(ctx, reader.ID, func(x storage.Account) (storage.Account, error) {
		x.Disabled, x.Scopes = false, []string{adminScope}
		return x, nil
	}, ev("account.update"))
	mustNil(t, err)
	mustNil(t, s.DeleteAccount(ctx, off.ID, nil, ev("account.delete"), keep))
	// Unguarded changes are not checked.
	_, err = s.UpdateAccount(ctx, reader.ID, setScopes(), ev("account.update"))
	mustNil(t, err)
	wantErr(t, s.DeleteAccount(ctx, "999", nil, ev("account.delete"), keep), storage.ErrNotFound)
	verifyAll(t, s)
}

// Two guarded demotions of the last two holders, at once, cannot both
// pass: the store serializes them. Each update's fn, which runs inside its
// transaction, waits for the other to get that far too, or to wait for it,
// or for a bound (a correct store keeps the other out until the first
// commits; see meetInside): a store that lets both in at once lets both
// count the other as a holder.
func testGuardKeepHeldConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	keep := storage.Guard{KeepHeld: adminScope}
	admins := []storage.Account{holder(1, false, adminScope), holder(2, false, adminScope)}
	for _, a := range admins {
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	}
	changes := []func(storage.Account) (storage.Account, error){setScopes("orders.read"), setDisabled(true)}
	// Past the wait, which update counts first is a race: a store that
	// does not serialize them loses it about every other round.
	for round := range 8 { // remove the scope from one and disable the other, and the reverse
		var demote [2]func(wait func()) error
		for i, a := range admins {
			change := changes[(i+round)%2]
			demote[i] = func(wait func()) error {
				_, err := s.UpdateAccount(ctx, a.ID, func(old storage.Account) (storage.Account, error) {
					wait()
					return change(old)
				}, ev("account.update"), keep)
				return err
			}
		}
		errs := meetInside(s, demote)
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, storage.ErrLastHolder):
				t.Fatalf("round %d: demoting %s: %v", round, admins[i].Email, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of two concurrent demotions of the last two holders passed, want 1 (errors %v)", round, ok, errs)
		}
		// Make both holders again.
		for _, a := range admins {
			_, err := s.UpdateAccount(ctx, a.ID, func(x storage.Account) (storage.Account, error) {
				x.Disabled, x.Scopes = false, []string{adminScope}
				return x, nil
			}, ev("account.update"))
			mustNil(t, err)
		}
	}
	verifyAll(t, s)
}

// DeleteAPI refuses while accounts or delegation grants hold the API's
// scopes, exactly those (orders.read is not orders.readonly), and lists
// the first holders; the holders follow every change of scopes, accounts,
// grants and organizations.
func testDeleteAPIHeld(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read", "orders.write"}, CreatedAt: t0}, ev("api.create")))
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "other", Identifier: "https://other", Scopes: []string{"orders.readonly", "orders"}, CreatedAt: t0}, ev("api.create")))
	both, near := holder(1, true, "orders.write", "x", "orders.read"), holder(2, false, "orders.readonly", "orders")
	for _, a := range []storage.Account{both, near} {
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	}
	for _, org := range []string{"example.com", "other.org"} {
		mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: org, CreatedAt: t0}, ev("org.create")))
	}
	grant := func(org, client string, scopes ...string) {
		t.Helper()
		mustNil(t, errOf(s.PutGrant(ctx, storage.Grant{Org: org, ClientID: client, Scopes: scopes, CreatedAt: t0}, ev("delegation.grant"))))
	}
	grant("example.com", near.ID, "orders.write")
	grant("other.org", near.ID, "orders.readonly")
	grant("other.org", "100000000000000000099", "orders.read") // a client ID of no account still holds

	wantHeld := func(want []storage.ScopeHolder, total int) {
		t.Helper()
		err := s.DeleteAPI(ctx, "orders", nil, ev("api.delete"))
		held, ok := errors.AsType[*storage.ScopesHeldError](err)
		if !ok || !errors.Is(err, storage.ErrScopesHeld) {
			t.Fatalf("DeleteAPI = %v, want a ScopesHeldError", err)
		}
		if held.API != "orders" || held.Total != total || !slices.EqualFunc(held.Holders, want, func(a, b storage.ScopeHolder) bool {
			return a.AccountID == b.AccountID && a.Email == b.Email && a.Org == b.Org && a.ClientID == b.ClientID && slices.Equal(a.Scopes, b.Scopes)
		}) {
			t.Fatalf("DeleteAPI refused with %+v, want holders %+v of %d", held, want, total)
		}
		if _, err := s.GetAPI(ctx, "orders"); err != nil {
			t.Fatalf("the API is gone after a refused delete: %v", err)
		}
	}
	wantHeld([]storage.ScopeHolder{
		{AccountID: both.ID, Email: both.Email, Scopes: []string{"orders.read", "orders.write"}},
		{Org: "example.com", ClientID: near.ID, Scopes: []string{"orders.write"}},
		{Org: "other.org", ClientID: "100000000000000000099", Scopes: []string{"orders.read"}},
	}, 3)
	before := len(verifyAll(t, s))

	// Many holders: the first HoldersListed are listed, all counted.
	for i := range storage.HoldersListed {
		mustNil(t, s.CreateAccount(ctx, holder(10+i, false, "orders.read"), ev("account.create")))
	}
	want := []storage.ScopeHolder{{AccountID: both.ID, Email: both.Email, Scopes: []string{"orders.read", "orders.write"}}}
	for i := range storage.HoldersListed - 1 {
		h := holder(10+i, false)
		want = append(want, storage.ScopeHolder{AccountID: h.ID, Email: h.Email, Scopes: []string{"orders.read"}})
	}
	wantHeld(want, 3+storage.HoldersListed)
	if n := len(verifyAll(t, s)); n != before+storage.HoldersListed {
		t.Errorf("refused deletes wrote audit events: %d events, want %d", n, before+storage.HoldersListed)
	}

	// Each way of letting go of the scopes counts.
	for i := range storage.HoldersListed {
		mustNil(t, s.DeleteAccount(ctx, holder(10+i, false).ID, nil, ev("account.delete")))
	}
	_, err := s.UpdateAccount(ctx, both.ID, setScopes("x", "orders.write"), ev("account.update"))
	mustNil(t, err)
	grant("example.com", near.ID, "orders.readonly") // replaced
	wantHeld([]storage.ScopeHolder{
		{AccountID: both.ID, Email: both.Email, Scopes: []string{"orders.write"}},
		{Org: "other.org", ClientID: "100000000000000000099", Scopes: []string{"orders.read"}},
	}, 2)
	mustNil(t, s.DeleteAccount(ctx, both.ID, nil, ev("account.delete")))
	mustNil(t, s.DeleteOrg(ctx, "other.org", nil, ev("org.delete")))
	mustNil(t, s.DeleteAPI(ctx, "orders", nil, ev("api.delete")))
	_, err = s.GetAPI(ctx, "orders")
	wantErr(t, err, storage.ErrNotFound)
	wantErr(t, s.DeleteAPI(ctx, "orders", nil, ev("api.delete")), storage.ErrNotFound)
	verifyAll(t, s)
}

// CreateAPI refuses scopes an account or a grant already holds (left from
// a deleted API, unguarded writes): they would get the new API's access
// unnoticed. Exactly those scopes: a near name does not count.
func testCreateAPIHeld(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	stale := holder(1, false, "orders.read", "x")
	mustNil(t, s.CreateAccount(ctx, stale, ev("account.create")))
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))
	mustNil(t, errOf(s.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: "100000000000000000099", Scopes: []string{"orders.write"}, CreatedAt: t0}, ev("delegation.grant"))))
	before := len(verifyAll(t, s))
	err := s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read", "orders.write"}, CreatedAt: t0}, ev("api.create"))
	held, ok := errors.AsType[*storage.ScopesHeldError](err)
	if !ok || !errors.Is(err, storage.ErrScopesHeld) || held.Op != "create api" || held.Total != 2 || len(held.Holders) != 2 ||
		held.Holders[0].AccountID != stale.ID || !slices.Equal(held.Holders[0].Scopes, []string{"orders.read"}) || held.Holders[1].ClientID != "100000000000000000099" {
		t.Fatalf("CreateAPI = %v (%+v), want a ScopesHeldError naming the account and the grant", err, held)
	}
	_, err = s.GetAPI(ctx, "orders")
	wantErr(t, err, storage.ErrNotFound)
	if n := len(verifyAll(t, s)); n != before {
		t.Errorf("a refused create wrote audit events: %d events, want %d", n, before)
	}
	// Once they let go, the API can be created; a near name is no holder.
	_, err = s.UpdateAccount(ctx, stale.ID, setScopes("x", "orders.readonly"), ev("account.update"))
	mustNil(t, err)
	mustNil(t, s.DeleteGrant(ctx, "example.com", "100000000000000000099", ev("delegation.revoke")))
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read", "orders.write"}, CreatedAt: t0}, ev("api.create")))
	verifyAll(t, s)
}

// A change guarded by KnownScopes may grant only scopes of APIs, and
// keeps scopes it held before whatever they are.
func testGuardKnownScopes(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	known := storage.Guard{KnownScopes: true}
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read", "orders.write"}, CreatedAt: t0}, ev("api.create")))
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))

	wantErr(t, s.CreateAccount(ctx, holder(1, false, "orders.read", "orders"), ev("account.create"), known), storage.ErrUnknownScope)
	_, err := s.GetAccount(ctx, holder(1, false).ID)
	wantErr(t, err, storage.ErrNotFound)
	a := holder(1, false, "orders.read")
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create"), known))
	_, err = s.UpdateAccount(ctx, a.ID, setScopes("orders.read", "orders.read.all"), ev("account.update"), known)
	wantErr(t, err, storage.ErrUnknownScope)
	if got, err := s.GetAccount(ctx, a.ID); err != nil || !slices.Equal(got.Scopes, a.Scopes) {
		t.Fatalf("account after a refused update: %+v, %v", got, err)
	}
	// A stale scope, stored unguarded, stays through guarded updates.
	stale := holder(2, false, "gone.read")
	mustNil(t, s.CreateAccount(ctx, stale, ev("account.create")))
	_, err = s.UpdateAccount(ctx, stale.ID, setScopes("gone.read", "orders.write"), ev("account.update"), known)
	mustNil(t, err)

	g := storage.Grant{Org: "example.com", ClientID: a.ID, Scopes: []string{"orders.write", "orders.delete"}, CreatedAt: t0}
	wantErr(t, errOf(s.PutGrant(ctx, g, ev("delegation.grant"), known)), storage.ErrUnknownScope)
	_, err = s.GetGrant(ctx, "example.com", a.ID)
	wantErr(t, err, storage.ErrNotFound)
	g.Scopes = []string{"orders.write"}
	mustNil(t, errOf(s.PutGrant(ctx, g, ev("delegation.grant"), known)))
	verifyAll(t, s)
}

// A guarded change granting a scope and the deletion of its API, or an
// update of the API removing the scope, at once, never leave the scope
// held with no API having it: one of them fails. The account update's fn,
// in its transaction, starts the API change and waits for it to end, or
// to wait for the update, or for a bound (a store that serializes them
// keeps the API change out until the update commits, and then it finds the
// holder; see meetInside); a store that lets the API change commit
// meanwhile must then refuse the grant. (The other unsafe order, the API
// change counting holders between the grant's own check and its commit,
// has no hook to force it; GuardKeepHeldConcurrent shows the store
// serializes guarded changes.)
func testGuardKnownScopesConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	known := storage.Guard{KnownScopes: true}
	changes := []struct {
		name string
		fn   func() error
	}{
		{"DeleteAPI", func() error { return s.DeleteAPI(ctx, "orders", nil, ev("api.delete")) }},
		{"UpdateAPI", func() error {
			_, err := s.UpdateAPI(ctx, "orders", func(a storage.API) (storage.API, error) {
				a.Scopes = []string{"orders.write"}
				return a, nil
			}, ev("api.update"))
			return err
		}},
	}
	for round := range 8 {
		change := changes[round%2]
		mustNil(t, s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read", "orders.write"}, CreatedAt: t0}, ev("api.create")))
		a := holder(round, false)
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
		var cerr error
		changed := make(chan struct{})
		waited := waitMark(s)
		_, uerr := s.UpdateAccount(ctx, a.ID, func(old storage.Account) (storage.Account, error) {
			go func() { cerr = change.fn(); close(changed) }()
			awaitPeer(nil, changed, waited)
			old.Scopes = []string{"orders.read"}
			return old, nil
		}, ev("account.update"), known)
		<-changed
		got, err := s.GetAccount(ctx, a.ID)
		mustNil(t, err)
		api, aerr := s.GetAPI(ctx, "orders")
		switch {
		case uerr == nil && cerr == nil:
			t.Fatalf("round %d: both the grant of orders.read and %s taking it away passed", round, change.name)
		case uerr == nil && !errors.Is(cerr, storage.ErrScopesHeld):
			t.Fatalf("round %d: %s after the grant: %v, want ErrScopesHeld", round, change.name, cerr)
		case cerr == nil && !errors.Is(uerr, storage.ErrUnknownScope):
			t.Fatalf("round %d: the grant after %s: %v, want ErrUnknownScope", round, change.name, uerr)
		case slices.Contains(got.Scopes, "orders.read") && (aerr != nil || !slices.Contains(api.Scopes, "orders.read")):
			t.Fatalf("round %d: %s holds orders.read, which no API has", round, got.Email)
		}
		// Clean up for the next round.
		if uerr == nil {
			_, err := s.UpdateAccount(ctx, a.ID, setScopes(), ev("account.update"))
			mustNil(t, err)
		}
		if aerr == nil {
			mustNil(t, s.DeleteAPI(ctx, "orders", nil, ev("api.delete")))
		}
	}
	verifyAll(t, s)
}

// testUpdateAccountConcurrent: two updates of one account at once, one
// unguarded (revoking its tokens) and one guarded (disabling it and
// removing a scope), both take effect: the later one applies its fn to what
// the earlier one committed, never to what it read before (a lost update
// re-enabled the account, kept the scope in its list but not in the scope
// index, or dropped the revocation).
func testUpdateAccountConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	guard := storage.Guard{KeepHeld: adminScope, KnownScopes: true}
	x := holder(1, false, adminScope, "orders.read")
	mustNil(t, s.CreateAccount(ctx, x, ev("account.create")))
	mustNil(t, s.CreateAccount(ctx, holder(2, false, adminScope), ev("account.create")))
	revoked := t0.Add(time.Minute)
	for round := range 2 { // the unguarded update reads first, then the guarded one
		fns := []func(storage.Account) (storage.Account, error){
			func(a storage.Account) (storage.Account, error) { a.TokensRevokedBefore = revoked; return a, nil },
			func(a storage.Account) (storage.Account, error) {
				a.Disabled, a.Scopes = true, []string{adminScope}
				return a, nil
			},
		}
		// fns[1], the disabling, is the guarded change.
		guards := func(i int) []storage.Guard {
			if i == 1 {
				return []storage.Guard{guard}
			}
			return nil
		}
		mustNil(t, raceUpdates(s, round, func(i int, read func()) error {
			_, err := s.UpdateAccount(ctx, x.ID, func(a storage.Account) (storage.Account, error) {
				read()
				return fns[i](a)
			}, ev("account.update"), guards(i)...)
			return err
		}))
		got, err := s.GetAccount(ctx, x.ID)
		mustNil(t, err)
		if !got.Disabled || !slices.Equal(got.Scopes, []string{adminScope}) || !got.TokensRevokedBefore.Equal(revoked) {
			t.Fatalf("round %d: after concurrent updates: disabled %v, scopes %v, tokens revoked before %v: an update was lost",
				round, got.Disabled, got.Scopes, got.TokensRevokedBefore)
		}
		// An API of orders.read can be created: no account holds it.
		api := storage.API{Name: fmt.Sprintf("orders%d", round), Identifier: fmt.Sprintf("https://orders%d.example", round),
			Scopes: []string{"orders.read"}, CreatedAt: t0}
		mustNil(t, s.CreateAPI(ctx, api, ev("api.create")))
		mustNil(t, s.DeleteAPI(ctx, api.Name, nil, ev("api.delete")))
		_, err = s.UpdateAccount(ctx, x.ID, func(a storage.Account) (storage.Account, error) {
			a.Disabled, a.Scopes, a.TokensRevokedBefore = false, []string{adminScope, "orders.read"}, time.Time{}
			return a, nil
		}, ev("account.update"))
		mustNil(t, err)
	}
}

// UpdateAPI adds, removes and reorders an API's scopes, keeping the order
// given, and what reads the APIs (the cache wrapper's catalog too) sees
// the new list at once. It refuses, writing nothing, to remove a scope an
// account or a grant holds (naming them, as DeleteAPI), to add another
// API's scope, or to add one an account holds, left from a deleted API
// (as CreateAPI).
func testUpdateAPIScopes(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders", Scopes: []string{"orders.read", "orders.write"}, CreatedAt: t0}, ev("api.create")))
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "billing", Identifier: "https://billing", Scopes: []string{"billing.read"}, CreatedAt: t0}, ev("api.create")))
	setAPIScopes := func(scopes ...string) (storage.API, error) {
		return s.UpdateAPI(ctx, "orders", func(a storage.API) (storage.API, error) { a.Scopes = scopes; return a, nil }, ev("api.update"))
	}
	// wantScopes checks what GetAPI and ListAPIs read; both are read
	// before each change too, so a cache holds the old list.
	wantScopes := func(want ...string) {
		t.Helper()
		got, err := s.GetAPI(ctx, "orders")
		mustNil(t, err)
		if !slices.Equal(got.Scopes, want) {
			t.Fatalf("GetAPI scopes = %v, want %v", got.Scopes, want)
		}
		apis, err := s.ListAPIs(ctx)
		mustNil(t, err)
		i := slices.IndexFunc(apis, func(a storage.API) bool { return a.Name == "orders" })
		if i < 0 || !slices.Equal(apis[i].Scopes, want) {
			t.Fatalf("ListAPIs = %+v, want orders with scopes %v", apis, want)
		}
		if j := slices.IndexFunc(apis, func(a storage.API) bool { return a.Name == "billing" }); j < 0 || !slices.Equal(apis[j].Scopes, []string{"billing.read"}) {
			t.Fatalf("ListAPIs = %+v, want billing with its scope", apis)
		}
	}
	wantScopes("orders.read", "orders.write")

	// Added first, then one removed and the rest reordered.
	up, err := setAPIScopes("orders.admin", "orders.read", "orders.write")
	mustNil(t, err)
	if !slices.Equal(up.Scopes, []string{"orders.admin", "orders.read", "orders.write"}) {
		t.Fatalf("UpdateAPI returned scopes %v", up.Scopes)
	}
	wantScopes("orders.admin", "orders.read", "orders.write")
	_, err = setAPIScopes("orders.write", "orders.admin", "orders.delete")
	mustNil(t, err)
	wantScopes("orders.write", "orders.admin", "orders.delete")

	// Holders of orders.write and orders.admin; a near name holds nothing.
	a := holder(1, true, "x", "orders.admin", "orders.write")
	near := holder(2, false, "orders.writer")
	for _, x := range []storage.Account{a, near} {
		mustNil(t, s.CreateAccount(ctx, x, ev("account.create")))
	}
	mustNil(t, s.CreateOrg(ctx, storage.Org{Domain: "example.com", CreatedAt: t0}, ev("org.create")))
	mustNil(t, errOf(s.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: "100000000000000000099", Scopes: []string{"orders.admin"}, CreatedAt: t0}, ev("delegation.grant"))))
	// orders.old is held, left from a deleted API.
	stale := holder(3, false, "orders.old")
	mustNil(t, s.CreateAccount(ctx, stale, ev("account.create")))
	before := len(verifyAll(t, s))

	sameHolders := func(a, b storage.ScopeHolder) bool {
		return a.AccountID == b.AccountID && a.Email == b.Email && a.Org == b.Org && a.ClientID == b.ClientID && slices.Equal(a.Scopes, b.Scopes)
	}
	for _, tt := range []struct {
		name   string
		scopes []string
		want   []storage.ScopeHolder // nil: ErrAlreadyExists
	}{
		{"removing held scopes", []string{"orders.delete"}, []storage.ScopeHolder{
			{AccountID: a.ID, Email: a.Email, Scopes: []string{"orders.write", "orders.admin"}},
			{Org: "example.com", ClientID: "100000000000000000099", Scopes: []string{"orders.admin"}},
		}},
		{"removing one held scope", []string{"orders.admin", "orders.delete"}, []storage.ScopeHolder{
			{AccountID: a.ID, Email: a.Email, Scopes: []string{"orders.write"}},
		}},
		{"adding a held scope", []string{"orders.write", "orders.admin", "orders.delete", "orders.old"}, []storage.ScopeHolder{
			{AccountID: stale.ID, Email: stale.Email, Scopes: []string{"orders.old"}},
		}},
		{"adding another API's scope", []string{"orders.write", "orders.admin", "billing.read", "orders.delete"}, nil},
	} {
		wantScopes("orders.write", "orders.admin", "orders.delete")
		_, err := setAPIScopes(tt.scopes...)
		if tt.want == nil {
			if !errors.Is(err, storage.ErrAlreadyExists) {
				t.Fatalf("%s: err = %v, want ErrAlreadyExists", tt.name, err)
			}
			continue
		}
		held, ok := errors.AsType[*storage.ScopesHeldError](err)
		if !ok || !errors.Is(err, storage.ErrScopesHeld) || held.Op != "update api" || held.API != "orders" ||
			held.Total != len(tt.want) || !slices.EqualFunc(held.Holders, tt.want, sameHolders) {
			t.Fatalf("%s: err = %v (%+v), want a ScopesHeldError naming %+v", tt.name, err, held, tt.want)
		}
	}
	wantScopes("orders.write", "orders.admin", "orders.delete")
	if n := len(verifyAll(t, s)); n != before {
		t.Errorf("refused updates wrote audit events: %d events, want %d", n, before)
	}

	// Changes that remove or add no held scope pass; so do the refused
	// ones once the holders let go.
	_, err = setAPIScopes("orders.admin", "orders.write", "orders.new")
	mustNil(t, err)
	wantScopes("orders.admin", "orders.write", "orders.new")
	_, err = s.UpdateAccount(ctx, stale.ID, setScopes(), ev("account.update"))
	mustNil(t, err)
	_, err = setAPIScopes("orders.admin", "orders.write", "orders.old")
	mustNil(t, err)
	wantScopes("orders.admin", "orders.write", "orders.old")
	mustNil(t, s.DeleteAccount(ctx, a.ID, nil, ev("account.delete")))
	mustNil(t, s.DeleteGrant(ctx, "example.com", "100000000000000000099", ev("delegation.revoke")))
	_, err = setAPIScopes("orders.old")
	mustNil(t, err)
	wantScopes("orders.old")
	// The removed scopes are free for another API.
	_, err = s.UpdateAPI(ctx, "billing", func(x storage.API) (storage.API, error) {
		x.Scopes = append(x.Scopes, "orders.admin")
		return x, nil
	}, ev("api.update"))
	mustNil(t, err)
	if got, err := s.GetAPI(ctx, "billing"); err != nil || !slices.Equal(got.Scopes, []string{"billing.read", "orders.admin"}) {
		t.Fatalf("billing after taking orders.admin: %+v, %v", got, err)
	}
	verifyAll(t, s)
}

// meetInside runs both changes on s at once and returns their errors. The
// wait each change calls in its fn, inside its transaction, returns when
// the other has got that far too or returned, or when s shows it waiting
// (see Watched), or after peerBound: a correct store keeps the other out
// until the first commits.
func meetInside(s storage.Storage, changes [2]func(wait func()) error) []error {
	var (
		wg   sync.WaitGroup
		errs = make([]error, 2)
		// in[i] is closed when change i runs its fn, in its transaction;
		// done[i] when it returns.
		in     = []chan struct{}{make(chan struct{}), make(chan struct{})}
		done   = []chan struct{}{make(chan struct{}), make(chan struct{})}
		waited = waitMark(s)
	)
	for i, c := range changes {
		wg.Go(func() {
			defer close(done[i])
			errs[i] = c(func() {
				close(in[i])
				awaitPeer(in[1-i], done[1-i], waited)
			})
		})
	}
	wg.Wait()
	return errs
}
