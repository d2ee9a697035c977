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
// refused scope, a refused ID token, and self-signed JWTs (google-auth's
// and the seed's PyJWT example) that an API accepts without a token
// request: for the API's identifier, for it with a trailing slash (aud
// "https://{host}/", as Google's documentation has it), and
// OnDemandCredentials', whose aud is the URL called. Debian 12's
// google-auth (1.5.1) pads the base64 of every JWT it signs.
func TestPythonGoogleAuth(t *testing.T) {
	python := pythonWith(t, "google.oauth2.service_account, google.auth.transport.requests, jwt", "python3-google-auth python3-requests python3-jwt")
	m := startServer(t)
	acct, keyFile := googleFlowFixture(t, m)

	var got struct {
		Token, Expiry, Delegated, Refused string
		IDTokenRefused                    string `json:"id_token_refused"`
		SelfSigned                        string `json:"self_signed"`
		PyJWT                             string `json:"pyjwt"`
		SelfSignedSlash                   string `json:"self_signed_slash"`
		OnDemandRoot                      string `json:"on_demand_root"`
		OnDemandPath                      string `json:"on_demand_path"`
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
	if !strings.Contains(got.IDTokenRefused, "invalid_scope") || !strings.Contains(got.IDTokenRefused, "not ID tokens") {
		t.Fatalf("an ID token (IDTokenCredentials): google-auth said %q, want invalid_scope saying why", got.IDTokenRefused)
	}
	self, err := v.Verify(ctx, got.SelfSigned)
	if err != nil || !self.SelfSigned || self.ClientEmail != acct.Email {
		t.Fatalf("google-auth's self-signed JWT: %+v, %v", self, err)
	}
	if p, err := v.Verify(ctx, got.PyJWT); err != nil || !p.SelfSigned || p.ClientEmail != acct.Email {
		t.Fatalf("the seed's PyJWT self-signed JWT: %+v, %v", p, err)
	}
	for _, tt := range []struct{ name, raw, aud string }{
		{"jwt.Credentials with audience https://orders.internal/", got.SelfSignedSlash, "https://orders.internal/"},
		{"OnDemandCredentials calling https://orders.internal/", got.OnDemandRoot, "https://orders.internal/"},
	} {
		if aud := selfSignedAud(t, tt.raw); aud != tt.aud {
			t.Errorf("%s: aud %v, want %s", tt.name, aud, tt.aud)
		}
		if c, err := v.Verify(ctx, tt.raw); err != nil || !c.SelfSigned || c.ClientEmail != acct.Email {
			t.Errorf("%s: %+v, %v", tt.name, c, err)
		}
	}
	// OnDemandCredentials calling a path under the API name that path
	// (without the query): not taken for the API, since aud is not
	// matched as a prefix.
	if aud := selfSignedAud(t, got.OnDemandPath); aud != "https://orders.internal/orders" {
		t.Errorf("OnDemandCredentials calling https://orders.internal/orders?id=1: aud %v, want https://orders.internal/orders", aud)
	}
	if _, err := v.Verify(ctx, got.OnDemandPath); err == nil {
		t.Error("a self-signed JWT with aud https://orders.internal/orders is accepted by the API https://orders.internal")
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
	c := oauthClientFixture(t, m)
	var got struct {
		oauthClientResults
		OAuthlib oauthToken `json:"requests_oauthlib"`
	}
	runPython(t, python, "oauth_clients.py", &got, c.args(m)...)
	got.check(t, m, c.ID, map[string]oauthToken{"client_secret_basic": got.Basic, "client_secret_post": got.Post, "private_key_jwt": got.PrivateKey, "requests-oauthlib": got.OAuthlib})
}
