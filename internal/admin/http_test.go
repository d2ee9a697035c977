package admin_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/sakey"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/storage/sqlstore"
	"github.com/keyward/keyward/internal/testkeys"
	"github.com/keyward/keyward/internal/testkeyward"
)

const issuer = "https://keyward.test"

type fixture struct {
	logs   testkeyward.SyncBuffer // the server's log
	srv    *server.Server
	store  storage.Storage
	signer *signer.Signer
	admin  storage.Account
	now    time.Time
}

// openSQLite opens an empty SQLite store, for the caller (or
// newFixtureOn) to close.
func openSQLite(t testing.TB) *sqlstore.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func newFixture(t testing.TB, mods ...func(*server.Config)) *fixture {
	t.Helper()
	st := openSQLite(t)
	return newFixtureOn(t, st, mods...)
}

// newFixtureOn serves the admin API from st, which it closes at the end;
// mods change the server's configuration.
func newFixtureOn(t testing.TB, st storage.Storage, mods ...func(*server.Config)) *fixture {
	t.Helper()
	return serveFixture(t, st, func(*server.Deps) {}, mods...)
}

// serveFixture is newFixtureOn with deps changing the server's
// dependencies (its journal, its clock) before it is built.
func serveFixture(t testing.TB, st storage.Storage, deps func(*server.Deps), mods ...func(*server.Config)) *fixture {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() { st.Close() })
	var err error
	f := &fixture{store: st, now: time.Now()}
	sealer, _ := signer.NewSealer(make([]byte, 32))
	f.signer, err = signer.New(ctx, st, sealer, signer.Config{Policy: signer.Policy{Algorithm: "ES256", RetainFor: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	j := groupcommit.New(st, groupcommit.Options{})
	t.Cleanup(j.Close)
	cfg := server.Config{Issuer: issuer, AccountDomain: "iam.test", DefaultTokenLifetime: time.Hour, MaxTokenLifetime: time.Hour,
		MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute}
	for _, mod := range mods {
		mod(&cfg)
	}
	d := server.Deps{Store: st, Signer: f.signer, Journal: j, Pepper: []byte("p"),
		Logger: slog.New(slog.NewTextHandler(&f.logs, nil))}
	deps(&d)
	f.srv = server.New(cfg, d)
	f.admin, _, err = f.srv.Admin.Bootstrap(ctx, func(sakey.KeyFile) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// token mints an access token directly with the server's signer.
func (f *fixture) token(t testing.TB, acct storage.Account, scope string, mod func(*oauth2.AccessClaims)) string {
	c := oauth2.AccessClaims{Issuer: issuer, Subject: acct.ID, ClientID: acct.ID, Audience: oauth2.Audience{admin.BuiltinAPIIdentifier},
		Scope: scope, IssuedAt: time.Now().Unix(), Expiry: time.Now().Add(time.Hour).Unix(), ID: "t"}
	if mod != nil {
		mod(&c)
	}
	raw, err := f.signer.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// clientToken asks /token for scope by client_credentials, authenticating
// as clientID with secret, and returns the status and the decoded body.
func (f *fixture) clientToken(clientID, secret, scope string) (int, map[string]any) {
	req := httptest.NewRequest("POST", "/token", strings.NewReader("grant_type=client_credentials&scope="+scope))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	var out map[string]any
	json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out
}

func (f *fixture) call(t testing.TB, method, path, auth string, body any) (int, map[string]any, http.Header) {
	t.Helper()
	var r io.Reader
	if s, ok := body.(string); ok {
		r = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req := httptest.NewRequest(method, path, r)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	f.srv.ServeHTTP(w, req)
	var out map[string]any
	json.Unmarshal(w.Body.Bytes(), &out)
	return w.Code, out, w.Header()
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	user, err := f.srv.Admin.CreateAccount(ctx, admin.Actor{ID: "t"}, admin.AccountInput{Name: "user", Project: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	foreignKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	fs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: foreignKey}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", f.signer.CurrentKeyID()))
	foreign, _ := jwt.Signed(fs).Claims(oauth2.AccessClaims{Issuer: issuer, ClientID: f.admin.ID, Audience: oauth2.Audience{admin.BuiltinAPIIdentifier},
		Scope: admin.AdminScope, Expiry: time.Now().Add(time.Hour).Unix()}).Serialize()
	tests := []struct {
		name       string
		auth       string
		wantStatus int
		wantError  string
	}{
		{"admin", "Bearer " + f.token(t, f.admin, admin.AdminScope, nil), 200, ""},
		// Between scheme and token, and around the header value, HTTP has
		// spaces and tabs alone (RFC 7235 §2.1, RFC 9110 §5.6.3): other
		// white space (a no-break space, U+3000) is no separator.
		{"spaces and a tab around the token", "bearer  \t" + f.token(t, f.admin, admin.AdminScope, nil) + " \t", 200, ""},
		{"no-break space before the token", "Bearer \u00a0" + f.token(t, f.admin, admin.AdminScope, nil), 400, "invalid_request"},
		{"ideographic space after the token", "Bearer " + f.token(t, f.admin, admin.AdminScope, nil) + "\u3000", 400, "invalid_request"},
		{"next line after the token", "Bearer " + f.token(t, f.admin, admin.AdminScope, nil) + "\u0085", 400, "invalid_request"},
		{"no token", "", 401, "invalid_token"},
		{"basic", "Basic YTpi", 401, "invalid_token"}, // no bearer token: a bare challenge
		{"empty bearer", "Bearer ", 400, "invalid_request"},
		{"two words", "Bearer abc def", 400, "invalid_request"},
		{"garbage", "Bearer abc", 401, "invalid_token"},
		{"foreign signature", "Bearer " + foreign, 401, "invalid_token"},
		{"expired", "Bearer " + f.token(t, f.admin, admin.AdminScope, func(c *oauth2.AccessClaims) { c.Expiry = time.Now().Add(-time.Second).Unix() }), 401, "invalid_token"},
		{"other issuer", "Bearer " + f.token(t, f.admin, admin.AdminScope, func(c *oauth2.AccessClaims) { c.Issuer = "https://elsewhere" }), 401, "invalid_token"},
		{"no admin scope", "Bearer " + f.token(t, f.admin, "orders.read", nil), 403, "insufficient_scope"},
		{"other audience", "Bearer " + f.token(t, f.admin, admin.AdminScope, func(c *oauth2.AccessClaims) { c.Audience = oauth2.Audience{"https://orders"} }), 403, "insufficient_scope"},
		{"account without the admin scope", "Bearer " + f.token(t, user, admin.AdminScope, nil), 401, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, hdr := f.call(t, "GET", "/v1/apis", tt.auth, nil)
			if status != tt.wantStatus || (tt.wantError != "" && body["error"] != tt.wantError) {
				t.Fatalf("%d %v, want %d %s", status, body, tt.wantStatus, tt.wantError)
			}
			if (status == 401 || status == 400) && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("WWW-Authenticate = %q", hdr.Get("WWW-Authenticate"))
			}
			if tt.name == "basic" && hdr.Get("WWW-Authenticate") != `Bearer realm="keyward"` {
				t.Fatalf("WWW-Authenticate = %q, want a bare challenge (RFC 6750 §3.1)", hdr.Get("WWW-Authenticate"))
			}
			if status == 403 && !strings.Contains(hdr.Get("WWW-Authenticate"), `scope="keyward.admin"`) {
				t.Fatalf("WWW-Authenticate = %q, want the needed scope", hdr.Get("WWW-Authenticate"))
			}
		})
	}

	// Disabling an administrator takes effect at once.
	second, _ := f.srv.Admin.CreateAccount(ctx, admin.Actor{ID: "t"}, admin.AccountInput{Name: "second", Project: "proj", Scopes: []string{admin.AdminScope}})
	tok := "Bearer " + f.token(t, second, admin.AdminScope, nil)
	if status, _, _ := f.call(t, "GET", "/v1/apis", tok, nil); status != 200 {
		t.Fatal("second admin refused")
	}
	f.call(t, "POST", "/v1/service-accounts/"+second.Email+"/disable", "Bearer "+f.token(t, f.admin, admin.AdminScope, nil), nil)
	if status, _, _ := f.call(t, "GET", "/v1/apis", tok, nil); status != 401 {
		t.Fatalf("a disabled admin's token: %d, want 401", status)
	}
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

// An API cannot have the server's issuer or token endpoint URL as its
// identifier, however written: service accounts sign the JWTs they trade
// at /token with that aud, and an API accepting self-signed JWTs with it
// (verify.WithSelfSignedJWTs) could trade its callers' JWTs for tokens.
func TestAPIIdentifierIsNotTheServer(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for i, id := range []string{issuer, issuer + "/", issuer + "/token", issuer + "/token/", "HTTPS://Keyward.TEST/token", "https://keyward.test:443"} {
		t.Run(id, func(t *testing.T) {
			status, body, _ := f.call(t, "POST", "/v1/apis", auth, admin.APIInput{Name: fmt.Sprintf("api%d", i), Identifier: id, Scopes: []string{fmt.Sprintf("api%d.read", i)}})
			desc, _ := body["error_description"].(string)
			if status != 400 || body["error"] != "invalid_request" || !strings.Contains(desc, "token endpoint") || !strings.Contains(desc, "exchange") {
				t.Fatalf("%d %v, want 400 invalid_request saying why", status, body)
			}
		})
	}
	// Other URLs of the server's host are the operator's business.
	status, body, _ := f.call(t, "POST", "/v1/apis", auth, admin.APIInput{Name: "reports", Identifier: issuer + "/reports", Scopes: []string{"reports.read"}})
	if status != 201 {
		t.Fatalf("%d %v, want 201", status, body)
	}
}

// verify takes a self-signed JWT whose aud is an API's identifier with
// its scheme and host in other capitals or one trailing slash added or
// left out: an API whose identifier is another's so changed is refused,
// as the two would take each other's JWTs. Any other difference is not.
func TestAPIIdentifierNamesNoOtherAPI(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if status, body, _ := f.call(t, "POST", "/v1/apis", auth, admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"o.read"}}); status != 201 {
		t.Fatalf("%d %v, want 201", status, body)
	}
	if status, body, _ := f.call(t, "POST", "/v1/apis", auth, admin.APIInput{Name: "billing", Identifier: "https://billing.internal/v1/", Scopes: []string{"b.read"}}); status != 201 {
		t.Fatalf("%d %v, want 201", status, body)
	}
	for i, tt := range []struct {
		id         string
		wantStatus int
	}{
		{"https://orders.internal/", 409},
		{"HTTPS://Orders.Internal", 409},
		{"https://ORDERS.internal/", 409},
		{"https://billing.internal/v1", 409},
		{"https://Billing.internal/v1/", 409},
		{"https://orders.internal//", 201},
		{"https://orders.internal:8443", 201},
		{"https://orders.internal/v1", 201},
		{"https://billing.internal/V1", 201},
		{"urn:orders", 201},
	} {
		t.Run(tt.id, func(t *testing.T) {
			status, body, _ := f.call(t, "POST", "/v1/apis", auth, admin.APIInput{Name: fmt.Sprintf("near%d", i), Identifier: tt.id, Scopes: []string{fmt.Sprintf("near%d.read", i)}})
			desc, _ := body["error_description"].(string)
			if status != tt.wantStatus || tt.wantStatus == 409 && !strings.Contains(desc, "self-signed JWTs") {
				t.Fatalf("%d %v, want %d", status, body, tt.wantStatus)
			}
		})
	}
}

// TestUploadCertificateValidity: a certificate outside its validity is
// refused, not yet valid as expired: its key would be usable at once.
func TestUploadCertificateValidity(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for _, c := range []struct {
		name                string
		notBefore, notAfter time.Duration // from now
		wantStatus          int
		wantDesc            string
	}{
		{"certificate valid from a minute ago", -time.Minute, time.Hour, 201, ""},
		{"certificate valid from a moment from now", 30 * time.Second, time.Hour, 201, ""},
		{"certificate valid from tomorrow", 24 * time.Hour, 48 * time.Hour, 400, "The certificate is not valid until "},
		{"certificate expired", -2 * time.Hour, -time.Hour, 400, "The certificate has already expired."},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			now := time.Now()
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "job"}, NotBefore: now.Add(c.notBefore), NotAfter: now.Add(c.notAfter)}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
			if err != nil {
				t.Fatal(err)
			}
			status, out, _ := f.call(t, "POST", "/v1/service-accounts/"+f.admin.Email+"/keys/upload", auth, admin.KeyRequest{PublicKeyPEM: pemOf("CERTIFICATE", der)})
			if desc, _ := out["error_description"].(string); status != c.wantStatus || !strings.Contains(desc, c.wantDesc) {
				t.Fatalf("%d %v, want %d %q", status, out, c.wantStatus, c.wantDesc)
			}
		})
	}
}

