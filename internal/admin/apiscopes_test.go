package admin_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeyward"
)

// PATCH /v1/apis/{name} changes the API's scopes, a whole list kept in
// the order given; a token request for a scope added is answered at once
// (the catalog the token endpoint caches follows). Scopes still granted
// cannot be removed, another API's cannot be taken, the scope names are
// checked as at creation, and the built-in API's scopes stay.
func TestUpdateAPIScopes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	svc := f.srv.Admin
	op := admin.Actor{ID: "op"}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	job, secret := testkeyward.OrdersJob(t, svc, op)
	// tokenFor asks /token for scope as job.
	tokenFor := func(scope string) (int, map[string]any) { return f.clientToken(job.ID, secret, scope) }
	// The token endpoint has read the catalog before the change.
	if code, out := tokenFor("orders.read"); code != 200 {
		t.Fatalf("token for orders.read: %d %v", code, out)
	}
	if code, out := tokenFor("orders.write"); code != 400 || out["error"] != "invalid_scope" {
		t.Fatalf("token for orders.write before it exists: %d %v, want invalid_scope", code, out)
	}

	tag, _ := f.etagOf(t, "/v1/apis/orders", auth)
	added := []string{"orders.write", "orders.read"}
	code, out, hdr := f.callIf(t, "PATCH", "/v1/apis/orders", auth, tag, admin.APIUpdate{Scopes: &added})
	if code != 200 || mustJSON(t, out["scopes"]) != `["orders.write","orders.read"]` || hdr.Get("ETag") == tag {
		t.Fatalf("PATCH scopes: %d %v, ETag %s → %s: want the new list in its order and a new ETag", code, out, tag, hdr.Get("ETag"))
	}
	if code, out, _ := f.callIf(t, "PATCH", "/v1/apis/orders", auth, tag, admin.APIUpdate{Scopes: &[]string{"orders.read"}}); code != 412 {
		t.Fatalf("PATCH scopes with the ETag from before: %d %v, want 412", code, out)
	}
	evs, err := f.store.ListAuditEvents(ctx, storage.AuditFilter{Newest: true, Limit: 2})
	if err != nil || len(evs) != 2 || evs[0].Action != admin.ActionRefused || evs[1].Action != "api.update" || evs[1].Data["scopes"] != "orders.write orders.read" {
		t.Fatalf("last audit events: %+v, %v; want the 412's admin.refused after api.update with the new scopes", evs, err)
	}
	// Granted, the new scope gets a token right away.
	if _, err := svc.UpdateAccount(ctx, op, job.ID, admin.AccountUpdate{Scopes: &added}); err != nil {
		t.Fatalf("granting the added scope: %v", err)
	}
	if code, out := tokenFor("orders.write"); code != 200 || out["scope"] != "orders.write" {
		t.Fatalf("token for the added scope: %d %v, want it issued", code, out)
	}

	wantRefused := func(t *testing.T, name string, scopes []string, status int, says ...string) {
		t.Helper()
		code, out, _ := f.call(t, "PATCH", "/v1/apis/"+name, auth, admin.APIUpdate{Scopes: &scopes})
		desc, _ := out["error_description"].(string)
		if code != status {
			t.Fatalf("PATCH %s scopes %q: %d %v, want %d", name, scopes, code, out, status)
		}
		for _, s := range says {
			if !strings.Contains(desc, s) {
				t.Fatalf("PATCH %s scopes %q: %q, want it to say %q", name, scopes, desc, s)
			}
		}
	}
	if _, err := svc.CreateAPI(ctx, op, admin.APIInput{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}}); err != nil {
		t.Fatal(err)
	}
	t.Run("refused", func(t *testing.T) {
		wantRefused(t, "orders", []string{"orders.read"}, 409, "orders.write cannot be removed", "account "+job.Email+" (orders.write)")
		wantRefused(t, "orders", []string{"orders.write", "orders.read", "billing.read"}, 409, `The scope "billing.read" belongs to the API "billing"`)
		wantRefused(t, "orders", []string{"orders.write", "orders.read", admin.AdminScope}, 409, `"keyward.admin" belongs to the API "keyward"`)
		wantRefused(t, "orders", []string{}, 400, "at least one scope")
		wantRefused(t, "orders", []string{"orders.read", "orders read"}, 400, `"orders read" is not a valid scope name`)
		wantRefused(t, "orders", []string{"orders.read", "orders.write", "orders.read"}, 400, "listed twice")
		wantRefused(t, admin.BuiltinAPIName, []string{admin.AdminScope, "keyward.more"}, 409, "built-in API")
		wantRefused(t, "ghost", []string{"ghost.read"}, 404)
		for name, want := range map[string][]string{"orders": added, "billing": {"billing.read"}} {
			if a, err := svc.GetAPI(ctx, name); err != nil || !slices.Equal(a.Scopes, want) {
				t.Fatalf("%s after refused changes: %+v, %v; want scopes %v", name, a, err, want)
			}
		}
	})
	t.Run("a held scope left from a deleted API", func(t *testing.T) {
		stale := storage.Account{ID: "100000000000000000077", Email: "old@shop.iam.test", Name: "old", Project: "shop", Scopes: []string{"orders.old"}}
		if err := f.store.CreateAccount(ctx, stale, storage.AuditEvent{Action: "account.create", Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		wantRefused(t, "orders", []string{"orders.write", "orders.read", "orders.old"}, 409, "orders.old cannot be added", "account old@shop.iam.test (orders.old)")
	})
	t.Run("the built-in API's own list", func(t *testing.T) {
		builtin, err := svc.GetAPI(ctx, admin.BuiltinAPIName)
		if err != nil {
			t.Fatal(err)
		}
		if code, out, _ := f.call(t, "PATCH", "/v1/apis/"+admin.BuiltinAPIName, auth, admin.APIUpdate{Scopes: &builtin.Scopes}); code != 200 {
			t.Fatalf("PATCH of the built-in API with its own scopes: %d %v, want 200", code, out)
		}
	})
	// Let go of, a scope can be removed; then it no longer gets a token.
	if _, err := svc.UpdateAccount(ctx, op, job.ID, admin.AccountUpdate{Scopes: &[]string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := f.call(t, "PATCH", "/v1/apis/orders", auth, admin.APIUpdate{Scopes: &[]string{"orders.read"}}); code != 200 {
		t.Fatalf("removing a scope no one holds: %d %v", code, out)
	}
	if code, out := tokenFor("orders.write"); code != 400 || out["error"] != "invalid_scope" {
		t.Fatalf("token for a removed scope: %d %v, want invalid_scope", code, out)
	}
}

// An API's scopes are bounded, at creation and in a change, with a 400
// that says so, not a 503 from the store's statement.
func TestAPIScopesBound(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	many := make([]string, admin.MaxAPIScopes+1)
	for i := range many {
		many[i] = fmt.Sprintf("s.%d", i)
	}
	status, body, _ := f.call(t, "POST", "/v1/apis", auth, map[string]any{"name": "big", "identifier": "https://big.internal", "scopes": many})
	if desc, _ := body["error_description"].(string); status != 400 || !strings.Contains(desc, "at most") {
		t.Errorf("create with %d scopes: %d %v, want 400", len(many), status, body)
	}
	status, body, _ = f.call(t, "PATCH", "/v1/apis/keyward", auth, map[string]any{"scopes": many})
	if desc, _ := body["error_description"].(string); status != 400 || !strings.Contains(desc, "at most") {
		t.Errorf("change to %d scopes: %d %v, want 400", len(many), status, body)
	}
}

// POST /v1/apis refused 409 for what another API has says which: the
// name, the identifier or a scope, naming the API that has it. It said
// only that one of the three was taken.
func TestCreateAPIConflictNamesWhat(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if code, out, _ := f.call(t, "POST", "/v1/apis", auth, admin.APIInput{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}}); code != 201 {
		t.Fatalf("creating billing: %d %v", code, out)
	}
	for _, c := range []struct {
		in   admin.APIInput
		want string
	}{
		{admin.APIInput{Name: "billing", Identifier: "https://other.internal", Scopes: []string{"other.read"}}, `The API "billing" exists already.`},
		{admin.APIInput{Name: "other", Identifier: "https://billing.internal", Scopes: []string{"other.read"}}, `The API identifier "https://billing.internal" is the API "billing"'s already`},
		{admin.APIInput{Name: "other", Identifier: "https://other.internal", Scopes: []string{"other.read", "billing.read"}}, `The scope "billing.read" belongs to the API "billing"`},
		{admin.APIInput{Name: "other", Identifier: "https://other.internal", Scopes: []string{admin.AdminScope}}, `The scope "keyward.admin" belongs to the API "keyward"`},
	} {
		code, out, _ := f.call(t, "POST", "/v1/apis", auth, c.in)
		if desc, _ := out["error_description"].(string); code != 409 || !strings.Contains(desc, c.want) {
			t.Errorf("POST /v1/apis %+v: %d %v, want 409 saying %q", c.in, code, out, c.want)
		}
	}
}
