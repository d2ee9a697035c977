package admin_test

import (
	"context"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// An audit event records a list as the change stored it: a scope, method
// or blocked scope given twice is stored once, and recorded once, as the
// events of creation record it.
func TestAuditRecordsListsAsStored(t *testing.T) {
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	f := newFixture(t)
	svc := f.srv.Admin
	if _, err := svc.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}}); err != nil {
		t.Fatal(err)
	}
	a, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, action, key, want string
		change                  func() error
	}{
		{"scopes", "account.update", "scopes", "orders.read orders.write", func() error {
			_, err := svc.UpdateAccount(ctx, op, a.ID, admin.AccountUpdate{Scopes: &[]string{"orders.read", "orders.write", "orders.read"}})
			return err
		}},
		{"auth_methods", "account.update", "auth_methods", "private_key_jwt client_secret_basic", func() error {
			_, err := svc.UpdateAccount(ctx, op, a.ID, admin.AccountUpdate{AuthMethods: &[]string{"private_key_jwt", "client_secret_basic", "private_key_jwt"}})
			return err
		}},
		{"blocked_scopes", "org.policy", "blocked_scopes", "orders.write mail.send", func() error {
			_, err := svc.SetBlockedScopes(ctx, op, "example.com", []string{"orders.write", "mail.send", "orders.write"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.change(); err != nil {
				t.Fatal(err)
			}
			evs, err := f.store.ListAuditEvents(ctx, storage.AuditFilter{Action: tt.action, Newest: true, Limit: 1})
			if err != nil || len(evs) != 1 {
				t.Fatalf("events %v, %v", evs, err)
			}
			if got := evs[0].Data[tt.key]; got != tt.want {
				t.Fatalf("%s event's %s = %q, want %q, as stored", tt.action, tt.key, got, tt.want)
			}
		})
	}
}