func TestManagement(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki := func(k any) []byte { b, _ := x509.MarshalPKIXPublicKey(k); return b }
	steps := []struct {
		name       string
		method     string
		path       string
		body       any
		wantStatus int
		wantError  string
	}{
		{"create API", "POST", "/v1/apis", admin.APIInput{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read"}}, 201, ""},
		{"duplicate name", "POST", "/v1/apis", admin.APIInput{Name: "orders", Identifier: "https://x", Scopes: []string{"x.read"}}, 409, "conflict"},
		{"duplicate identifier", "POST", "/v1/apis", admin.APIInput{Name: "xy", Identifier: "https://orders.internal", Scopes: []string{"x.read"}}, 409, "conflict"},
		{"duplicate scope", "POST", "/v1/apis", admin.APIInput{Name: "xy", Identifier: "https://x", Scopes: []string{"orders.read"}}, 409, "conflict"},
		{"bad API name", "POST", "/v1/apis", admin.APIInput{Name: "Orders!", Identifier: "https://x", Scopes: []string{"x.read"}}, 400, "invalid_request"},
		{"relative identifier", "POST", "/v1/apis", admin.APIInput{Name: "x", Identifier: "orders", Scopes: []string{"x.read"}}, 400, "invalid_request"},
		{"comma scope", "POST", "/v1/apis", admin.APIInput{Name: "x", Identifier: "https://x", Scopes: []string{"a,b"}}, 400, "invalid_request"},
		{"unknown JSON field", "POST", "/v1/apis", `{"name":"x","identifer":"https://x"}`, 400, "invalid_request"},
		{"not JSON", "POST", "/v1/apis", `name=x`, 400, "invalid_request"},
		{"built-in API stays", "DELETE", "/v1/apis/keyward", nil, 409, "conflict"},
		{"create account", "POST", "/v1/service-accounts", admin.AccountInput{Name: "job", Project: "shop", Scopes: []string{"orders.read"}}, 201, ""},
		{"duplicate account", "POST", "/v1/service-accounts", admin.AccountInput{Name: "job", Project: "shop"}, 409, "conflict"},
		{"bad account name", "POST", "/v1/service-accounts", admin.AccountInput{Name: "J", Project: "shop"}, 400, "invalid_request"},
		{"unknown scope", "POST", "/v1/service-accounts", admin.AccountInput{Name: "job2", Project: "shop", Scopes: []string{"nope"}}, 400, "invalid_request"},
		{"lifetime too long", "POST", "/v1/service-accounts", admin.AccountInput{Name: "job3", Project: "shop", TokenLifetimeSeconds: 86400}, 400, "invalid_request"},
		{"lifetime overflows", "POST", "/v1/service-accounts", admin.AccountInput{Name: "job3", Project: "shop", TokenLifetimeSeconds: 1 << 40}, 400, "invalid_request"},
		{"unknown account", "GET", "/v1/service-accounts/ghost@shop.iam.test", nil, 404, "not_found"},
		{"upload RSA-1024", "POST", "/v1/service-accounts/job@shop.iam.test/keys/upload", admin.KeyRequest{PublicKeyPEM: pemOf("PUBLIC KEY", spki(&rsa1024.PublicKey))}, 400, "invalid_request"},
		{"upload P-384", "POST", "/v1/service-accounts/job@shop.iam.test/keys/upload", admin.KeyRequest{PublicKeyPEM: pemOf("PUBLIC KEY", spki(&p384.PublicKey))}, 400, "invalid_request"},
		{"upload a private key", "POST", "/v1/service-accounts/job@shop.iam.test/keys/upload", admin.KeyRequest{PublicKeyPEM: pemOf("PRIVATE KEY", []byte{1})}, 400, "invalid_request"},
		{"key lifetime overflows", "POST", "/v1/service-accounts/job@shop.iam.test/keys", admin.KeyRequest{ExpiresInSeconds: 1 << 40}, 400, "invalid_request"},
		{"secret lifetime overflows", "POST", "/v1/service-accounts/job@shop.iam.test/secrets", admin.KeyRequest{ExpiresInSeconds: 1 << 40}, 400, "invalid_request"},
		{"negative secret lifetime", "POST", "/v1/service-accounts/job@shop.iam.test/secrets", admin.KeyRequest{ExpiresInSeconds: -1}, 400, "invalid_request"},
		{"upload P-256", "POST", "/v1/service-accounts/job@shop.iam.test/keys/upload", admin.KeyRequest{PublicKeyPEM: pemOf("PUBLIC KEY", spki(&p256.PublicKey))}, 201, ""},
		{"upload P-256 again", "POST", "/v1/service-accounts/job@shop.iam.test/keys/upload", admin.KeyRequest{PublicKeyPEM: pemOf("PUBLIC KEY", spki(&p256.PublicKey))}, 409, "conflict"},
		{"admin cannot disable itself", "POST", "/v1/service-accounts/" + f.admin.Email + "/disable", nil, 409, "conflict"},
		{"admin cannot delete itself", "DELETE", "/v1/service-accounts/" + f.admin.ID, nil, 409, "conflict"},
		{"no such route", "GET", "/v1/nothing", nil, 404, "not_found"},
		{"wrong method", "PUT", "/v1/apis", nil, 405, "invalid_request"},
		{"wrong method on an account", "PUT", "/v1/service-accounts/job@shop.iam.test", nil, 405, "invalid_request"},
		{"wrong method on an action", "GET", "/v1/signing-keys/rotate", nil, 405, "invalid_request"},
		{"no such route under a real one", "GET", "/v1/service-accounts/job@shop.iam.test/nothing", nil, 404, "not_found"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			status, body, _ := f.call(t, s.method, s.path, auth, s.body)
			if status != s.wantStatus || (s.wantError != "" && body["error"] != s.wantError) {
				t.Fatalf("%d %v, want %d %s", status, body, s.wantStatus, s.wantError)
			}
		})
	}
	// RFC 9110 §15.5.6: a 405 lists the methods the resource takes.
	for path, want := range map[string]string{
		"/v1/apis":                               "GET, HEAD, POST",
		"/v1/service-accounts/job@shop.iam.test": "GET, HEAD, PATCH, DELETE",
		"/v1/signing-keys/rotate":                "POST",
	} {
		if _, body, h := f.call(t, "PUT", path, auth, nil); h.Get("Allow") != want || !strings.Contains(body["error_description"].(string), want) {
			t.Errorf("PUT %s: Allow %q, %v; want %q in both", path, h.Get("Allow"), body, want)
		}
	}

	t.Run("an RSA key over 8192 bits is refused, naming the limit", func(t *testing.T) {
		huge := testkeys.RSAPublic(8200) // only the size matters
		status, out, _ := f.call(t, "POST", "/v1/service-accounts/job@shop.iam.test/keys/upload", auth, admin.KeyRequest{PublicKeyPEM: pemOf("PUBLIC KEY", spki(huge))})
		desc, _ := out["error_description"].(string)
		if status != 400 || out["error"] != "invalid_request" || !strings.Contains(desc, "the RSA key has 8200 bits, more than the 8192 Keyward accepts") {
			t.Fatalf("%d %v, want 400 invalid_request naming the size and the limit", status, out)
		}
	})

	t.Run("a duplicate upload names the existing key", func(t *testing.T) {
		keys, err := f.store.ListKeys(context.Background(), mustAccount(t, f, "job@shop.iam.test").ID)
		if err != nil || len(keys) != 1 {
			t.Fatalf("keys %+v %v, want the one upload", keys, err)
		}
		_, out, _ := f.call(t, "POST", "/v1/service-accounts/job@shop.iam.test/keys/upload", auth, admin.KeyRequest{PublicKeyPEM: pemOf("PUBLIC KEY", spki(&p256.PublicKey))})
		if desc, _ := out["error_description"].(string); !strings.Contains(desc, keys[0].ID) {
			t.Fatalf("%v does not name the key %s", out, keys[0].ID)
		}
	})

	t.Run("key file and public-only storage", func(t *testing.T) {
		status, kf, _ := f.call(t, "POST", "/v1/service-accounts/job@shop.iam.test/keys", auth, nil)
		if status != 201 || kf["type"] != "service_account" || kf["token_uri"] != issuer+"/token" || kf["universe_domain"] != nil {
			t.Fatalf("%d %v", status, kf)
		}
		k, err := f.store.GetKey(context.Background(), kf["private_key_id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(k.PublicKey)+string(k.Certificate), "PRIVATE") {
			t.Fatal("private material stored")
		}
		// Another account's key is not reachable through this one.
		_, other, _ := f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: "other", Project: "shop"})
		status, _, _ = f.call(t, "POST", "/v1/service-accounts/"+other["email"].(string)+"/keys/"+k.ID+"/disable", auth, nil)
		if status != 404 {
			t.Fatalf("disabling another account's key: %d, want 404", status)
		}
	})

	t.Run("changes are audited with the admin as actor", func(t *testing.T) {
		evs, err := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "api.create", Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, e := range evs {
			found = found || (e.Actor == f.admin.ID && e.Data["api"] == "orders")
		}
		if !found {
			t.Fatalf("no api.create event by the admin: %+v", evs)
		}
	})
}

