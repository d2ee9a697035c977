package admin_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
)

// accountGoneStore deletes the account a change is about just before the
// change reaches the store, as another administrator's DELETE between the
// service's lookup and its transaction would.
type accountGoneStore struct {
	storage.Storage
}

func (s accountGoneStore) UpdateAccount(ctx context.Context, id string, fn func(storage.Account) (storage.Account, error), ev storage.AuditEvent, guards ...storage.Guard) (storage.Account, error) {
	if err := s.Storage.DeleteAccount(ctx, id, nil, storage.AuditEvent{Time: time.Now(), Action: "account.delete", Outcome: storage.OutcomeSuccess, AccountID: id}); err != nil {
		return storage.Account{}, err
	}
	return s.Storage.UpdateAccount(ctx, id, fn, ev, guards...)
}

// services returns two services on one new SQLite store: plain on the
// store itself, svc on the store wrap makes of it, which deletes
// something meanwhile.
func services(t *testing.T, wrap func(storage.Storage) storage.Storage) (st storage.Storage, plain, svc *admin.Service) {
	t.Helper()
	st = openSQLite(t)
	t.Cleanup(func() { st.Close() })
	cfg := admin.Config{AccountDomain: "iam.test", DefaultTokenLifetime: time.Hour, MaxTokenLifetime: time.Hour}
	return st, admin.NewService(st, cfg), admin.NewService(wrap(st), cfg)
}

// A change of an account deleted since the service looked it up is 404
// not_found, as it is when the account was gone before: not the 503 of a
// store failure, which tells the caller to retry what cannot succeed.
func TestChangeOfAccountDeletedMeanwhile(t *testing.T) {
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	_, plain, svc := services(t, func(st storage.Storage) storage.Storage { return accountGoneStore{st} })
	desc := "d"
	tests := []struct {
		name   string
		change func(ref string) error
	}{
		{"update", func(ref string) error {
			_, err := svc.UpdateAccount(ctx, op, ref, admin.AccountUpdate{Description: &desc})
			return err
		}},
		{"disable", func(ref string) error { _, err := svc.SetAccountDisabled(ctx, op, ref, true); return err }},
		{"enable", func(ref string) error { _, err := svc.SetAccountDisabled(ctx, op, ref, false); return err }},
		{"revoke tokens", func(ref string) error { _, err := svc.RevokeAccountTokens(ctx, op, ref); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := plain.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop"})
			if err != nil {
				t.Fatal(err)
			}
			err = tt.change(a.Email)
			if oe := oauth2.AsError(err); oe == nil || oe.Code != admin.ErrNotFound || oe.HTTPStatus() != 404 {
				t.Fatalf("err = %v, want 404 not_found", err)
			}
		})
	}
}

// grantGoneStore deletes the account a delegation is granted to just
// before the grant reaches the store.
type grantGoneStore struct {
	storage.Storage
}

func (s grantGoneStore) PutGrant(ctx context.Context, g storage.Grant, ev storage.AuditEvent, guards ...storage.Guard) (storage.Grant, error) {
	if err := s.Storage.DeleteAccount(ctx, g.ClientID, nil, storage.AuditEvent{Time: time.Now(), Action: "account.delete", Outcome: storage.OutcomeSuccess, AccountID: g.ClientID}); err != nil {
		return storage.Grant{}, err
	}
	return s.Storage.PutGrant(ctx, g, ev, guards...)
}

// A delegation granted to an account deleted since the service looked it
// up is 404, and no grant is left naming no account: deleting the
// account took its grants, and one made after would be listed and hold
// its scopes (DELETE of their API refused) for an account that is gone.
func TestGrantToAccountDeletedMeanwhile(t *testing.T) {
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	st, plain, svc := services(t, func(st storage.Storage) storage.Storage { return grantGoneStore{st} })
	if _, err := plain.CreateAPI(ctx, op, admin.APIInput{Name: "mail", Identifier: "https://mail.internal", Scopes: []string{"mail.read"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := plain.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	a, err := plain.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.GrantDelegation(ctx, op, "example.com", a.ID, []string{"mail.read"})
	if oe := oauth2.AsError(err); oe == nil || oe.HTTPStatus() != 404 || !strings.Contains(oe.Description, "service account") {
		t.Fatalf("err = %v, want 404 saying the account does not exist", err)
	}
	if grants, err := st.ListGrants(ctx, "example.com"); err != nil || len(grants) != 0 {
		t.Fatalf("grants %+v, %v; want none", grants, err)
	}
	if err := plain.DeleteAPI(ctx, op, "mail"); err != nil {
		t.Fatalf("delete the API whose scope only the account deleted had: %v", err)
	}
}

// introspectorGoneStore deletes the accounts an update makes an API's
// introspectors just before the update reaches the store.
type introspectorGoneStore struct {
	storage.Storage
}

func (s introspectorGoneStore) UpdateAPI(ctx context.Context, name string, fn func(storage.API) (storage.API, error), ev storage.AuditEvent) (storage.API, error) {
	old, err := s.Storage.GetAPI(ctx, name)
	if err != nil {
		return storage.API{}, err
	}
	a, err := fn(old)
	if err != nil {
		return storage.API{}, err
	}
	for _, id := range a.Introspectors {
		if err := s.Storage.DeleteAccount(ctx, id, nil, storage.AuditEvent{Time: time.Now(), Action: "account.delete", Outcome: storage.OutcomeSuccess, AccountID: id}); err != nil {
			return storage.API{}, err
		}
	}
	return s.Storage.UpdateAPI(ctx, name, fn, ev)
}

// An account made an API's introspector while it is being deleted is
// 404, and the API is left without it: deleting the account took it off
// every API's introspectors, and one added after would name no account.
func TestIntrospectorDeletedMeanwhile(t *testing.T) {
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	st, plain, svc := services(t, func(st storage.Storage) storage.Storage { return introspectorGoneStore{st} })
	if _, err := plain.CreateAPI(ctx, op, admin.APIInput{Name: "mail", Identifier: "https://mail.internal", Scopes: []string{"mail.read"}}); err != nil {
		t.Fatal(err)
	}
	a, err := plain.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = svc.UpdateAPI(ctx, op, "mail", admin.APIUpdate{Introspectors: &[]string{a.Email}})
	if oe := oauth2.AsError(err); oe == nil || oe.HTTPStatus() != 404 || !strings.Contains(oe.Description, a.ID) {
		t.Fatalf("err = %v, want 404 naming the account", err)
	}
	if api, err := st.GetAPI(ctx, "mail"); err != nil || len(api.Introspectors) != 0 {
		t.Fatalf("API %+v, %v; want no introspector", api, err)
	}
}
