package main

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
)

// signAssertion signs claims with a key file's key (RS256, its kid).
func signAssertion(t *testing.T, keyFile string, claims map[string]any) string {
	t.Helper()
	kid, priv := keyFileKey(t, keyFile)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestStrictClientAssertionAudienceEndToEnd: with
// --strict-client-assertion-audience a private_key_jwt client assertion
// authenticates at the token endpoint only with the issuer as its single
// aud, while by default the token endpoint URL does too. The JWT-bearer
// grant's assertion keeps the token endpoint URL (the key file's
// token_uri, which Google's libraries use) in both modes.
func TestStrictClientAssertionAudienceEndToEnd(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(map[bool]string{false: "default", true: "strict"}[strict], func(t *testing.T) {
			m := startServer(t, func(m *Main) { m.Config.StrictClientAssertionAudience = strict })
			acct, keyFile := googleFlowFixture(t, m)
			endpoint := m.Issuer + "/token"
			client := func(aud any, jti string) url.Values {
				now := time.Now()
				return url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"},
					"client_assertion_type": {kwoauth2.ClientAssertionJWT},
					"client_assertion": {signAssertion(t, keyFile, map[string]any{"iss": acct.ID, "sub": acct.ID, "aud": aud, "jti": jti,
						"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})}}
			}
			grant := func(aud string) url.Values {
				now := time.Now()
				return url.Values{"grant_type": {kwoauth2.GrantJWTBearer}, "assertion": {signAssertion(t, keyFile, map[string]any{
					"iss": acct.Email, "scope": "orders.read", "aud": aud, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})}}
			}
			refusedInStrict := map[bool]int{false: 200, true: 401}[strict]
			tests := []struct {
				name string
				form url.Values
				want int
			}{
				{"client assertion for the issuer", client(m.Issuer, "a1"), 200},
				{"client assertion for the issuer, in an array", client([]string{m.Issuer}, "a2"), 200},
				{"client assertion for the token endpoint URL", client(endpoint, "a3"), refusedInStrict},
				{"client assertion for both", client([]string{m.Issuer, endpoint}, "a4"), 401},
				{"JWT-bearer grant for the token endpoint URL", grant(endpoint), 200},
			}
			for _, tt := range tests {
				if status, body := postNoAuth(t, m, tt.form); status != tt.want {
					t.Errorf("%s: %d %v, want %d", tt.name, status, body, tt.want)
				}
			}
		})
	}
}

// TestStrictClientAssertionAudienceRevokeIntrospect: the revocation and
// introspection endpoints authenticate client assertions as the token
// endpoint does: the issuer or, by default only, the token endpoint URL,
// as a single aud; a trailing slash, capitals, another endpoint or two
// values never. (A server for each endpoint and mode, so that the refusals
// stay under the client's throttle.)
func TestStrictClientAssertionAudienceRevokeIntrospect(t *testing.T) {
	for _, path := range []string{"/revoke", "/introspect"} {
		for _, strict := range []bool{false, true} {
			t.Run(path+map[bool]string{false: ", default", true: ", strict"}[strict], func(t *testing.T) {
				m := startServer(t, func(m *Main) { m.Config.StrictClientAssertionAudience = strict })
				acct, keyFile := googleFlowFixture(t, m)
				endpoint := m.Issuer + "/token"
				tests := []struct {
					name   string
					aud    any
					accept bool
				}{
					{"issuer", m.Issuer, true},
					{"issuer in an array", []string{m.Issuer}, true},
					{"token endpoint URL", endpoint, !strict},
					{"token endpoint URL in an array", []string{endpoint}, !strict},
					{"issuer with a trailing slash", m.Issuer + "/", false},
					{"token endpoint URL with a trailing slash", endpoint + "/", false},
					{"issuer in capitals", strings.ToUpper(m.Issuer), false},
					{"this endpoint's URL", m.Issuer + path, false},
					{"issuer and token endpoint URL", []string{m.Issuer, endpoint}, false},
				}
				for i, tt := range tests {
					now := time.Now()
					form := url.Values{"token": {"not-a-token"},
						"client_assertion_type": {kwoauth2.ClientAssertionJWT},
						"client_assertion": {signAssertion(t, keyFile, map[string]any{"iss": acct.ID, "sub": acct.ID, "aud": tt.aud,
							"jti": fmt.Sprintf("ri-%d", i), "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()})}}
					resp, err := http.PostForm(m.URL()+path, form)
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					// Authenticated, the client gets 200 at /revoke, 403 at
					// /introspect (it introspects for no API); else 401.
					want := map[bool]int{true: http.StatusOK, false: http.StatusUnauthorized}[tt.accept]
					if tt.accept && path == "/introspect" {
						want = http.StatusForbidden
					}
					if resp.StatusCode != want {
						t.Errorf("%s: %d, want %d", tt.name, resp.StatusCode, want)
					}
				}
			})
		}
	}
}