// A NUL character anywhere in a request body is a bad request on every
// backend (PostgreSQL cannot store one), never a server error.
func TestRefusesNUL(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	for _, body := range []string{
		`{"name":"nul","project":"proj","display_name":"a\u0000b"}`,
		`{"name":"nul","project":"proj","description":"\u0000"}`,
	} {
		code, out, _ := f.call(t, "POST", "/v1/service-accounts", auth, body)
		if code != 400 || out["error"] != "invalid_request" || !strings.Contains(out["error_description"].(string), "NUL") {
			t.Errorf("%s: %d %v", body, code, out)
		}
	}
	for _, path := range []string{"/v1/service-accounts/a%ffb", "/v1/service-accounts/a%00b/keys", "/v1/apis/a%ff", "/v1/audit?account=a%ff", "/v1/service-accounts?project=%00"} {
		code, out, _ := f.call(t, "GET", path, auth, nil)
		if code != 400 || out["error"] != "invalid_request" {
			t.Errorf("GET %s: %d %v", path, code, out)
		}
	}
	// An escaped backslash before "u0000" is text, not a NUL.
	code, out, _ := f.call(t, "POST", "/v1/service-accounts", auth, `{"name":"nul","project":"proj","description":"C:\\u0000"}`)
	if code != 201 && code != 200 {
		t.Errorf("escaped backslash: %d %v", code, out)
	}
}

// A query that is not URL encoding is refused, not read without the
// parameters url.Values drops: a listing filtered by project or account
// would otherwise list everything.
func TestRefusesMalformedQuery(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	const want = "The query is not valid URL encoding (a % not followed by two hex digits, or a semicolon): write % as %25 and ; as %3B."
	tests := []struct{ name, path string }{
		{"bad escape in a filter", "/v1/service-accounts?project=%zz"},
		{"semicolon in a filter", "/v1/service-accounts?project=shop;x"},
		{"bad escape in the limit", "/v1/service-accounts?limit=%"},
		{"bad escape in an audit filter", "/v1/audit?account=%zz"},
		{"semicolon in an unknown parameter", "/v1/apis?a=b;c"},
		{"bad escape in a name", "/v1/apis?%zz=1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := f.call(t, "GET", tt.path, auth, nil)
			if code != 400 || out["error"] != "invalid_request" || out["error_description"] != want {
				t.Errorf("GET %s: %d %v, want 400 invalid_request %q", tt.path, code, out, want)
			}
		})
	}
	// Escaped, the same characters are text.
	if code, out, _ := f.call(t, "GET", "/v1/service-accounts?project=%25zz%3Bx", auth, nil); code != 200 {
		t.Errorf("escaped: %d %v", code, out)
	}
}

