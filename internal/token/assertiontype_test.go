package token_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/oauth2"
)

// TestAssertionOfAnotherJWTType: a JWT-bearer grant's assertion or a
// private_key_jwt client assertion whose typ names another kind of JWT
// Keyward knows, an access token (RFC 9068 §4) or a DPoP proof (RFC 9449
// §4.2), is refused (RFC 8725 §3.11): invalid_grant saying so, or
// invalid_client with the reason in the log. One with typ JWT, none, or
// any other typ is accepted as before: Google's libraries, authlib and
// PyJWT send JWT, and some nothing.
func TestAssertionOfAnotherJWTType(t *testing.T) {
	e := newEnv(t)
	n := 0
	bearer := func(typ any) string {
		return form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), map[jose.HeaderKey]any{jose.HeaderType: typ}))
	}
	client := func(typ any) string {
		n++
		return url.Values{
			"grant_type": {"client_credentials"}, "scope": {"orders.read"},
			"client_assertion_type": {oauth2.ClientAssertionJWT},
			"client_assertion": {sign(t, e.rsKey, jose.RS256, "rs", map[string]any{
				"iss": e.job.ID, "sub": e.job.ID, "aud": endpoint, "jti": fmt.Sprintf("typ-%d", n),
				"iat": t0.Add(-10 * time.Second).Unix(), "exp": t0.Add(time.Minute).Unix()}, map[jose.HeaderKey]any{jose.HeaderType: typ})},
		}.Encode()
	}
	remote := 0
	send := func(t *testing.T, body string) (int, map[string]string) {
		t.Helper()
		remote++ // each its own source: the refusals do not add up to a 429
		w := e.do(request{body: body, remote: fmt.Sprintf("192.0.2.%d", remote)})
		var got map[string]string
		json.Unmarshal(w.Body.Bytes(), &got)
		return w.Code, got
	}
	for _, tt := range []struct {
		typ  string
		want string // what the description says typ names
	}{
		{"at+jwt", "an access token (at+jwt)"},
		{"application/at+jwt", "an access token (at+jwt)"},
		{"AT+JWT", "an access token (at+jwt)"},
		{"dpop+jwt", "a DPoP proof (dpop+jwt)"},
		{"Application/DPoP+JWT", "a DPoP proof (dpop+jwt)"},
	} {
		t.Run("JWT-bearer, typ "+tt.typ, func(t *testing.T) {
			code, got := send(t, bearer(tt.typ))
			if code != http.StatusBadRequest || got["error"] != oauth2.ErrInvalidGrant || !strings.Contains(got["error_description"], "typ header names "+tt.want) {
				t.Fatalf("%d %v, want 400 invalid_grant saying typ names %s", code, got, tt.want)
			}
		})
		t.Run("private_key_jwt, typ "+tt.typ, func(t *testing.T) {
			code, got := send(t, client(tt.typ))
			if code != http.StatusUnauthorized || got["error"] != oauth2.ErrInvalidClient {
				t.Fatalf("%d %v, want 401 invalid_client", code, got)
			}
			if !strings.Contains(e.logs.String(), "typ header names "+tt.want) {
				t.Errorf("the log does not say typ names %s:\n%s", tt.want, e.logs)
			}
		})
	}
	for _, typ := range []any{nil, "JWT", "jwt", "application/jwt", "JOSE", "secevent+jwt"} {
		t.Run(fmt.Sprintf("JWT-bearer, typ %v, accepted", typ), func(t *testing.T) {
			if code, got := send(t, bearer(typ)); code != http.StatusOK {
				t.Fatalf("%d %v, want 200", code, got)
			}
		})
		t.Run(fmt.Sprintf("private_key_jwt, typ %v, accepted", typ), func(t *testing.T) {
			if code, got := send(t, client(typ)); code != http.StatusOK {
				t.Fatalf("%d %v, want 200", code, got)
			}
		})
	}
}
