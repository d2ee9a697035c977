package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/verify"
)

// debianJava is where Debian installs Java libraries.
const debianJava = "/usr/share/java"

// TestJavaGoogleAuth runs Google's Java client libraries, unchanged,
// against a real server: google-auth-library-java's
// ServiceAccountCredentials and the seed's GoogleCredential, each for a
// token and a delegated one (createDelegated), and self-signed JWTs
// (ServiceAccountJwtAccessCredentials) an API accepts: one for the
// audience given, and one an HTTP client makes for the API's root URL,
// whose aud is that URL, https://orders.internal/ with its slash. The
// libraries are Debian's (libgoogle-auth-java 0.18,
// libgoogle-api-client-java), which .ci/run installs.
func TestJavaGoogleAuth(t *testing.T) {
	java, err := exec.LookPath("java")
	missing := err != nil
	for _, jar := range []string{"google-auth-library-oauth2-http.jar", "google-api-client.jar"} {
		if _, err := os.Stat(filepath.Join(debianJava, jar)); err != nil {
			missing = true
		}
	}
	if missing {
		if os.Getenv("KEYWARD_TEST_JAVA") != "" {
			t.Fatal("KEYWARD_TEST_JAVA is set but java or Debian's libgoogle-auth-java and libgoogle-api-client-java are missing")
		}
		t.Skip("java or Google's Java libraries are not installed (apt-get install libgoogle-auth-java libgoogle-api-client-java); .ci/run installs them")
	}
	m := startServer(t)
	acct, keyFile := googleFlowFixture(t, m)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, java, "-cp", filepath.Join(debianJava, "*"), filepath.Join("testdata", "java", "GoogleAuth.java"),
		keyFile, "https://orders.internal", "alice@example.com")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("java GoogleAuth.java: %v\n%s", err, stderr.String())
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(stdout)), "\n") {
		name, value, _ := strings.Cut(line, "=")
		got[name] = value
	}

	v, err := verify.New(ctx, m.Issuer, "https://orders.internal", verify.WithSelfSignedJWTs())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"token", "googlecredential"} {
		c, err := v.Verify(ctx, got[name])
		if err != nil || c.ClientEmail != acct.Email || c.Subject != acct.ID {
			t.Errorf("%s: %+v, %v", name, c, err)
		}
	}
	for _, name := range []string{"delegated", "googlecredential_delegated"} {
		c, err := v.Verify(ctx, got[name])
		if err != nil || c.ClientEmail != acct.Email || c.Subject != "alice@example.com" {
			t.Errorf("%s: %+v, %v", name, c, err)
		}
	}
	if c, err := v.Verify(ctx, got["self_signed"]); err != nil || !c.SelfSigned || c.ClientEmail != acct.Email {
		t.Errorf("self-signed JWT: %+v, %v", c, err)
	}
	// Without an audience the library takes the URL called, as given
	// (newer releases take https://{host}/ whatever the path).
	if aud := selfSignedAud(t, got["self_signed_root"]); aud != "https://orders.internal/" {
		t.Errorf("self-signed JWT for a call to the API's root: aud %v, want https://orders.internal/", aud)
	}
	if c, err := v.Verify(ctx, got["self_signed_root"]); err != nil || !c.SelfSigned || c.ClientEmail != acct.Email {
		t.Errorf("self-signed JWT for a call to the API's root (aud https://orders.internal/): %+v, %v", c, err)
	}
	// One for a path under the API names that path: it is not taken for
	// the API (no prefix matching); such a client must be given the
	// API's identifier as its audience, as self_signed is.
	if aud := selfSignedAud(t, got["self_signed_path"]); aud != "https://orders.internal/orders?id=1" {
		t.Errorf("self-signed JWT for a call to a path: aud %v, want the URL called", aud)
	}
	if _, err := v.Verify(ctx, got["self_signed_path"]); err == nil {
		t.Error("a self-signed JWT with aud https://orders.internal/orders?id=1 is accepted by the API https://orders.internal")
	}
}