// A query parameter given twice is refused: a listing would otherwise
// filter by the first alone, as if by both.
func TestRefusesRepeatedQueryParameter(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	tests := []struct{ name, path, want string }{
		{"project", "/v1/service-accounts?project=shop&project=keyward", `The query parameter "project" is given more than once; give it once.`},
		{"limit", "/v1/service-accounts?limit=1&limit=2", `The query parameter "limit" is given more than once; give it once.`},
		{"audit action", "/v1/audit?action=token.issued&action=token.refused", `The query parameter "action" is given more than once; give it once.`},
		{"unknown parameter", "/v1/apis?x=1&x=2", `The query parameter "x" is given more than once; give it once.`},
		{"empty values", "/v1/apis?x&x", `The query parameter "x" is given more than once; give it once.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, _ := f.call(t, "GET", tt.path, auth, nil)
			if code != 400 || out["error"] != "invalid_request" || out["error_description"] != tt.want {
				t.Errorf("GET %s: %d %v, want 400 invalid_request %q", tt.path, code, out, tt.want)
			}
		})
	}
}

// An admin token is checked as introspection checks it: revoking it, its
// account's tokens or its secret refuses it at once, and an opaque admin
// token is as good as a JWT.
func TestAuthenticationRevocation(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	sys := admin.Actor{ID: "t"}
	root := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	second, err := f.srv.Admin.CreateAccount(ctx, sys, admin.AccountInput{Name: "second", Project: "proj", Scopes: []string{admin.AdminScope}})
	if err != nil {
		t.Fatal(err)
	}
	// issue gets a token at /token with a fresh client secret.
	issue := func(t *testing.T) (token, secretID string) {
		t.Helper()
		s, err := f.srv.Admin.CreateSecret(ctx, sys, second.Email, 0)
		if err != nil {
			t.Fatal(err)
		}
		code, body := f.clientToken(second.ID, s.Value, admin.AdminScope)
		token, _ = body["access_token"].(string)
		if code != 200 || token == "" {
			t.Fatalf("token: %d %v", code, body)
		}
		return token, s.ID
	}
	wantStatus := func(t *testing.T, tok string, want int, reason string) {
		t.Helper()
		status, out, hdr := f.call(t, "GET", "/v1/apis", "Bearer "+tok, nil)
		if status != want {
			t.Fatalf("status %d (%v), want %d", status, out, want)
		}
		if reason != "" && !strings.Contains(hdr.Get("WWW-Authenticate"), reason) {
			t.Fatalf("WWW-Authenticate = %q, want it to say %q", hdr.Get("WWW-Authenticate"), reason)
		}
	}
	tests := []struct {
		name   string
		format string
		revoke func(t *testing.T, token, secretID string)
		reason string
	}{
		{"token revoked by jti", "jwt", func(t *testing.T, token, _ string) {
			var c oauth2.AccessClaims
			if err := f.signer.Verify(token, &c); err != nil {
				t.Fatal(err)
			}
			if status, out, _ := f.call(t, "POST", "/v1/tokens/revoke", root, map[string]string{"jti": c.ID}); status != 200 {
				t.Fatalf("revoke: %d %v", status, out)
			}
		}, "revoked"},
		{"secret disabled", "jwt", func(t *testing.T, _, secretID string) {
			if status, out, _ := f.call(t, "POST", "/v1/service-accounts/"+second.Email+"/secrets/"+secretID+"/disable", root, nil); status != 200 {
				t.Fatalf("disable secret: %d %v", status, out)
			}
		}, "secret disabled"},
		{"account's tokens revoked", "opaque", func(t *testing.T, _, _ string) {
			if status, out, _ := f.call(t, "POST", "/v1/service-accounts/"+second.Email+"/revoke-tokens", root, nil); status != 200 {
				t.Fatalf("revoke-tokens: %d %v", status, out)
			}
		}, "tokens revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format := tt.format
			if _, err := f.srv.Admin.UpdateAccount(ctx, sys, second.Email, admin.AccountUpdate{TokenFormat: &format}); err != nil {
				t.Fatal(err)
			}
			tok, secretID := issue(t)
			if opaque := !strings.Contains(tok, "."); opaque != (format == "opaque") {
				t.Fatalf("format %s gave %s", format, tok)
			}
			wantStatus(t, tok, 200, "")
			tt.revoke(t, tok, secretID)
			wantStatus(t, tok, 401, tt.reason)
		})
	}
}

// A certificate-bound admin token (RFC 8705 §3) is accepted only with its
// certificate, over TLS or forwarded by a trusted proxy; when the one the
// proxy forwarded does not parse, the answer says so. From a trusted
// proxy the header alone names the certificate, as at the token
// endpoint: the proxy's own, over mTLS, is not its client's.
func TestAuthenticationCertificateBound(t *testing.T) {
	f := newFixture(t, func(c *server.Config) {
		c.ClientCertHeader = "X-Client-Cert"
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	})
	cert := func(cn string) *x509.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	bound, other := cert("bound"), cert("other")
	sum := sha256.Sum256(bound.Raw)
	tok := f.token(t, f.admin, admin.AdminScope, func(c *oauth2.AccessClaims) {
		c.Confirmation = &oauth2.Confirmation{X5TS256: base64.RawURLEncoding.EncodeToString(sum[:])}
	})
	forward := func(c *x509.Certificate) string {
		return url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	const present = "present that certificate"
	tests := []struct {
		name      string
		cert      *x509.Certificate
		forwarded []string // X-Client-Cert headers from a trusted proxy
		want      int
		wantDesc  string // part of the error description
		remote    string // the peer's address, if not 10.0.0.2 (trusted) when forwarded
	}{
		{"no certificate", nil, nil, 401, present, ""},
		{"another certificate", other, nil, 401, present, ""},
		{"its certificate", bound, nil, 200, "", ""},
		{"another certificate, forwarded", nil, []string{forward(other)}, 401, present, ""},
		{"its certificate, forwarded", nil, []string{forward(bound)}, 200, "", ""},
		{"a forwarded certificate that does not parse", nil, []string{"garbage"}, 401, "the certificate the proxy in front of this server forwarded could not be read", ""},
		// The token's thief names its (public) certificate in a header of
		// its own, which a proxy that adds its header passes on first.
		{"its certificate in a header before the proxy's", nil, []string{forward(bound), forward(other)}, 401, "the certificate the proxy in front of this server forwarded could not be read", ""},
		{"its certificate as a trusted proxy's own, over mTLS, without the header", bound, nil, 401, present, "10.0.0.2"},
		{"its certificate, forwarded by a trusted proxy over mTLS with its own", other, []string{forward(bound)}, 200, "", ""},
		{"its certificate over TLS from elsewhere, another named in a header", bound, []string{forward(other)}, 200, "", "192.0.2.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/v1/apis", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			if tt.cert != nil {
				req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{tt.cert}}
			}
			if tt.forwarded != nil {
				req.Header["X-Client-Cert"] = tt.forwarded
				req.RemoteAddr = "10.0.0.2:443"
			}
			if tt.remote != "" {
				req.RemoteAddr = tt.remote + ":443"
			}
			w := httptest.NewRecorder()
			f.srv.ServeHTTP(w, req)
			if w.Code != tt.want {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tt.want)
			}
			if !strings.Contains(w.Body.String(), tt.wantDesc) {
				t.Fatalf("%s, want %q in the description", w.Body, tt.wantDesc)
			}
		})
	}
}

func mustAccount(t *testing.T, f *fixture, email string) storage.Account {
	t.Helper()
	a, err := f.store.GetAccountByEmail(context.Background(), email)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A DPoP-bound admin token (cnf.jkt, RFC 9449 §7.2) is refused as a bearer
// token: whoever holds only the token, not its key, may not use it. The
// admin API does not check DPoP proofs, so it accepts no such token.
func TestAuthenticationDPoPBound(t *testing.T) {
	f := newFixture(t)
	tok := f.token(t, f.admin, admin.AdminScope, func(c *oauth2.AccessClaims) {
		c.Confirmation = &oauth2.Confirmation{JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
	})
	for _, scheme := range []string{"Bearer", "DPoP"} {
		req := httptest.NewRequest("GET", "/v1/apis", nil)
		req.Header.Set("Authorization", scheme+" "+tok)
		w := httptest.NewRecorder()
		f.srv.ServeHTTP(w, req)
		if w.Code != http.StatusUnauthorized && w.Code != http.StatusBadRequest {
			t.Fatalf("%s: status %d (%s), want a refusal", scheme, w.Code, w.Body)
		}
	}
}

// A token of domain-wide delegation (sub a user, act the account) is
// refused even when the account is an administrator and the token carries
// keyward.admin: the admin API acts for administrators, not for users. No
// grant may carry Keyward's own scopes any more.
func TestAuthenticationDelegated(t *testing.T) {
	f := newFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	if _, err := f.srv.Admin.CreateOrg(ctx, op, "example.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.srv.Admin.PutUsers(ctx, op, "example.com", []admin.UserInput{{Email: "alice@example.com"}}); err != nil {
		t.Fatal(err)
	}
	// No new grant may carry Keyward's own scopes; one made before that
	// rule is in the store.
	for _, sc := range []string{admin.AdminScope, admin.IntrospectScope} {
		if _, err := f.srv.Admin.GrantDelegation(ctx, op, "example.com", f.admin.ID, []string{"orders.read", sc}); err == nil || !strings.Contains(err.Error(), sc+" cannot be delegated") {
			t.Fatalf("a grant of %s: %v, want it refused", sc, err)
		}
	}
	if _, err := f.store.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: f.admin.ID, Scopes: []string{admin.AdminScope}, CreatedAt: time.Now()},
		storage.AuditEvent{Time: time.Now(), Action: "fixture", Outcome: storage.OutcomeSuccess}, storage.Guard{}); err != nil {
		t.Fatal(err)
	}
	tok := f.token(t, f.admin, admin.AdminScope, func(c *oauth2.AccessClaims) {
		c.Subject = "alice@example.com"
		c.Actor = &oauth2.Actor{Subject: f.admin.ID, ClientEmail: f.admin.Email}
	})
	status, body, _ := f.call(t, "GET", "/v1/apis", "Bearer "+tok, nil)
	if status != http.StatusUnauthorized || body["error"] != oauth2.ErrInvalidToken || !strings.Contains(body["error_description"].(string), "acts for a user") {
		t.Fatalf("%d %v, want 401 invalid_token naming the delegation", status, body)
	}
	// The same account's own token works.
	if status, body, _ := f.call(t, "GET", "/v1/apis", "Bearer "+f.token(t, f.admin, admin.AdminScope, nil), nil); status != http.StatusOK {
		t.Fatalf("own token: %d %v", status, body)
	}
}

// A token also meant for other APIs (got with keyward.admin and another
// API's scopes) is refused, even of an administrator: each of those APIs
// receives it, and could replay it here as the administrator. The same
// account's token for the admin API alone, asked for with keyward.admin
// alone or narrowed with resource=urn:keyward:admin (RFC 8707), works.
func TestAuthenticationOtherAudiences(t *testing.T) {
	f := newFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	if _, err := f.srv.Admin.CreateAPI(ctx, op, admin.APIInput{Name: "orders", Identifier: "https://orders.test", Scopes: []string{"orders.read"}}); err != nil {
		t.Fatal(err)
	}
	scopes := []string{admin.AdminScope, "orders.read"}
	if _, err := f.srv.Admin.UpdateAccount(ctx, op, f.admin.Email, admin.AccountUpdate{Scopes: &scopes}); err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"jwt", "opaque"} {
		t.Run(format, func(t *testing.T) {
			if _, err := f.srv.Admin.UpdateAccount(ctx, op, f.admin.Email, admin.AccountUpdate{TokenFormat: &format}); err != nil {
				t.Fatal(err)
			}
			s, err := f.srv.Admin.CreateSecret(ctx, op, f.admin.Email, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.srv.Admin.DeleteSecret(ctx, op, f.admin.Email, s.ID) })
			tests := []struct {
				name       string
				params     string
				wantStatus int
			}{
				{"admin scope alone", "keyward.admin", http.StatusOK},
				{"narrowed by resource", "keyward.admin+orders.read&resource=" + url.QueryEscape(admin.BuiltinAPIIdentifier), http.StatusOK},
				{"also for orders", "keyward.admin+orders.read", http.StatusUnauthorized},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					code, tok := f.clientToken(f.admin.ID, s.Value, tt.params)
					raw, _ := tok["access_token"].(string)
					if code != http.StatusOK || raw == "" {
						t.Fatalf("token: %d %v", code, tok)
					}
					status, body, hdr := f.call(t, "GET", "/v1/whoami", "Bearer "+raw, nil)
					if status != tt.wantStatus {
						t.Fatalf("%d %v, want %d", status, body, tt.wantStatus)
					}
					if status == http.StatusOK {
						return
					}
					desc, _ := body["error_description"].(string)
					if body["error"] != oauth2.ErrInvalidToken || !strings.Contains(desc, "https://orders.test") ||
						!strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
						t.Fatalf("%v (WWW-Authenticate %q), want invalid_token naming the other API", body, hdr.Get("WWW-Authenticate"))
					}
				})
			}
		})
	}
}

// A 404 names the path it did not find, cut short: the description does
// not grow with the request line.
func TestNotFoundPathCut(t *testing.T) {
	f := newFixture(t)
	path := "/v1/" + strings.Repeat("x", 6000)
	status, body, _ := f.call(t, "GET", path, "Bearer "+f.token(t, f.admin, admin.AdminScope, nil), nil)
	desc, _ := body["error_description"].(string)
	if status != http.StatusNotFound || !strings.Contains(desc, "/v1/xxxx") || len(desc) > 300 {
		t.Fatalf("%d, description of %d bytes: %.100s…; want 404 with the path cut", status, len(desc), desc)
	}
}

// A 405 names the path too, cut short as a 404's.
func TestMethodNotAllowedPathCut(t *testing.T) {
	f := newFixture(t)
	path := "/v1/service-accounts/" + strings.Repeat("x", 6000)
	status, body, h := f.call(t, "PUT", path, "Bearer "+f.token(t, f.admin, admin.AdminScope, nil), nil)
	desc, _ := body["error_description"].(string)
	if status != http.StatusMethodNotAllowed || h.Get("Allow") == "" || !strings.Contains(desc, "/v1/service-accounts/xxxx") || len(desc) > 300 {
		t.Fatalf("%d, description of %d bytes: %.100s…; want 405 with the path cut", status, len(desc), desc)
	}
}

// A store that fails is not the caller's fault: 503 with Retry-After, so
// scripts retry, and nothing of the cause in the answer.
func TestStoreDown(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	f.store.Close()
	status, body, h := f.call(t, "GET", "/v1/apis", auth, nil)
	desc, _ := body["error_description"].(string)
	if status != http.StatusServiceUnavailable || body["error"] != oauth2.ErrTemporarilyUnavailable || h.Get("Retry-After") == "" || strings.Contains(desc, "sql") {
		t.Fatalf("%d %v, Retry-After %q; want 503 temporarily_unavailable with Retry-After and no cause", status, body, h.Get("Retry-After"))
	}
}

// A signing-key rotation asked of a server still running with the master
// key the store was sealed under before `keyward master-key rotate` is
// refused with a 409 that says so, not the 503 of a store failure, which
// invites a retry that never succeeds; and it changes nothing.
func TestRotateSigningKeysWithAnOldMasterKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	oldSealer, _ := signer.NewSealer(make([]byte, 32))
	newSealer, _ := signer.NewSealer([]byte(strings.Repeat("\x01", 32)))
	if err := f.store.Reseal(ctx, func(aad string, sealed []byte) ([]byte, error) {
		pt, err := oldSealer.Open(aad, sealed)
		return newSealer.Seal(aad, pt), err
	}, storage.AuditEvent{Time: time.Now(), Action: "master_key.rotate", Outcome: storage.OutcomeSuccess, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	before, _ := f.store.ListSigningKeys(ctx)
	status, body, h := f.call(t, "POST", "/v1/signing-keys/rotate", auth, nil)
	desc, _ := body["error_description"].(string)
	if status != http.StatusConflict || body["error"] != admin.ErrConflict || h.Get("Retry-After") != "" || !strings.Contains(desc, "master key") || !strings.Contains(desc, "Restart this server") {
		t.Fatalf("%d %v, Retry-After %q; want 409 conflict saying to restart with the new master key", status, body, h.Get("Retry-After"))
	}
	if logs := f.logs.String(); !strings.Contains(logs, "another master key than this server's") {
		t.Fatalf("the server's log does not say why:\n%s", logs)
	}
	after, _ := f.store.ListSigningKeys(ctx)
	if len(after) != len(before) || after[0].ID != before[0].ID || after[len(after)-1].ID != before[len(before)-1].ID {
		t.Fatalf("the refused rotation changed the signing keys: %v, before %v", after, before)
	}
}

// The organization in the path is the one acted on: a user of another
// domain is not imported through it, nor a project of another organization
// removed through it; and a blocked scope must be a scope name.
func TestOrgPathsMean(t *testing.T) {
	f := newFixture(t)
	ctx, op := context.Background(), admin.Actor{ID: "op"}
	for _, d := range []string{"example.com", "other.org"} {
		if _, err := f.srv.Admin.CreateOrg(ctx, op, d); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.srv.Admin.PlaceProject(ctx, op, "example.com", "ops", true); err != nil {
		t.Fatal(err)
	}
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	users := func(emails ...string) admin.UsersRequest {
		var in admin.UsersRequest
		for _, e := range emails {
			in.Users = append(in.Users, admin.UserInput{Email: e})
		}
		return in
	}
	for _, tt := range []struct {
		name, method, path string
		body               any
		status             int
		want               string // in the description
	}{
		{"a user of another domain", "POST", "/v1/orgs/example.com/users", users("alice@example.com", "dave@other.org"), 400, "dave@other.org is not in example.com"},
		{"users of an organization that does not exist", "POST", "/v1/orgs/nowhere.test/users", users("dave@example.com"), 404, "does not exist"},
		{"a malformed email, not a missing organization", "POST", "/v1/orgs/b@c/users", users("a@b@c"), 400, `"a@b@c" is not an email address`},
		// An email over 64 bytes is shown as the console and users import
		// show it: its first 48 bytes, quoted, and its length.
		{"a long malformed email, clipped", "POST", "/v1/orgs/example.com/users", users("a@b@" + strings.Repeat("x", 70)), 400,
			`"a@b@` + strings.Repeat("x", 44) + `"… (74 bytes) is not an email address`},
		{"a long email of another domain, clipped", "POST", "/v1/orgs/example.com/users", users(strings.Repeat("d", 60) + "@other.org"), 400,
			`user 1: "` + strings.Repeat("d", 48) + `"… (70 bytes) is not in example.com`},
		// Quoted to 48 bytes, cut between runes: "a" and 23 two-byte é.
		{"an email too long, quoted whole runes", "POST", "/v1/orgs/example.com/users", users("a" + strings.Repeat("é", 150) + "@example.com"), 400,
			`"a` + strings.Repeat("é", 23) + `"… (313 bytes) is longer than an email address may be`},
		{"a project of another organization", "DELETE", "/v1/orgs/other.org/projects/ops", nil, 404, `The project "ops" is not in the organization "other.org"`},
		{"a blocked scope with a space", "PATCH", "/v1/orgs/example.com", map[string]any{"blocked_scopes": []string{"calendar.admin drive.admin"}}, 400, "not a valid scope name"},
		{"a blocked scope with a comma", "POST", "/v1/orgs", map[string]any{"domain": "third.org", "blocked_scopes": []string{"a,b"}}, 400, "not a valid scope name"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := f.call(t, tt.method, tt.path, auth, tt.body)
			if desc, _ := body["error_description"].(string); status != tt.status || !strings.Contains(desc, tt.want) {
				t.Fatalf("%d %v, want %d with %q", status, body, tt.status, tt.want)
			}
		})
	}
	// Nothing of it happened.
	if _, err := f.store.GetOrg(ctx, "third.org"); err == nil {
		t.Error("the organization of the refused create exists")
	}
	if _, err := f.store.GetUser(ctx, "alice@example.com"); err == nil {
		t.Error("alice was imported by the refused request")
	}
	if p, _ := f.srv.Admin.ListProjects(ctx, "example.com"); len(p) != 1 {
		t.Errorf("example.com's projects are %v, want ops still there", p)
	}
	// Through the right paths, both go through.
	if status, body, _ := f.call(t, "POST", "/v1/orgs/other.org/users", auth, users("dave@other.org")); status != 200 {
		t.Errorf("a user of the organization: %d %v", status, body)
	}
	if status, body, _ := f.call(t, "DELETE", "/v1/orgs/example.com/projects/ops", auth, nil); status != 204 {
		t.Errorf("a project of the organization: %d %v", status, body)
	}
}

// A PATCH of an account or an API that changes nothing is refused, as for
// an organization, rather than audited as an update; a PATCH of an API's
// description is audited with it.
func TestUpdateNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	before, _ := f.store.ListAuditEvents(ctx, storage.AuditFilter{Limit: 1000})
	for _, path := range []string{"/v1/service-accounts/" + f.admin.ID, "/v1/apis/keyward"} {
		status, body, _ := f.call(t, "PATCH", path, auth, map[string]any{})
		if desc, _ := body["error_description"].(string); status != 400 || !strings.Contains(desc, "Nothing to change") {
			t.Errorf("PATCH %s {}: %d %v, want 400 Nothing to change", path, status, body)
		}
	}
	if status, body, _ := f.call(t, "PATCH", "/v1/apis/nosuch", auth, map[string]any{}); status != 404 {
		t.Errorf("PATCH of an API that does not exist: %d %v, want 404", status, body)
	}
	after, _ := f.store.ListAuditEvents(ctx, storage.AuditFilter{Limit: 1000})
	for _, e := range after[len(before):] {
		if e.Action != admin.ActionRefused {
			t.Errorf("a refused PATCH wrote %s, want only %s", e.Action, admin.ActionRefused)
		}
	}
	if n := len(after) - len(before); n != 3 {
		t.Errorf("the refused PATCHes wrote %d audit events, want one each, 3", n)
	}
	if status, body, _ := f.call(t, "PATCH", "/v1/apis/keyward", auth, map[string]any{"description": "Admin API."}); status != 200 {
		t.Fatalf("PATCH of the description: %d %v", status, body)
	}
	evs, _ := f.store.ListAuditEvents(ctx, storage.AuditFilter{Action: "api.update"})
	if len(evs) != 1 || evs[0].Data["description"] != "Admin API." {
		t.Errorf("api.update events %+v, want one recording the new description", evs)
	}
}

// token_lifetime_seconds 0 in a PATCH resets the account to the server's
// default lifetime, as ADMIN-API.md says, and the answer shows the value.
func TestUpdateAccountLifetimeZero(t *testing.T) {
	f := newFixture(t) // the default and the maximum are an hour
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if status, body, _ := f.call(t, "POST", "/v1/service-accounts", auth, admin.AccountInput{Name: "job", Project: "shop", TokenLifetimeSeconds: 600}); status != 201 || body["token_lifetime_seconds"] != 600.0 {
		t.Fatalf("create with 600 s: %d %v", status, body)
	}
	status, body, _ := f.call(t, "PATCH", "/v1/service-accounts/job@shop.iam.test", auth, `{"token_lifetime_seconds":0}`)
	if status != 200 || body["token_lifetime_seconds"] != 3600.0 {
		t.Fatalf("PATCH with 0: %d %v, want 200 with the default, 3600", status, body)
	}
	if a := mustAccount(t, f, "job@shop.iam.test"); a.TokenLifetime != time.Hour {
		t.Fatalf("stored lifetime %v, want the default, 1h", a.TokenLifetime)
	}
}

// A failure is logged as an error, unless the caller had gone: a request
// whose client hung up is no failure of the server's.
func TestStoreDownLogLevel(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	f.store.Close()
	send := func(ctx context.Context) string {
		before := len(f.logs.String())
		req := httptest.NewRequestWithContext(ctx, "GET", "/v1/apis", nil)
		req.Header.Set("Authorization", auth)
		f.srv.ServeHTTP(httptest.NewRecorder(), req)
		return f.logs.String()[before:]
	}
	if got := send(context.Background()); !strings.Contains(got, "level=ERROR") || !strings.Contains(got, "admin request failed") {
		t.Errorf("a store failure logged %q, want an error", got)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	got := send(gone)
	if strings.Contains(got, "level=ERROR") {
		t.Errorf("a request whose caller hung up logged %q, want no error", got)
	}
	// Said as what happened: the store did not fail, and "context
	// canceled" alone does not tell an operator that the client left.
	if want := `msg="admin request canceled: the client hung up before the answer"`; !strings.Contains(got, want) || strings.Contains(got, "admin request failed") {
		t.Errorf("a request whose caller hung up logged %q, want %s", got, want)
	}
}

// An organization created with blocked scopes is made with them in one
// change: one org.create event that names them, no separate policy change.
func TestCreateOrgWithPolicy(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	status, body, _ := f.call(t, "POST", "/v1/orgs", auth, map[string]any{"domain": "example.com", "blocked_scopes": []string{"drive.admin", "drive.admin", "mail.send"}})
	if status != 201 {
		t.Fatalf("%d %v", status, body)
	}
	o, err := f.store.GetOrg(context.Background(), "example.com")
	if err != nil || !slices.Equal(o.BlockedScopes, []string{"drive.admin", "mail.send"}) {
		t.Fatalf("stored %+v (%v), want the two blocked scopes", o, err)
	}
	creates, _ := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "org.create"})
	policies, _ := f.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "org.policy"})
	if len(creates) != 1 || creates[0].Data["blocked_scopes"] != "drive.admin mail.send" || len(policies) != 0 {
		t.Errorf("org.create %+v and org.policy %+v, want one create naming the blocked scopes and no policy change", creates, policies)
	}
}

// A refusal of an API or service-account route names the API, account,
// key or secret from the path cut to its first 48 bytes, with its length,
// once it is over 64 bytes (quoteClip), as the delegation routes do: a
// name of 60 KB in the path is not echoed back whole. Values of 64 bytes
// or fewer are named whole, as before.
func TestAPIAndAccountRoutesClipLongValues(t *testing.T) {
	f, auth, id := orgFixture(t)
	acct, err := f.srv.Admin.GetAccount(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 5000)
	clipped := `"` + long[:48] + `"… (5000 bytes)`
	sa := "/v1/service-accounts/" + id
	tests := []struct {
		method, path string
		body         any
		want         string
	}{
		{"GET", "/v1/apis/nosuch", nil, `The API "nosuch" does not exist.`},
		{"GET", "/v1/apis/" + long, nil, `The API ` + clipped + ` does not exist.`},
		{"PATCH", "/v1/apis/" + long, map[string]any{}, `The API ` + clipped + ` does not exist.`},
		{"DELETE", "/v1/apis/" + long, nil, `The API ` + clipped + ` does not exist.`},
		{"GET", "/v1/service-accounts/nosuch", nil, `The service account "nosuch" does not exist. Name an account by its email, NAME@PROJECT.iam.test, or its client ID.`},
		{"GET", "/v1/service-accounts/" + long, nil, `The service account ` + clipped + ` does not exist.`},
		{"GET", "/v1/service-accounts/" + long + "@x.com", nil, `The service account "` + long[:48] + `"… (5006 bytes) does not exist.`},
		{"PATCH", "/v1/service-accounts/" + long, map[string]any{}, `The service account ` + clipped + ` does not exist.`},
		{"DELETE", "/v1/service-accounts/" + long, nil, `The service account ` + clipped + ` does not exist.`},
		{"POST", "/v1/service-accounts/" + long + "/disable", nil, `The service account ` + clipped + ` does not exist.`},
		{"POST", "/v1/service-accounts/" + long + "/revoke-tokens", nil, `The service account ` + clipped + ` does not exist.`},
		{"GET", "/v1/service-accounts/" + long + "/keys", nil, `The service account ` + clipped + ` does not exist.`},
		{"POST", "/v1/service-accounts/" + long + "/secrets", nil, `The service account ` + clipped + ` does not exist.`},
		{"GET", sa + "/keys/" + long, nil, `The key ` + clipped + ` of ` + acct.Email + ` does not exist.`},
		{"DELETE", sa + "/keys/" + long, nil, `The key ` + clipped + ` of ` + acct.Email + ` does not exist.`},
		{"GET", sa + "/secrets/" + long, nil, `The secret ` + clipped + ` of ` + acct.Email + ` does not exist.`},
		{"POST", sa + "/secrets/" + long + "/disable", nil, `The secret ` + clipped + ` of ` + acct.Email + ` does not exist.`},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+strings.ReplaceAll(tt.path, long, "LONG"), func(t *testing.T) {
			status, body, _ := f.call(t, tt.method, tt.path, auth, tt.body)
			desc, _ := body["error_description"].(string)
			if status != http.StatusNotFound || desc != tt.want {
				t.Errorf("%d %q (%d bytes), want 404 %q", status, desc[:min(len(desc), 300)], len(desc), tt.want)
			}
		})
	}
}

// An account named by its bare name, as 'keyward sa create NAME' took it,
// is not found (accounts are named by email or client ID), and the 404
// says how to name one; an email or a client ID that is not found gets no
// such hint, being named the right way.
func TestAccountByBareNameSaysHowToName(t *testing.T) {
	f, auth, _ := orgFixture(t)
	const hint = "Name an account by its email, NAME@PROJECT.iam.test, or its client ID."
	for _, tt := range []struct {
		ref      string
		wantHint bool
	}{
		{"nightly-report", true},
		{"nightly-report@billing.iam.test", false},
		{"123456789012345678901", false},
	} {
		t.Run(tt.ref, func(t *testing.T) {
			status, body, _ := f.call(t, "GET", "/v1/service-accounts/"+tt.ref+"/keys", auth, nil)
			desc, _ := body["error_description"].(string)
			if status != http.StatusNotFound || strings.Contains(desc, hint) != tt.wantHint {
				t.Errorf("%d %q, want 404 with the hint %v", status, desc, tt.wantHint)
			}
		})
	}
}

// A 400 of the API, service-account and organization routes names a
// value from the body, the query or the path over 64 bytes by its first
// 48 bytes, with its length (quoteClip), as their 404s do: an API name or
// scope of 1 MiB is not echoed back whole.
func TestRefusalsClipLongBodyValues(t *testing.T) {
	f, auth, id := orgFixture(t)
	long := strings.Repeat("a", 5000)
	clipped := `"` + long[:48] + `"… (5000 bytes)`
	scope100 := strings.Repeat("s", 100)
	api := func(name, identifier string, scopes []string, format string) map[string]any {
		return map[string]any{"name": name, "identifier": identifier, "scopes": scopes, "token_format": format}
	}
	binding := func(field, value string) map[string]any {
		return map[string]any{"tls_binding": map[string]any{field: value}}
	}
	tests := []struct {
		name, method, path string
		body               any
		status             int
		want               string
	}{
		{"API name", "POST", "/v1/apis", api(long, "https://x.internal", []string{"x.read"}, ""), 400,
			`The API name ` + clipped + ` must be 2-63 lowercase letters, digits and hyphens, starting with a letter.`},
		{"API identifier", "POST", "/v1/apis", api("xapi", long, []string{"x.read"}, ""), 400,
			`The API identifier ` + clipped + ` must be an absolute URI without a fragment, such as https://orders.internal.`},
		{"API scope", "POST", "/v1/apis", api("xapi", "https://x.internal", []string{long + " "}, ""), 400,
			`The scope "` + long[:48] + `"… (5001 bytes) is not a valid scope name (printable ASCII without spaces, quotes, backslashes or commas).`},
		{"API scope twice", "POST", "/v1/apis", api("xapi", "https://x.internal", []string{scope100, scope100}, ""), 400,
			`The scope "` + scope100[:48] + `"… (100 bytes) is listed twice.`},
		{"API token format", "POST", "/v1/apis", api("xapi", "https://x.internal", []string{"x.read"}, long), 400,
			`The token format ` + clipped + ` must be jwt or opaque, or empty (the default).`},
		{"API token format, changed", "PATCH", "/v1/apis/orders", map[string]any{"token_format": long}, 400,
			`The token format ` + clipped + ` must be jwt or opaque.`},
		{"account name", "POST", "/v1/service-accounts", map[string]any{"name": long, "project": "shop"}, 400,
			`The account name ` + clipped + ` must be 3-30 lowercase letters, digits and hyphens, starting with a letter.`},
		{"account project", "POST", "/v1/service-accounts", map[string]any{"name": "other", "project": long}, 400,
			`The project ` + clipped + ` must be 3-30 lowercase letters, digits and hyphens, starting with a letter.`},
		{"account scope", "PATCH", "/v1/service-accounts/" + id, map[string]any{"scopes": []string{long}}, 400,
			`The scope ` + clipped + ` is not defined by any API; create the API first (keyward api create).`},
		// Empty is an account's default (the APIs decide): it says so.
		{"account token format", "PATCH", "/v1/service-accounts/" + id, map[string]any{"token_format": long}, 400,
			`The token format ` + clipped + ` must be jwt or opaque, or empty (the default).`},
		{"account auth method", "PATCH", "/v1/service-accounts/" + id, map[string]any{"auth_methods": []string{long}}, 400,
			`Unknown client authentication method ` + clipped + `; the methods are ` + strings.Join(storage.AuthMethods, ", ") + `.`},
		{"key with a public key", "POST", "/v1/service-accounts/" + long + "/keys", map[string]any{"public_key_pem": "x"}, 400,
			`This endpoint generates a new key pair and takes no public key; register a public key you hold with POST /v1/service-accounts/"` + long[:48] + `"… (5000 bytes)/keys/upload.`},
		// A path value is decoded: one with a control character is shown
		// quoted, escaped, not raw to the CLI's terminal.
		{"key with a public key, escape in the path", "POST", "/v1/service-accounts/a%1b%5b2Jb/keys", map[string]any{"public_key_pem": "x"}, 400,
			`This endpoint generates a new key pair and takes no public key; register a public key you hold with POST /v1/service-accounts/"a\x1b[2Jb"/keys/upload.`},
		{"secret with a public key", "POST", "/v1/service-accounts/" + long + "/secrets", map[string]any{"public_key_pem": "x"}, 400,
			`A client secret takes no public key: the body has only expires_in_seconds. To register a public key, POST it to /v1/service-accounts/"` + long[:48] + `"… (5000 bytes)/keys/upload.`},
		{"secret with a public key, escape in the path", "POST", "/v1/service-accounts/a%1bb/secrets", map[string]any{"public_key_pem": "x"}, 400,
			`A client secret takes no public key: the body has only expires_in_seconds. To register a public key, POST it to /v1/service-accounts/"a\x1bb"/keys/upload.`},
		{"TLS binding subject DN", "PATCH", "/v1/service-accounts/" + id, binding("tls_client_auth_subject_dn", long), 400,
			`The subject DN ` + clipped + ` is not an RFC 4514 distinguished name such as CN=job,O=Example: ` + clipped + ` is not attribute=value.`},
		{"TLS binding subject DN attribute type", "PATCH", "/v1/service-accounts/" + id, binding("tls_client_auth_subject_dn", long+"=x"), 400,
			`The subject DN "` + long[:48] + `"… (5002 bytes) is not an RFC 4514 distinguished name such as CN=job,O=Example: unknown attribute type ` + clipped +
				` (the known ones are CN, O, OU, C, ST, L, STREET, POSTALCODE, SERIALNUMBER, DC, UID, EMAILADDRESS; or give an OID such as 2.5.4.3).`},
		{"TLS binding SAN DNS", "PATCH", "/v1/service-accounts/" + id, binding("tls_client_auth_san_dns", long), 400,
			`The SAN DNS name ` + clipped + ` is not a DNS name: longer than 253 characters.`},
		{"TLS binding SAN URI", "PATCH", "/v1/service-accounts/" + id, binding("tls_client_auth_san_uri", long), 400,
			`The SAN URI ` + clipped + ` is not an absolute URI such as spiffe://example.org/job.`},
		{"TLS binding SAN IP", "PATCH", "/v1/service-accounts/" + id, binding("tls_client_auth_san_ip", long), 400,
			`The SAN IP ` + clipped + ` is not an IP address.`},
		{"TLS binding SAN email", "PATCH", "/v1/service-accounts/" + id, binding("tls_client_auth_san_email", long), 400,
			`The SAN email ` + clipped + ` is not an email address.`},
		{"blocked scope", "PATCH", "/v1/orgs/example.com", map[string]any{"blocked_scopes": []string{long + " "}}, 400,
			`The blocked scope "` + long[:48] + `"… (5001 bytes) is not a valid scope name (printable ASCII without spaces, quotes, backslashes or commas): list each scope on its own.`},
		{"project in the body", "PUT", "/v1/orgs/example.com/projects/shop", map[string]any{"project": long}, 400,
			`The body names project ` + clipped + ` but the path names "shop": the path names the project, so leave project out of the body.`},
		{"query parameter", "GET", "/v1/apis?" + long + "=%00", nil, 400,
			`The query parameter ` + clipped + ` is not UTF-8 text without NUL characters.`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := f.call(t, tt.method, tt.path, auth, tt.body)
			desc, _ := body["error_description"].(string)
			if status != tt.status || desc != tt.want {
				t.Errorf("%d %q (%d bytes), want %d %q", status, desc[:min(len(desc), 300)], len(desc), tt.status, tt.want)
			}
		})
	}
}

