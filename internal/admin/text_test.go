package admin_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// Text a store could not hold (a NUL character; bytes that are not UTF-8,
// raw or as a lone surrogate escape) in any text field of a create or
// update body is refused with 400 invalid_request, naming the field of a
// \u0000 (a raw NUL is no JSON), on either backend; bytes that are not
// UTF-8 are read as U+FFFD, as JSON decoding reads them, and refused or
// stored as such: never a 500 or a "report it" error from PostgreSQL,
// whose text holds neither. The NUL's refusal named no field.
func TestTextTheStoreCannotHold(t *testing.T) {
	sa := "/v1/service-accounts/job@shop.iam.test"
	tests := []struct {
		method, path, body, field string // body: V stands for the value
	}{
		{"POST", "/v1/apis", `{"name":"V","identifier":"https://stock.internal","scopes":["stock.read"]}`, "name"},
		{"POST", "/v1/apis", `{"name":"stock","identifier":"https://stock.internal/V","scopes":["stock.read"]}`, "identifier"},
		{"POST", "/v1/apis", `{"name":"stock","identifier":"https://stock.internal","description":"V","scopes":["stock.read"]}`, "description"},
		{"POST", "/v1/apis", `{"name":"stock","identifier":"https://stock.internal","scopes":["stock.V"]}`, "scopes"},
		{"POST", "/v1/apis", `{"name":"stock","identifier":"https://stock.internal","scopes":["stock.read"],"token_format":"V"}`, "token_format"},
		{"PATCH", "/v1/apis/orders", `{"description":"V"}`, "description"},
		{"PATCH", "/v1/apis/orders", `{"scopes":["orders.read","orders.V"]}`, "scopes"},
		{"PATCH", "/v1/apis/orders", `{"introspectors":["V"]}`, "introspectors"},
		{"POST", "/v1/service-accounts", `{"name":"V","project":"shop"}`, "name"},
		{"POST", "/v1/service-accounts", `{"name":"job2","project":"V"}`, "project"},
		{"POST", "/v1/service-accounts", `{"name":"job2","project":"shop","display_name":"V"}`, "display_name"},
		{"POST", "/v1/service-accounts", `{"name":"job2","project":"shop","description":"V"}`, "description"},
		{"POST", "/v1/service-accounts", `{"name":"job2","project":"shop","scopes":["V"]}`, "scopes"},
		{"PATCH", sa, `{"display_name":"V"}`, "display_name"},
		{"PATCH", sa, `{"description":"V"}`, "description"},
		{"PATCH", sa, `{"auth_methods":["V"]}`, "auth_methods"},
		{"PATCH", sa, `{"tls_binding":{"tls_client_auth_subject_dn":"CN=V"}}`, "tls_client_auth_subject_dn"},
		{"PATCH", sa, `{"tls_binding":{"tls_client_auth_san_dns":"V.example"}}`, "tls_client_auth_san_dns"},
		{"PATCH", sa, `{"token_format":"V"}`, "token_format"},
		{"POST", sa + "/keys/upload", `{"public_key_pem":"V"}`, "public_key_pem"},
		{"POST", "/v1/tokens/revoke", `{"jti":"V"}`, "jti"},
		{"POST", "/v1/orgs", `{"domain":"V.example"}`, "domain"},
		{"POST", "/v1/orgs", `{"domain":"example.org","blocked_scopes":["V"]}`, "blocked_scopes"},
		{"PATCH", "/v1/orgs/example.com", `{"blocked_scopes":["V"]}`, "blocked_scopes"},
		{"POST", "/v1/orgs/example.com/users", `{"users":[{"email":"V@example.com"}]}`, "email"},
		{"PUT", "/v1/orgs/example.com/projects/shop", `{"project":"V"}`, "project"},
		{"PUT", "/v1/orgs/example.com/delegations/job@shop.iam.test", `{"scopes":["V"]}`, "scopes"},
	}
	onBackends(t, func(t *testing.T, fx *fixture) {
		populate(t, fx)
		if _, err := fx.srv.Admin.CreateOrg(context.Background(), admin.Actor{ID: "t"}, "example.com"); err != nil {
			t.Fatal(err)
		}
		auth := "Bearer " + fx.token(t, fx.admin, admin.AdminScope, nil)
		for _, tt := range tests {
			for _, bad := range []struct{ name, value string }{
				{"NUL", `a\u0000b`}, {"raw NUL", "a\x00b"}, {"not UTF-8", "a\xffb"}, {"lone surrogate", `a\ud800b`},
			} {
				body := strings.Replace(tt.body, "V", bad.value, 1)
				status, out, _ := fx.call(t, tt.method, tt.path, auth, body)
				desc, _ := out["error_description"].(string)
				if status >= 500 || strings.Contains(desc, "report") {
					t.Errorf("%s %s, %s in %s: %d %v", tt.method, tt.path, bad.name, tt.field, status, out)
				}
				switch bad.name {
				case "NUL":
					if status != 400 || out["error"] != "invalid_request" || !strings.Contains(desc, `The field "`+tt.field+`" of the request body contains a NUL character`) {
						t.Errorf("%s %s, %s in %s: %d %v, want 400 invalid_request naming %q", tt.method, tt.path, bad.name, tt.field, status, out, tt.field)
					}
				case "raw NUL": // no JSON
					if status != 400 || out["error"] != "invalid_request" || !strings.Contains(desc, "NUL character") {
						t.Errorf("%s %s, %s in %s: %d %v, want 400 invalid_request for the NUL", tt.method, tt.path, bad.name, tt.field, status, out)
					}
				}
			}
		}
	})
}

// A NUL the admin API cannot place in one field is refused without
// naming one; one in a later member, after objects and arrays, names its
// own field.
func TestNULFieldNamed(t *testing.T) {
	fx := newFixture(t)
	auth := "Bearer " + fx.token(t, fx.admin, admin.AdminScope, nil)
	for _, tt := range []struct{ body, want string }{
		{`{"name\u0000":"x"}`, "The request body contains a NUL character."},
		{`{"name":"x","scopes":["a","b"],"tls_binding":{"tls_client_auth_san_dns":"d"},"description":"\u0000"}`,
			`The field "description" of the request body contains a NUL character`},
		{`{"name":"x","project":"p","scopes":["a",{"x":[1]},"b\u0000"]}`, `The field "scopes" of the request body contains a NUL character`},
	} {
		status, out, _ := fx.call(t, "POST", "/v1/service-accounts", auth, tt.body)
		if desc, _ := out["error_description"].(string); status != 400 || !strings.Contains(desc, tt.want) {
			t.Errorf("%s: %d %v, want 400 saying %q", tt.body, status, out, tt.want)
		}
	}
}
