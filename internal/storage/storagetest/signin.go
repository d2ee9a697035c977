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

// withAuth sets how a signs in: its methods and certificate binding.
func withAuth(a storage.Account, tls storage.TLSBinding, methods ...string) storage.Account {
	a.AuthMethods, a.TLS = methods, tls
	return a
}

func setKeyDisabled(d bool) func(storage.Key) (storage.Key, error) {
	return func(k storage.Key) (storage.Key, error) { k.Disabled = d; return k, nil }
}

func setSecretDisabled(d bool) func(storage.Secret) (storage.Secret, error) {
	return func(x storage.Secret) (storage.Secret, error) { x.Disabled = d; return x, nil }
}

// A change of a key or a secret guarded by KeepSignIn fails, writing
// nothing, when it would leave no enabled account holding the scope able
// to get tokens at the guard's Now: with an enabled key unexpired then, an
// enabled secret unexpired then that the account's methods allow, or a
// certificate binding with tls_client_auth allowed. Credentials of
// disabled accounts, and of accounts holding other scopes, do not count.
func testGuardKeepSignIn(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	keep := storage.Guard{KeepSignIn: adminScope, Now: t0}
	none, bound := storage.TLSBinding{}, storage.TLSBinding{SANDNS: "admin.example"}
	keyed := withAuth(holder(1, false, adminScope), none, storage.AuthPrivateKeyJWT) // its secret is no way in
	secreted := withAuth(holder(2, false, "orders.read", adminScope), none, storage.AuthSecretPost)
	off := withAuth(holder(3, true, adminScope), bound, storage.AuthSecretBasic, storage.AuthTLS)
	reader := withAuth(holder(4, false, adminScope+".read", "keyward"), bound, storage.AuthSecretBasic, storage.AuthTLS)
	unbound := withAuth(holder(5, false, adminScope), none, storage.AuthTLS)
	unallowed := withAuth(holder(6, false, adminScope), bound, storage.AuthSecretBasic)
	for _, a := range []storage.Account{keyed, secreted, off, reader, unbound, unallowed} {
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	}
	newKey(t, s, "k-keyed", keyed, false, t0.Add(time.Hour))
	newKey(t, s, "k-expired", keyed, false, t0) // expired at t0
	newKey(t, s, "k-disabled", keyed, true, time.Time{})
	newSecret(t, s, "s-keyed", keyed, false, time.Time{})
	newSecret(t, s, "s-secreted", secreted, false, t0.Add(time.Hour))
	newKey(t, s, "k-off", off, false, time.Time{})
	newSecret(t, s, "s-off", off, false, time.Time{})
	newKey(t, s, "k-reader", reader, false, time.Time{})
	newSecret(t, s, "s-reader", reader, false, time.Time{})
	before := len(verifyAll(t, s))

	// One of the two ways in may go; then the other is the last.
	_, err := s.UpdateKey(ctx, "k-keyed", setKeyDisabled(true), ev("key.disable"), keep)
	mustNil(t, err)
	for name, err := range map[string]error{
		"disabling": func() error {
			_, err := s.UpdateSecret(ctx, "s-secreted", setSecretDisabled(true), nil, ev("secret.disable"), keep)
			return err
		}(),
		"expiring at Now": func() error {
			_, err := s.UpdateSecret(ctx, "s-secreted", func(x storage.Secret) (storage.Secret, error) { x.ExpiresAt = t0; return x, nil }, nil, ev("secret.update"), keep)
			return err
		}(),
		"deleting": s.DeleteSecret(ctx, "s-secreted", nil, ev("secret.delete"), keep),
	} {
		if !errors.Is(err, storage.ErrLastCredential) {
			t.Errorf("%s the last way in: err = %v, want ErrLastCredential", name, err)
		}
	}
	secs, err := s.ListSecrets(ctx, secreted.ID)
	mustNil(t, err)
	if len(secs) != 1 || secs[0].Disabled || !secs[0].ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("the last way in changed after refused changes: %+v", secs)
	}
	if n := len(verifyAll(t, s)); n != before+1 {
		t.Errorf("%d audit events after one change and three refusals, want %d", n, before+1)
	}

	// What is no way in goes freely: an expired or disabled key, a secret
	// its account may not use, the credentials of a disabled account or
	// of one holding another scope.
	_, err = s.UpdateKey(ctx, "k-expired", setKeyDisabled(true), ev("key.disable"), keep)
	mustNil(t, err)
	for _, id := range []string{"k-disabled", "k-off", "k-reader"} {
		mustNil(t, s.DeleteKey(ctx, id, nil, ev("key.delete"), keep))
	}
	_, err = s.UpdateSecret(ctx, "s-keyed", setSecretDisabled(true), nil, ev("secret.disable"), keep)
	mustNil(t, err)
	for _, id := range []string{"s-keyed", "s-off", "s-reader"} {
		mustNil(t, s.DeleteSecret(ctx, id, nil, ev("secret.delete"), keep))
	}
	wantErr(t, s.DeleteSecret(ctx, "s-secreted", nil, ev("secret.delete"), keep), storage.ErrLastCredential)

	// Expiry is judged at the guard's Now: before it expires, a key counts.
	_, err = s.UpdateKey(ctx, "k-expired", setKeyDisabled(false), ev("key.enable"), keep)
	mustNil(t, err)
	earlier := storage.Guard{KeepSignIn: adminScope, Now: t0.Add(-time.Second)}
	_, err = s.UpdateSecret(ctx, "s-secreted", setSecretDisabled(true), nil, ev("secret.disable"), earlier)
	mustNil(t, err)
	wantErr(t, s.DeleteKey(ctx, "k-expired", nil, ev("key.delete"), earlier), storage.ErrLastCredential)
	mustNil(t, s.DeleteKey(ctx, "k-expired", nil, ev("key.delete"), keep)) // at t0 it is no way in
	_, err = s.UpdateSecret(ctx, "s-secreted", setSecretDisabled(false), nil, ev("secret.enable"), keep)
	mustNil(t, err)

	// An enabled key that has not expired is a way in; the secret can go,
	// and then the key is the last, whether disabled or expired.
	_, err = s.UpdateKey(ctx, "k-keyed", setKeyDisabled(false), ev("key.enable"), keep)
	mustNil(t, err)
	mustNil(t, s.DeleteSecret(ctx, "s-secreted", nil, ev("secret.delete"), keep))
	_, err = s.UpdateKey(ctx, "k-keyed", func(k storage.Key) (storage.Key, error) { k.ExpiresAt = t0.Add(-time.Hour); return k, nil }, ev("key.update"), keep)
	wantErr(t, err, storage.ErrLastCredential)
	if k, err := s.GetKey(ctx, "k-keyed"); err != nil || k.Disabled || !k.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Fatalf("the last key after a refused change: %+v, %v", k, err)
	}

	// A certificate binding with tls_client_auth allowed is a way in.
	_, err = s.UpdateAccount(ctx, unallowed.ID, func(a storage.Account) (storage.Account, error) {
		a.AuthMethods = append(a.AuthMethods, storage.AuthTLS)
		return a, nil
	}, ev("account.update"))
	mustNil(t, err)
	mustNil(t, s.DeleteKey(ctx, "k-keyed", nil, ev("key.delete"), keep))

	// Unguarded changes are not checked; a guarded change of nothing is
	// not found.
	_, err = s.UpdateAccount(ctx, unallowed.ID, setDisabled(true), ev("account.disable"))
	mustNil(t, err)
	newSecret(t, s, "s-last", secreted, false, time.Time{})
	wantErr(t, s.DeleteSecret(ctx, "s-last", nil, ev("secret.delete"), keep), storage.ErrLastCredential)
	mustNil(t, s.DeleteSecret(ctx, "s-last", nil, ev("secret.delete")))
	wantErr(t, s.DeleteKey(ctx, "k-keyed", nil, ev("key.delete"), keep), storage.ErrNotFound)
	wantErr(t, s.DeleteSecret(ctx, "s-last", nil, ev("secret.delete"), keep), storage.ErrNotFound)
	_, err = s.UpdateKey(ctx, "k-keyed", setKeyDisabled(true), ev("key.disable"), keep)
	wantErr(t, err, storage.ErrNotFound)
	verifyAll(t, s)
}

