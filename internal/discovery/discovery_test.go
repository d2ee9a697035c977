package discovery

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeys"
)

var update = flag.Bool("update", false, "rewrite the golden files")

type fakeKeys struct{}

func (fakeKeys) JWKS() []byte { return []byte(`{"keys":[]}`) }

type fakeDir struct {
	accounts map[string]storage.Account
	keys     map[string][]storage.Key
	// accountErr and keysErr, when set, are the store failing.
	accountErr, keysErr error
}

func (d fakeDir) GetAccountByEmail(_ context.Context, email string) (storage.Account, error) {
	if d.accountErr != nil {
		return storage.Account{}, d.accountErr
	}
	a, ok := d.accounts[email]
	if !ok {
		return a, storage.ErrNotFound
	}
	return a, nil
}

func (d fakeDir) ListKeys(_ context.Context, id string) ([]storage.Key, error) {
	if d.keysErr != nil {
		return nil, d.keysErr
	}
	return d.keys[id], nil
}

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func newHandler(t *testing.T) (*http.ServeMux, []byte) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	cert := []byte{0x30, 0x03, 0x02, 0x01, 0x01}
	// An RSA key over 8192 bits, stored before uploads were bounded: its
	// modulus a random odd number, since only its size matters.
	huge, _ := x509.MarshalPKIXPublicKey(testkeys.RSAPublic(8200))
	// A key no JWK can hold (an X25519 key, say, from an import): its
	// x509 encoding parses, but go-jose does not marshal it.
	x, _ := ecdh.X25519().GenerateKey(rand.Reader)
	x25519, _ := x509.MarshalPKIXPublicKey(x.PublicKey())
	dir := fakeDir{
		accounts: map[string]storage.Account{
			"job@p.iam.test": {ID: "1", Email: "job@p.iam.test"},
			"off@p.iam.test": {ID: "2", Email: "off@p.iam.test", Disabled: true},
		},
		keys: map[string][]storage.Key{"1": {
			{ID: "good", Algorithm: "ES256", PublicKey: spki, Certificate: cert},
			{ID: "bare", Algorithm: "ES256", PublicKey: spki},
			{ID: "disabled", Algorithm: "ES256", PublicKey: spki, Certificate: cert, Disabled: true},
			{ID: "expired", Algorithm: "ES256", PublicKey: spki, Certificate: cert, ExpiresAt: now.Add(-time.Second)},
			{ID: "huge", Algorithm: "RS256", PublicKey: huge, Certificate: cert},
			{ID: "x25519", Algorithm: "ES256", PublicKey: x25519},
		}},
	}
	md := Metadata{
		Issuer: "https://keyward.test", TokenEndpoint: "https://keyward.test/token", JWKSURI: "https://keyward.test" + JWKSPath,
		IntrospectionEndpoint: "https://keyward.test/introspect", RevocationEndpoint: "https://keyward.test/revoke",
		ResponseTypesSupported: []string{}, GrantTypesSupported: []string{"client_credentials", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "private_key_jwt"},
		DPoPSigningAlgValuesSupported:     []string{"ES256", "EdDSA"},
	}
	mux := http.NewServeMux()
	NewHandler(md, fakeKeys{}, dir, func() time.Time { return now }, slog.New(slog.DiscardHandler)).Register(mux)
	return mux, cert
}

func get(mux http.Handler, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
	return w
}

func TestMetadataGolden(t *testing.T) {
	mux, _ := newHandler(t)
	for _, path := range []string{MetadataPath, OpenIDPath} {
		w := get(mux, path)
		golden := filepath.Join("testdata", "metadata.golden")
		if *update {
			os.WriteFile(golden, w.Body.Bytes(), 0o644)
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatal(err)
		}
		if w.Code != 200 || w.Body.String() != string(want) {
			t.Fatalf("%s: %d\n%s\nwant\n%s", path, w.Code, w.Body, want)
		}
		if w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("Content-Type = %q", w.Header().Get("Content-Type"))
		}
	}
}

