package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/verify"
)

// keyFile creates a key for job@shop and returns the key file.
func keyFile(t *testing.T, k *testkeyward.Server) []byte {
	t.Helper()
	kf, err := k.Srv.Admin.CreateKey(context.Background(), testkeyward.Sys, "job@shop.iam.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(kf)
	return b
}

func verifier(t *testing.T, k *testkeyward.Server, opts ...verify.Option) *verify.Verifier {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := verify.New(ctx, k.URL, "https://orders.internal", opts...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestGrants gets a token of each kind, with a generated RSA key file and
// with a key file for an uploaded EC P-256 key, and the API accepts it.
func TestGrants(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	v := verifier(t, k, verify.WithSelfSignedJWTs())
	ctx := context.Background()
	for kind, kf := range map[string][]byte{"RSA": keyFile(t, k), "EC P-256": ecKeyFile(t, k)} {
		for name, mk := range grantSources(ctx, k, id, secret, kf) {
			t.Run(kind+"/"+name, func(t *testing.T) {
				ts, err := mk()
				if err != nil {
					t.Fatal(err)
				}
				tok, err := ts.Token()
				if err != nil {
					t.Fatal(err)
				}
				c, err := v.Verify(ctx, tok.AccessToken)
				if err != nil {
					t.Fatalf("the API refuses the token: %v", err)
				}
				if c.ClientEmail != "job@shop.iam.test" {
					t.Fatalf("claims = %+v", c)
				}
				if name != "self-signed" && !c.HasScope("orders.read") {
					t.Fatalf("scopes = %v", c.Scopes)
				}
			})
		}
	}
}

// TestJWTBearerSendsJTI: each JWT-bearer assertion carries a jti of its
// own, so the server takes it once (no replay) and a server that requires
// one takes it at all.
func TestJWTBearerSendsJTI(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	kf := keyFile(t, k)
	var (
		mu   sync.Mutex
		jtis []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c struct {
			ID string `json:"jti"`
		}
		if _, payload, ok := strings.Cut(r.PostFormValue("assertion"), "."); ok {
			payload, _, _ = strings.Cut(payload, ".")
			b, _ := base64.RawURLEncoding.DecodeString(payload)
			json.Unmarshal(b, &c)
		}
		mu.Lock()
		jtis = append(jtis, c.ID)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(srv.Close)
	for range 2 {
		ts, err := client.JWTBearer(context.Background(), client.JWTBearerConfig{KeyFile: kf, Scopes: []string{"orders.read"}, TokenURL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Token(); err != nil {
			t.Fatal(err)
		}
	}
	if len(jtis) != 2 || jtis[0] == "" || jtis[0] == jtis[1] {
		t.Fatalf("the assertions' jtis: %q, want two, different", jtis)
	}
}

// TestAssertionAudience: a private_key_jwt client assertion's aud is the
// issuer (draft-ietf-oauth-rfc7523bis) — the key file's token_uri, or
// TokenEndpoint, without its /token path — unless Audience says
// otherwise; the JWT-bearer grant's assertion keeps token_uri, as
// Google's libraries send it.
func TestAssertionAudience(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	kf := keyFile(t, k)
	var (
		mu  sync.Mutex
		aud any
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c struct {
			Aud any `json:"aud"`
		}
		a := r.PostFormValue("client_assertion")
		if a == "" {
			a = r.PostFormValue("assertion")
		}
		if _, payload, ok := strings.Cut(a, "."); ok {
			payload, _, _ = strings.Cut(payload, ".")
			b, _ := base64.RawURLEncoding.DecodeString(payload)
			json.Unmarshal(b, &c)
		}
		mu.Lock()
		aud = c.Aud
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
	}))
	t.Cleanup(srv.Close)
	ctx := context.Background()
	scopes := []string{"orders.read"}
	tests := []struct {
		name string
		ts   func() (oauth2.TokenSource, error)
		want string
	}{
		{"client credentials: the key file's issuer", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL, KeyFile: kf, Scopes: scopes})
		}, k.URL},
		{"client credentials: TokenEndpoint's issuer", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL, TokenEndpoint: "https://kw.example/prefix/token", KeyFile: kf, Scopes: scopes})
		}, "https://kw.example/prefix"},
		{"client credentials: a TokenEndpoint of another path", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL, TokenEndpoint: "https://as.example/oauth2/v1/token-endpoint", KeyFile: kf, Scopes: scopes})
		}, "https://as.example/oauth2/v1/token-endpoint"},
		{"client credentials: Audience", func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: srv.URL, KeyFile: kf, Audience: k.URL + "/token", Scopes: scopes})
		}, k.URL + "/token"},
		{"JWT-bearer: token_uri", func() (oauth2.TokenSource, error) {
			return client.JWTBearer(ctx, client.JWTBearerConfig{TokenURL: srv.URL, KeyFile: kf, Scopes: scopes})
		}, k.URL + "/token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := tt.ts()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ts.Token(); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if aud != tt.want {
				t.Fatalf("aud = %#v, want %q", aud, tt.want)
			}
		})
	}
}

