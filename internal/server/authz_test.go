package server_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
)

// authzFixture is a fixture with a second account, other, in the same
// project, with its own secret, and an organization example.com whose
// user alice the fixture's account may act for with orders.read; bob is
// in partner.org, where it has no grant.
type authzFixture struct {
	*fixture
	otherID, otherEmail, otherAuth string
	// introspect is the Basic authorization of the orders API's
	// introspector.
	introspect string
	// billing is the Basic authorization of the billing API's
	// introspector, which no token here is for.
	billing string
}

func newAuthzFixture(t *testing.T) *authzFixture {
	t.Helper()
	ctx := context.Background()
	f := &authzFixture{fixture: newFixture(t)}
	sys := admin.Actor{ID: "test"}
	other, err := f.admin.CreateAccount(ctx, sys, admin.AccountInput{Name: "other", Project: "proj", Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	sec, err := f.admin.CreateSecret(ctx, sys, other.Email, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.otherID, f.otherEmail = other.ID, other.Email
	f.otherAuth = "Basic " + base64.StdEncoding.EncodeToString([]byte(other.ID+":"+sec.Value))
	f.introspect = f.introspector(t)
	if _, err := f.admin.CreateAPI(ctx, sys, admin.APIInput{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}}); err != nil {
		t.Fatal(err)
	}
	billingAPI, err := f.admin.CreateAccount(ctx, sys, admin.AccountInput{Name: "billing-api", Project: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	bsec, err := f.admin.CreateSecret(ctx, sys, billingAPI.Email, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{billingAPI.ID}
	if _, err := f.admin.UpdateAPI(ctx, sys, "billing", admin.APIUpdate{Introspectors: &ids}); err != nil {
		t.Fatal(err)
	}
	f.billing = "Basic " + base64.StdEncoding.EncodeToString([]byte(billingAPI.ID+":"+bsec.Value))
	for _, org := range []string{"example.com", "partner.org"} {
		if _, err := f.admin.CreateOrg(ctx, sys, org); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.admin.PutUsers(ctx, sys, "example.com", []admin.UserInput{{Email: "alice@example.com"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.PutUsers(ctx, sys, "partner.org", []admin.UserInput{{Email: "bob@partner.org"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.admin.GrantDelegation(ctx, sys, "example.com", f.clientID, []string{"orders.read"}); err != nil {
		t.Fatal(err)
	}
	return f
}

// grant signs a JWT-bearer assertion with the fixture account's key, with
// claims set on top of the usual ones, and asks for a token with it,
// authenticated with auth if it is not empty.
func (f *authzFixture) grant(t *testing.T, claims map[string]any, auth string) *reply {
	t.Helper()
	now := time.Now()
	c := map[string]any{"iss": f.email, "scope": "orders.read", "aud": issuer + "/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	maps.Copy(c, claims)
	raw, err := jwt.Signed(f.signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	w := f.do("grant_type="+url.QueryEscape(oauth2.GrantJWTBearer)+"&assertion="+raw, auth)
	return decodeResponse(t, w.Code, w.Body.Bytes())
}

// reply is a response's status and JSON body.
type reply struct {
	Code int
	Body map[string]any
	Raw  string
}

func decodeResponse(t *testing.T, code int, body []byte) *reply {
	t.Helper()
	r := &reply{Code: code, Raw: string(body)}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &r.Body); err != nil {
			t.Fatalf("body is not JSON: %d %s", code, body)
		}
	}
	return r
}

// introspectAs introspects tok with the Basic authorization auth.
func (f *authzFixture) introspectAs(t *testing.T, auth, tok string) *reply {
	t.Helper()
	w := f.doPath("/introspect", "token="+url.QueryEscape(tok), auth)
	return decodeResponse(t, w.Code, w.Body.Bytes())
}

// active reports whether the orders API's introspector finds tok active,
// and the introspection.
func (f *authzFixture) active(t *testing.T, tok string) (bool, map[string]any) {
	t.Helper()
	r := f.introspectAs(t, f.introspect, tok)
	if r.Code != http.StatusOK {
		t.Fatalf("introspection: %d %s", r.Code, r.Raw)
	}
	return r.Body["active"] == true, r.Body
}

// TestJWTBearerCannotImpersonate: an account's key-signed assertion gets
// tokens for that account, or (domain-wide delegation) for a user of an
// organization that granted it delegation; never a token as another
// service account, nor for a user of an organization without a grant,
// however the assertion names them, and not when the client
// authenticated is another account than the assertion's.
func TestJWTBearerCannotImpersonate(t *testing.T) {
	f := newAuthzFixture(t)
	tests := []struct {
		name      string
		claims    map[string]any
		auth      string
		wantError string
		wantSub   string // of an issued token
		wantActor bool
	}{
		{name: "own token", wantSub: f.clientID},
		{name: "sub is its own client ID", claims: map[string]any{"sub": f.clientID}, wantSub: f.clientID},
		{name: "delegation granted", claims: map[string]any{"sub": "alice@example.com"}, wantSub: "alice@example.com", wantActor: true},
		{name: "sub is another account's client ID", claims: map[string]any{"sub": f.otherID}, wantError: oauth2.ErrInvalidGrant},
		{name: "sub is another account's email", claims: map[string]any{"sub": f.otherEmail}, wantError: oauth2.ErrUnauthorizedClient},
		{name: "prn is another account's email", claims: map[string]any{"prn": f.otherEmail}, wantError: oauth2.ErrUnauthorizedClient},
		{name: "iss is another account", claims: map[string]any{"iss": f.otherEmail}, wantError: oauth2.ErrInvalidGrant},
		{name: "iss is another account's client ID", claims: map[string]any{"iss": f.otherID, "sub": f.otherID}, wantError: oauth2.ErrInvalidGrant},
		{name: "user of an organization without a grant", claims: map[string]any{"sub": "bob@partner.org"}, wantError: oauth2.ErrUnauthorizedClient},
		{name: "user of no organization", claims: map[string]any{"sub": "mallory@evil.example"}, wantError: oauth2.ErrUnauthorizedClient},
		{name: "user not in the directory", claims: map[string]any{"sub": "eve@example.com"}, wantError: oauth2.ErrInvalidGrant},
		{name: "scope beyond the grant", claims: map[string]any{"sub": "alice@example.com", "scope": "orders.read billing.read"}, wantError: oauth2.ErrAccessDenied},
		{name: "client authenticated as another account", auth: f.otherAuth, wantError: oauth2.ErrInvalidGrant},
		{name: "client authenticated as another account, delegated", claims: map[string]any{"sub": "alice@example.com"}, auth: f.otherAuth, wantError: oauth2.ErrInvalidGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.grant(t, tt.claims, tt.auth)
			if tt.wantError != "" {
				if r.Code != http.StatusBadRequest || r.Body["error"] != tt.wantError || r.Body["access_token"] != nil {
					t.Fatalf("%d %s, want 400 %s", r.Code, r.Raw, tt.wantError)
				}
				return
			}
			if r.Code != http.StatusOK {
				t.Fatalf("%d %s, want 200", r.Code, r.Raw)
			}
			active, got := f.active(t, r.Body["access_token"].(string))
			if !active || got["sub"] != tt.wantSub || got["client_id"] != f.clientID {
				t.Fatalf("introspection %v: want active, sub %s, client_id %s", got, tt.wantSub, f.clientID)
			}
			if act, _ := got["act"].(map[string]any); tt.wantActor != (act != nil) || act != nil && act["sub"] != f.clientID {
				t.Errorf("act %v, want the acting account %v", got["act"], tt.wantActor)
			}
		})
	}
}

// TestDelegatedTokenEndsWithItsDelegation: a delegated token is active
// only while it would be issued now: revoking the grant, suspending or
// deleting the user, or disabling the acting account ends it at once, and
// the token endpoint refuses a new one.
func TestDelegatedTokenEndsWithItsDelegation(t *testing.T) {
	ctx := context.Background()
	sys := admin.Actor{ID: "test"}
	tests := []struct {
		name      string
		change    func(f *authzFixture) error
		undo      func(f *authzFixture) error // nil: final
		wantError string
	}{
		{
			name:      "grant revoked",
			change:    func(f *authzFixture) error { return f.admin.RevokeDelegation(ctx, sys, "example.com", f.clientID) },
			wantError: oauth2.ErrUnauthorizedClient,
		},
		{
			name: "user suspended",
			change: func(f *authzFixture) error {
				_, err := f.admin.SetUserSuspended(ctx, sys, "alice@example.com", true)
				return err
			},
			undo: func(f *authzFixture) error {
				_, err := f.admin.SetUserSuspended(ctx, sys, "alice@example.com", false)
				return err
			},
			wantError: oauth2.ErrInvalidGrant,
		},
		{
			name:      "user deleted",
			change:    func(f *authzFixture) error { return f.admin.DeleteUser(ctx, sys, "alice@example.com") },
			wantError: oauth2.ErrInvalidGrant,
		},
		{
			name:      "organization deleted",
			change:    func(f *authzFixture) error { return f.admin.DeleteOrg(ctx, sys, "example.com") },
			wantError: oauth2.ErrUnauthorizedClient,
		},
		{
			name: "acting account disabled",
			change: func(f *authzFixture) error {
				_, err := f.admin.SetAccountDisabled(ctx, sys, f.email, true)
				return err
			},
			undo: func(f *authzFixture) error {
				_, err := f.admin.SetAccountDisabled(ctx, sys, f.email, false)
				return err
			},
			wantError: oauth2.ErrDisabledClient,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAuthzFixture(t)
			alice := map[string]any{"sub": "alice@example.com"}
			r := f.grant(t, alice, "")
			if r.Code != http.StatusOK {
				t.Fatalf("delegated token: %d %s", r.Code, r.Raw)
			}
			tok := r.Body["access_token"].(string)
			if active, got := f.active(t, tok); !active {
				t.Fatalf("fresh delegated token inactive: %v", got)
			}
			if err := tt.change(f); err != nil {
				t.Fatal(err)
			}
			if active, got := f.active(t, tok); active {
				t.Fatalf("delegated token still active: %v", got)
			}
			if r := f.grant(t, alice, ""); r.Code != http.StatusBadRequest || r.Body["error"] != tt.wantError {
				t.Fatalf("new delegated token: %d %s, want 400 %s", r.Code, r.Raw, tt.wantError)
			}
			if tt.undo == nil {
				return
			}
			// Reinstating brings the token back: the refusal was the
			// state, not a revocation.
			if err := tt.undo(f); err != nil {
				t.Fatal(err)
			}
			if active, got := f.active(t, tok); !active {
				t.Fatalf("delegated token inactive once reinstated: %v", got)
			}
		})
	}
}

// TestRevocationOnlyOfOwnTokens: RFC 7009 §2.1: a client may revoke only
// the tokens issued to it. Another account's attempt is refused and the
// token stays active, JWT or opaque, its own or a delegated one.
func TestRevocationOnlyOfOwnTokens(t *testing.T) {
	f := newAuthzFixture(t)
	delegated := func(t *testing.T) string {
		r := f.grant(t, map[string]any{"sub": "alice@example.com"}, "")
		if r.Code != http.StatusOK {
			t.Fatalf("delegated token: %d %s", r.Code, r.Raw)
		}
		return r.Body["access_token"].(string)
	}
	tokens := map[string]func(t *testing.T) string{
		"jwt":       func(t *testing.T) string { return f.accessToken(t, "jwt") },
		"opaque":    func(t *testing.T) string { return f.accessToken(t, "opaque") },
		"delegated": delegated,
	}
	own := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret))
	for name, get := range tokens {
		t.Run(name, func(t *testing.T) {
			tok := get(t)
			for _, hint := range []string{"", "access_token", "refresh_token"} {
				body := "token=" + url.QueryEscape(tok)
				if hint != "" {
					body += "&token_type_hint=" + hint
				}
				w := f.doPath("/revoke", body, f.otherAuth)
				r := decodeResponse(t, w.Code, w.Body.Bytes())
				if r.Code != http.StatusBadRequest || r.Body["error"] != oauth2.ErrUnauthorizedClient {
					t.Fatalf("another account's revocation (hint %q): %d %s, want 400 unauthorized_client", hint, r.Code, r.Raw)
				}
				// The introspector of the token's API may introspect
				// it, not revoke it.
				if w := f.doPath("/revoke", body, f.introspect); w.Code != http.StatusBadRequest {
					t.Fatalf("the API's revocation (hint %q): %d %s, want 400", hint, w.Code, w.Body)
				}
			}
			if active, got := f.active(t, tok); !active {
				t.Fatalf("token inactive after others' revocations: %v", got)
			}
			if w := f.doPath("/revoke", "token="+url.QueryEscape(tok), own); w.Code != http.StatusOK {
				t.Fatalf("own revocation: %d %s", w.Code, w.Body)
			}
			if active, got := f.active(t, tok); active {
				t.Fatalf("token active after its own client revoked it: %v", got)
			}
			// Revoked now, it answers another account as before: the
			// refusal tells nothing of the token's state.
			if w := f.doPath("/revoke", "token="+url.QueryEscape(tok), f.otherAuth); w.Code != http.StatusBadRequest {
				t.Fatalf("another account's revocation of a revoked token: %d %s, want 400", w.Code, w.Body)
			}
		})
	}
}

// TestIntrospectionOnlyOfOwnAudience: RFC 7662 §4: an introspector of one
// API learns nothing of an active token meant for another (the answer is
// that of an unknown token); an account that introspects for no API, the
// token's own client included, is refused; a token of a disabled account
// is inactive.
func TestIntrospectionOnlyOfOwnAudience(t *testing.T) {
	f := newAuthzFixture(t)
	for _, format := range []string{"jwt", "opaque"} {
		t.Run(format, func(t *testing.T) {
			tok := f.accessToken(t, format)
			if active, got := f.active(t, tok); !active {
				t.Fatalf("orders token inactive for the orders API: %v", got)
			}
			r := f.introspectAs(t, f.billing, tok)
			if r.Code != http.StatusOK || len(r.Body) != 1 || r.Body["active"] != false {
				t.Fatalf("billing API's introspection of an orders token: %d %s, want {\"active\":false}", r.Code, r.Raw)
			}
			unknown := f.introspectAs(t, f.billing, oauth2.OpaqueTokenPrefix+strings.Repeat("A", 43))
			if unknown.Raw != r.Raw {
				t.Errorf("another API's token answers %s, an unknown one %s: the answer tells them apart", r.Raw, unknown.Raw)
			}
			own := "Basic " + base64.StdEncoding.EncodeToString([]byte(f.clientID+":"+f.secret))
			for name, auth := range map[string]string{"its own client": own, "another account": f.otherAuth} {
				if r := f.introspectAs(t, auth, tok); r.Code != http.StatusForbidden || r.Body["error"] != oauth2.ErrAccessDenied {
					t.Errorf("introspection by %s: %d %s, want 403 access_denied", name, r.Code, r.Raw)
				}
			}
		})
	}
	t.Run("account disabled", func(t *testing.T) {
		tok := f.accessToken(t, "opaque")
		if _, err := f.admin.SetAccountDisabled(context.Background(), admin.Actor{ID: "test"}, f.email, true); err != nil {
			t.Fatal(err)
		}
		if active, got := f.active(t, tok); active {
			t.Fatalf("token of a disabled account active: %v", got)
		}
	})
}