func TestAccountKeys(t *testing.T) {
	mux, cert := newHandler(t)
	t.Run("jwk", func(t *testing.T) {
		w := get(mux, AccountJWKPath+"job@p.iam.test")
		var set struct {
			Keys []struct {
				Kid, Alg, Use, Kty string
			} `json:"keys"`
		}
		json.Unmarshal(w.Body.Bytes(), &set)
		if w.Code != 200 || len(set.Keys) != 2 || set.Keys[0].Kid != "good" || set.Keys[1].Kid != "bare" || set.Keys[0].Alg != "ES256" || set.Keys[0].Use != "sig" {
			t.Fatalf("%d %s: want only the enabled, unexpired keys of 8192 bits at most that a JWK can hold", w.Code, w.Body)
		}
	})
	t.Run("x509", func(t *testing.T) {
		w := get(mux, AccountX509Path+"job%40p.iam.test")
		var doc map[string]string
		json.Unmarshal(w.Body.Bytes(), &doc)
		if w.Code != 200 || len(doc) != 1 {
			t.Fatalf("%d %s: want the one enabled key with a certificate", w.Code, w.Body)
		}
		block, _ := pem.Decode([]byte(doc["good"]))
		if block == nil || block.Type != "CERTIFICATE" || string(block.Bytes) != string(cert) {
			t.Fatalf("certificate = %q", doc["good"])
		}
	})
	for _, path := range []string{AccountJWKPath + "ghost@p.iam.test", AccountJWKPath + "off@p.iam.test", AccountX509Path + "off@p.iam.test",
		AccountJWKPath + "a%ff@p.iam.test", AccountX509Path + "a%00@p.iam.test"} {
		if w := get(mux, path); w.Code != 404 {
			t.Fatalf("%s: %d, want 404", path, w.Code)
		}
	}
}

func TestAuthorizeEndpointExplains(t *testing.T) {
	mux, _ := newHandler(t)
	w := get(mux, AuthorizationPath+"?response_type=code")
	var body map[string]string
	json.Unmarshal(w.Body.Bytes(), &body)
	if w.Code != 400 || body["error"] != "unsupported_response_type" {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// The directory's key list (a cache's own slice, in the server) is read,
// never rewritten, when unusable keys are left out.
func TestAccountKeysLeavesTheDirectoryAlone(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	keys := []storage.Key{
		{ID: "disabled", Algorithm: "ES256", PublicKey: spki, Disabled: true},
		{ID: "good", Algorithm: "ES256", PublicKey: spki},
	}
	dir := fakeDir{accounts: map[string]storage.Account{"job@p.iam.test": {ID: "1"}}, keys: map[string][]storage.Key{"1": keys}}
	mux := http.NewServeMux()
	NewHandler(Metadata{}, fakeKeys{}, dir, func() time.Time { return now }, slog.New(slog.DiscardHandler)).Register(mux)
	for range 2 {
		if w := get(mux, AccountJWKPath+"job@p.iam.test"); w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
	}
	if keys[0].ID != "disabled" || keys[1].ID != "good" {
		t.Fatalf("the directory's keys were rewritten: %s, %s", keys[0].ID, keys[1].ID)
	}
}

// A store failure behind an account's key documents is a 503 with
// Retry-After, as at the token endpoint, never a 500; the cause is logged,
// not sent.
func TestAccountKeysStoreFailure(t *testing.T) {
	cause := errors.New("dial tcp 10.0.0.7:5432: connection refused")
	account := map[string]storage.Account{"job@p.iam.test": {ID: "1"}}
	tests := []struct {
		name string
		dir  fakeDir
		path string
	}{
		{"account, jwk", fakeDir{accountErr: cause}, AccountJWKPath + "job@p.iam.test"},
		{"account, x509", fakeDir{accountErr: cause}, AccountX509Path + "job@p.iam.test"},
		{"keys, jwk", fakeDir{accounts: account, keysErr: cause}, AccountJWKPath + "job@p.iam.test"},
		{"keys, x509", fakeDir{accounts: account, keysErr: cause}, AccountX509Path + "job@p.iam.test"},
		{"escaped email", fakeDir{accountErr: cause}, AccountJWKPath + "job%2Bx%20y@p.iam.test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs strings.Builder
			mux := http.NewServeMux()
			NewHandler(Metadata{}, fakeKeys{}, tt.dir, func() time.Time { return now }, slog.New(slog.NewTextHandler(&logs, nil))).Register(mux)
			w := get(mux, tt.path)
			var body map[string]string
			json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" || w.Header().Get("Retry-After") == "" {
				t.Errorf("%d %s (Retry-After %q), want 503 temporarily_unavailable with Retry-After", w.Code, w.Body, w.Header().Get("Retry-After"))
			}
			if strings.Contains(w.Body.String(), "10.0.0.7") {
				t.Errorf("the answer shows the cause: %s", w.Body)
			}
			if !strings.Contains(logs.String(), "10.0.0.7") || !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("the cause is not logged as an error: %q", logs.String())
			}
			// The path as it was sent, as the request line gives it.
			if !strings.Contains(logs.String(), " path="+tt.path+" ") {
				t.Errorf("the log does not name the path %s: %q", tt.path, logs.String())
			}
		})
	}
}