// TestStrictClientAssertionAudience: a server that accepts only the
// issuer as a client assertion's aud gives tokens to ClientCredentials
// with a key file, and to the JWT-bearer grant, whose assertion it does
// not concern.
func TestStrictClientAssertionAudience(t *testing.T) {
	k := testkeyward.Start(t, func(c *server.Config) { c.StrictClientAssertionAudience = true })
	k.Setup(t, "jwt")
	kf := keyFile(t, k)
	ctx := context.Background()
	for name, mk := range map[string]func() (oauth2.TokenSource, error){
		"private_key_jwt": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", KeyFile: kf, Scopes: []string{"orders.read"}})
		},
		"jwt-bearer": func() (oauth2.TokenSource, error) { return client.TokenSource(ctx, kf, "orders.read") },
	} {
		t.Run(name, func(t *testing.T) {
			ts, err := mk()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ts.Token(); err != nil {
				t.Fatalf("a token from the strict server: %v", err)
			}
		})
	}
}

// ecKeyFile uploads an EC P-256 public key for job@shop and returns a key
// file with its private key, as a user who made the key pair would write.
func ecKeyFile(t *testing.T, k *testkeyward.Server) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	uploaded, err := k.Srv.Admin.UploadKey(context.Background(), testkeyward.Sys, "job@shop.iam.test", pemBlock("PUBLIC KEY", spki), 0)
	if err != nil {
		t.Fatal(err)
	}
	return withKey(t, keyFile(t, k), uploaded.ID, pkcs8PEM(t, key))
}

// withKey is the key file kf with another private key and private_key_id.
func withKey(t *testing.T, kf []byte, kid, privatePEM string) []byte {
	t.Helper()
	var f client.KeyFile
	if err := json.Unmarshal(kf, &f); err != nil {
		t.Fatal(err)
	}
	f.PrivateKeyID, f.PrivateKey = kid, privatePEM
	b, _ := json.Marshal(f)
	return b
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func pkcs8PEM(t testing.TB, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pemBlock("PRIVATE KEY", der))
}

// grantSources makes a token source of each kind for job@shop, by name:
// its client secret (id, secret) or its key file kf.
func grantSources(ctx context.Context, k *testkeyward.Server, id, secret string, kf []byte) map[string]func() (oauth2.TokenSource, error) {
	return map[string]func() (oauth2.TokenSource, error){
		"jwt-bearer": func() (oauth2.TokenSource, error) { return client.TokenSource(ctx, kf, "orders.read") },
		// Another name for the server; the audience stays token_uri.
		"jwt-bearer via another URL": func() (oauth2.TokenSource, error) {
			return client.JWTBearer(ctx, client.JWTBearerConfig{KeyFile: kf, Scopes: []string{"orders.read"},
				TokenURL: strings.Replace(k.URL, "127.0.0.1", "localhost", 1) + "/token", HTTPClient: &http.Client{Timeout: 10 * time.Second}})
		},
		"client secret": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", ClientID: id, ClientSecret: secret, Scopes: []string{"orders.read"}})
		},
		"private_key_jwt": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: k.URL + "/token", KeyFile: kf, Scopes: []string{"orders.read"}})
		},
		// TokenURL's default with a KeyFile: its token_uri.
		"private_key_jwt to token_uri": func() (oauth2.TokenSource, error) {
			return client.ClientCredentials(ctx, client.ClientCredentialsConfig{KeyFile: kf, Scopes: []string{"orders.read"}})
		},
		"self-signed": func() (oauth2.TokenSource, error) { return client.SelfSignedJWT(kf, "https://orders.internal") },
	}
}