// A path with a "." or ".." segment is refused (400) before any route,
// where net/http's ServeMux redirected it to the path without them and a
// client following with its method acted on another resource: DELETE
// …/keys/.. deleted the service account. Escaped, such a name is a name.
func TestDotSegmentsRefused(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	acct, err := f.srv.Admin.CreateAccount(ctx, admin.Actor{ID: "t"}, admin.AccountInput{Name: "nightly", Project: "proj"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		method, path string
		status       int
	}{
		{"DELETE", "/v1/service-accounts/" + acct.ID + "/keys/..", 400},
		{"POST", "/v1/service-accounts/" + acct.ID + "/keys/../disable", 400},
		{"GET", "/v1/service-accounts/.", 400},
		{"POST", "/token/.", 400},
		{"POST", "/v1/service-accounts/" + acct.ID + "/keys//disable", 400},
		{"DELETE", "//v1/service-accounts/" + acct.ID, 400},
		{"GET", "/v1/apis", 200},
		{"DELETE", "/v1/service-accounts/" + acct.ID + "/keys/%2E%2E", 404},
		{"GET", "/.well-known/oauth-authorization-server", 200},
	} {
		status, out, _ := f.call(t, tt.method, tt.path, auth, nil)
		if status != tt.status || (status == 400 && out["error"] != "invalid_request") {
			t.Errorf("%s %s: %d %v, want %d", tt.method, tt.path, status, out, tt.status)
		}
	}
	if a, err := f.srv.Admin.GetAccount(ctx, acct.ID); err != nil || a.Disabled {
		t.Fatalf("the account after the requests: %+v, %v; want it there, enabled", a, err)
	}
}

// A DELETE's 204, which has no body, carries Cache-Control: no-store as
// every other answer does (RFC 9111 §4.2.2 lets a cache keep a 204 by
// heuristics), and nosniff.
func TestDeleteNoContentNoStore(t *testing.T) {
	f := newFixture(t)
	auth := "Bearer " + f.token(t, f.admin, admin.AdminScope, nil)
	if status, body, _ := f.call(t, "POST", "/v1/apis", auth, map[string]any{"name": "gone", "identifier": "https://gone.internal", "scopes": []string{"gone.read"}}); status != 201 {
		t.Fatalf("POST /v1/apis: %d %v", status, body)
	}
	status, _, hdr := f.call(t, "DELETE", "/v1/apis/gone", auth, nil)
	if status != 204 {
		t.Fatalf("DELETE /v1/apis/gone: %d, want 204", status)
	}
	if got := hdr.Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", got)
	}
	if got := hdr.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options %q, want nosniff", got)
	}
}
