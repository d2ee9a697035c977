package admin_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
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

// /v1 itself, no route of the admin API, is answered as any other path
// under it: 401 without a token, a JSON 404 with one, whatever the
// method or conditions. The ServeMux redirected it to /v1/ (a 307 with an
// HTML body), before any token was asked for and with no admin.refused
// event.
func TestV1WithoutSlash(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for _, tt := range []struct {
		method, auth, ifMatch string
		status                int
		code                  string
	}{
		{"GET", "", "", 401, "invalid_token"},
		{"GET", auth, "", 404, "not_found"},
		{"POST", auth, "", 404, "not_found"},
		{"DELETE", auth, `"x"`, 404, "not_found"},
	} {
		req := httptest.NewRequest(tt.method, "/v1", nil)
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		if tt.ifMatch != "" {
			req.Header.Set("If-Match", tt.ifMatch)
		}
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, req)
		var out map[string]any
		json.Unmarshal(w.Body.Bytes(), &out)
		if w.Code != tt.status || out["error"] != tt.code {
			t.Errorf("%s /v1 (auth %t, If-Match %q): %d %v %s, want %d %s", tt.method, tt.auth != "", tt.ifMatch, w.Code, w.Header(), w.Body, tt.status, tt.code)
		} else if desc, _ := out["error_description"].(string); tt.status == 404 && desc != "There is no admin endpoint "+tt.method+" /v1." {
			t.Errorf("%s /v1: %q, want it to name the path", tt.method, desc)
		}
	}
}
