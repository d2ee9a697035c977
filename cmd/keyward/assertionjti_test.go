package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
)

// TestRequireAssertionJTIEndToEnd: by default Google's client library,
// whose assertions carry no jti, gets a token; with
// --require-assertion-jti it is refused invalid_grant, saying why. An
// assertion with a jti gets a token either way, once.
func TestRequireAssertionJTIEndToEnd(t *testing.T) {
	tests := []struct {
		name       string
		requireJTI bool
		wantGoogle string // the error Google's library gets; "" is a token
	}{
		{"default", false, ""},
		{"jti required", true, kwoauth2.ErrInvalidGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := startServer(t, func(m *Main) { m.Config.RequireAssertionJTI = tt.requireJTI })
			acct, keyFile := googleFlowFixture(t, m)
			data, err := os.ReadFile(keyFile)
			if err != nil {
				t.Fatal(err)
			}
			conf, err := google.JWTConfigFromJSON(data, "orders.read")
			if err != nil {
				t.Fatal(err)
			}
			_, err = conf.TokenSource(context.Background()).Token()
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if re, ok := errors.AsType[*oauth2.RetrieveError](err); ok {
				json.Unmarshal(re.Body, &body)
			} else if err != nil {
				t.Fatalf("Google's library: %v", err)
			}
			const desc = "Invalid JWT: this server requires a jti claim, a unique ID for each assertion, which it accepts only once."
			if body.Error != tt.wantGoogle || (tt.wantGoogle != "" && body.Description != desc) {
				t.Fatalf("Google's library (no jti): error %q %q, want %q", body.Error, body.Description, tt.wantGoogle)
			}

			// The account's own email as iss and sub, and a jti.
			form := url.Values{"grant_type": {kwoauth2.GrantJWTBearer}, "scope": {"orders.read"},
				"assertion": {clientAssertion(t, keyFile, acct.Email, m.Issuer, "e2e-jti")}}
			if status, body := postNoAuth(t, m, form); status != 200 {
				t.Fatalf("an assertion with a jti: %d %v, want a token", status, body)
			}
			if status, body := postNoAuth(t, m, form); status != 400 || body["error"] != kwoauth2.ErrInvalidGrant {
				t.Fatalf("the same assertion again: %d %v, want invalid_grant", status, body)
			}
		})
	}
}