func TestErrorsCarryTheOAuthCode(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	ts, err := client.TokenSource(context.Background(), keyFile(t, k), "nope.scope")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ts.Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_scope" || re.ErrorDescription == "" || re.Response.StatusCode != 400 {
		t.Fatalf("err = %#v, want a RetrieveError with invalid_scope, its description and 400", err)
	}
}

// TestSingleFlight: a thousand goroutines asking at once cause one token
// request. The server answers only once every caller has found no token
// and is on its way to the refresh, so all of them ask while that one
// request is in flight.
func TestSingleFlight(t *testing.T) {
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		<-release
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"t","token_type":"Bearer","expires_in":3600}`))
	}))
	defer srv.Close()
	ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{TokenURL: srv.URL, ClientID: "1", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	var asking sync.WaitGroup
	asking.Add(n)
	client.SetBeforeFlight(ts, asking.Done)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := ts.Token()
			if err == nil && tok.AccessToken != "t" {
				err = errors.New("wrong token")
			}
			errs <- err
		}()
	}
	asking.Wait() // every caller found no token: none is answered before release
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := requests.Load(); got != 1 {
		t.Fatalf("%d token requests for %d concurrent callers, want 1", got, n)
	}
	ts.Token()
	if got := requests.Load(); got != 1 {
		t.Fatalf("a valid token was fetched again: %d requests", got)
	}
}

func TestFindDefaultCredentials(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	path := filepath.Join(t.TempDir(), "key.json")
	os.WriteFile(path, keyFile(t, k), 0o600)
	t.Setenv(client.CredentialsEnv, path)
	ts, err := client.FindDefaultCredentials(context.Background(), "orders.read")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); err != nil {
		t.Fatal(err)
	}
	t.Setenv(client.CredentialsEnv, "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	if _, err := client.FindDefaultCredentials(context.Background()); err == nil {
		t.Fatal("found credentials where there are none")
	}
	// A file that never ends is read no further than a key file could be.
	if _, err := os.Stat("/dev/zero"); err == nil {
		t.Setenv(client.CredentialsEnv, "/dev/zero")
		if _, err := client.FindDefaultCredentials(context.Background()); err == nil || !strings.Contains(err.Error(), "/dev/zero is over 1 MiB") {
			t.Fatalf("err = %v, want one saying /dev/zero is over 1 MiB", err)
		}
	}
	// A file found but no key file is named, with what is wrong with it:
	// the caller did not choose it.
	for name, data := range map[string]string{"empty": "", "PEM": "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "another type": `{"type":"authorized_user"}`} {
		t.Run(name, func(t *testing.T) {
			os.WriteFile(path, []byte(data), 0o600)
			t.Setenv(client.CredentialsEnv, path)
			_, err := client.FindDefaultCredentials(context.Background())
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("err = %v, want one naming %s", err, path)
			}
		})
	}
}

// TestParseKeyFile: a file that is no key file is refused saying what it
// is instead: empty, PEM (a key alone, not the key file), JSON of another
// kind.
func TestParseKeyFile(t *testing.T) {
	tests := []struct {
		name, data, want string
	}{
		{"not JSON", "x", "client: the key file is not a JSON key file: invalid character 'x'"},
		{"empty", " \n", "client: the key file is empty"},
		{"PEM", "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n", "client: the key file is a PEM file, not a JSON key file: give the JSON file 'keyward keys create' wrote"},
		{"array", `[{"type":"service_account"}]`, "client: the key file is not a JSON key file: a JSON array, not an object"},
		{"field of another type", `{"type":"service_account","client_email":7}`, "client: the key file is not a JSON key file: client_email is a JSON number, not a string"},
		// These said 'key file type "authorized_user", want service_account'.
		{"gcloud user credential", `{"type":"authorized_user"}`, `client: the file is a Google credential of type "authorized_user" (a gcloud user credential, as 'gcloud auth application-default login' writes), not a service-account key file (type service_account)`},
		{"workload identity federation", `{"type":"external_account"}`, `client: the file is a Google credential of type "external_account" (a workload identity federation configuration), not a service-account key file (type service_account)`},
		{"impersonation", `{"type":"impersonated_service_account"}`, `client: the file is a Google credential of type "impersonated_service_account" (a configuration to impersonate a service account), not a service-account key file (type service_account)`},
		{"other type", `{"type":"gdch_service_account"}`, `client: the file is a Google credential of type "gdch_service_account", not a service-account key file (type service_account): give the JSON file 'keyward keys create' wrote`},
		// These said 'key file type "", want service_account'.
		{"export", `{"format":"keyward-export/2","accounts":[]}`, "client: the file is not a service-account key file but a Keyward export"},
		{"no type", `{"client_email":"a@b"}`, `client: the file is not a service-account key file: it has no "type"`},
		{"no key", `{"type":"service_account","client_email":"a@b","token_uri":"http://x"}`, "lacks client_email, token_uri or private_key"},
		{"bad PEM", `{"type":"service_account","client_email":"a@b","token_uri":"http://x","private_key":"nope"}`, "client: key file: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.ParseKeyFile([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "Go value") {
				t.Fatalf("error %q names Go's types", err)
			}
		})
	}
}

// TestKeyKinds: every constructor that takes a key file accepts the keys
// Keyward accepts and refuses, at once and saying why, a key whose
// signatures the server would refuse.
func TestKeyKinds(t *testing.T) {
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	base := []byte(`{"type":"service_account","client_email":"job@shop.iam.test","client_id":"1","token_uri":"http://127.0.0.1:1/token"}`)
	tests := []struct {
		name, pem, wantErr string
	}{
		{"RSA 2048", pkcs8PEM(t, rsa2048), ""},
		{"RSA 2048 PKCS #1", string(pemBlock("RSA PRIVATE KEY", x509.MarshalPKCS1PrivateKey(rsa2048))), ""},
		{"EC P-256", pkcs8PEM(t, p256), ""},
		{"RSA 1024", pkcs8PEM(t, rsa1024), "the RSA key has 1024 bits: Keyward accepts RS256 (RSA of 2048 to 8192 bits) and ES256 (P-256) keys"},
		{"EC P-384", pkcs8PEM(t, p384), "the EC key is on P-384: Keyward accepts RS256 (RSA of 2048 to 8192 bits) and ES256 (P-256) keys"},
		{"Ed25519", pkcs8PEM(t, ed), "unsupported key type Ed25519"},
		{"garbage PEM", string(pemBlock("PRIVATE KEY", []byte("junk"))), "neither a PKCS #8 nor a PKCS #1 key"},
		{"not PEM", "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "not PEM"},
	}
	ctx := context.Background()
	constructors := map[string]func(kf []byte) error{
		"ParseKeyFile": func(kf []byte) error { _, err := client.ParseKeyFile(kf); return err },
		"TokenSource":  func(kf []byte) error { _, err := client.TokenSource(ctx, kf, "orders.read"); return err },
		"ClientCredentials": func(kf []byte) error {
			_, err := client.ClientCredentials(ctx, client.ClientCredentialsConfig{TokenURL: "http://127.0.0.1:1/token", KeyFile: kf})
			return err
		},
		"SelfSignedJWT": func(kf []byte) error { _, err := client.SelfSignedJWT(kf, "https://orders.internal"); return err },
	}
	for _, tt := range tests {
		kf := withKey(t, base, "kid-1", tt.pem)
		for name, construct := range constructors {
			t.Run(tt.name+"/"+name, func(t *testing.T) {
				err := construct(kf)
				if tt.wantErr == "" && err != nil {
					t.Fatalf("refused: %v", err)
				}
				if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
					t.Fatalf("err = %v, want one with %q", err, tt.wantErr)
				}
			})
		}
	}
}

// TestClientAssertionIssuer: a private_key_jwt assertion names the client
// by ClientID, else the key file's client_id, else its client_email (a
// key file written by hand for an uploaded key may lack client_id), never
// by nothing.
func TestClientAssertionIssuer(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	var f map[string]any
	json.Unmarshal(keyFile(t, k), &f)
	delete(f, "client_id")
	noID, _ := json.Marshal(f)
	ts, err := client.ClientCredentials(context.Background(), client.ClientCredentialsConfig{TokenURL: k.URL + "/token", KeyFile: noID, Scopes: []string{"orders.read"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Token(); err != nil {
		t.Fatalf("a key file without client_id: %v", err)
	}
}
