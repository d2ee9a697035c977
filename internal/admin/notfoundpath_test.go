package admin_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
)

// A 404 of the admin API names the path as it was sent, escapes and all:
// decoded, /v1/nope/%2F/x read /v1/nope///x, a path nobody sent, and
// %20 or %3F vanished into a space or a question mark. A credential in
// it is still left out.
func TestNotFoundShowsPathAsSent(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for _, tt := range []struct{ path, want string }{
		{"/v1/nope", "/v1/nope"},
		{"/v1/nope/%2F/x", "/v1/nope/%2F/x"},
		{"/v1/service-accounts/%2F/keys/a/b", "/v1/service-accounts/%2F/keys/a/b"},
		{"/v1/no%20such%3Fthing", "/v1/no%20such%3Fthing"},
		{"/v1/nope/kw%5F" + strings.Repeat("Zs9", 14) + "x", "/v1/nope/(credential)"},
		{"/v1/" + strings.Repeat("%2F", 2000), "/v1/" + strings.Repeat("%2F", 65)},
	} {
		t.Run(tt.path[:min(len(tt.path), 40)], func(t *testing.T) {
			status, body, _ := f.call(t, "GET", tt.path, auth, nil)
			desc, _ := body["error_description"].(string)
			if status != http.StatusNotFound || !strings.Contains(desc, "GET "+tt.want) || len(desc) > 300 {
				t.Fatalf("%d %q, want 404 naming %q", status, desc[:min(len(desc), 300)], tt.want)
			}
		})
	}
}