// A change of an account guarded by KeepSignIn fails, writing nothing,
// when the account was a way in and no enabled holder of the scope is
// left able to get tokens: disabling, deleting or demoting it, or taking
// the methods or the binding it gets tokens with. Accounts that were no
// way in change freely.
func testGuardKeepSignInAccounts(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	keep := storage.Guard{KeepSignIn: adminScope, Now: t0}
	none, bound := storage.TLSBinding{}, storage.TLSBinding{SANDNS: "admin.example"}
	keyed := withAuth(holder(1, false, adminScope), none, storage.AuthPrivateKeyJWT)
	secreted := withAuth(holder(2, false, adminScope), none, storage.AuthSecretPost)
	keyless := withAuth(holder(3, false, adminScope), none, storage.AuthSecretBasic, storage.AuthTLS)
	for _, a := range []storage.Account{keyed, secreted, keyless} {
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create"), keep))
	}
	mustNil(t, s.CreateKey(ctx, key("k-keyed", keyed.ID), nil, ev("key.create")))
	mustNil(t, s.CreateSecret(ctx, secret("s-secreted", secreted.ID, t0), nil, ev("secret.create")))
	update := func(id string, fn func(storage.Account) (storage.Account, error)) error {
		_, err := s.UpdateAccount(ctx, id, fn, ev("account.update"), keep)
		return err
	}
	setMethods := func(tls storage.TLSBinding, methods ...string) func(storage.Account) (storage.Account, error) {
		return func(a storage.Account) (storage.Account, error) { return withAuth(a, tls, methods...), nil }
	}

	mustNil(t, update(keyed.ID, setDisabled(true)))
	before := len(verifyAll(t, s))
	for name, err := range map[string]error{
		"disabling":           update(secreted.ID, setDisabled(true)),
		"removing the scope":  update(secreted.ID, setScopes("orders.read")),
		"disallowing secrets": update(secreted.ID, setMethods(none, storage.AuthPrivateKeyJWT, storage.AuthTLS)),
		"deleting":            s.DeleteAccount(ctx, secreted.ID, nil, ev("account.delete"), keep),
	} {
		if !errors.Is(err, storage.ErrLastCredential) {
			t.Errorf("%s the last way in: err = %v, want ErrLastCredential", name, err)
		}
	}
	got, err := s.GetAccount(ctx, secreted.ID)
	mustNil(t, err)
	if secs, err := s.ListSecrets(ctx, secreted.ID); err != nil || len(secs) != 1 || got.Disabled ||
		!slices.Equal(got.Scopes, []string{adminScope}) || !slices.Equal(got.AuthMethods, secreted.AuthMethods) {
		t.Fatalf("the last way in after refused changes: %+v with secrets %+v, %v", got, secs, err)
	}
	if n := len(verifyAll(t, s)); n != before {
		t.Errorf("%d audit events after four refusals, want %d", n, before)
	}

	// What keeps a way in passes: a certificate binding for the secret.
	mustNil(t, update(secreted.ID, setMethods(bound, storage.AuthTLS)))
	mustNil(t, update(secreted.ID, func(a storage.Account) (storage.Account, error) { a.Description = "by certificate"; return a, nil }))
	wantErr(t, update(secreted.ID, setMethods(none, storage.AuthTLS)), storage.ErrLastCredential)
	// Accounts that were no way in change freely: keyless, and keyed
	// while disabled.
	mustNil(t, update(keyless.ID, setDisabled(true)))
	mustNil(t, s.DeleteAccount(ctx, keyless.ID, nil, ev("account.delete"), keep))
	mustNil(t, update(keyed.ID, setScopes()))
	mustNil(t, update(keyed.ID, func(a storage.Account) (storage.Account, error) {
		a.Disabled, a.Scopes = false, []string{adminScope}
		return a, nil
	}))
	// With keyed back, the binding may go; then keyed is the last.
	mustNil(t, update(secreted.ID, setMethods(none, storage.AuthTLS)))
	wantErr(t, s.DeleteAccount(ctx, keyed.ID, nil, ev("account.delete"), keep), storage.ErrLastCredential)
	if keys, err := s.ListKeys(ctx, keyed.ID); err != nil || len(keys) != 1 {
		t.Fatalf("keys of the last way in after a refused delete: %+v, %v", keys, err)
	}
	// Unguarded changes are not checked.
	mustNil(t, s.DeleteAccount(ctx, keyed.ID, nil, ev("account.delete")))
	verifyAll(t, s)
}

