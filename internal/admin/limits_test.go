package admin_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
)

// Values longer than their indexed columns can hold (PostgreSQL refuses
// index rows over ≈ 2.7 kB) are refused as invalid requests on every
// backend, before they reach the store.
func TestRefusesOverlongNames(t *testing.T) {
	ctx := context.Background()
	svc, _ := newService(t)
	op := admin.Actor{ID: "op"}
	long := strings.Repeat("a", 3000)
	checks := map[string]error{}
	_, checks["API identifier"] = svc.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://" + long, Scopes: []string{"orders.read"}})
	_, checks["domain"] = svc.CreateOrg(ctx, op, strings.Repeat("abcdefghij.", 30)+"com")
	if _, err := svc.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	_, checks["user email"] = svc.PutUsers(ctx, op, "example.com", []admin.UserInput{{Email: long + "@example.com"}})
	for what, err := range checks {
		var oe *oauth2.Error
		if !errors.As(err, &oe) || oe.Code != oauth2.ErrInvalidRequest {
			t.Errorf("%s: err = %v, want invalid_request", what, err)
		}
	}
	// At the limit, an identifier is fine.
	id := "https://" + strings.Repeat("a", admin.MaxIdentifierLength-len("https://"))
	if _, err := svc.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: id, Scopes: []string{"orders.read"}}); err != nil {
		t.Fatalf("identifier of %d bytes: %v", len(id), err)
	}
}
