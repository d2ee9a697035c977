package storagetest

import (
	"context"
	"errors"
	"testing"

	"github.com/keyward/keyward/internal/storage"
)

// An empty store is ready: Ping's read of its tables finds no rows, which
// is no failure.
func testPing(t *testing.T, s storage.Storage) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping on an empty store: %v", err)
	}
}

// PingCannotServe checks that Ping fails while a table token requests
// need is gone (renamed away with exec, on the store's database), with
// an error that wraps storage.ErrCannotServe, and succeeds again once it
// is back: a store that answers but cannot serve is not ready (/readyz).
func PingCannotServe(t *testing.T, s storage.Storage, exec func(t *testing.T, queries ...string)) {
	ctx := context.Background()
	mustNil(t, s.CreateAccount(ctx, holder(1, false), ev("account.create")))
	for _, table := range []string{"accounts", "keys", "secrets", "apis", "signing_keys", "used_jtis", "audit_events", "tokens", "revocations"} {
		exec(t, `ALTER TABLE `+table+` RENAME TO gone_`+table)
		if err := s.Ping(ctx); !errors.Is(err, storage.ErrCannotServe) {
			t.Errorf("Ping with %s gone: %v, want an error wrapping ErrCannotServe", table, err)
		}
		exec(t, `ALTER TABLE gone_`+table+` RENAME TO `+table)
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping with %s back: %v", table, err)
		}
	}
}
