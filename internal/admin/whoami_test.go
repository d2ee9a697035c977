package admin_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/tokenstate"
)

// whoAmI calls GET /v1/whoami and decodes its answer.
func (f *fixture) whoAmI(t *testing.T, auth string) (int, admin.WhoAmIView, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("GET", "/v1/whoami", nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	var (
		v   admin.WhoAmIView
		raw map[string]any
	)
	json.Unmarshal(w.Body.Bytes(), &v)
	json.Unmarshal(w.Body.Bytes(), &raw)
	return w.Code, v, raw
}

// GET /v1/whoami needs an administrator's token like every admin endpoint,
// and names the account of the token it came with and that token's
// scopes and expiry, for JWT and opaque tokens alike.
func TestWhoAmI(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sys := admin.Actor{ID: "t"}
	user, err := f.srv.Admin.CreateAccount(ctx, sys, admin.AccountInput{Name: "user", Project: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.srv.Admin.CreateAccount(ctx, sys, admin.AccountInput{Name: "second", Project: "ops", DisplayName: "Second admin",
		Scopes: []string{admin.AdminScope, admin.IntrospectScope}, TokenLifetimeSeconds: 600})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("refused", func(t *testing.T) {
		for _, tt := range []struct {
			name, auth string
			status     int
			code       string
		}{
			{"no token", "", 401, oauth2.ErrInvalidToken},
			{"garbage", "Bearer abc", 401, oauth2.ErrInvalidToken},
			{"expired", "Bearer " + f.token(t, f.admin, admin.AdminScope, func(c *oauth2.AccessClaims) { c.Expiry = time.Now().Add(-time.Second).Unix() }), 401, oauth2.ErrInvalidToken},
			{"no admin scope", "Bearer " + f.token(t, f.admin, admin.IntrospectScope, nil), 403, oauth2.ErrInsufficientScope},
			{"account not an administrator", "Bearer " + f.token(t, user, admin.AdminScope, nil), 401, oauth2.ErrInvalidToken},
		} {
			t.Run(tt.name, func(t *testing.T) {
				status, v, raw := f.whoAmI(t, tt.auth)
				if status != tt.status || raw["error"] != tt.code || v.ClientID != "" {
					t.Fatalf("%d %v, want %d %s and no caller", status, raw, tt.status, tt.code)
				}
			})
		}
	})

	t.Run("JWT", func(t *testing.T) {
		iat := time.Now().Add(-time.Minute).Truncate(time.Second)
		exp := time.Now().Add(17 * time.Minute).Truncate(time.Second)
		for _, tt := range []struct {
			name       string
			want       admin.WhoAmIView // without the token
			token, jti string
			scopes     []string
			cred       string
		}{
			{"bootstrap administrator", admin.WhoAmIView{ClientID: f.admin.ID, Email: f.admin.Email, Name: f.admin.Name, Project: f.admin.Project, DisplayName: f.admin.DisplayName},
				f.token(t, f.admin, admin.AdminScope, func(c *oauth2.AccessClaims) {
					c.ID, c.IssuedAt, c.Expiry, c.Credential = "jti-root", iat.Unix(), exp.Unix(), "cert:"+strings.Repeat("A", 43)
				}),
				"jti-root", []string{admin.AdminScope}, "cert:" + strings.Repeat("A", 43)},
			{"another administrator", admin.WhoAmIView{ClientID: second.ID, Email: second.Email, Name: "second", Project: "ops", DisplayName: "Second admin"},
				f.token(t, second, admin.AdminScope+" "+admin.IntrospectScope, func(c *oauth2.AccessClaims) { c.ID, c.IssuedAt, c.Expiry = "jti-second", iat.Unix(), exp.Unix() }),
				"jti-second", []string{admin.AdminScope, admin.IntrospectScope}, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				before := time.Now()
				status, v, raw := f.whoAmI(t, "Bearer "+tt.token)
				if status != 200 {
					t.Fatalf("%d %v", status, raw)
				}
				tok := v.Token
				if v.Token = (admin.TokenView{}); !reflect.DeepEqual(v, tt.want) {
					t.Errorf("caller %+v, want %+v", v, tt.want)
				}
				if tok.Credential != tt.cred {
					t.Errorf("token credential %q, want %q (its cred claim)", tok.Credential, tt.cred)
				}
				if tok.ID != tt.jti || tok.Format != "jwt" || !slices.Equal(tok.Scopes, tt.scopes) || !tok.IssuedAt.Equal(iat) || !tok.ExpiresAt.Equal(exp) {
					t.Errorf("token %+v, want jti %s, jwt, scopes %v, issued %v, expiring %v", tok, tt.jti, tt.scopes, iat, exp)
				}
				if left := int64(exp.Sub(before) / time.Second); tok.ExpiresIn > left || tok.ExpiresIn < left-2 {
					t.Errorf("expires_in %d, want about %d", tok.ExpiresIn, left)
				}
				if _, ok := raw["token"].(map[string]any)["expires_at"].(string); !ok {
					t.Errorf("expires_at is not an RFC 3339 string: %v", raw["token"])
				}
			})
		}
	})

	// An opaque token's expiry is on record only: whoami is where a
	// client that holds one learns it.
	t.Run("opaque", func(t *testing.T) {
		format := "opaque"
		if _, err := f.srv.Admin.UpdateAccount(ctx, sys, second.ID, admin.AccountUpdate{TokenFormat: &format}); err != nil {
			t.Fatal(err)
		}
		s, err := f.srv.Admin.CreateSecret(ctx, sys, second.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		code, body := f.clientToken(second.ID, s.Value, admin.AdminScope)
		issued, _ := body["access_token"].(string)
		if code != 200 || !strings.HasPrefix(issued, tokenstate.OpaquePrefix) {
			t.Fatalf("token: %d %v", code, body)
		}
		rec, err := f.store.GetToken(ctx, tokenstate.HashOpaque(issued))
		if err != nil {
			t.Fatal(err)
		}
		status, v, raw := f.whoAmI(t, "Bearer "+issued)
		if status != 200 || v.ClientID != second.ID || v.Email != second.Email {
			t.Fatalf("%d %v, want the second administrator", status, raw)
		}
		tok := v.Token
		if tok.Credential != "secret:"+s.ID {
			t.Errorf("token credential %q, want secret:%s (the one it was got with)", tok.Credential, s.ID)
		}
		if tok.ID != rec.ID || tok.Format != "opaque" || !slices.Equal(tok.Scopes, []string{admin.AdminScope}) ||
			!tok.ExpiresAt.Equal(rec.ExpiresAt.Truncate(time.Second)) || !tok.IssuedAt.Equal(rec.IssuedAt.Truncate(time.Second)) {
			t.Errorf("token %+v, want jti %s, opaque, [%s], issued %v, expiring %v", tok, rec.ID, admin.AdminScope, rec.IssuedAt, rec.ExpiresAt)
		}
		// The account's 10-minute lifetime, not a default.
		if tok.ExpiresIn > 600 || tok.ExpiresIn < 590 {
			t.Errorf("expires_in %d, want about 600", tok.ExpiresIn)
		}

		// Disabled, the administrator is nobody.
		if _, err := f.srv.Admin.SetAccountDisabled(ctx, sys, second.ID, true); err != nil {
			t.Fatal(err)
		}
		if status, _, raw := f.whoAmI(t, "Bearer "+issued); status != 401 || raw["error"] != oauth2.ErrInvalidToken {
			t.Fatalf("after disabling the account: %d %v, want 401 invalid_token", status, raw)
		}
	})

	// Like every admin path, whoami answers only the methods it has.
	if status, _, h := f.call(t, "POST", "/v1/whoami", "Bearer "+f.token(t, f.admin, admin.AdminScope, nil), nil); status != 405 || h.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /v1/whoami: %d, Allow %q; want 405, GET, HEAD", status, h.Get("Allow"))
	}
}
