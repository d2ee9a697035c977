package admin_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/storage/postgres"
	"github.com/keyward/keyward/internal/storage/postgres/pgtest"
)

// FuzzAdminAPI sends arbitrary requests to the admin API as an
// administrator, on SQLite and, when KEYWARD_TEST_POSTGRES_DSN is set, on
// PostgreSQL — whose refusals of NUL bytes, invalid UTF-8 and over-long
// index entries once came back as 500s. Whatever the request, the answer
// is below 500: a bad input is the client's error, never the server's.
func FuzzAdminAPI(f *testing.F) {
	sa := "/v1/service-accounts/job@shop.iam.test"
	for _, seed := range []struct{ method, path, body string }{
		{"POST", "/v1/apis", `{"name":"stock","identifier":"https://stock.internal","scopes":["stock.read","stock.write"],"token_format":"opaque"}`},
		{"PATCH", "/v1/apis/orders", `{"description":"Orders","token_format":"jwt","introspectors":["job@shop.iam.test"]}`},
		{"GET", "/v1/apis/orders", ""},
		{"DELETE", "/v1/apis/billing", ""},
		{"POST", "/v1/service-accounts", `{"name":"job2","project":"shop","display_name":"Job","scopes":["orders.read"],"token_lifetime_seconds":600}`},
		{"PATCH", sa, `{"description":"d","scopes":["orders.write"],"auth_methods":["client_secret_basic","tls_client_auth"],"tls_binding":{"tls_client_auth_subject_dn":"CN=job"},"token_format":"opaque"}`},
		{"GET", "/v1/service-accounts?project=shop&page_size=2&page_token=x", ""},
		{"POST", sa + "/keys", `{"expires_in_seconds":3600}`},
		{"POST", sa + "/keys/upload", `{"public_key_pem":"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n"}`},
		{"POST", sa + "/keys/0123456789abcdef/disable", ""},
		{"POST", sa + "/secrets", `{"expires_in_seconds":60}`},
		{"GET", sa + "/secrets/0123456789abcdef", ""},
		{"DELETE", sa + "/secrets/0123456789abcdef", ""},
		{"POST", sa + "/disable", ""},
		{"POST", sa + "/revoke-tokens", ""},
		{"POST", "/v1/tokens/revoke", `{"jti":"3f2a"}`},
		{"GET", "/v1/audit?account=job@shop.iam.test&action=token.issued&outcome=failure&since=90d&until=2030-01-01T00:00:00Z&limit=5", ""},
		{"GET", "/v1/audit?order=desc&before=7&after=2&limit=3", ""},
		{"POST", "/v1/orgs", `{"domain":"example.com","blocked_scopes":["orders.write"]}`},
		{"PATCH", "/v1/orgs/example.com", `{"blocked_scopes":[]}`},
		{"POST", "/v1/orgs/example.com/users", `{"users":[{"email":"ann@example.com"},{"email":"bob@example.com","suspended":true}]}`},
		{"PUT", "/v1/orgs/example.com/projects/shop", ""},
		{"PUT", "/v1/orgs/example.com/delegations/job@shop.iam.test", `{"scopes":["orders.read"]}`},
		{"POST", "/v1/users/ann@example.com/suspend", ""},
		{"DELETE", "/v1/users/ann@example.com", ""},
		{"POST", "/v1/signing-keys/rotate", ""},
		{"GET", "/v1/whoami", ""},
		{"POST", "/v1/service-accounts", "{\"name\":\"a\\u0000b\",\"project\":\"\xff\xfe\"}"},
		{"POST", "/v1/apis", `{"name":"long","identifier":"https://` + strings.Repeat("a", 3000) + `","scopes":["x.read"]}`},
	} {
		f.Add(seed.method, seed.path, seed.body)
	}
	fixtures := []*fixture{newFixture(f)}
	if dsn := pgDSN(f); dsn != "" {
		st, err := postgres.Open(context.Background(), dsn, postgres.Options{})
		if err != nil {
			f.Fatal(err)
		}
		fixtures = append(fixtures, newFixtureOn(f, st))
	}
	for _, fx := range fixtures {
		populate(f, fx)
	}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		if _, err := url.ParseRequestURI(path); err != nil || !strings.HasPrefix(path, "/v1/") ||
			strings.ContainsAny(path, " \r\n\t#") || !slices.Contains(methods, method) {
			return // not a request net/http would hand to the admin API
		}
		for i, fx := range fixtures {
			status, out, _ := fx.call(t, method, path, "Bearer "+fx.token(t, fx.admin, admin.AdminScope, nil), body)
			t.Logf("store %d: %s %s → %d %v", i, method, path, status, out)
			if status >= 500 {
				t.Fatalf("store %d: %s %q with body %q: status %d, %v", i, method, path, body, status, out)
			}
			// docs/ADMIN-API.md: every error is a JSON body in the RFC
			// 6749 §5.2 shape, with a description for people.
			code, _ := out["error"].(string)
			desc, _ := out["error_description"].(string)
			if status >= 400 && (code == "" || desc == "") {
				t.Fatalf("store %d: %s %q with body %q: status %d, %v: not an error in the RFC 6749 §5.2 shape", i, method, path, body, status, out)
			}
		}
	})
}

// populate gives the seeds something to act on: two APIs and an account.
func populate(t testing.TB, fx *fixture) {
	ctx, op := context.Background(), admin.Actor{ID: "fuzz"}
	for _, in := range []admin.APIInput{
		{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}},
		{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}},
	} {
		if _, err := fx.srv.Admin.CreateAPI(ctx, op, in); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := fx.srv.Admin.CreateAccount(ctx, op, admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
}

// pgDSN returns a fresh schema's DSN, or "" when PostgreSQL tests are not
// configured (pgtest.SchemaDSN would skip the SQLite half too).
func pgDSN(f *testing.F) string {
	if os.Getenv(pgtest.DSNEnv) == "" {
		f.Logf("%s is not set: fuzzing the admin API on SQLite only", pgtest.DSNEnv)
		return ""
	}
	return pgtest.SchemaDSN(f)
}
