package server_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/oauth2"
)

// TestUnauthorizedChallenge: every 401 of the token, introspection and
// revocation endpoints carries a WWW-Authenticate challenge (RFC 9110
// §15.5.2), the Basic one, also when the client did not use HTTP Basic:
// client_id alone, client_secret_post with a wrong secret, a bad or
// replayed client assertion.
func TestUnauthorizedChallenge(t *testing.T) {
	f := newFixture(t)
	ids := []string{f.email}
	if _, err := f.admin.UpdateAPI(context.Background(), admin.Actor{ID: "test"}, "orders", admin.APIUpdate{Introspectors: &ids}); err != nil {
		t.Fatal(err)
	}
	bodies := map[string]string{
		"/token":      "grant_type=client_credentials&scope=orders.read",
		"/introspect": "token=" + url.QueryEscape(f.accessToken(t, "opaque")),
		"/revoke":     "token=" + url.QueryEscape(oauth2.OpaqueTokenPrefix+strings.Repeat("A", 43)),
	}
	assertion := func(a string) string {
		return "&client_assertion_type=" + url.QueryEscape(oauth2.ClientAssertionJWT) + "&client_assertion=" + a
	}
	for _, path := range []string{"/token", "/introspect", "/revoke"} {
		replayed := f.clientAssertion(t, "challenge-"+path)
		if w := f.doPath(path, bodies[path]+assertion(replayed), ""); w.Code != http.StatusOK {
			t.Fatalf("%s: first use of the assertion: %d %s", path, w.Code, w.Body)
		}
		for _, tt := range []struct{ name, body, auth string }{
			{"no credentials", "", ""},
			{"client_id alone", "&client_id=" + f.clientID, ""},
			{"wrong client_secret_post", "&client_id=" + f.clientID + "&client_secret=kw_wrong", ""},
			{"unknown client", "&client_id=nobody&client_secret=kw_wrong", ""},
			{"malformed client assertion", assertion("not-a-jwt"), ""},
			{"replayed client assertion", assertion(replayed), ""},
			{"wrong client_secret_basic", "", "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":kw_wrong"))},
			{"Bearer in Authorization", "", "Bearer " + strings.Repeat("x", 20)},
		} {
			t.Run(path+"/"+tt.name, func(t *testing.T) {
				w := f.doPath(path, bodies[path]+tt.body, tt.auth)
				if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), `"invalid_client"`) {
					t.Fatalf("%d %s, want 401 invalid_client", w.Code, w.Body)
				}
				if got := w.Header().Values("WWW-Authenticate"); len(got) != 1 || got[0] != clientauth.Challenge {
					t.Fatalf("WWW-Authenticate %q, want %q", got, clientauth.Challenge)
				}
			})
		}
	}
	// A JWT-bearer grant without jti whose client assertion is replayed:
	// the token endpoint's own replay check answers.
	t.Run("/token/JWT-bearer with replayed client assertion", func(t *testing.T) {
		body := "grant_type=" + url.QueryEscape(oauth2.GrantJWTBearer) + "&assertion=" + f.assertion(t, "") + assertion(f.clientAssertion(t, "jwt-bearer-once"))
		if w := f.do(body, ""); w.Code != http.StatusOK {
			t.Fatalf("first use: %d %s", w.Code, w.Body)
		}
		w := f.do(body, "")
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("replay: %d %s, want 401", w.Code, w.Body)
		}
		if got := w.Header().Get("WWW-Authenticate"); got != clientauth.Challenge {
			t.Fatalf("WWW-Authenticate %q, want %q", got, clientauth.Challenge)
		}
	})
}
