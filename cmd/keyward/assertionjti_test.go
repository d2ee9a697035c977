package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/google"

	kwoauth2 "github.com/keyward/keyward/internal/oauth2"
)

// TestRequireAssertionJTISources: --require-assertion-jti is off by
// default and is turned on, like every setting of serve, by the flag,
// KEYWARD_REQUIRE_ASSERTION_JTI or the --config file's key, in that order
// of precedence.
func TestRequireAssertionJTISources(t *testing.T) {
	file := func(content string) string {
		f := filepath.Join(t.TempDir(), "keyward.yaml")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want bool
	}{
		{"default", []string{"serve"}, nil, false},
		{"flag", []string{"serve", "--require-assertion-jti"}, nil, true},
		{"environment", []string{"serve"}, map[string]string{"KEYWARD_REQUIRE_ASSERTION_JTI": "true"}, true},
		{"config file", []string{"serve", "--config", file("require-assertion-jti: true\n")}, nil, true},
		{"config file, underscores", []string{"serve", "--config", file("require_assertion_jti: true\n")}, nil, true},
		{"environment beats config file", []string{"serve", "--config", file("require-assertion-jti: true\n")},
			map[string]string{"KEYWARD_REQUIRE_ASSERTION_JTI": "false"}, false},
		{"flag beats environment", []string{"serve", "--require-assertion-jti=false"}, map[string]string{"KEYWARD_REQUIRE_ASSERTION_JTI": "true"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := checkServeArgs(t, tt.args, tt.env).RequireAssertionJTI; got != tt.want {
				t.Fatalf("RequireAssertionJTI = %v, want %v", got, tt.want)
			}
		})
	}
}

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