// A client that hangs up while its account's keys are read is no failure
// of the store's: logged at info, saying the client went, not "the store
// failed" with a bare "context canceled".
func TestAccountKeysClientGone(t *testing.T) {
	var logs strings.Builder
	mux := http.NewServeMux()
	NewHandler(Metadata{}, fakeKeys{}, fakeDir{accountErr: context.Canceled}, func() time.Time { return now }, slog.New(slog.NewTextHandler(&logs, nil))).Register(mux)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	mux.ServeHTTP(httptest.NewRecorder(), httptest.NewRequestWithContext(ctx, "GET", AccountJWKPath+"job@p.iam.test", nil))
	got := logs.String()
	if want := `level=INFO msg="account keys not served: the client hung up before the answer"`; !strings.Contains(got, want) || strings.Contains(got, "the store failed") {
		t.Errorf("logged %q, want %s", got, want)
	}
}

// RFC 8414 §3: the metadata is at the issuer with /.well-known/
// oauth-authorization-server inserted between its host and its path. An
// issuer with a path has it there, at that path exactly, as well as at
// MetadataPath (the issuer's own path with the well-known suffix after it,
// as a proxy that strips the path reaches this server); no other path
// under it answers.
func TestMetadataAtIssuerPath(t *testing.T) {
	tests := []struct {
		issuer string
		paths  map[string]int // path → status
	}{
		{"https://keyward.test/tenant/a", map[string]int{
			MetadataPath + "/tenant/a":  200,
			MetadataPath:                200,
			MetadataPath + "/tenant":    404,
			MetadataPath + "/tenant/a/": 404,
			MetadataPath + "/tenant/ab": 404,
			MetadataPath + "/other":     404,
		}},
		{"https://keyward.test/t%C3%A9", map[string]int{
			MetadataPath + "/t%C3%A9": 200,
			MetadataPath + "/t%C3%A8": 404,
		}},
		{"https://keyward.test", map[string]int{
			MetadataPath:            200,
			MetadataPath + "/":      404,
			MetadataPath + "/other": 404,
		}},
	}
	for _, tt := range tests {
		mux := http.NewServeMux()
		NewHandler(Metadata{Issuer: tt.issuer}, fakeKeys{}, fakeDir{}, func() time.Time { return now }, slog.New(slog.DiscardHandler)).Register(mux)
		for path, status := range tt.paths {
			t.Run(tt.issuer+" "+path, func(t *testing.T) {
				w := get(mux, path)
				if w.Code != status {
					t.Fatalf("%d %s, want %d", w.Code, w.Body, status)
				}
				var md Metadata
				if status == 200 && (json.Unmarshal(w.Body.Bytes(), &md) != nil || md.Issuer != tt.issuer) {
					t.Fatalf("%s, want the metadata of issuer %s (RFC 8414 §3.3)", w.Body, tt.issuer)
				}
			})
		}
	}
}