// Two guarded changes taking away the last two ways in, of two holders,
// at once, cannot both pass: the store serializes them. As in
// GuardKeepHeldConcurrent, each change's fn waits, in its transaction, for
// the other to get that far too or for a bound; a store that lets both in
// at once lets each count the other's way in. Round by round: a key
// disabled and a secret expired at Now, a key expired and a secret
// disabled, both accounts disabled, one demoted and the other's secrets
// disallowed.
func testGuardKeepSignInConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	keep := storage.Guard{KeepSignIn: adminScope, Now: t0}
	none := storage.TLSBinding{}
	a := withAuth(holder(1, false, adminScope), none, storage.AuthPrivateKeyJWT)
	b := withAuth(holder(2, false, adminScope), none, storage.AuthSecretBasic)
	mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	mustNil(t, s.CreateAccount(ctx, b, ev("account.create")))
	mustNil(t, s.CreateKey(ctx, key("ka", a.ID), nil, ev("key.create")))
	mustNil(t, s.CreateSecret(ctx, secret("sb", b.ID, t0), nil, ev("secret.create")))
	// A change of a's way in or of b's: it calls wait in its fn.
	type change = func(wait func()) error
	key := func(fn func(*storage.Key)) change {
		return func(wait func()) error {
			_, err := s.UpdateKey(ctx, "ka", func(k storage.Key) (storage.Key, error) { wait(); fn(&k); return k, nil }, ev("key.update"), keep)
			return err
		}
	}
	sec := func(fn func(*storage.Secret)) change {
		return func(wait func()) error {
			_, err := s.UpdateSecret(ctx, "sb", func(x storage.Secret) (storage.Secret, error) { wait(); fn(&x); return x, nil }, nil, ev("secret.update"), keep)
			return err
		}
	}
	acct := func(id string, fn func(*storage.Account)) change {
		return func(wait func()) error {
			_, err := s.UpdateAccount(ctx, id, func(x storage.Account) (storage.Account, error) { wait(); fn(&x); return x, nil }, ev("account.update"), keep)
			return err
		}
	}
	pairs := [][2]change{
		{key(func(k *storage.Key) { k.Disabled = true }), sec(func(x *storage.Secret) { x.ExpiresAt = t0 })},
		{key(func(k *storage.Key) { k.ExpiresAt = t0.Add(-time.Minute) }), sec(func(x *storage.Secret) { x.Disabled = true })},
		{acct(a.ID, func(x *storage.Account) { x.Disabled = true }), acct(b.ID, func(x *storage.Account) { x.Disabled = true })},
		{acct(a.ID, func(x *storage.Account) { x.Scopes = nil }), acct(b.ID, func(x *storage.Account) { x.AuthMethods = a.AuthMethods })},
	}
	for round := range 2 * len(pairs) {
		errs := meetInside(s, pairs[round%len(pairs)])
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, storage.ErrLastCredential):
				t.Fatalf("round %d: change %d: %v", round, i, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of two concurrent changes taking away the last two ways in passed, want 1 (errors %v)", round, ok, errs)
		}
		// Make both ways in again.
		for _, x := range []storage.Account{a, b} {
			_, err := s.UpdateAccount(ctx, x.ID, func(storage.Account) (storage.Account, error) { return x, nil }, ev("account.update"))
			mustNil(t, err)
		}
		_, err := s.UpdateKey(ctx, "ka", func(k storage.Key) (storage.Key, error) {
			k.Disabled, k.ExpiresAt = false, time.Time{}
			return k, nil
		}, ev("key.update"))
		mustNil(t, err)
		_, err = s.UpdateSecret(ctx, "sb", func(x storage.Secret) (storage.Secret, error) {
			x.Disabled, x.ExpiresAt = false, time.Time{}
			return x, nil
		}, nil, ev("secret.update"))
		mustNil(t, err)
	}
	verifyAll(t, s)
}

