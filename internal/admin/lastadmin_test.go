package admin_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// No change through the API leaves Keyward without an enabled account
// holding keyward.admin, and an administrator cannot demote itself.
func TestKeepsAnAdministrator(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc := f.srv.Admin
	op := admin.Actor{ID: "op"} // not an account: an operator, the console, a script
	noScopes := []string{}
	wantConflict := func(t *testing.T, what string, err error) {
		t.Helper()
		var oe *oauth2.Error
		if !errors.As(err, &oe) || oe.Code != admin.ErrConflict {
			t.Fatalf("%s: err = %v, want conflict", what, err)
		}
	}
	t.Run("last admin", func(t *testing.T) {
		_, err := svc.UpdateAccount(ctx, op, f.admin.ID, admin.AccountUpdate{Scopes: &noScopes})
		wantConflict(t, "removing the scope", err)
		_, err = svc.SetAccountDisabled(ctx, op, f.admin.ID, true)
		wantConflict(t, "disabling", err)
		wantConflict(t, "deleting", svc.DeleteAccount(ctx, op, f.admin.ID))
		a, err := f.store.GetAccount(ctx, f.admin.ID)
		if err != nil || a.Disabled || len(a.Scopes) != 1 {
			t.Fatalf("the administrator changed: %+v %v", a, err)
		}
	})
	t.Run("self-demotion", func(t *testing.T) {
		auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
		code, out, _ := f.call(t, "PATCH", "/v1/service-accounts/"+f.admin.Email, auth, admin.AccountUpdate{Scopes: &noScopes})
		if code != 409 || out["error"] != admin.ErrConflict {
			t.Fatalf("%d %v, want 409 conflict", code, out)
		}
	})
	second, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: "second", Project: "ops", Scopes: []string{admin.AdminScope}})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("a disabled admin does not count", func(t *testing.T) {
		if _, err := svc.SetAccountDisabled(ctx, op, second.ID, true); err != nil {
			t.Fatal(err)
		}
		_, err := svc.UpdateAccount(ctx, op, f.admin.ID, admin.AccountUpdate{Scopes: &noScopes})
		wantConflict(t, "removing the scope", err)
		if _, err := svc.SetAccountDisabled(ctx, op, second.ID, false); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("with another admin", func(t *testing.T) {
		// One able to get tokens (TestKeepsAnAdministratorWithAWayIn).
		if _, err := svc.CreateKey(ctx, op, second.ID, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.UpdateAccount(ctx, op, f.admin.ID, admin.AccountUpdate{Scopes: &noScopes}); err != nil {
			t.Fatalf("removing the scope with another admin left: %v", err)
		}
		_, err = svc.SetAccountDisabled(ctx, op, second.ID, true)
		wantConflict(t, "disabling the new last admin", err)
		if err := svc.DeleteAccount(ctx, op, f.admin.ID); err != nil {
			t.Fatalf("deleting a former admin: %v", err)
		}
		if _, err := f.store.GetAccount(ctx, f.admin.ID); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("former admin still there: %v", err)
		}
	})
}

// No change of an administrator account through the API leaves no
// enabled administrator able to get tokens: one with a key is not
// disabled, deleted or demoted while the other has none, and one signing
// in with a secret or a certificate keeps the methods and the binding it
// needs.
func TestKeepsAnAdministratorWithAWayIn(t *testing.T) {
	ctx := context.Background()
	// A server that takes CA-issued certificates, so a binding is a way in
	// (without, see TestKeepsAWayInThisServerTakes).
	f := newFixture(t, clientCA)
	svc := f.srv.Admin
	op := admin.Actor{ID: "op"}
	wantRefused := func(t *testing.T, what, change string, err error) {
		t.Helper()
		var oe *oauth2.Error
		if !errors.As(err, &oe) || oe.Code != admin.ErrConflict || !strings.Contains(oe.Description, "last enabled administrator that can get tokens") ||
			!strings.Contains(oe.Description, change+" would leave no one") {
			t.Fatalf("%s: err = %v, want a conflict saying %s would leave no administrator able to get tokens", what, err, change)
		}
	}
	keyless, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: "keyless", Project: "ops", Scopes: []string{admin.AdminScope}})
	if err != nil {
		t.Fatal(err)
	}
	noScopes := []string{}
	_, err = svc.UpdateAccount(ctx, op, f.admin.ID, admin.AccountUpdate{Scopes: &noScopes})
	wantRefused(t, "removing the scope", "removing the scope", err)
	_, err = svc.SetAccountDisabled(ctx, op, f.admin.ID, true)
	wantRefused(t, "disabling", "disabling it", err)
	wantRefused(t, "deleting", "deleting it", svc.DeleteAccount(ctx, op, f.admin.ID))

	// A secret is a way in while the account's methods allow it.
	sec, err := svc.CreateSecret(ctx, op, keyless.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetAccountDisabled(ctx, op, f.admin.ID, true); err != nil {
		t.Fatalf("disabling an administrator with another able to get tokens: %v", err)
	}
	keysOnly := []string{storage.AuthPrivateKeyJWT}
	_, err = svc.UpdateAccount(ctx, op, keyless.ID, admin.AccountUpdate{AuthMethods: &keysOnly})
	wantRefused(t, "disallowing secrets", "this change", err)
	// So is a certificate binding with tls_client_auth allowed.
	tlsOnly, bound := []string{storage.AuthTLS}, storage.TLSBinding{SANDNS: "keyless.example"}
	if _, err := svc.UpdateAccount(ctx, op, keyless.ID, admin.AccountUpdate{AuthMethods: &tlsOnly, TLS: &bound}); err != nil {
		t.Fatalf("trading the secret for a certificate: %v", err)
	}
	if err := svc.DeleteSecret(ctx, op, keyless.ID, sec.ID); err != nil {
		t.Fatalf("deleting a secret the account may no longer use: %v", err)
	}
	_, err = svc.UpdateAccount(ctx, op, keyless.ID, admin.AccountUpdate{TLS: &storage.TLSBinding{}})
	wantRefused(t, "removing the binding", "this change", err)
	if a, err := f.store.GetAccount(ctx, keyless.ID); err != nil || a.TLS != bound || !slices.Equal(a.AuthMethods, tlsOnly) {
		t.Fatalf("the last administrator able to get tokens after a refused change: %+v, %v", a, err)
	}
	if _, err := svc.SetAccountDisabled(ctx, op, f.admin.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteAccount(ctx, op, keyless.ID); err != nil {
		t.Fatalf("deleting an administrator with another able to get tokens: %v", err)
	}
}

// No change of a key or a secret through the API leaves every enabled
// administrator without a way to get tokens: the last one is not disabled
// or deleted (409, saying what to do), whoever's it is; keys and secrets
// of other accounts go freely.
func TestKeepsAWayInForAnAdministrator(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc := f.srv.Admin
	op := admin.Actor{ID: "op"}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	keys, err := svc.ListKeys(ctx, f.admin.ID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("the administrator's keys: %+v, %v", keys, err)
	}
	keyPath := "/v1/service-accounts/" + f.admin.Email + "/keys/" + keys[0].ID
	wantRefused := func(t *testing.T, method, path, what string) {
		t.Helper()
		code, out, _ := f.call(t, method, path, auth, nil)
		desc, _ := out["error_description"].(string)
		if code != 409 || out["error"] != admin.ErrConflict || !strings.Contains(desc, what+" of "+f.admin.Email) ||
			!strings.Contains(desc, "Create another key for an administrator first") {
			t.Fatalf("%s %s: %d %v, want 409 conflict naming %s and what to do", method, path, code, out, what)
		}
	}
	t.Run("the last key", func(t *testing.T) {
		wantRefused(t, "POST", keyPath+"/disable", "key "+keys[0].ID)
		wantRefused(t, "DELETE", keyPath, "key "+keys[0].ID)
		if k, err := svc.GetKey(ctx, f.admin.ID, keys[0].ID); err != nil || k.Disabled {
			t.Fatalf("the last key after refused changes: %+v, %v", k, err)
		}
	})
	sec, err := svc.CreateSecret(ctx, op, f.admin.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	secretPath := "/v1/service-accounts/" + f.admin.Email + "/secrets/" + sec.ID
	t.Run("the last secret", func(t *testing.T) {
		if code, out, _ := f.call(t, "POST", keyPath+"/disable", auth, nil); code != 200 {
			t.Fatalf("disabling the key with a secret left: %d %v", code, out)
		}
		wantRefused(t, "POST", secretPath+"/disable", "secret "+sec.ID)
		wantRefused(t, "DELETE", secretPath, "secret "+sec.ID)
		if code, out, _ := f.call(t, "POST", keyPath+"/enable", auth, nil); code != 200 {
			t.Fatalf("enabling the key: %d %v", code, out)
		}
		if code, out, _ := f.call(t, "DELETE", secretPath, auth, nil); code != 204 {
			t.Fatalf("deleting the secret with a key left: %d %v", code, out)
		}
	})
	t.Run("other accounts", func(t *testing.T) {
		job, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop"})
		if err != nil {
			t.Fatal(err)
		}
		kf, err := svc.CreateKey(ctx, op, job.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteKey(ctx, op, job.ID, kf.PrivateKeyID); err != nil {
			t.Fatalf("deleting the key of an account that is no administrator: %v", err)
		}
		// Another administrator's key is a way in: the first one's last
		// key may go, and then the other's is the last.
		second, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: "second", Project: "ops", Scopes: []string{admin.AdminScope}})
		if err != nil {
			t.Fatal(err)
		}
		if kf, err = svc.CreateKey(ctx, op, second.ID, 0); err != nil {
			t.Fatal(err)
		}
		if code, out, _ := f.call(t, "DELETE", keyPath, auth, nil); code != 204 {
			t.Fatalf("deleting the key with another administrator's left: %d %v", code, out)
		}
		var oe *oauth2.Error
		if _, err := svc.SetKeyDisabled(ctx, op, second.ID, kf.PrivateKeyID, true); !errors.As(err, &oe) || oe.Code != admin.ErrConflict {
			t.Fatalf("disabling the last administrator key: %v, want conflict", err)
		}
	})
}

// An API whose scopes are granted is not deleted; the refusal names every
// holder. Without the grants it goes, and a new API with the same scopes
// grants nothing to anyone.
func TestDeleteAPIRefusedWhileGranted(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc := f.srv.Admin
	op := admin.Actor{ID: "op"}
	orders := admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}}
	if _, err := svc.CreateAPI(ctx, op, orders); err != nil {
		t.Fatal(err)
	}
	job, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	delegate, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: "delegate", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GrantDelegation(ctx, op, "example.com", delegate.ID, []string{"orders.write"}); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	code, out, _ := f.call(t, "DELETE", "/v1/apis/orders", auth, nil)
	desc, _ := out["error_description"].(string)
	if code != 409 || out["error"] != admin.ErrConflict || !strings.Contains(desc, job.Email+" (orders.read)") ||
		!strings.Contains(desc, "client "+delegate.ID+" in example.com (orders.write)") {
		t.Fatalf("%d %v, want 409 conflict naming both holders", code, out)
	}
	if _, err := svc.GetAPI(ctx, "orders"); err != nil {
		t.Fatalf("the API is gone after a refused delete: %v", err)
	}
	none := []string{}
	if _, err := svc.UpdateAccount(ctx, op, job.ID, admin.AccountUpdate{Scopes: &none}); err != nil {
		t.Fatal(err)
	}
	if err := svc.RevokeDelegation(ctx, op, "example.com", delegate.ID); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := f.call(t, "DELETE", "/v1/apis/orders", auth, nil); code != 204 {
		t.Fatalf("delete without grants: %d %v", code, out)
	}
}

