package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/verify"
)

// pythonWith returns a Python interpreter that can import modules (a
// comma-separated list), or skips the test, naming the Debian packages
// that provide them. KEYWARD_TEST_PYTHON names the interpreter to use (the
// test then fails if it lacks a module: .ci/run sets it after installing
// them); otherwise python3 on the PATH and Debian's /usr/bin/python3 are
// tried.
func pythonWith(t *testing.T, modules, debianPackages string) string {
	t.Helper()
	check := func(p string) ([]byte, error) {
		return exec.Command(p, "-c", "import "+modules).CombinedOutput()
	}
	if p := os.Getenv("KEYWARD_TEST_PYTHON"); p != "" {
		if out, err := check(p); err != nil {
			t.Fatalf("KEYWARD_TEST_PYTHON=%s cannot import %s: %v\n%s", p, modules, err, out)
		}
		return p
	}
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if _, err := check(p); err == nil {
			return p
		}
	}
	t.Skipf("no python3 here can import %s (apt-get install %s, or set KEYWARD_TEST_PYTHON); .ci/run installs them", modules, debianPackages)
	return ""
}

// runPython runs a script of testdata with args and decodes the one JSON
// object it prints into v.
func runPython(t *testing.T, python, script string, v any, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, append([]string{filepath.Join("testdata", script)}, args...)...)
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s testdata/%s: %v\n%s", python, script, err, stderr.String())
	}
	if err := json.Unmarshal(stdout, v); err != nil {
		t.Fatalf("testdata/%s printed %q: %v", script, stdout, err)
	}
}

