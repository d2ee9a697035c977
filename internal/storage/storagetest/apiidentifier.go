package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/storage"
)

// CreateAPI refuses an identifier that is another API's but for the case
// of its scheme or host or one trailing slash, inside its transaction.
func testCreateAPIIdentifierTaken(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	mustNil(t, s.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}, CreatedAt: t0}, ev("api.create")))
	tests := []struct {
		identifier string
		taken      bool // an *IdentifierTakenError naming orders
		exists     bool // ErrAlreadyExists (the same identifier, or taken)
	}{
		{"https://orders.internal/", true, true},
		{"HTTPS://Orders.Internal", true, true},
		{"https://ORDERS.internal/", true, true},
		{"https://orders.internal", false, true},
		{"https://orders.internal/v1", false, false},
		{"https://orders.internal:8443", false, false},
		{"https://orders.internal//", false, false},
	}
	for i, tt := range tests {
		name := fmt.Sprintf("orders%d", i)
		err := s.CreateAPI(ctx, storage.API{Name: name, Identifier: tt.identifier, Scopes: []string{name + ".read"}, CreatedAt: t0}, ev("api.create"))
		taken, isTaken := errors.AsType[*storage.IdentifierTakenError](err)
		if isTaken != tt.taken || errors.Is(err, storage.ErrAlreadyExists) != tt.exists || (!tt.exists && err != nil) {
			t.Errorf("CreateAPI(%q) = %v; want taken %v, ErrAlreadyExists %v", tt.identifier, err, tt.taken, tt.exists)
			continue
		}
		if isTaken && (taken.API != "orders" || taken.Identifier != "https://orders.internal") {
			t.Errorf("CreateAPI(%q) = %+v, want the API orders named", tt.identifier, taken)
		}
	}
}

// Two concurrent CreateAPIs of identifiers differing by a trailing slash
// or case: exactly one passes.
func testCreateAPIIdentifierConcurrent(t *testing.T, s storage.Storage) {
	ctx := context.Background()
	for round := range 20 {
		host := fmt.Sprintf("orders%d.internal", round)
		ids := [2]string{"https://" + host, "https://" + host + "/"}
		if round%2 == 1 {
			ids[1] = "HTTPS://" + host
		}
		var (
			wg    sync.WaitGroup
			start = make(chan struct{})
			errs  [2]error
		)
		for i := range 2 {
			wg.Go(func() {
				name := fmt.Sprintf("r%da%d", round, i)
				<-start
				errs[i] = s.CreateAPI(ctx, storage.API{Name: name, Identifier: ids[i], Scopes: []string{name + ".read"}, CreatedAt: t0}, ev("api.create"))
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, storage.ErrAlreadyExists):
			default:
				t.Fatalf("round %d: CreateAPI(%q) = %v", round, ids[i], err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of CreateAPI(%q) and CreateAPI(%q) passed (%v), want exactly one", round, ok, ids[0], ids[1], errs)
		}
	}
}