// The refusal lists the first holders and counts the rest; an API that
// does not exist is not found.
func TestDeleteAPIRefusalCountsHolders(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc := f.srv.Admin
	op := admin.Actor{ID: "op"}
	if _, err := svc.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	for i := range storage.HoldersListed + 2 {
		if _, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: fmt.Sprintf("job-%02d", i), Project: "shop", Scopes: []string{"orders.read"}}); err != nil {
			t.Fatal(err)
		}
	}
	var oe *oauth2.Error
	err := svc.DeleteAPI(ctx, op, "orders")
	if !errors.As(err, &oe) || oe.Code != admin.ErrConflict || strings.Count(oe.Description, "(orders.read)") != storage.HoldersListed ||
		!strings.Contains(oe.Description, "; and 2 more.") {
		t.Fatalf("DeleteAPI = %v, want a conflict listing %d holders and 2 more", err, storage.HoldersListed)
	}
	if err := svc.DeleteAPI(ctx, op, "nothing"); !errors.As(err, &oe) || oe.Code != admin.ErrNotFound {
		t.Fatalf("DeleteAPI of no API = %v, want not_found", err)
	}
}

// An API whose scopes accounts hold already, left from a deleted API from
// before deletion was refused, is not created: those accounts would get
// its access unnoticed. The refusal names them.
func TestCreateAPIRefusedWhileScopesHeld(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc := f.srv.Admin
	op := admin.Actor{ID: "op"}
	// What an older version could leave: an account holding the scope of
	// an API that was deleted.
	stale := storage.Account{ID: "100000000000000000077", Email: "old@shop.iam.test", Name: "old", Project: "shop", Scopes: []string{"orders.read"}, CreatedAt: time.Now(), UpdatedAt: time.Now()}
	if err := f.store.CreateAccount(ctx, stale, storage.AuditEvent{Time: time.Now(), Action: "account.create", Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	var oe *oauth2.Error
	_, err := svc.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}})
	if !errors.As(err, &oe) || oe.Code != admin.ErrConflict || !strings.Contains(oe.Description, "account old@shop.iam.test (orders.read)") {
		t.Fatalf("CreateAPI = %v, want a conflict naming the account holding orders.read", err)
	}
	if _, err := svc.UpdateAccount(ctx, op, stale.Email, admin.AccountUpdate{Scopes: &[]string{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatalf("once the scope is let go: %v", err)
	}
}
