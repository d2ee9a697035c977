package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/verify"
)

// The fixtures and checks shared by the tests that run other languages'
// client libraries against a real server (compat_*_test.go).

// flowAccount is the service account of googleFlowFixture.
type flowAccount struct {
	ID    string `json:"client_id"`
	Email string `json:"email"`
}

// googleFlowFixture creates, for the tests of Google's client libraries, an
// API "orders", a service account allowed orders.read with a key file, and
// the organization example.com whose user alice@example.com the account
// may act for (orders.read).
func googleFlowFixture(t *testing.T, m *Main) (acct flowAccount, keyFile string) {
	t.Helper()
	admin := []string{"--credentials", m.AdminKeyFile}
	cli := func(args ...string) string { return runCLI(t, append(args, admin...)...) }
	cli("api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read,orders.write")
	if err := json.Unmarshal([]byte(cli("sa", "create", "nightly-report", "--project", "billing", "--scopes", "orders.read", "-o", "json")), &acct); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile = filepath.Join(dir, "key.json")
	cli("keys", "create", acct.Email, "--out", keyFile)
	cli("org", "create", "example.com")
	users := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(users, []byte("email,status\nalice@example.com,active\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli("users", "import", users)
	cli("delegation", "grant", "--org", "example.com", "--client-id", acct.ID, "--scopes", "orders.read")
	return acct, keyFile
}

// oauthClient is what oauthClientFixture makes: a client with a secret
// and a key file, and the account (with a secret) that introspects for the
// API.
type oauthClient struct {
	ID, Email, Secret, KeyFile string
	APIID, APISecret           string
}

// oauthClientFixture creates, for the client-library tests, an API
// "orders", a client allowed orders.read with a secret and a key file, and
// an account with a secret that introspects for the API.
func oauthClientFixture(t *testing.T, m *Main) oauthClient {
	t.Helper()
	admin := []string{"--credentials", m.AdminKeyFile}
	cli := func(args ...string) string { return runCLI(t, append(args, admin...)...) }
	cli("api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read,orders.write")
	account := func(name string) (flowAccount, string) {
		var acct flowAccount
		if err := json.Unmarshal([]byte(cli("sa", "create", name, "--project", "billing", "--scopes", "orders.read", "-o", "json")), &acct); err != nil {
			t.Fatal(err)
		}
		var sec struct {
			Secret string `json:"client_secret"`
		}
		if err := json.Unmarshal([]byte(cli("secrets", "create", acct.Email, "-o", "json")), &sec); err != nil || sec.Secret == "" {
			t.Fatalf("secrets create: %+v, %v", sec, err)
		}
		return acct, sec.Secret
	}
	client, secret := account("nightly-report")
	api, apiSecret := account("orders-api")
	cli("api", "update", "orders", "--introspectors", api.Email)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	cli("keys", "create", client.Email, "--out", keyFile)
	return oauthClient{ID: client.ID, Email: client.Email, Secret: secret, KeyFile: keyFile, APIID: api.ID, APISecret: apiSecret}
}

// args are the command-line arguments of the client-library scripts.
func (c oauthClient) args(m *Main) []string {
	return []string{m.Issuer, c.ID, c.Secret, c.KeyFile, c.APIID, c.APISecret}
}

// oauthToken is a token response as a client library returns it.
type oauthToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
}

// oauthClientResults is what the client-library scripts print.
type oauthClientResults struct {
	Basic        oauthToken `json:"client_secret_basic"`
	Post         oauthToken `json:"client_secret_post"`
	PrivateKey   oauthToken `json:"private_key_jwt"`
	WrongSecret  string     `json:"wrong_secret"`
	Introspected struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
	}
	AfterRevoke map[string]any `json:"after_revoke"`
	// Verified is what an API's JWT library read from the first token
	// after verifying it against the JWKS.
	Verified struct {
		ClientID string `json:"client_id"`
		Scope    string `json:"scope"`
		Alg      string `json:"alg"`
	}
}

// check checks tokens (each must verify as clientID's, for orders.read),
// the wrong secret's error, and that the first token was active when
// introspected and inactive after its revocation.
func (r oauthClientResults) check(t *testing.T, m *Main, clientID string, tokens map[string]oauthToken) {
	t.Helper()
	ctx := context.Background()
	v, err := verify.New(ctx, m.Issuer, "https://orders.internal")
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range tokens {
		if !strings.EqualFold(tok.TokenType, "Bearer") || tok.ExpiresIn <= 0 || tok.Scope != "orders.read" {
			t.Errorf("%s: token response %+v", name, tok)
			continue
		}
		if c, err := v.Verify(ctx, tok.AccessToken); err != nil || c.ClientID != clientID {
			t.Errorf("%s: the token does not verify: %+v, %v", name, c, err)
		}
	}
	if r.WrongSecret != "invalid_client" {
		t.Errorf("a wrong secret: the library reported %q, want invalid_client", r.WrongSecret)
	}
	if !r.Introspected.Active || r.Introspected.ClientID != clientID || r.Introspected.Scope != "orders.read" {
		t.Errorf("introspection: %+v", r.Introspected)
	}
	if len(r.AfterRevoke) != 1 || r.AfterRevoke["active"] != false {
		t.Errorf("introspection after the revocation: %v", r.AfterRevoke)
	}
	if r.Verified.ClientID != clientID || r.Verified.Scope != "orders.read" || r.Verified.Alg != "ES256" {
		t.Errorf("the API's JWT library read %+v from the token", r.Verified)
	}
}

// selfSignedAud is the aud of a service account's self-signed JWT, read
// without verifying it (Debian's google-auth for Python pads the base64).
func selfSignedAud(t *testing.T, raw string) any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("%q is not a compact JWS", raw)
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Aud any }
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c.Aud
}