// SignInExpiry reports the latest time until which an enabled holder of
// the scope can get tokens, by the rules of KeepSignIn: the zero Time when
// a way in never expires, ok false when none is usable now. A certificate
// binding counts only when asked to (certificates), as with
// Guard.NoCertificates.
func testSignInExpiry(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	none, bound := storage.TLSBinding{}, storage.TLSBinding{SANDNS: "admin.example"}
	checkWith := func(what string, certificates bool, now time.Time, wantUntil time.Time, wantOK bool) {
		t.Helper()
		until, ok, err := s.SignInExpiry(ctx, adminScope, certificates, now)
		mustNil(t, err)
		if ok != wantOK || !until.Equal(wantUntil) {
			t.Errorf("%s (certificates %v): SignInExpiry = %v, %v; want %v, %v", what, certificates, until, ok, wantUntil, wantOK)
		}
	}
	// Without a binding among the ways in, the same either way.
	check := func(what string, now time.Time, wantUntil time.Time, wantOK bool) {
		t.Helper()
		checkWith(what, true, now, wantUntil, wantOK)
		checkWith(what, false, now, wantUntil, wantOK)
	}
	check("an empty store", t0, time.Time{}, false)

	keyed := withAuth(holder(1, false, adminScope), none, storage.AuthPrivateKeyJWT, storage.AuthSecretBasic)
	noSecrets := withAuth(holder(2, false, adminScope), none, storage.AuthPrivateKeyJWT)
	off := withAuth(holder(3, true, adminScope), bound, storage.AuthPrivateKeyJWT, storage.AuthSecretPost, storage.AuthTLS)
	reader := withAuth(holder(4, false, adminScope+".read"), bound, storage.AuthPrivateKeyJWT, storage.AuthTLS)
	for _, a := range []storage.Account{keyed, noSecrets, off, reader} {
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
	}
	// None of these is a way in: a disabled account's, another scope's
	// holder's, a disabled key, a secret its account may not use.
	newKey(t, s, "k-off", off, false, time.Time{})
	newSecret(t, s, "s-off", off, false, time.Time{})
	newKey(t, s, "k-reader", reader, false, time.Time{})
	newKey(t, s, "k-disabled", keyed, true, time.Time{})
	newSecret(t, s, "s-nosecrets", noSecrets, false, time.Time{})
	check("no way in", t0, time.Time{}, false)

	// The latest of the ways in: a key expiring after a secret.
	newSecret(t, s, "s-keyed", keyed, false, t0.Add(24*time.Hour))
	check("a secret", t0, t0.Add(24*time.Hour), true)
	newKey(t, s, "k-keyed", keyed, false, t0.Add(72*time.Hour))
	newKey(t, s, "k-earlier", noSecrets, false, t0.Add(48*time.Hour))
	newKey(t, s, "k-expired", keyed, false, t0.Add(-time.Hour))
	check("keys and a secret", t0, t0.Add(72*time.Hour), true)
	check("after every expiry", t0.Add(72*time.Hour), time.Time{}, false)

	// A key without expiry, or a certificate binding, never expires.
	newKey(t, s, "k-forever", noSecrets, false, time.Time{})
	check("a key without expiry", t0, time.Time{}, true)
	mustNil(t, s.DeleteKey(ctx, "k-forever", nil, ev("key.delete")))
	check("after deleting it", t0, t0.Add(72*time.Hour), true)
	_, err := s.UpdateAccount(ctx, noSecrets.ID, func(a storage.Account) (storage.Account, error) {
		a.AuthMethods, a.TLS = append(a.AuthMethods, storage.AuthTLS), bound
		return a, nil
	}, ev("account.update"))
	mustNil(t, err)
	checkWith("a certificate binding", true, t0, time.Time{}, true)
	checkWith("a certificate binding", false, t0, t0.Add(72*time.Hour), true)
	checkWith("a certificate binding after every expiry", true, t0.Add(72*time.Hour), time.Time{}, true)
	checkWith("a certificate binding after every expiry", false, t0.Add(72*time.Hour), time.Time{}, false)
}

