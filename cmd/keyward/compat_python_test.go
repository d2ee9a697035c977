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

// pythonWithGoogleAuth returns a Python interpreter that has Google's
// client library (google-auth, with requests), or skips the test.
// KEYWARD_TEST_PYTHON names one (the test fails if it lacks the library);
// otherwise python3 on the PATH and Debian's /usr/bin/python3 are tried.
func pythonWithGoogleAuth(t *testing.T) string {
	t.Helper()
	check := func(p string) ([]byte, error) {
		return exec.Command(p, "-c", "import google.oauth2.service_account, google.auth.transport.requests").CombinedOutput()
	}
	if p := os.Getenv("KEYWARD_TEST_PYTHON"); p != "" {
		if out, err := check(p); err != nil {
			t.Fatalf("KEYWARD_TEST_PYTHON=%s has no google-auth: %v\n%s", p, err, out)
		}
		return p
	}
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if _, err := check(p); err == nil {
			return p
		}
	}
	t.Skip("google-auth for Python is not installed (apt-get install python3-google-auth python3-requests python3-jwt, or set KEYWARD_TEST_PYTHON); .ci/run installs it")
	return ""
}

// TestPythonGoogleAuth runs Google's Python client library, unchanged,
// against a real server, as the seed's server-to-server flow uses it: a
// token from the key file's token_uri, a delegated one (with_subject), a
// refused scope, and self-signed JWTs (google-auth's and the seed's PyJWT
// example) that an API accepts without a token request. Debian 12's
// google-auth (1.5.1) pads the base64 of every JWT it signs.
func TestPythonGoogleAuth(t *testing.T) {
	python := pythonWithGoogleAuth(t)
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

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join("testdata", "google_auth.py"), keyFile, "https://orders.internal", "alice@example.com")
	cmd.Env = append(os.Environ(), "NO_PROXY=127.0.0.1,localhost", "no_proxy=127.0.0.1,localhost")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s testdata/google_auth.py: %v\n%s", python, err, stderr.String())
	}
	var got struct {
		Token, Expiry, Delegated, Refused string
		SelfSigned                        string `json:"self_signed"`
		PyJWT                             string `json:"pyjwt"`
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("the script printed %q: %v", stdout, err)
	}

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
	if got.PyJWT == "" {
		t.Log("PyJWT is not installed: the seed's PyJWT example was not run")
		return
	}
	if p, err := v.Verify(ctx, got.PyJWT); err != nil || !p.SelfSigned || p.ClientEmail != acct.Email {
		t.Fatalf("the seed's PyJWT self-signed JWT: %+v, %v", p, err)
	}
}
