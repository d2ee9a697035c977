package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// A revocation never undoes an earlier one: revoking an account's tokens,
// or changing its certificate binding, on a server whose clock is behind
// the one that revoked before (another replica, or a clock stepped back)
// keeps the later revocation time, so the tokens revoked then stay
// revoked.
func TestRevocationTimeNeverMovesBack(t *testing.T) {
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	st := openSQLite(t)
	t.Cleanup(func() { st.Close() })
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	now := t0
	svc := admin.NewService(st, admin.Config{AccountDomain: "iam.test", DefaultTokenLifetime: time.Hour, MaxTokenLifetime: time.Hour,
		CACertificates: true, Now: func() time.Time { return now }})
	binding := func(dn string) admin.AccountUpdate {
		return admin.AccountUpdate{TLS: &storage.TLSBinding{SubjectDN: dn}}
	}
	tests := []struct {
		name   string
		setup  *admin.AccountUpdate
		revoke func(ref string, i int) error
		field  func(storage.Account) time.Time
	}{
		{"revoke-tokens", nil,
			func(ref string, _ int) error { _, err := svc.RevokeAccountTokens(ctx, op, ref); return err },
			func(a storage.Account) time.Time { return a.TokensRevokedBefore }},
		{"a new certificate binding", &admin.AccountUpdate{AuthMethods: &[]string{storage.AuthTLS}, TLS: &storage.TLSBinding{SubjectDN: "CN=a"}},
			func(ref string, i int) error {
				_, err := svc.UpdateAccount(ctx, op, ref, binding([]string{"CN=b", "CN=c"}[i]))
				return err
			},
			func(a storage.Account) time.Time { return a.CertTokensRevokedBefore }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = t0
			a, err := svc.CreateAccount(ctx, op, admin.AccountInput{Name: []string{"job-a", "job-b"}[i], Project: "shop"})
			if err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				if _, err := svc.UpdateAccount(ctx, op, a.ID, *tt.setup); err != nil {
					t.Fatal(err)
				}
			}
			later := t0.Add(time.Hour)
			now = later
			if err := tt.revoke(a.ID, 0); err != nil {
				t.Fatal(err)
			}
			now = t0.Add(time.Minute) // a clock behind the one that revoked
			if err := tt.revoke(a.ID, 1); err != nil {
				t.Fatal(err)
			}
			got, err := st.GetAccount(ctx, a.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.field(got).Equal(later) {
				t.Fatalf("revoked before %v, then from a clock behind: revoked before %v, want %v kept", later, tt.field(got), later)
			}
		})
	}
}