// TestPythonGoogleAuth runs Google's Python client library, unchanged,
// against a real server, as the seed's server-to-server flow uses it: a
// token from the key file's token_uri, a delegated one (with_subject), a
// refused scope, and self-signed JWTs (google-auth's and the seed's PyJWT
// example) that an API accepts without a token request. Debian 12's
// google-auth (1.5.1) pads the base64 of every JWT it signs.
func TestPythonGoogleAuth(t *testing.T) {
	python := pythonWith(t, "google.oauth2.service_account, google.auth.transport.requests, jwt", "python3-google-auth python3-requests python3-jwt")
	m := startServer(t)
	admin := []string{"--credentials", m.AdminKeyFile}
	cli := func(args ...string) string { return runCLI(t, append(args, admin...)...) }
	cli("api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read,orders.write")
	var acct struct {
		ID    string `json:"client_id"`
		Email string `json:"email"`
	}
	if err := json.Unmarshal([]byte(cli("sa", "create", "nightly-report", "--project", "billing", "--scopes", "orders.read", "-o", "json")), &acct); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.json")
	cli("keys", "create", acct.Email, "--out", keyFile)
	cli("org", "create", "example.com")
	users := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(users, []byte("email,status\nalice@example.com,active\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli("users", "import", users)
	cli("delegation", "grant", "--org", "example.com", "--client-id", acct.ID, "--scopes", "orders.read")

	var got struct {
		Token, Expiry, Delegated, Refused string
		SelfSigned                        string `json:"self_signed"`
		PyJWT                             string `json:"pyjwt"`
	}
	runPython(t, python, "google_auth.py", &got, keyFile, "https://orders.internal", "alice@example.com")

	ctx := context.Background()
	v, err := verify.New(ctx, m.Issuer, "https://orders.internal", verify.WithSelfSignedJWTs())
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(ctx, got.Token)
	if err != nil {
		t.Fatalf("the token google-auth got does not verify: %v", err)
	}
	if c.ClientEmail != acct.Email || !strings.Contains(strings.Join(c.Scopes, " "), "orders.read") {
		t.Fatalf("token claims = %+v", c)
	}
	// google-auth computes the expiry from expires_in.
	if exp, err := time.Parse(time.RFC3339Nano, got.Expiry); err != nil || exp.Sub(c.Expiry).Abs() > time.Minute {
		t.Fatalf("google-auth's expiry %s (%v), the token's %s", got.Expiry, err, c.Expiry)
	}
	d, err := v.Verify(ctx, got.Delegated)
	if err != nil || d.Subject != "alice@example.com" {
		t.Fatalf("delegated token: %+v, %v", d, err)
	}
	if !strings.Contains(got.Refused, "invalid_scope") {
		t.Fatalf("a scope the account may not have: google-auth said %q, want invalid_scope", got.Refused)
	}
	self, err := v.Verify(ctx, got.SelfSigned)
	if err != nil || !self.SelfSigned || self.ClientEmail != acct.Email {
		t.Fatalf("google-auth's self-signed JWT: %+v, %v", self, err)
	}
	if p, err := v.Verify(ctx, got.PyJWT); err != nil || !p.SelfSigned || p.ClientEmail != acct.Email {
		t.Fatalf("the seed's PyJWT self-signed JWT: %+v, %v", p, err)
	}
}

// TestPythonOAuthClients runs Python's generic OAuth 2.0 client libraries,
// Authlib and requests-oauthlib, unchanged, against a real server: the
// client-credentials grant with every client authentication method Authlib
// has (client_secret_basic, client_secret_post, private_key_jwt with the
// service account's key file, RS256 and no kid), a wrong secret,
// Authlib's introspection and revocation helpers, and PyJWT verifying the
// access token against the JWKS, as a Python API would.
func TestPythonOAuthClients(t *testing.T) {
	python := pythonWith(t, "authlib, requests_oauthlib, jwt", "python3-authlib python3-requests-oauthlib python3-jwt")
	m := startServer(t)
	clientID, email, secret, apiID, apiSecret := oauthClientFixture(t, m)
	keyFile := filepath.Join(t.TempDir(), "key.json")
	runCLI(t, "keys", "create", email, "--out", keyFile, "--credentials", m.AdminKeyFile)
	var got struct {
		oauthClientResults
		OAuthlib oauthToken `json:"requests_oauthlib"`
	}
	runPython(t, python, "oauth_clients.py", &got, m.Issuer, clientID, secret, keyFile, apiID, apiSecret)
	got.check(t, m, clientID, map[string]oauthToken{"client_secret_basic": got.Basic, "client_secret_post": got.Post, "private_key_jwt": got.PrivateKey, "requests-oauthlib": got.OAuthlib})
}

// oauthClientFixture creates, for the client-library tests, an API
// "orders", a client with a secret allowed orders.read, and an account
// with a secret that introspects for the API.
func oauthClientFixture(t *testing.T, m *Main) (clientID, clientEmail, secret, apiID, apiSecret string) {
	t.Helper()
	admin := []string{"--credentials", m.AdminKeyFile}
	cli := func(args ...string) string { return runCLI(t, append(args, admin...)...) }
	cli("api", "create", "orders", "--identifier", "https://orders.internal", "--scopes", "orders.read,orders.write")
	account := func(name string) (id, email, secret string) {
		var acct struct {
			ID    string `json:"client_id"`
			Email string `json:"email"`
		}
		if err := json.Unmarshal([]byte(cli("sa", "create", name, "--project", "billing", "--scopes", "orders.read", "-o", "json")), &acct); err != nil {
			t.Fatal(err)
		}
		var sec struct {
			Secret string `json:"client_secret"`
		}
		if err := json.Unmarshal([]byte(cli("secrets", "create", acct.Email, "-o", "json")), &sec); err != nil || sec.Secret == "" {
			t.Fatalf("secrets create: %+v, %v", sec, err)
		}
		return acct.ID, acct.Email, sec.Secret
	}
	clientID, clientEmail, secret = account("nightly-report")
	apiID, apiEmail, apiSecret := account("orders-api")
	cli("api", "update", "orders", "--introspectors", apiEmail)
	return clientID, clientEmail, secret, apiID, apiSecret
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
