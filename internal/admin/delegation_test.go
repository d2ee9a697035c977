package admin_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// orgFixture is a server with the organization example.com, an API with
// the scopes orders.read and orders.write, and an account job@shop.iam.test
// holding them.
func orgFixture(t *testing.T) (f *fixture, auth, clientID string) {
	t.Helper()
	f = newFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	if _, err := f.srv.Admin.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Admin.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}}); err != nil {
		t.Fatal(err)
	}
	a, err := f.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read", "orders.write"}})
	if err != nil {
		t.Fatal(err)
	}
	return f, "Bearer " + f.token(t, f.admin, admin.AdminScope, nil), a.ID
}

// Granting again replaces the scopes and keeps the grant's creation time,
// and the answer says so: it is the grant as stored, as a later GET shows.
func TestRegrantAnswersTheStoredGrant(t *testing.T) {
	f, auth, id := orgFixture(t)
	path := "/v1/orgs/example.com/delegations/" + id
	status, first, _ := f.call(t, "PUT", path, auth, admin.GrantRequest{Scopes: []string{"orders.read"}})
	if status != 200 {
		t.Fatalf("first grant: %d %v", status, first)
	}
	listed := func() map[string]any {
		t.Helper()
		status, body, _ := f.call(t, "GET", "/v1/orgs/example.com/delegations", auth, nil)
		ds, _ := body["delegations"].([]any)
		if status != 200 || len(ds) != 1 {
			t.Fatalf("GET delegations: %d %v, want the one grant", status, body)
		}
		return ds[0].(map[string]any)
	}
	stored := listed()
	if first["created_at"] != stored["created_at"] {
		t.Errorf("the first grant's answer has created_at %v, the store %v", first["created_at"], stored["created_at"])
	}
	status, again, _ := f.call(t, "PUT", path, auth, admin.GrantRequest{Scopes: []string{"orders.read", "orders.write"}})
	if status != 200 {
		t.Fatalf("second grant: %d %v", status, again)
	}
	after := listed()
	if fmt.Sprint(again) != fmt.Sprint(after) {
		t.Errorf("the re-grant answered %v; GET shows %v", again, after)
	}
	if after["created_at"] != stored["created_at"] || fmt.Sprint(after["scopes"]) != "[orders.read orders.write]" {
		t.Errorf("after the re-grant the store has %v, want the new scopes created at %v", after, stored["created_at"])
	}
}

// A PATCH of an organization answers it as GET does, projects included.
func TestUpdateOrgAnswersAsGet(t *testing.T) {
	f, auth, _ := orgFixture(t)
	if status, body, _ := f.call(t, "PUT", "/v1/orgs/example.com/projects/shop", auth, map[string]any{"internal": true}); status != 200 {
		t.Fatalf("placing a project: %d %v", status, body)
	}
	status, patched, _ := f.call(t, "PATCH", "/v1/orgs/example.com", auth, map[string]any{"blocked_scopes": []string{"orders.write"}})
	if status != 200 {
		t.Fatalf("PATCH: %d %v", status, patched)
	}
	_, got, _ := f.call(t, "GET", "/v1/orgs/example.com", auth, nil)
	if fmt.Sprint(patched) != fmt.Sprint(got) {
		t.Errorf("PATCH answered %v; GET shows %v", patched, got)
	}
	if fmt.Sprint(got["projects"]) != "[map[internal:true project:shop]]" {
		t.Errorf("GET shows projects %v, want shop, internal", got["projects"])
	}
}

// The body of PUT …/projects/{project} has internal; the path names the
// project, so a project field naming another is refused, not silently
// ignored, and one naming the same (what older CLIs send) is accepted.
func TestPlaceProjectBody(t *testing.T) {
	f, auth, _ := orgFixture(t)
	path := "/v1/orgs/example.com/projects/shop"
	for _, body := range []string{`{"project":"other","internal":true}`, `{"project":"shop","extra":1}`} {
		status, got, _ := f.call(t, "PUT", path, auth, body)
		if status != 400 || got["error"] != "invalid_request" {
			t.Fatalf("PUT %s with %s: %d %v, want 400 invalid_request", path, body, status, got)
		}
		if p, _ := f.srv.Admin.ListProjects(context.Background(), "example.com"); len(p) != 0 {
			t.Fatalf("the refused request %s placed %v", body, p)
		}
	}
	for _, tt := range []struct {
		body any
		want string
	}{
		{`{"internal":true}`, "map[internal:true project:shop]"},
		{nil, "map[internal:false project:shop]"},                                   // the body may be left out
		{`{"project":"shop","internal":false}`, "map[internal:false project:shop]"}, // as keyward org add-project sent it before 2026-12-05
	} {
		if status, got, _ := f.call(t, "PUT", path, auth, tt.body); status != 200 || fmt.Sprint(got) != tt.want {
			t.Errorf("PUT %s with %v: %d %v, want 200 %s", path, tt.body, status, got, tt.want)
		}
	}
}