// With NoCertificates, a guard counts no certificate binding as a way in
// (the server takes no CA-issued client certificate): a change that
// leaves bindings the only ways in fails as one that leaves none, and a
// change of an account whose only way in is a binding was no way in and
// passes. Each case has its own scope and accounts; refused with one
// setting, the same change then passes with the other.
func testGuardKeepSignInCertificates(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	none, bound := storage.TLSBinding{}, storage.TLSBinding{SANDNS: "admin.example"}
	// create makes the account n holding scope, signing in by methods
	// (with a binding if tls), and returns its ID.
	create := func(n int, scope string, tls storage.TLSBinding, methods ...string) storage.Account {
		a := withAuth(holder(n, false, scope), tls, methods...)
		mustNil(t, s.CreateAccount(ctx, a, ev("account.create")))
		return a
	}
	// boundWithKey: an account allowing tls_client_auth with a binding and
	// a key, and another with only the binding; the change is to the first.
	type change = func(g storage.Guard) error
	boundWithKey := func(n int, scope string, fn func(a storage.Account) change) change {
		a := create(n, scope, bound, storage.AuthTLS)
		newKey(t, s, fmt.Sprintf("k-%02d", n), a, false, time.Time{})
		return fn(a)
	}
	otherBound := func(n int, scope string, fn func(a storage.Account) change) change {
		create(n+50, scope, bound, storage.AuthTLS)
		a := create(n, scope, none, storage.AuthPrivateKeyJWT)
		newKey(t, s, fmt.Sprintf("k-%02d", n), a, false, time.Time{})
		return fn(a)
	}
	updateAccount := func(fn func(storage.Account) (storage.Account, error)) func(a storage.Account) change {
		return func(a storage.Account) change {
			return func(g storage.Guard) error {
				_, err := s.UpdateAccount(ctx, a.ID, fn, ev("account.update"), g)
				return err
			}
		}
	}
	for i, tt := range []struct {
		name string
		// setup makes account n and others for scope; it returns the
		// change, made with a guard.
		setup func(n int, scope string) change
		// refusedWithout: refused with NoCertificates, then passes
		// without; else the other way round.
		refusedWithout bool
	}{
		{"deleting the last key beside a binding", func(n int, scope string) change {
			return boundWithKey(n, scope, func(a storage.Account) change {
				return func(g storage.Guard) error {
					return s.DeleteKey(ctx, fmt.Sprintf("k-%02d", n), nil, ev("key.delete"), g)
				}
			})
		}, true},
		{"disabling the last key beside a binding", func(n int, scope string) change {
			return boundWithKey(n, scope, func(a storage.Account) change {
				return func(g storage.Guard) error {
					_, err := s.UpdateKey(ctx, fmt.Sprintf("k-%02d", n), setKeyDisabled(true), ev("key.disable"), g)
					return err
				}
			})
		}, true},
		{"deleting the last secret beside a binding", func(n int, scope string) change {
			a := create(n, scope, bound, storage.AuthSecretBasic, storage.AuthTLS)
			newSecret(t, s, fmt.Sprintf("s-%02d", n), a, false, time.Time{})
			return func(g storage.Guard) error {
				return s.DeleteSecret(ctx, fmt.Sprintf("s-%02d", n), nil, ev("secret.delete"), g)
			}
		}, true},
		{"trading the last secret for a binding", func(n int, scope string) change {
			a := create(n, scope, bound, storage.AuthSecretPost)
			newSecret(t, s, fmt.Sprintf("s-%02d", n), a, false, time.Time{})
			return updateAccount(func(a storage.Account) (storage.Account, error) {
				return withAuth(a, bound, storage.AuthTLS), nil
			})(a)
		}, true},
		{"disabling the last with a key while another has a binding", func(n int, scope string) change {
			return otherBound(n, scope, updateAccount(setDisabled(true)))
		}, true},
		{"demoting the last with a key while another has a binding", func(n int, scope string) change {
			return otherBound(n, scope, updateAccount(setScopes("orders.read")))
		}, true},
		{"deleting the last with a key while another has a binding", func(n int, scope string) change {
			return otherBound(n, scope, func(a storage.Account) change {
				return func(g storage.Guard) error { return s.DeleteAccount(ctx, a.ID, nil, ev("account.delete"), g) }
			})
		}, true},
		{"disabling the last with only a binding", func(n int, scope string) change {
			return updateAccount(setDisabled(true))(create(n, scope, bound, storage.AuthTLS))
		}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, scope := i+1, fmt.Sprintf("case%02d.admin", i+1)
			change := tt.setup(n, scope)
			first := storage.Guard{KeepSignIn: scope, Now: t0, NoCertificates: tt.refusedWithout}
			then := first
			then.NoCertificates = !first.NoCertificates
			before := len(verifyAll(t, s))
			wantErr(t, change(first), storage.ErrLastCredential)
			if n := len(verifyAll(t, s)); n != before {
				t.Errorf("%d audit events after a refusal, want %d", n, before)
			}
			mustNil(t, change(then))
		})
	}
	verifyAll(t, s)
}

// newKey creates key id of a, disabled or not, expiring at expires (never
// when zero).
func newKey(t *testing.T, s storage.Storage, id string, a storage.Account, disabled bool, expires time.Time) {
	t.Helper()
	k := key(id, a.ID)
	k.Disabled, k.ExpiresAt = disabled, expires
	mustNil(t, s.CreateKey(context.Background(), k, nil, ev("key.create")))
}

// newSecret creates secret id of a, disabled or not, expiring at expires
// (never when zero).
func newSecret(t *testing.T, s storage.Storage, id string, a storage.Account, disabled bool, expires time.Time) {
	t.Helper()
	x := secret(id, a.ID, t0)
	x.Disabled, x.ExpiresAt = disabled, expires
	mustNil(t, s.CreateSecret(context.Background(), x, nil, ev("secret.create")))
}
