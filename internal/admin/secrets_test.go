package admin_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage"
)

// One secret is readable by its ID, as a key is: the list's item (but
// for its "etag", which is the GET's ETag header), the hint and never the
// value; another account's secret is not reachable through this one.
func TestGetSecret(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	var emails []string
	for _, name := range []string{"job", "other"} {
		status, a, _ := f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: name, Project: "shop"})
		if status != 201 {
			t.Fatalf("creating %s: %d %v", name, status, a)
		}
		emails = append(emails, a["email"].(string))
	}
	base := "/v1/service-accounts/" + emails[0] + "/secrets"
	status, created, _ := f.call(t, "POST", base, auth, nil)
	if status != 201 {
		t.Fatalf("creating a secret: %d %v", status, created)
	}
	id, value := created["secret_id"].(string), created["client_secret"].(string)
	_, list, _ := f.call(t, "GET", base, auth, nil)
	status, got, hdr := f.call(t, "GET", base+"/"+id, auth, nil)
	item := list["secrets"].([]any)[0].(map[string]any)
	if item["etag"] != hdr.Get("ETag") {
		t.Fatalf("the list's etag %v, GET's ETag %q: want the same", item["etag"], hdr.Get("ETag"))
	}
	delete(item, "etag")
	if status != 200 || fmt.Sprint(got) != fmt.Sprint(item) {
		t.Fatalf("GET %s/%s: %d %v, want the list's item %v", base, id, status, got, item)
	}
	if got["client_secret"] != nil || got["client_id"] != nil || strings.Contains(fmt.Sprint(got), value) || got["hint"] != created["hint"] {
		t.Fatalf("GET %s/%s shows %v: want the hint %v and no value", base, id, got, created["hint"])
	}
	if status, _, _ := f.call(t, "HEAD", base+"/"+id, auth, nil); status != 200 {
		t.Errorf("HEAD: %d, want 200", status)
	}
	for _, path := range []string{base + "/0123456789abcdef", "/v1/service-accounts/" + emails[1] + "/secrets/" + id} {
		if status, body, _ := f.call(t, "GET", path, auth, nil); status != 404 || body["error"] != "not_found" {
			t.Errorf("GET %s: %d %v, want 404 not_found", path, status, body)
		}
	}
}

// A client secret given where its ID goes (keyward secrets disable SA
// kw_…, with the secret in hand) is refused without being echoed: the
// refusal's description and path, which its admin.refused event records,
// and the server's log hold no part of it.
func TestSecretGivenAsItsID(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	base := "/v1/service-accounts/" + f.admin.Email + "/secrets"
	status, created, _ := f.call(t, "POST", base, auth, nil)
	if status != 201 {
		t.Fatalf("creating a secret: %d %v", status, created)
	}
	value := created["client_secret"].(string)
	for _, tt := range []struct{ method, path string }{
		{"POST", base + "/" + value + "/disable"},
		{"DELETE", base + "/" + value},
		{"GET", base + "/" + value},
		{"POST", base + "/" + value + "/nowhere"},
	} {
		status, out, _ := f.call(t, tt.method, tt.path, auth, nil)
		desc, _ := out["error_description"].(string)
		if status != 404 || strings.Contains(desc, value[10:26]) {
			t.Errorf("%s %s: %d %v, want 404 without the secret", tt.method, tt.path, status, out)
		}
	}
	evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: admin.ActionRefused})
	if err != nil || len(evs) != 3 {
		t.Fatalf("%d admin.refused events, %v; want 3", len(evs), err)
	}
	for _, e := range evs {
		for k, v := range e.Data {
			if strings.Contains(v, value[10:26]) {
				t.Errorf("admin.refused %s=%q holds the secret", k, v)
			}
		}
	}
	if strings.Contains(f.logs.String(), value[10:26]) {
		t.Errorf("the log holds the secret:\n%s", f.logs.String())
	}
}

// A client secret given where the account or a key ID goes (keyward
// secrets list kw_…, the two arguments swapped) is refused without being
// echoed either: the 404's description, which its admin.refused event
// records, holds no part of it.
func TestSecretGivenAsAccountOrKeyID(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	status, created, _ := f.call(t, "POST", "/v1/service-accounts/"+f.admin.Email+"/secrets", auth, nil)
	if status != 201 {
		t.Fatalf("creating a secret: %d %v", status, created)
	}
	value := created["client_secret"].(string)
	for _, tt := range []struct{ method, path string }{
		{"GET", "/v1/service-accounts/" + value},
		{"GET", "/v1/service-accounts/" + value + "/secrets"},
		{"POST", "/v1/service-accounts/" + value + "/disable"},
		{"POST", "/v1/service-accounts/" + value + "/revoke-tokens"},
		{"GET", "/v1/service-accounts/" + f.admin.Email + "/keys/" + value},
	} {
		status, out, _ := f.call(t, tt.method, tt.path, auth, nil)
		desc, _ := out["error_description"].(string)
		if status != 404 || strings.Contains(desc, value[10:26]) {
			t.Errorf("%s %s: %d %v, want 404 without the secret", tt.method, tt.path, status, out)
		}
	}
	evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: admin.ActionRefused})
	if err != nil || len(evs) == 0 {
		t.Fatalf("%d admin.refused events, %v; want some", len(evs), err)
	}
	for _, e := range evs {
		for k, v := range e.Data {
			if strings.Contains(v, value[10:26]) {
				t.Errorf("admin.refused %s=%q holds the secret", k, v)
			}
		}
	}
}
