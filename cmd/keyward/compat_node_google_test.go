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

// googleTokenURL is where Node's google-auth-library posts every
// JWT-bearer assertion, and the assertion's aud.
const googleTokenURL = "https://oauth2.googleapis.com/token"

// TestNodeGoogleAuth runs Node's google-auth-library, unchanged, with a
// Keyward key file. What works: the self-signed JWT it sends when it has no
// scopes, which an API accepts with Keyward's keys
// (verify.WithSelfSignedJWTs). What does not: access tokens. The library
// posts its assertion, with aud Google's token URL, to Google's token URL
// whatever the key file's token_uri says, so the test checks that this is
// still so (the request is caught before it leaves) rather than asking
// Keyward for a token. The library is the version
// testdata/node/package-lock.json pins (npm ci; .ci/run does).
func TestNodeGoogleAuth(t *testing.T) {
	node := nodeWith(t, "google-auth-library")
	m := startServer(t)
	acct, keyFile := googleFlowFixture(t, m)
	data, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var kf struct {
		TokenURI string `json:"token_uri"`
	}
	if err := json.Unmarshal(data, &kf); err != nil || kf.TokenURI == "" {
		t.Fatalf("key file token_uri: %q, %v", kf.TokenURI, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "google_auth.cjs", keyFile, "https://orders.internal")
	cmd.Dir = filepath.Join("testdata", "node")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("node testdata/node/google_auth.cjs: %v\n%s", err, stderr.String())
	}
	var got struct {
		Version, Client string
		UniverseDomain  string `json:"universe_domain"`
		SelfSigned      string `json:"self_signed"`
		TokenRequest    *struct {
			URL, Method string
			GrantType   string         `json:"grant_type"`
			Header      map[string]any `json:"header"`
			Claims      map[string]any `json:"claims"`
		} `json:"token_request"`
		TokenError string `json:"token_error"`
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("google_auth.cjs printed %q: %v", stdout, err)
	}
	t.Logf("google-auth-library %s", got.Version)
	// A universe_domain other than Google's would make the library sign its
	// own JWTs even with scopes: the key file has none.
	if got.Client != "JWT" || got.UniverseDomain != "googleapis.com" {
		t.Errorf("client %s, universe %q; want JWT, googleapis.com", got.Client, got.UniverseDomain)
	}

	v, err := verify.New(ctx, m.Issuer, "https://orders.internal", verify.WithSelfSignedJWTs())
	if err != nil {
		t.Fatal(err)
	}
	if c, err := v.Verify(ctx, got.SelfSigned); err != nil || !c.SelfSigned || c.ClientEmail != acct.Email || c.Subject != acct.Email {
		t.Errorf("the library's self-signed JWT: %+v, %v", c, err)
	}

	r := got.TokenRequest
	if r == nil {
		t.Fatalf("no token request caught: %s", got.TokenError)
	}
	if r.URL == kf.TokenURI {
		t.Fatalf("google-auth-library %s now posts to the key file's token_uri: test a real token from Keyward here, and update README's \"Client libraries, tested\"", got.Version)
	}
	if r.URL != googleTokenURL || r.Method != "POST" || r.GrantType != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		t.Errorf("token request: %s %s grant_type=%s; want POST %s, the JWT-bearer grant", r.Method, r.URL, r.GrantType, googleTokenURL)
	}
	for name, want := range map[string]any{"aud": googleTokenURL, "iss": acct.Email, "scope": "orders.read"} {
		if r.Claims[name] != want {
			t.Errorf("assertion claim %s = %v, want %v (claims %v)", name, r.Claims[name], want, r.Claims)
		}
	}
}
