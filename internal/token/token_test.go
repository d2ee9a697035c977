package token_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/clientauth"
	"github.com/keyward/keyward/internal/groupcommit"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/storage/cache"
	"github.com/keyward/keyward/internal/storage/sqlite"
	"github.com/keyward/keyward/internal/testkeys"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/internal/token"
)

const issuer = "https://keyward.test"

var (
	t0       = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	endpoint = issuer + "/token"
)

// env is the token endpoint on a real SQLite store, with the fixtures
// every case shares.
type env struct {
	h      http.Handler
	store  storage.Storage
	signer *signer.Signer
	now    time.Time
	// clock, if set, is every clock's time instead of now.
	clock   func() time.Time
	job     storage.Account
	rsKey   *rsa.PrivateKey   // job's RS256 key "rs"
	esKey   *ecdsa.PrivateKey // job's uploaded ES256 key "es"
	offKey  *rsa.PrivateKey   // job's disabled key "off"
	oldKey  *rsa.PrivateKey   // job's expired key "old"
	other   *rsa.PrivateKey   // other's key "ok"
	offAcct *rsa.PrivateKey   // key "dk" of the disabled account
	// caCert and caKey are the CA of the authenticator's ClientCAs
	// (tls_client_auth).
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	// logs are what the handler and the authenticator log, as text.
	logs *testkeyward.SyncBuffer
	// cfg is the token endpoint's configuration; newHandler returns a
	// handler like h's with cfg as it is then, reading dir.
	cfg        token.Config
	newHandler func(dir token.Directory) http.Handler
}

func newEnv(t *testing.T) *env { return newEnvOn(t, false) }

// newEnvOn is newEnv; with cached, the handler and the authenticator read
// through the in-memory cache, as keyward serve's do.
func newEnvOn(t *testing.T, cached bool) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "k.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{store: st, now: t0, logs: &testkeyward.SyncBuffer{}}
	var dir interface {
		token.Directory
		clientauth.Directory
	} = st
	if cached {
		dir = cache.New(st, cache.Options{TTL: time.Hour, Now: func() time.Time { return e.now }})
	}
	now := func() time.Time {
		if e.clock != nil {
			return e.clock()
		}
		return e.now
	}
	sealer, _ := signer.NewSealer(make([]byte, 32))
	e.signer, err = signer.New(ctx, st, sealer, signer.Config{Policy: signer.Policy{Algorithm: "ES256", RetainFor: time.Hour}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	journal := groupcommit.New(st, groupcommit.Options{})
	t.Cleanup(journal.Close)
	log := slog.New(slog.NewTextHandler(e.logs, nil))
	e.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Test CA"}, NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &e.caKey.PublicKey, e.caKey)
	if err != nil {
		t.Fatal(err)
	}
	e.caCert, _ = x509.ParseCertificate(caDER)
	clientCAs := x509.NewCertPool()
	clientCAs.AddCert(e.caCert)
	auth := clientauth.New(clientauth.Config{Issuer: issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute,
		Pepper: []byte("p"), ClientCAs: clientCAs, Now: now, Logger: log}, dir)
	e.cfg = token.Config{Issuer: issuer, MaxAssertionLifetime: time.Hour, ClockSkew: time.Minute, MaxTokenLifetime: time.Hour}
	e.newHandler = func(dir token.Directory) http.Handler {
		return token.NewHandler(e.cfg, dir, journal, e.signer, auth, now, log)
	}
	e.h = e.newHandler(dir)

	ev := storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(st.CreateAPI(ctx, storage.API{Name: "orders", Identifier: "https://orders.internal", Scopes: []string{"orders.read", "orders.write"}, CreatedAt: t0}, ev))
	must(st.CreateAPI(ctx, storage.API{Name: "billing", Identifier: "https://billing.internal", Scopes: []string{"billing.read"}, CreatedAt: t0}, ev))
	account := func(id, name string, scopes []string, disabled bool) storage.Account {
		a := storage.Account{ID: id, Email: name + "@proj.iam.test", Name: name, Project: "proj", Scopes: scopes, TokenLifetime: 30 * time.Minute,
			AuthMethods: storage.DefaultAuthMethods, Disabled: disabled, CreatedAt: t0, UpdatedAt: t0}
		must(st.CreateAccount(ctx, a, ev))
		return a
	}
	e.job = account("100000000000000000001", "job", []string{"orders.read", "orders.write", "billing.read"}, false)
	account("100000000000000000002", "other", []string{"orders.read"}, false)
	account("100000000000000000003", "off", []string{"orders.read"}, true)
	addKey := func(acct, id string, pub crypto.PublicKey, alg string, disabled bool, expires time.Time) {
		spki, _ := x509.MarshalPKIXPublicKey(pub)
		must(st.CreateKey(ctx, storage.Key{ID: id, AccountID: acct, Algorithm: alg, PublicKey: spki, Origin: storage.KeyOriginUploaded,
			Disabled: disabled, ExpiresAt: expires, CreatedAt: t0}, nil, ev))
	}
	k := fixtureRSAKeys()
	e.rsKey, e.offKey, e.oldKey, e.other, e.offAcct = k[0], k[1], k[2], k[3], k[4]
	e.esKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	addKey(e.job.ID, "rs", &e.rsKey.PublicKey, "RS256", false, time.Time{})
	addKey(e.job.ID, "es", &e.esKey.PublicKey, "ES256", false, time.Time{})
	addKey(e.job.ID, "off", &e.offKey.PublicKey, "RS256", true, time.Time{})
	addKey(e.job.ID, "old", &e.oldKey.PublicKey, "RS256", false, t0.Add(-time.Minute))
	addKey("100000000000000000002", "ok", &e.other.PublicKey, "RS256", false, time.Time{})
	addKey("100000000000000000003", "dk", &e.offAcct.PublicKey, "RS256", false, time.Time{})
	must(st.CreateSecret(ctx, storage.Secret{ID: "sec", AccountID: e.job.ID, Hash: clientauth.HashSecret([]byte("p"), jobSecret), CreatedAt: t0}, nil, ev))
	return e
}

// fixtureRSAKeys are the five RSA keys of an env, generated once for all:
// a 2048-bit key takes a good part of a second under the race detector,
// and which keys they are matters to no test, only that they differ.
var fixtureRSAKeys = sync.OnceValue(func() [5]*rsa.PrivateKey {
	var keys [5]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

// jobSecret is job's client secret.
const jobSecret = "kw_job-secret"

// basicAuth is the Authorization header of client_secret_basic.
func basicAuth(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// claims are an assertion's claims as Google's libraries send them.
func claims(mod func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss": "job@proj.iam.test", "scope": "orders.read", "aud": endpoint,
		"iat": t0.Add(-10 * time.Second).Unix(), "exp": t0.Add(-10*time.Second + time.Hour).Unix(),
	}
	if mod != nil {
		mod(c)
	}
	return c
}

// sign signs claims with key under alg, with the given kid and extra headers
// (typ is JWT unless extra says otherwise; a nil value leaves a header out).
func sign(t *testing.T, key any, alg jose.SignatureAlgorithm, kid string, c map[string]any, extra map[jose.HeaderKey]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	for k, v := range extra {
		opts = opts.WithHeader(k, v)
		if v == nil {
			delete(opts.ExtraHeaders, k)
		}
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func form(assertion string, extra ...string) string {
	v := url.Values{"grant_type": {oauth2.GrantJWTBearer}, "assertion": {assertion}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Add(extra[i], extra[i+1])
	}
	return v.Encode()
}

type request struct {
	method, target, contentType, body string
	header                            http.Header
	tls                               *tls.ConnectionState
	remote                            string // the client's IP; httptest's by default
}

func (e *env) do(r request) *httptest.ResponseRecorder {
	if r.method == "" {
		r.method = "POST"
	}
	if r.target == "" {
		r.target = "/token"
	}
	if r.contentType == "" {
		r.contentType = "application/x-www-form-urlencoded"
	}
	req := httptest.NewRequest(r.method, r.target, strings.NewReader(r.body))
	req.Header.Set("Content-Type", r.contentType)
	for k, v := range r.header {
		req.Header[k] = v
	}
	req.TLS = r.tls
	if r.remote != "" {
		req.RemoteAddr = r.remote + ":4711"
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	return w
}

// hmacConfusion signs an HS256 token with the RSA public key's bytes as the
// secret: the classic algorithm-confusion attack.
func hmacConfusion(t *testing.T, pub *rsa.PublicKey, c map[string]any) string {
	spki, _ := x509.MarshalPKIXPublicKey(pub)
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "rs"})
	p, _ := json.Marshal(c)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p)
	m := hmac.New(sha256.New, spki)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// lineBreakAt inserts br into s at i.
func lineBreakAt(s string, i int, br string) string { return s[:i] + br + s[i:] }

func unsigned(c map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": "none", "typ": "JWT"})
	p, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

// shortLived is the seed's description of an assertion out of its time
// frame: expired, issued in the future, living too long, or whose exp is
// before its iat.
const shortLived = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your 'iat' and 'exp' values and use a clock with skew to account for clock differences between systems."

// badScope is the seed's description of invalid_scope: no scope, or one
// that does not exist.
const badScope = "Invalid OAuth scope or ID token audience provided."

// disabled is the seed's description of disabled_client.
const disabled = "The OAuth client was disabled."

func TestJWTBearer(t *testing.T) {
	e := newEnv(t)
	audHint := "this server's token endpoint URL " + endpoint + " or its issuer " + issuer
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs := func(mod func(map[string]any)) string { return sign(t, e.rsKey, jose.RS256, "rs", claims(mod), nil) }
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantError  string
		wantDesc   string // part of the error_description
		wantScope  string
		wantAud    string
	}{
		// The seed's flow, as Google's libraries send it.
		{name: "ok", req: request{body: form(rs(nil))}, wantStatus: 200, wantScope: "orders.read", wantAud: "https://orders.internal"},
		{name: "ok without kid, every key tried", req: request{body: form(sign(t, e.rsKey, jose.RS256, "", claims(nil), nil))}, wantStatus: 200, wantScope: "orders.read"},
		// The seed's header has typ JWT; RFC 7523 does not require it, and
		// an assertion without it is accepted.
		{name: "no typ header", req: request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), map[jose.HeaderKey]any{jose.HeaderType: nil}))}, wantStatus: 200, wantScope: "orders.read"},
		{name: "ok with an unknown kid", req: request{body: form(sign(t, e.rsKey, jose.RS256, "nope", claims(nil), nil))}, wantStatus: 200, wantScope: "orders.read"},
		{name: "ES256 key", req: request{body: form(sign(t, e.esKey, jose.ES256, "es", claims(nil), nil))}, wantStatus: 200, wantScope: "orders.read"},
		{name: "aud is the issuer", req: request{body: form(rs(func(c map[string]any) { c["aud"] = issuer }))}, wantStatus: 200},
		{name: "aud array", req: request{body: form(rs(func(c map[string]any) { c["aud"] = []string{"https://x", endpoint} }))}, wantStatus: 200},
		{name: "exp - iat exactly 3600", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Unix(), t0.Unix()+3600 }))}, wantStatus: 200},
		// The seed refuses only "more than 65 mins in the future from the iat value".
		{name: "exp - iat exactly 65 minutes", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Unix(), t0.Unix()+65*60 }))}, wantStatus: 200},
		// grant_type "URL-encoded as necessary": its colons need not be.
		{name: "grant_type not percent-encoded", req: request{body: "grant_type=" + oauth2.GrantJWTBearer + "&assertion=" + rs(nil)}, wantStatus: 200, wantScope: "orders.read"},
		{name: "form with a charset, as Java's client sends it", req: request{contentType: "application/x-www-form-urlencoded; charset=UTF-8", body: form(rs(nil))}, wantStatus: 200, wantScope: "orders.read"},
		{name: "sub is the account itself", req: request{body: form(rs(func(c map[string]any) { c["sub"] = "job@proj.iam.test" }))}, wantStatus: 200},
		// A client_id without credentials identifies the client (RFC
		// 6749 §3.2.1, RFC 7521 §4.1), as generic OAuth libraries send
		// it: the assertion's account, by email or numeric ID; another
		// is refused, once the signature is good.
		{name: "client_id is the account's email", req: request{body: form(rs(nil), "client_id", e.job.Email)}, wantStatus: 200, wantScope: "orders.read"},
		{name: "client_id is the account's numeric ID", req: request{body: form(rs(nil), "client_id", e.job.ID)}, wantStatus: 200, wantScope: "orders.read"},
		{name: "client_id of another account", req: request{body: form(rs(nil), "client_id", "other@proj.iam.test")}, wantStatus: 401, wantError: "invalid_client", wantDesc: "The assertion was not issued for the client ID in the request: client_id names another client than its issuer (iss)"},
		{name: "client_id of no account", req: request{body: form(rs(nil), "client_id", "nobody@proj.iam.test")}, wantStatus: 401, wantError: "invalid_client", wantDesc: "names another client"},
		{name: "client_id in other capitals", req: request{body: form(rs(nil), "client_id", "Job@proj.iam.test")}, wantStatus: 401, wantError: "invalid_client", wantDesc: "names another client"},
		{name: "client_id of another account, bad signature", req: request{body: form(sign(t, attacker, jose.ES256, "rs", claims(nil), nil), "client_id", "other@proj.iam.test")}, wantStatus: 400, wantError: "invalid_grant", wantDesc: "Invalid JWT Signature"},
		{name: "sub is the account itself, in capitals", req: request{body: form(rs(func(c map[string]any) { c["sub"] = "Job@Proj.IAM.test" }))}, wantStatus: 200},
		{name: "prn tolerated", req: request{body: form(rs(func(c map[string]any) { c["sub"], c["prn"] = "job@proj.iam.test", "job@proj.iam.test" }))}, wantStatus: 200},
		{name: "scope in the form", req: request{body: form(rs(func(c map[string]any) { delete(c, "scope") }), "scope", "orders.write")}, wantStatus: 200, wantScope: "orders.write"},
		{name: "claim and form the same scopes, spaced otherwise", req: request{body: form(rs(func(c map[string]any) { c["scope"] = "orders.read billing.read" }), "scope", " billing.read  orders.read ")},
			wantStatus: 200, wantScope: "billing.read orders.read"},
		{name: "two APIs", req: request{body: form(rs(func(c map[string]any) { c["scope"] = "orders.read billing.read" }))}, wantStatus: 200, wantScope: "orders.read billing.read"},
		{name: "resource narrows", req: request{body: form(rs(func(c map[string]any) { c["scope"] = "orders.read billing.read" }), "resource", "https://billing.internal")},
			wantStatus: 200, wantScope: "billing.read", wantAud: "https://billing.internal"},
		{name: "two resources (RFC 8707)", req: request{body: form(rs(func(c map[string]any) { c["scope"] = "orders.read billing.read orders.write" }),
			"resource", "https://billing.internal", "resource", "https://orders.internal", "resource", "https://billing.internal")},
			wantStatus: 200, wantScope: "orders.read billing.read orders.write", wantAud: "https://orders.internal https://billing.internal"},
		{name: "empty resource asks for nothing", req: request{body: form(rs(nil), "resource", "")}, wantStatus: 200, wantScope: "orders.read", wantAud: "https://orders.internal"},
		{name: "jku and x5u headers are ignored", req: request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil),
			map[jose.HeaderKey]any{"jku": "https://evil/jwks", "x5u": "https://evil/x5"}))}, wantStatus: 200},

		// invalid_grant
		{name: "bad signature", req: request{body: form(rs(nil)[:len(rs(nil))-8] + "AAAAAAAA")}, wantStatus: 400, wantError: "invalid_grant", wantDesc: "Invalid JWT Signature."},
		{name: "foreign key", req: request{body: form(sign(t, e.other, jose.RS256, "rs", claims(nil), nil))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: "Invalid JWT Signature."},
		{name: "another account's key id", req: request{body: form(sign(t, e.other, jose.RS256, "ok", claims(nil), nil))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "unknown account", req: request{body: form(rs(func(c map[string]any) { c["iss"] = "ghost@proj.iam.test" }))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "missing iss", req: request{body: form(rs(func(c map[string]any) { delete(c, "iss") }))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "expired key", req: request{body: form(sign(t, e.oldKey, jose.RS256, "old", claims(nil), nil))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: "Invalid JWT Signature."},
		{name: "expired assertion", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Add(-2*time.Hour).Unix(), t0.Add(-time.Hour).Unix() }))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: shortLived},
		{name: "lives longer than 65 minutes", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Unix(), t0.Unix()+65*60+1 }))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: shortLived},
		{name: "iat and exp with fractions, as the seed's PyJWT example (time.time()) sends them", req: request{body: form(rs(func(c map[string]any) {
			c["iat"], c["exp"] = float64(t0.Unix())-0.25, float64(t0.Unix())+3599.75
		}))}, wantStatus: 200},
		{name: "iat backdated a minute, as Google's PHP client sends it", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Unix()-60, t0.Unix()+3600 }))}, wantStatus: 200},
		// The seed's "clock with skew": a signer's clock off by up to the
		// skew (a minute) either way is tolerated, and no more.
		{name: "expired within the clock skew", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Unix()-3630, t0.Unix()-30 }))}, wantStatus: 200},
		{name: "expired by the clock skew", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Unix()-3660, t0.Unix()-60 }))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: shortLived},
		{name: "iat the clock skew ahead", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Unix()+60, t0.Unix()+3660 }))}, wantStatus: 200},
		{name: "iat beyond the clock skew", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Unix()+61, t0.Unix()+3661 }))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: shortLived},
		{name: "exp before iat", req: request{body: form(rs(func(c map[string]any) { c["iat"], c["exp"] = t0.Unix(), t0.Unix()-10 }))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: shortLived},
		{name: "iat in the future", req: request{body: form(rs(func(c map[string]any) {
			c["iat"], c["exp"] = t0.Add(5*time.Minute).Unix(), t0.Add(10*time.Minute).Unix()
		}))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: shortLived},
		{name: "nbf in the future", req: request{body: form(rs(func(c map[string]any) { c["nbf"] = t0.Add(5 * time.Minute).Unix() }))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: shortLived},
		// The refusals name both values accepted, the key file's token_uri first.
		{name: "wrong aud", req: request{body: form(rs(func(c map[string]any) { c["aud"] = "https://oauth2.googleapis.com/token" }))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: "aud must be " + audHint + "."},
		// A self-signed JWT for an API (verify.WithSelfSignedJWTs) is no
		// assertion here: the API it was sent to cannot trade it for a token.
		{name: "aud is an API's identifier", req: request{body: form(rs(func(c map[string]any) { c["aud"] = "https://orders.internal" }))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "aud is the token endpoint's URL written otherwise", req: request{body: form(rs(func(c map[string]any) { c["aud"] = endpoint + "/" }))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "missing aud", req: request{body: form(rs(func(c map[string]any) { delete(c, "aud") }))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: "use " + audHint + "."},
		{name: "missing exp", req: request{body: form(rs(func(c map[string]any) { delete(c, "exp") }))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "missing iat", req: request{body: form(rs(func(c map[string]any) { delete(c, "iat") }))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "alg none", req: request{body: form(unsigned(claims(nil)))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "HS256 with the public key as secret", req: request{body: form(hmacConfusion(t, &e.rsKey.PublicKey, claims(nil)))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "RS256 against an ES256 key", req: request{body: form(sign(t, e.rsKey, jose.RS256, "es", claims(nil), nil))}, wantStatus: 200}, // falls back to the RS256 key
		{name: "ES256 signed by the attacker with its jwk", req: request{body: form(sign(t, attacker, jose.ES256, "es", claims(nil),
			map[jose.HeaderKey]any{"jwk": jose.JSONWebKey{Key: &attacker.PublicKey}, "jku": "https://evil/jwks", "x5u": "https://evil/x5"}))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "critical extension", req: request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), map[jose.HeaderKey]any{"crit": []string{"urn:x"}, "urn:x": 1}))},
			wantStatus: 400, wantError: "invalid_grant", wantDesc: `critical (crit) the extension 'urn:x'`},
		{name: "unencoded payload (b64 false, RFC 7797)", req: request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), map[jose.HeaderKey]any{"b64": false, "crit": []string{"b64"}}))},
			wantStatus: 400, wantError: "invalid_grant", wantDesc: "b64"},
		{name: "not a JWT", req: request{body: form("hello")}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "padding added after signing", req: request{body: form(strings.Replace(rs(nil), ".", "=.", 1))}, wantStatus: 400, wantError: "invalid_grant"},
		// The seed: the assertion "must be Base64-encoded, without newlines"
		// (Go's base64 decoder would skip them).
		{name: "line break in the signature", req: request{body: form(lineBreakAt(rs(nil), len(rs(nil))-20, "\n"))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: "no newlines"},
		{name: "CRLF in the claim set", req: request{body: form(lineBreakAt(rs(nil), strings.Index(rs(nil), ".")+9, "\r\n"))}, wantStatus: 400, wantError: "invalid_grant", wantDesc: "no newlines"},
		{name: "trailing line break", req: request{body: form(rs(nil) + "\n")}, wantStatus: 400, wantError: "invalid_grant", wantDesc: "no newlines"},
		{name: "scope claim of the wrong type", req: request{body: form(rs(func(c map[string]any) { c["scope"] = []string{"orders.read"} }))}, wantStatus: 400, wantError: "invalid_grant"},
		{name: "sub and prn disagree", req: request{body: form(rs(func(c map[string]any) { c["sub"], c["prn"] = "job@proj.iam.test", "x@y" }))}, wantStatus: 400, wantError: "invalid_grant"},

		// disabled_client
		{name: "disabled key", req: request{body: form(sign(t, e.offKey, jose.RS256, "off", claims(nil), nil))}, wantStatus: 400, wantError: "disabled_client", wantDesc: disabled},
		{name: "disabled key without kid", req: request{body: form(sign(t, e.offKey, jose.RS256, "", claims(nil), nil))}, wantStatus: 400, wantError: "disabled_client", wantDesc: disabled},
		{name: "disabled account", req: request{body: form(sign(t, e.offAcct, jose.RS256, "dk", claims(func(c map[string]any) { c["iss"] = "off@proj.iam.test" }), nil))}, wantStatus: 400, wantError: "disabled_client", wantDesc: disabled + " The service account is disabled."},
		{name: "disabled account, bad signature", req: request{body: form(sign(t, e.rsKey, jose.RS256, "dk", claims(func(c map[string]any) { c["iss"] = "off@proj.iam.test" }), nil))}, wantStatus: 400, wantError: "invalid_grant"},

		// invalid_scope
		{name: "no scope", req: request{body: form(rs(func(c map[string]any) { delete(c, "scope") }))}, wantStatus: 400, wantError: "invalid_scope", wantDesc: badScope + " No scope was requested."},
		{name: "an ID token asked for (target_audience)", req: request{body: form(rs(func(c map[string]any) { delete(c, "scope"); c["target_audience"] = "https://orders.internal" }))},
			wantStatus: 400, wantError: "invalid_scope", wantDesc: badScope + " This server issues access tokens, not ID tokens"},
		{name: "empty scope", req: request{body: form(rs(func(c map[string]any) { c["scope"] = " " }))}, wantStatus: 400, wantError: "invalid_scope", wantDesc: badScope},
		{name: "unknown scope", req: request{body: form(rs(func(c map[string]any) { c["scope"] = "orders.read orders.delete" }))}, wantStatus: 400, wantError: "invalid_scope", wantDesc: badScope},
		{name: "scope not allowed", req: request{body: form(sign(t, e.other, jose.RS256, "ok", claims(func(c map[string]any) { c["iss"], c["scope"] = "other@proj.iam.test", "orders.write" }), nil))}, wantStatus: 400, wantError: "invalid_scope"},
		{name: "comma-separated scopes", req: request{body: form(rs(func(c map[string]any) { c["scope"] = "orders.read,orders.write" }))}, wantStatus: 400, wantError: "invalid_scope", wantDesc: badScope + ` The scope 'orders.read,orders.write' contains a comma: scopes are separated by spaces, not commas.`},
		{name: "tab-separated scopes", req: request{body: form(rs(func(c map[string]any) { c["scope"] = "orders.read\torders.write" }))}, wantStatus: 400, wantError: "invalid_scope", wantDesc: "tab or line break"},
		{name: "claim and form disagree", req: request{body: form(rs(nil), "scope", "orders.write")}, wantStatus: 400, wantError: "invalid_scope"},
		{name: "claim and form disagree, one scope more", req: request{body: form(rs(nil), "scope", "orders.read orders.write")}, wantStatus: 400, wantError: "invalid_scope", wantDesc: "disagree"},
		{name: "resource without the scopes", req: request{body: form(rs(nil), "resource", "https://billing.internal")}, wantStatus: 400, wantError: "invalid_scope"},

		// other codes
		{name: "unknown resource", req: request{body: form(rs(nil), "resource", "https://nowhere")}, wantStatus: 400, wantError: "invalid_target"},
		{name: "one unknown resource of two", req: request{body: form(rs(nil), "resource", "https://orders.internal", "resource", "https://nowhere")}, wantStatus: 400, wantError: "invalid_target"},
		{name: "delegation", req: request{body: form(rs(func(c map[string]any) { c["sub"] = "alice@example.com" }))}, wantStatus: 400, wantError: "unauthorized_client", wantDesc: "Unauthorized client or scope in request."},
		// The seed's invalid_client row: the JWT must be "issued for the
		// client ID in the request", and a client that authenticates must
		// do so.
		{name: "client_id of another account beside the assertion", req: request{body: form(rs(nil), "client_id", "100000000000000000002")}, wantStatus: 401, wantError: "invalid_client", wantDesc: "names another client"},
		{name: "wrong client secret beside the assertion", req: request{body: form(rs(nil)), header: http.Header{"Authorization": {basicAuth(e.job.ID, "kw_wrong")}}}, wantStatus: 401, wantError: "invalid_client"},
		{name: "unsupported grant", req: request{body: "grant_type=password&username=a&password=b"}, wantStatus: 400, wantError: "unsupported_grant_type"},
		{name: "no grant_type", req: request{body: "assertion=x"}, wantStatus: 400, wantError: "invalid_request"},
		{name: "missing assertion", req: request{body: "grant_type=" + url.QueryEscape(oauth2.GrantJWTBearer)}, wantStatus: 400, wantError: "invalid_request"},
		{name: "GET", req: request{method: "GET", body: ""}, wantStatus: 405, wantError: "invalid_request"},
		{name: "JSON body", req: request{contentType: "application/json", body: `{"grant_type":"x"}`}, wantStatus: 400, wantError: "invalid_request"},
		{name: "parameter twice", req: request{body: form(rs(nil)) + "&grant_type=client_credentials"}, wantStatus: 400, wantError: "invalid_request"},
		{name: "assertion in the query string", req: request{target: "/token?assertion=" + rs(nil), body: "grant_type=" + url.QueryEscape(oauth2.GrantJWTBearer)}, wantStatus: 400, wantError: "invalid_request"},
		{name: "oversized body", req: request{body: form(rs(nil)) + "&pad=" + strings.Repeat("x", oauth2.MaxFormBytes)}, wantStatus: 413, wantError: "invalid_request"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Each case from its own address: the refusals would
			// otherwise add up to a throttled source.
			tt.req.remote = fmt.Sprintf("192.0.2.%d", i+1)
			before := e.auditCount(t)
			w := e.do(tt.req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			if got := w.Header().Get("Pragma"); got != "no-cache" {
				t.Errorf("Pragma = %q", got)
			}
			if got := w.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q", got)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %s", w.Body)
			}
			// The token is random base64url, which may spell "SQL" by chance.
			others := maps.Clone(body)
			delete(others, "access_token")
			rest, _ := json.Marshal(others)
			for _, leak := range []string{"sql", "SQL", "go-jose", "x509:", "crypto/", "runtime", ".go:"} {
				if strings.Contains(string(rest), leak) {
					t.Fatalf("the response leaks an internal detail (%q): %s", leak, w.Body)
				}
			}
			if after := e.auditCount(t); after != before+1 {
				t.Fatalf("%d audit events written, want 1", after-before)
			}
			if tt.wantError != "" {
				if body["error"] != tt.wantError {
					t.Fatalf("error = %v (%v), want %s", body["error"], body["error_description"], tt.wantError)
				}
				if d, _ := body["error_description"].(string); len(d) < 10 || !strings.Contains(d, tt.wantDesc) {
					t.Fatalf("error_description %q says nothing useful (want %q in it)", d, tt.wantDesc)
				}
				e.lastEvent(t, "token.refused", tt.wantError)
				return
			}
			// The seed's response: access_token, scope, token_type and
			// expires_in, an integer (Java's clients read it as a long),
			// and nothing else: no refresh_token, as a new JWT gets the
			// next token.
			if got := slices.Sorted(maps.Keys(body)); !slices.Equal(got, []string{"access_token", "expires_in", "scope", "token_type"}) {
				t.Fatalf("response members %v, want the seed's access_token, expires_in, scope, token_type", got)
			}
			var seed struct {
				Scope     *string     `json:"scope"`
				ExpiresIn json.Number `json:"expires_in"`
			}
			json.Unmarshal(w.Body.Bytes(), &seed)
			if _, err := seed.ExpiresIn.Int64(); err != nil || seed.Scope == nil {
				t.Fatalf("expires_in %q or scope missing: %s", seed.ExpiresIn, w.Body)
			}
			e.checkToken(t, body, tt.wantScope, tt.wantAud)
			e.lastEvent(t, "token.issued", "")
		})
	}
}

func (e *env) auditCount(t *testing.T) int {
	evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

func (e *env) lastEvent(t *testing.T, action, code string) {
	t.Helper()
	evs, _ := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Limit: 1000})
	last := evs[len(evs)-1]
	if last.Action != action || last.Data["error"] != code {
		t.Fatalf("last audit event %s %v, want %s with error %q", last.Action, last.Data, action, code)
	}
	if action == "token.refused" && last.Data["description"] == "" {
		t.Fatal("a refusal was audited without its reason")
	}
}

// checkToken verifies an issued access token against the JWKS.
func (e *env) checkToken(t *testing.T, body map[string]any, wantScope, wantAud string) {
	t.Helper()
	if body["token_type"] != "Bearer" {
		t.Fatalf("token_type = %v", body["token_type"])
	}
	if exp, ok := body["expires_in"].(float64); !ok || exp != 1800 {
		t.Fatalf("expires_in = %v, want 1800 (the account's lifetime)", body["expires_in"])
	}
	if wantScope != "" && body["scope"] != wantScope {
		t.Fatalf("scope = %v, want %s", body["scope"], wantScope)
	}
	raw, _ := body["access_token"].(string)
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Headers[0].ExtraHeaders[jose.HeaderType] != "at+jwt" {
		t.Fatalf("typ = %v", tok.Headers[0].ExtraHeaders[jose.HeaderType])
	}
	var set jose.JSONWebKeySet
	json.Unmarshal(e.signer.JWKS(), &set)
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) != 1 {
		t.Fatal("kid not in the JWKS")
	}
	var c oauth2.AccessClaims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		t.Fatalf("the token does not verify against the JWKS: %v", err)
	}
	if c.Issuer != issuer || c.Subject != e.job.ID || c.ClientID != e.job.ID || c.ClientEmail != e.job.Email || c.ID == "" ||
		c.IssuedAt != t0.Unix() || c.Expiry != t0.Add(30*time.Minute).Unix() || c.Scope != body["scope"] {
		t.Fatalf("claims = %+v", c)
	}
	if wantAud != "" && !slices.Equal(c.Audience, oauth2.Audience(strings.Fields(wantAud))) {
		t.Fatalf("aud = %v, want %s", c.Audience, wantAud)
	}
}

// TestAssertionJTI: an assertion's jti is single-use whether or not the
// server requires one; an assertion without one is accepted, and again,
// by default (Google's libraries send none) and refused with
// RequireAssertionJTI ('serve --require-assertion-jti'). Each assertion
// is sent twice.
func TestAssertionJTI(t *testing.T) {
	e := newEnv(t)
	lenient := e.h
	e.cfg.RequireAssertionJTI = true
	strict := e.newHandler(e.store)
	const (
		replayed = "Invalid JWT: the assertion's jti was already used; sign a new assertion for every request."
		required = "Invalid JWT: this server requires a jti claim, a unique ID for each assertion, which it accepts only once."
	)
	tests := []struct {
		name        string
		requireJTI  bool
		jti         string
		first, then string // the error_description of each answer; "" is a token
	}{
		{"no jti, reused", false, "", "", ""},
		{"no jti, jti required", true, "", required, required},
		{"jti, replayed", false, "once", "", replayed},
		{"jti required, replayed", true, "twice", "", replayed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.h = lenient
			if tt.requireJTI {
				e.h = strict
			}
			a := sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) {
				if tt.jti != "" {
					c["jti"] = tt.jti
				}
			}), nil)
			for i, want := range []string{tt.first, tt.then} {
				w := e.do(request{body: form(a)})
				var body map[string]any
				json.Unmarshal(w.Body.Bytes(), &body)
				if want == "" {
					if w.Code != 200 {
						t.Fatalf("request %d: %d %s, want a token", i+1, w.Code, w.Body)
					}
					e.lastEvent(t, "token.issued", "")
					continue
				}
				if w.Code != 400 || body["error"] != oauth2.ErrInvalidGrant || body["error_description"] != want {
					t.Fatalf("request %d: %d %s, want invalid_grant %q", i+1, w.Code, w.Body, want)
				}
				e.lastEvent(t, "token.refused", oauth2.ErrInvalidGrant)
			}
		})
	}
}

// TestOversizedKeyNeverVerifies: an RSA key over 8192 bits stored before
// uploads were bounded is never verified with, so an assertion naming it
// costs no more than one naming any key; it is skipped as if it were not
// there, with a warning that names it, once per process however many
// assertions name it. (Its modulus is a random odd number: only its size
// matters. Its ID is new in each run, as the warning is once per process.)
func TestOversizedKeyNeverVerifies(t *testing.T) {
	e := newEnv(t)
	spki, _ := x509.MarshalPKIXPublicKey(testkeys.RSAPublic(8200))
	kid := "huge-" + rand.Text()
	if err := e.store.CreateKey(context.Background(), storage.Key{ID: kid, AccountID: e.job.ID, Algorithm: "RS256", PublicKey: spki,
		Origin: storage.KeyOriginUploaded, CreatedAt: t0}, nil, storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		key        *rsa.PrivateKey
		wantStatus int
		wantError  string
	}{
		{"only it could verify", e.offAcct, 400, oauth2.ErrInvalidGrant},
		{"another key verifies", e.rsKey, 200, ""},
		{"only it could verify, again", e.offAcct, 400, oauth2.ErrInvalidGrant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(request{body: form(sign(t, tt.key, jose.RS256, kid, claims(nil), nil))})
			var body map[string]any
			json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tt.wantStatus || (tt.wantError != "" && (body["error"] != tt.wantError || body["error_description"] != "Invalid JWT Signature.")) {
				t.Fatalf("%d %s, want %d %s", w.Code, w.Body, tt.wantStatus, tt.wantError)
			}
		})
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "key="+kid) || !strings.Contains(logs, "8200 bits, more than the 8192") {
		t.Errorf("logs %q, want a warning naming the key, its size and the limit", logs)
	}
	if n := strings.Count(logs, "key="+kid); n != 1 {
		t.Errorf("the key was warned of %d times, want once: %q", n, logs)
	}
}

// TestJWTBearerDeletedKey: the seed's invalid_grant "Invalid JWT
// Signature." for an assertion signed with a key that "has been deleted":
// the key that got a token gets none once deleted, whether the assertion
// names it by kid or not.
func TestJWTBearerDeletedKey(t *testing.T) {
	e := newEnv(t)
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	spki, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	ev := storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}
	if err := e.store.CreateKey(context.Background(), storage.Key{ID: "gone", AccountID: e.job.ID, Algorithm: "RS256", PublicKey: spki,
		Origin: storage.KeyOriginUploaded, CreatedAt: t0}, nil, ev); err != nil {
		t.Fatal(err)
	}
	if w := e.do(request{body: form(sign(t, key, jose.RS256, "gone", claims(nil), nil))}); w.Code != 200 {
		t.Fatalf("before the deletion: %d %s", w.Code, w.Body)
	}
	if err := e.store.DeleteKey(context.Background(), "gone", nil, ev); err != nil {
		t.Fatal(err)
	}
	for _, kid := range []string{"gone", ""} {
		w := e.do(request{body: form(sign(t, key, jose.RS256, kid, claims(nil), nil))})
		var body map[string]any
		json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != 400 || body["error"] != oauth2.ErrInvalidGrant || body["error_description"] != "Invalid JWT Signature." {
			t.Errorf("kid %q after the deletion: %d %s, want 400 invalid_grant Invalid JWT Signature.", kid, w.Code, w.Body)
		}
	}
}

// Two tokens issued at the same instant for the same request still differ
// in their jti, so no two tokens are the same message: ES256 signatures are
// deterministic (internal/signer) and rely on it.
func TestEveryTokenHasItsOwnJTI(t *testing.T) {
	e := newEnv(t)
	a := sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil) // no jti: reusable
	seen := map[string]bool{}
	for range 3 {
		w := e.do(request{body: form(a)})
		if w.Code != 200 {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		var body map[string]any
		json.Unmarshal(w.Body.Bytes(), &body)
		raw, _ := body["access_token"].(string)
		tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		var c oauth2.AccessClaims
		tok.UnsafeClaimsWithoutVerification(&c)
		if len(c.ID) < 22 || seen[c.ID] || c.IssuedAt != t0.Unix() {
			t.Fatalf("jti %q (seen before: %v), iat %d", c.ID, seen[c.ID], c.IssuedAt)
		}
		seen[c.ID] = true
	}
}

// TestExpiresInCountsToExp: the seed's client reuses a token "during the
// duration window specified by the expires_in value", so that window,
// counted from when the answer is sent, ends by the token's exp. exp is in
// whole seconds: a token issued within a second lives less than the
// account's lifetime, and expires_in says so (Google's endpoint answers
// 3599 for an hour). One that waited for the second after a revocation is
// sent then, and lives the whole lifetime from it. The answer goes after
// the store has recorded the token: a slow write shortens expires_in.
func TestExpiresInCountsToExp(t *testing.T) {
	for _, tt := range []struct {
		name          string
		now           time.Time
		revokedBefore time.Time // the account's tokens, as sa revoke-tokens sets it
		wantExpiresIn int64
		wantExp       int64
		sent          time.Time // when the answer goes
		// later, if set, is the clock's time after its first read (the
		// request's time): the store's write takes that long.
		later time.Time
	}{
		{name: "on a whole second", now: t0, wantExpiresIn: 1800, wantExp: t0.Unix() + 1800, sent: t0},
		{name: "within a second", now: t0.Add(400 * time.Millisecond), wantExpiresIn: 1799, wantExp: t0.Unix() + 1800, sent: t0.Add(400 * time.Millisecond)},
		{name: "after waiting for a revocation by a replica ahead", now: t0.Add(400 * time.Millisecond), revokedBefore: t0.Add(1900 * time.Millisecond),
			wantExpiresIn: 1800, wantExp: t0.Unix() + 2 + 1800, sent: t0.Add(2 * time.Second)},
		{name: "after a slow write", now: t0.Add(400 * time.Millisecond), later: t0.Add(1500 * time.Millisecond),
			wantExpiresIn: 1798, wantExp: t0.Unix() + 1800, sent: t0.Add(1500 * time.Millisecond)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.now = tt.now
			if !tt.revokedBefore.IsZero() {
				if _, err := e.store.UpdateAccount(context.Background(), e.job.ID, func(a storage.Account) (storage.Account, error) {
					a.TokensRevokedBefore = tt.revokedBefore
					return a, nil
				}, storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}, storage.Guard{}); err != nil {
					t.Fatal(err)
				}
			}
			body := form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil))
			if !tt.later.IsZero() {
				var reads atomic.Int32
				e.clock = func() time.Time {
					if reads.Add(1) == 1 {
						return tt.now
					}
					return tt.later
				}
			}
			w := e.do(request{body: body})
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			var answer struct {
				AccessToken string `json:"access_token"`
				ExpiresIn   int64  `json:"expires_in"`
			}
			json.Unmarshal(w.Body.Bytes(), &answer)
			var c oauth2.AccessClaims
			if err := e.signer.Verify(answer.AccessToken, &c); err != nil {
				t.Fatal(err)
			}
			if answer.ExpiresIn != tt.wantExpiresIn || c.Expiry != tt.wantExp {
				t.Fatalf("expires_in %d, exp %d; want %d, %d", answer.ExpiresIn, c.Expiry, tt.wantExpiresIn, tt.wantExp)
			}
			if end := tt.sent.Add(time.Duration(answer.ExpiresIn) * time.Second); end.After(time.Unix(c.Expiry, 0)) {
				t.Fatalf("expires_in %d from %s ends at %s, after exp %s", answer.ExpiresIn, tt.sent, end, time.Unix(c.Expiry, 0).UTC())
			}
		})
	}
}

func TestClockSkewTolerated(t *testing.T) {
	e := newEnv(t)
	// The signer's clock is 30 s ahead of the server's: within the skew.
	a := sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) {
		c["iat"], c["exp"] = t0.Add(30*time.Second).Unix(), t0.Add(30*time.Second+time.Hour).Unix()
	}), nil)
	if w := e.do(request{body: form(a)}); w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
}

// What a refused client sent reaches the audit log bounded (client IDs are
// cut at 128 bytes, kids are not echoed until they are known, a scope or
// resource no API has is quoted to 64 bytes), so a client cannot fill the
// log, or its error response, with 64 KiB values.
func TestRefusalAuditClipsClientValues(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("é", 3000)     // 6 kB, two bytes a rune
	longName := strings.Repeat("a", 6000) // a well-formed scope or resource no API has
	jobBasic := http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}
	for _, r := range []request{
		{body: url.Values{"grant_type": {"client_credentials"}, "client_id": {long}, "client_secret": {"x"}, "scope": {long}}.Encode()},
		{body: url.Values{"grant_type": {long}}.Encode()},
		{body: url.Values{"grant_type": {oauth2.GrantJWTBearer}, "assertion": {sign(t, e.other, jose.RS256, long, claims(nil), nil)}}.Encode()},
		{body: url.Values{"grant_type": {"client_credentials"}, "scope": {longName}}.Encode(), header: jobBasic},
		{body: url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}, "resource": {"https://" + longName}}.Encode(), header: jobBasic},
		// A registered resource named again and again, none with the scope.
		{body: url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}, "resource": slices.Repeat([]string{"https://billing.internal"}, 1500)}.Encode(), header: jobBasic},
		{body: url.Values{"grant_type": {oauth2.GrantJWTBearer}, "assertion": {sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) { c["scope"] = longName }), nil)}}.Encode()},
	} {
		w := e.do(r)
		if w.Code != 400 && w.Code != 401 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if w.Body.Len() > 1024 {
			t.Errorf("the error is %d bytes: %.200s…", w.Body.Len(), w.Body)
		}
	}
	evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Limit: 10})
	if err != nil || len(evs) != 7 {
		t.Fatalf("%d refusals audited, want 7: %v", len(evs), err)
	}
	for _, ev := range evs {
		for k, v := range ev.Data {
			if len(v) > 512+len("…") || !utf8.ValidString(v) {
				t.Errorf("audit data %s is %d bytes (valid UTF-8: %v)", k, len(v), utf8.ValidString(v))
			}
		}
	}
}

// A refusal is audited under the grant's name whether it comes from the
// grant's own checks or from those every grant shares before them (client
// authentication, the DPoP proof).
func TestRefusalAuditNamesTheGrant(t *testing.T) {
	e := newEnv(t)
	wrongSecret := http.Header{"Authorization": {basicAuth(e.job.ID, "kw_wrong")}}
	badProof := http.Header{"Dpop": {"not-a-jws"}}
	badProofBasic := http.Header{"Dpop": {"not-a-jws"}, "Authorization": {basicAuth(e.job.ID, jobSecret)}}
	assertion := url.Values{"grant_type": {oauth2.GrantJWTBearer}, "assertion": {sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil)}}.Encode()
	for _, tc := range []struct {
		name string
		req  request
		want string
	}{
		{"jwt-bearer, bad assertion", request{body: url.Values{"grant_type": {oauth2.GrantJWTBearer}, "assertion": {"x"}}.Encode()}, "jwt-bearer"},
		{"jwt-bearer, failed client authentication", request{body: assertion, header: wrongSecret}, "jwt-bearer"},
		{"jwt-bearer, bad DPoP proof", request{body: assertion, header: badProof}, "jwt-bearer"},
		{"client credentials, failed client authentication", request{body: "grant_type=client_credentials", header: wrongSecret}, "client_credentials"},
		{"client credentials, bad DPoP proof", request{body: "grant_type=client_credentials", header: badProofBasic}, "client_credentials"},
		{"unsupported grant", request{body: "grant_type=password"}, "unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if w := e.do(tc.req); w.Code < 400 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
			if err != nil || len(evs) != 1 {
				t.Fatalf("no refusal audited: %v", err)
			}
			if got := evs[0].Data["grant"]; got != tc.want || evs[0].Data["error"] == "" {
				t.Errorf("audited grant %q, want %q (%v)", got, tc.want, evs[0].Data)
			}
		})
	}
}

func TestClientCredentials(t *testing.T) {
	e := newEnv(t)
	jobBasic := http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}
	all := "orders.read orders.write billing.read"
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantError  string
		wantDesc   string // part of the error_description
		wantScope  string
	}{
		{name: "basic", req: request{body: "grant_type=client_credentials&scope=orders.read", header: jobBasic}, wantStatus: 200, wantScope: "orders.read"},
		{name: "post", req: request{body: url.Values{"grant_type": {"client_credentials"}, "client_id": {e.job.ID}, "client_secret": {jobSecret}}.Encode()},
			wantStatus: 200, wantScope: all},
		{name: "no scope: the account's scopes", req: request{body: "grant_type=client_credentials", header: jobBasic}, wantStatus: 200, wantScope: all},
		{name: "wrong secret", req: request{body: "grant_type=client_credentials", header: http.Header{"Authorization": {basicAuth(e.job.ID, "kw_wrong")}}},
			wantStatus: 401, wantError: "invalid_client"},

		// The account by numeric ID in one place and by email in the other.
		{name: "client_id email beside Basic numeric id", req: request{body: "grant_type=client_credentials&client_id=" + url.QueryEscape(e.job.Email), header: jobBasic},
			wantStatus: 200, wantScope: all},
		{name: "client_id of another account beside Basic", req: request{body: "grant_type=client_credentials&client_id=other%40proj.iam.test", header: jobBasic},
			wantStatus: 400, wantError: "invalid_request", wantDesc: "disagrees"},

		{name: "two Authorization headers", req: request{body: "grant_type=client_credentials",
			header: http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret), basicAuth("other@proj.iam.test", "kw_x")}}},
			wantStatus: 400, wantError: "invalid_request", wantDesc: "more than one Authorization header"},

		{name: "malformed Basic header", req: request{body: "grant_type=client_credentials", header: http.Header{"Authorization": {"Basic not-base64!"}}},
			wantStatus: 400, wantError: "invalid_request", wantDesc: "Authorization header is malformed"},

		{name: "client_id without credentials", req: request{body: "grant_type=client_credentials&client_id=" + e.job.ID},
			wantStatus: 401, wantError: "invalid_client", wantDesc: "Client authentication failed."},
		{name: "no credentials", req: request{body: "grant_type=client_credentials"},
			wantStatus: 401, wantError: "invalid_client", wantDesc: "The client_credentials grant needs client authentication: a client secret, a client assertion or a TLS client certificate."},
		{name: "certificate without client_id", req: request{body: "grant_type=client_credentials", tls: clientCert(t)},
			wantStatus: 400, wantError: "invalid_request", wantDesc: "client_id is required with tls_client_auth"},

		// RFC 6749 §3.1: parameters sent without a value are as if omitted.
		{name: "empty scope is omitted", req: request{body: "grant_type=client_credentials&scope=", header: jobBasic}, wantStatus: 200, wantScope: all},
		{name: "empty client_secret beside Basic is omitted", req: request{body: "grant_type=client_credentials&client_secret=&scope=orders.read", header: jobBasic},
			wantStatus: 200, wantScope: "orders.read"},
		{name: "empty client_assertion parameters are omitted", req: request{body: "grant_type=client_credentials&client_assertion=&client_assertion_type=", header: jobBasic},
			wantStatus: 200, wantScope: all},
		{name: "empty grant_type", req: request{body: "grant_type=&scope=orders.read", header: jobBasic}, wantStatus: 400, wantError: "invalid_request", wantDesc: "grant_type parameter is required"},
		{name: "empty scope twice", req: request{body: "grant_type=client_credentials&scope=&scope=orders.read", header: jobBasic}, wantStatus: 400, wantError: "invalid_request", wantDesc: "more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(tt.req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tt.wantStatus)
			}
			var body map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %s", w.Body)
			}
			if tt.wantError != "" {
				if body["error"] != tt.wantError {
					t.Fatalf("error = %v (%v), want %s", body["error"], body["error_description"], tt.wantError)
				}
				if d, _ := body["error_description"].(string); !strings.Contains(d, tt.wantDesc) {
					t.Fatalf("error_description %q, want %q in it", d, tt.wantDesc)
				}
				return
			}
			e.checkToken(t, body, tt.wantScope, "")
		})
	}
}

// Without a scope parameter a token carries the account's scopes, which
// resolveScopes returns as they are (no copy): the account's own slice,
// which the cache shares with every request. Nothing after it may change
// that slice: every token, one after another and at once, carries the
// account's scopes in the account's order.
func TestAccountScopesStay(t *testing.T) {
	e := newEnvOn(t, true)
	jobBasic := http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}
	want := "orders.read orders.write billing.read" // not sorted
	scope := func() string {
		w := e.do(request{body: "grant_type=client_credentials", header: jobBasic})
		var body struct{ Scope string }
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || w.Code != 200 {
			return fmt.Sprintf("status %d: %s", w.Code, w.Body)
		}
		return body.Scope
	}
	for range 3 {
		if got := scope(); got != want {
			t.Fatalf("scope %q, want %q", got, want)
		}
	}
	var wg sync.WaitGroup
	got := make([]string, 8)
	for i := range got {
		wg.Go(func() { got[i] = scope() })
	}
	wg.Wait()
	for _, g := range got {
		if g != want {
			t.Errorf("scope %q at once with other requests, want %q", g, want)
		}
	}
}

// A value the client sent reads in an error_description as it was sent,
// in single quotes, with ? for each character RFC 6749 §5.2 does not
// allow there, not as JSON escapes that the description's own cleaning
// then mangles ('a/'b/u003c?').
func TestDescriptionQuotesClientValues(t *testing.T) {
	e := newEnv(t)
	jobBasic := http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}
	const odd = "a\"b<\u00e9"
	for _, tt := range []struct {
		name, body, want string
	}{
		{"scope", url.Values{"grant_type": {"client_credentials"}, "scope": {odd}}.Encode(),
			badScope + " The scope 'a?b<?' contains characters RFC 6749 section 3.3 does not allow: a scope is printable ASCII without spaces, double quotes or backslashes."},
		{"resource", url.Values{"grant_type": {"client_credentials"}, "scope": {"orders.read"}, "resource": {"https://x/" + odd}}.Encode(),
			"The resource 'https://x/a?b<?' is not a registered API."},
		{"parameter name", "grant_type=client_credentials&" + url.QueryEscape(odd) + "=1&" + url.QueryEscape(odd) + "=2",
			"The parameter 'a?b<?' is given more than once."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(request{body: tt.body, header: jobBasic})
			var body struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Fatalf("status %d, body %s: want an error", w.Code, w.Body)
			}
			if body.Description != tt.want {
				t.Errorf("error_description\n %q, want\n %q", body.Description, tt.want)
			}
		})
	}
}

// clientCert is a connection that presented a self-signed client
// certificate.
func clientCert(t *testing.T) *tls.ConnectionState {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "job"}, NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
}

// Failed assertions are throttled like failed client authentications: per
// source, and per iss at a source, sharing the budget with client
// authentication; a key holder elsewhere is not held back.
func TestJWTBearerThrottle(t *testing.T) {
	e := newEnv(t)
	good := sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil)
	forged := sign(t, e.other, jose.RS256, "rs", claims(nil), nil) // iss job, signed with another account's key
	tooMany := func(t *testing.T, w *httptest.ResponseRecorder) {
		t.Helper()
		if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), `"temporarily_unavailable"`) {
			t.Fatalf("status %d %s (Retry-After %q), want 429 temporarily_unavailable with Retry-After", w.Code, w.Body, w.Header().Get("Retry-After"))
		}
	}

	t.Run("per iss at a source", func(t *testing.T) {
		var w *httptest.ResponseRecorder
		for range 20 {
			w = e.do(request{body: form(forged), remote: "198.51.100.1"})
		}
		tooMany(t, w)
		// The right key from that address waits too: the check comes first…
		tooMany(t, e.do(request{body: form(good), remote: "198.51.100.1"}))
		// …but the account is not locked out: elsewhere it works.
		if w := e.do(request{body: form(good), remote: "203.0.113.9"}); w.Code != 200 {
			t.Fatalf("from another address: %d %s", w.Code, w.Body)
		}
		// Another account at that address is not throttled yet.
		other := sign(t, e.other, jose.RS256, "ok", claims(func(c map[string]any) { c["iss"] = "other@proj.iam.test" }), nil)
		if w := e.do(request{body: form(other), remote: "198.51.100.1"}); w.Code != 200 {
			t.Fatalf("another account from the address: %d %s", w.Code, w.Body)
		}
	})

	t.Run("per source", func(t *testing.T) {
		var w *httptest.ResponseRecorder
		for i := range 60 {
			// A different unknown iss each time, and garbage.
			w = e.do(request{body: form(sign(t, e.other, jose.RS256, "", claims(func(c map[string]any) { c["iss"] = fmt.Sprintf("ghost%d@proj.iam.test", i) }), nil)), remote: "198.51.100.2"})
			e.do(request{body: form("not-a-jwt"), remote: "198.51.100.2"})
		}
		tooMany(t, w)
		tooMany(t, e.do(request{body: form(good), remote: "198.51.100.2"}))
		// The budget is client authentication's too.
		tooMany(t, e.do(request{body: "grant_type=client_credentials", header: http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}, remote: "198.51.100.2"}))
	})

	t.Run("the key holder's mistakes after a good signature", func(t *testing.T) {
		// A disabled key proves the key: not counted.
		off := sign(t, e.offKey, jose.RS256, "off", claims(nil), nil)
		for range 20 {
			if w := e.do(request{body: form(off), remote: "198.51.100.3"}); w.Code != 400 {
				t.Fatalf("disabled key: %d %s, want 400 disabled_client every time", w.Code, w.Body)
			}
		}
	})
}

// An account's failures count under its ID whether the assertion names it
// by email or by ID, so alternating the two gets one allowance, not two:
// through the store, and through the cache, where the ID is known before
// the store would be asked.
func TestJWTBearerThrottleEmailOrID(t *testing.T) {
	for _, cached := range []bool{false, true} {
		t.Run(map[bool]string{false: "store", true: "cache"}[cached], func(t *testing.T) {
			e := newEnvOn(t, cached)
			byID := func(c map[string]any) { c["iss"] = e.job.ID }
			forged := []string{ // signed with another account's key
				sign(t, e.other, jose.RS256, "rs", claims(nil), nil),
				sign(t, e.other, jose.RS256, "rs", claims(byID), nil),
			}
			const burst = 10 // clientauth's per-client allowance at one source
			for i := range burst {
				if w := e.do(request{body: form(forged[i%2]), remote: "198.51.100.1"}); w.Code != http.StatusBadRequest {
					t.Fatalf("forged assertion %d: %d %s, want 400", i, w.Code, w.Body)
				}
			}
			good := []string{sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil), sign(t, e.rsKey, jose.RS256, "rs", claims(byID), nil)}
			for i, a := range append(forged, good...) {
				if w := e.do(request{body: form(a), remote: "198.51.100.1"}); w.Code != http.StatusTooManyRequests {
					t.Errorf("assertion %d after %d failures: %d %s, want 429", i, burst, w.Code, w.Body)
				}
			}
			for i, a := range good {
				if w := e.do(request{body: form(a), remote: "203.0.113.9"}); w.Code != http.StatusOK {
					t.Errorf("good assertion %d from another address: %d %s", i, w.Code, w.Body)
				}
			}
		})
	}
}

// lookupsFail is a directory whose account lookups fail as a store that
// cannot be reached does.
type lookupsFail struct{ token.Directory }

func (lookupsFail) GetAccount(context.Context, string) (storage.Account, error) {
	return storage.Account{}, errors.New("connection refused")
}

func (lookupsFail) GetAccountByEmail(context.Context, string) (storage.Account, error) {
	return storage.Account{}, errors.New("connection refused")
}

// A store that cannot be reached when the JWT-bearer grant looks up the
// assertion's account is temporarily_unavailable, whether iss names the
// account by email or by ID, and is no failure of the client's: however
// often it happens, the client is not throttled.
func TestJWTBearerStoreErrorIsNotAFailure(t *testing.T) {
	e := newEnv(t)
	e.h = e.newHandler(lookupsFail{e.store})
	byEmail := sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil)
	byID := sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) { c["iss"] = e.job.ID }), nil)
	for i := range 60 { // past the per-client and the per-address allowance
		a := []string{byEmail, byID}[i%2]
		w := e.do(request{body: form(a), remote: "198.51.100.1"})
		if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), `"temporarily_unavailable"`) || w.Header().Get("Retry-After") == "" {
			t.Fatalf("request %d with the store down: %d %s (Retry-After %q), want 503 temporarily_unavailable with Retry-After", i, w.Code, w.Body, w.Header().Get("Retry-After"))
		}
	}
}

// A client that goes away while its token waits out the second of its
// account's revocation is answered as a canceled request (503
// temporarily_unavailable), not as the server's failure (500).
func TestRevocationSecondWaitCanceled(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.store.UpdateAccount(ctx, e.job.ID, func(a storage.Account) (storage.Account, error) {
		a.TokensRevokedBefore = e.now
		return a, nil
	}, storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}, storage.Guard{}); err != nil {
		t.Fatal(err)
	}
	// e.now stands still at the revocation's second, so the wait is a
	// whole second: the request is canceled well within it.
	reqCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	req := httptest.NewRequestWithContext(reqCtx, "POST", "/token", strings.NewReader("grant_type=client_credentials&scope=orders.read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", basicAuth(e.job.ID, jobSecret))
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if w.Code != http.StatusServiceUnavailable || !strings.Contains(w.Body.String(), "temporarily_unavailable") {
		t.Fatalf("%d %s, want 503 temporarily_unavailable", w.Code, w.Body)
	}
}

// issuedCert is a connection that presented a client certificate with the
// subject CN=cn, issued by the env's CA.
func (e *env) issuedCert(t *testing.T, cn string) *tls.ConnectionState {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn}, NotBefore: t0.Add(-time.Hour), NotAfter: t0.Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, e.caCert, &k.PublicKey, e.caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
}

// A token got with a certificate in the second its account's certificate
// tokens were revoked (a change of its binding) would be born revoked: it
// is issued in the next second. One got with the secret, which that
// revocation does not concern, is issued at once; after sa revoke-tokens,
// which concerns both, both wait. So do tokens asked for just before a
// revocation made by a replica whose clock is ahead of this one's.
func TestRevocationSecondWaitCertificate(t *testing.T) {
	e := newEnv(t)
	// The last millisecond of t0's second: a token that waits for the next
	// second waits 1 ms, not a whole second.
	e.now = t0.Add(time.Second - time.Millisecond)
	ctx := context.Background()
	viaCert := request{body: "grant_type=client_credentials&scope=orders.read&client_id=" + e.job.ID, tls: e.issuedCert(t, "job")}
	viaSecret := request{body: "grant_type=client_credentials&scope=orders.read", header: http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}}
	// The JWT-bearer grant to a client that authenticated with a
	// certificate: the token names the assertion's key, and is bound to
	// the certificate, whose change of binding ends it.
	viaAssertionAndCert := request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil), "client_id", e.job.ID), tls: e.issuedCert(t, "job")}
	viaAssertion := request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(nil), nil))}
	now := t0.Unix()
	for _, tt := range []struct {
		name      string
		all, cert time.Time // the account's revocations
		req       request
		wantIat   int64
	}{
		{"certificate, its tokens revoked this second", time.Time{}, t0, viaCert, now + 1},
		{"secret, the certificate tokens revoked this second", time.Time{}, t0, viaSecret, now},
		{"certificate, the certificate tokens revoked a second ago", time.Time{}, t0.Add(-time.Second), viaCert, now},
		{"certificate, all tokens revoked this second", t0, time.Time{}, viaCert, now + 1},
		{"secret, all tokens revoked this second", t0, time.Time{}, viaSecret, now + 1},
		{"assertion and certificate, the certificate tokens revoked this second", time.Time{}, t0, viaAssertionAndCert, now + 1},
		{"assertion alone, the certificate tokens revoked this second", time.Time{}, t0, viaAssertion, now},
		// Revoked by a replica whose clock is ahead of this one's: in the
		// next second by this clock. A token issued now would be born
		// revoked; it waits for the second after the revocation.
		{"secret, all tokens revoked in the next second by a clock ahead", t0.Add(time.Second), time.Time{}, viaSecret, now + 2},
		{"certificate, its tokens revoked in the next second by a clock ahead", time.Time{}, t0.Add(time.Second + 500*time.Millisecond), viaCert, now + 2},
		{"secret, the certificate tokens revoked in the next second by a clock ahead", time.Time{}, t0.Add(time.Second), viaSecret, now},
		// Further ahead than clocks differ: not waited for.
		{"secret, all tokens revoked a minute ahead", t0.Add(time.Minute), time.Time{}, viaSecret, now},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := e.store.UpdateAccount(ctx, e.job.ID, func(a storage.Account) (storage.Account, error) {
				a.AuthMethods = append(storage.DefaultAuthMethods, storage.AuthTLS)
				a.TLS = storage.TLSBinding{SubjectDN: "CN=job"}
				a.TokensRevokedBefore, a.CertTokensRevokedBefore = tt.all, tt.cert
				return a, nil
			}, storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}, storage.Guard{}); err != nil {
				t.Fatal(err)
			}
			w := e.do(tt.req)
			var body map[string]any
			json.Unmarshal(w.Body.Bytes(), &body)
			raw, _ := body["access_token"].(string)
			var c oauth2.AccessClaims
			if w.Code != 200 {
				t.Fatalf("%d %v", w.Code, body)
			}
			if err := e.signer.Verify(raw, &c); err != nil {
				t.Fatal(err)
			}
			if c.IssuedAt != tt.wantIat {
				t.Errorf("iat %d (credential %q), want %d", c.IssuedAt, c.Credential, tt.wantIat)
			}
		})
	}
}

// A refusal names as its actor only an account the request proved to come
// from: its client authenticated, or its assertion verified (signed by a
// key of the account, for this server, in time). Another assertion names
// the account it claims (account_id, which the audit filter finds), never
// as the actor: it may be a forgery, or another's replay.
func TestRefusalAuditActor(t *testing.T) {
	e := newEnv(t)
	jobBasic := http.Header{"Authorization": {basicAuth(e.job.ID, jobSecret)}}
	wrongSecret := http.Header{"Authorization": {basicAuth(e.job.ID, "kw_wrong")}}
	bearer := func(key any, kid string, mod func(map[string]any)) string {
		return form(sign(t, key, jose.RS256, kid, claims(mod), nil))
	}
	for i, tc := range []struct {
		name                   string
		req                    request
		wantAccount, wantActor string
	}{
		{"assertion signed by another account's key", request{body: bearer(e.other, "rs", nil)}, e.job.ID, ""},
		{"assertion signed by an expired key", request{body: bearer(e.oldKey, "old", nil)}, e.job.ID, ""},
		{"assertion signed by a disabled key", request{body: bearer(e.offKey, "off", nil)}, e.job.ID, ""},
		{"good assertion, unknown scope", request{body: bearer(e.rsKey, "rs", func(c map[string]any) { c["scope"] = "orders.delete" })}, e.job.ID, e.job.ID},
		{"assertion for another server", request{body: bearer(e.rsKey, "rs", func(c map[string]any) { c["aud"] = "https://elsewhere/token" })}, e.job.ID, ""},
		{"wrong client secret", request{body: "grant_type=client_credentials", header: wrongSecret}, "", ""},
		{"authenticated client, unknown scope", request{body: "grant_type=client_credentials&scope=orders.delete", header: jobBasic}, e.job.ID, e.job.ID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.remote = fmt.Sprintf("192.0.2.%d", i+1)
			if w := e.do(tc.req); w.Code < 400 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
			if err != nil || len(evs) != 1 {
				t.Fatalf("no refusal audited: %v", err)
			}
			if ev := evs[0]; ev.AccountID != tc.wantAccount || ev.Actor != tc.wantActor {
				t.Errorf("account_id %q, actor %q; want %q, %q (%v)", ev.AccountID, ev.Actor, tc.wantAccount, tc.wantActor, ev.Data)
			}
		})
	}
}

// A replayed assertion, whose jti the store finds already used, proves
// nothing of who sent it: anyone who saw it can send it again. Its
// refusal names the account it claims (account_id), not as the actor,
// whether it is a JWT-bearer assertion or a private_key_jwt client
// assertion.
func TestRefusalAuditActorReplay(t *testing.T) {
	e := newEnv(t)
	bearer := form(sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) { c["jti"] = "bearer-once" }), nil))
	clientAssertion := url.Values{
		"grant_type": {"client_credentials"}, "scope": {"orders.read"}, "client_id": {e.job.ID},
		"client_assertion_type": {oauth2.ClientAssertionJWT},
		"client_assertion": {sign(t, e.rsKey, jose.RS256, "rs", map[string]any{
			"iss": e.job.ID, "sub": e.job.ID, "aud": endpoint, "jti": "client-once",
			"iat": t0.Add(-10 * time.Second).Unix(), "exp": t0.Add(time.Minute).Unix()}, nil)},
	}.Encode()
	for i, tc := range []struct{ name, body string }{
		{"JWT-bearer assertion", bearer},
		{"client assertion", clientAssertion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := request{body: tc.body, remote: fmt.Sprintf("192.0.2.%d", i+1)}
			if w := e.do(req); w.Code != http.StatusOK {
				t.Fatalf("first use: status %d: %s", w.Code, w.Body)
			}
			if w := e.do(req); w.Code < 400 {
				t.Fatalf("replay: status %d: %s", w.Code, w.Body)
			}
			evs, err := e.store.ListAuditEvents(context.Background(), storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
			if err != nil || len(evs) != 1 {
				t.Fatalf("no refusal audited: %v", err)
			}
			if ev := evs[0]; ev.AccountID != e.job.ID || ev.Actor != "" {
				t.Errorf("account_id %q, actor %q; want %q, no actor (%v)", ev.AccountID, ev.Actor, e.job.ID, ev.Data)
			}
		})
	}
}

// A refused delegation's audit event names the user the account asked to
// act for (lower-cased, cut as every value a client sends is), as an
// issued token's event does: without it the log could not tell whom an
// account tried to impersonate.
func TestDelegationRefusalNamesTheUser(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}
	if err := e.store.CreateOrg(ctx, storage.Org{Domain: "example.com", BlockedScopes: []string{}, CreatedAt: t0}, ev); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutUsers(ctx, []storage.User{{Email: "bob@example.com", Org: "example.com", Suspended: true, CreatedAt: t0}},
		func([]storage.User) storage.AuditEvent { return ev }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: e.job.ID, Scopes: []string{"orders.read"}, CreatedAt: t0}, ev); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("a", 6000) + "@example.com"
	for _, tt := range []struct {
		name, sub, wantError, wantSubject string
	}{
		{"suspended user", "Bob@Example.com", oauth2.ErrInvalidGrant, "bob@example.com"},
		{"no grant in the organization", "carol@other.org", oauth2.ErrUnauthorizedClient, "carol@other.org"},
		{"long subject", long, oauth2.ErrInvalidGrant, long[:256] + "…"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := e.do(request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) { c["sub"] = tt.sub }), nil))})
			if w.Code != 400 {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			evs, err := e.store.ListAuditEvents(ctx, storage.AuditFilter{Action: "token.refused", Newest: true, Limit: 1})
			if err != nil || len(evs) != 1 {
				t.Fatalf("no refusal audited: %v", err)
			}
			if d := evs[0].Data; d["error"] != tt.wantError || d["subject"] != tt.wantSubject {
				t.Errorf("audited %s with subject %q, want %s with %q", d["error"], d["subject"], tt.wantError, tt.wantSubject)
			}
		})
	}
}

// A delegation's grant or user made by a replica whose clock is ahead of
// this one's is in a later second of this clock: a token issued at once
// would be older than them, which introspection takes for a token of an
// earlier grant or user, inactive from the start. It is issued in their
// second; one further ahead than clocks differ is not waited for.
func TestDelegationMadeByAClockAhead(t *testing.T) {
	e := newEnv(t)
	e.now = t0.Add(time.Second - time.Millisecond)
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}
	if err := e.store.CreateOrg(ctx, storage.Org{Domain: "example.com", BlockedScopes: []string{}, CreatedAt: t0}, ev); err != nil {
		t.Fatal(err)
	}
	now := t0.Unix()
	for i, tt := range []struct {
		name        string
		grant, user time.Time
		wantIat     int64
	}{
		{"grant and user made before", t0, t0, now},
		{"grant made in the next second", t0.Add(time.Second), t0, now + 1},
		{"user made in the next second", t0, t0.Add(1500 * time.Millisecond), now + 1},
		{"grant made a minute ahead", t0.Add(time.Minute), t0, now},
	} {
		t.Run(tt.name, func(t *testing.T) {
			user := fmt.Sprintf("user%d@example.com", i)
			if err := e.store.PutUsers(ctx, []storage.User{{Email: user, Org: "example.com", CreatedAt: tt.user}},
				func([]storage.User) storage.AuditEvent { return ev }); err != nil {
				t.Fatal(err)
			}
			e.store.DeleteGrant(ctx, "example.com", e.job.ID, ev)
			if _, err := e.store.PutGrant(ctx, storage.Grant{Org: "example.com", ClientID: e.job.ID, Scopes: []string{"orders.read"}, CreatedAt: tt.grant}, ev); err != nil {
				t.Fatal(err)
			}
			w := e.do(request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) { c["sub"], c["jti"] = user, user }), nil))})
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			var body struct {
				AccessToken string `json:"access_token"`
			}
			json.Unmarshal(w.Body.Bytes(), &body)
			var c oauth2.AccessClaims
			if err := e.signer.Verify(body.AccessToken, &c); err != nil {
				t.Fatal(err)
			}
			if c.IssuedAt != tt.wantIat {
				t.Errorf("iat %d, want %d", c.IssuedAt, tt.wantIat)
			}
		})
	}
}

// TestDelegationUserInAnotherOrganization: the token endpoint acts only
// for a user of the organization of its email's domain. A user an import
// placed in another organization is refused as an unknown user, even when
// the account has a grant in both organizations.
func TestDelegationUserInAnotherOrganization(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}
	for _, org := range []string{"example.com", "other.org"} {
		if err := e.store.CreateOrg(ctx, storage.Org{Domain: org, BlockedScopes: []string{}, CreatedAt: t0}, ev); err != nil {
			t.Fatal(err)
		}
		if _, err := e.store.PutGrant(ctx, storage.Grant{Org: org, ClientID: e.job.ID, Scopes: []string{"orders.read"}, CreatedAt: t0}, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.PutUsers(ctx, []storage.User{
		{Email: "alice@example.com", Org: "example.com", CreatedAt: t0},
		{Email: "dan@example.com", Org: "other.org", CreatedAt: t0},
	}, func([]storage.User) storage.AuditEvent { return ev }); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sub        string
		wantStatus int
		wantError  string
	}{
		{"alice@example.com", 200, ""},
		{"dan@example.com", 400, oauth2.ErrInvalidGrant},
	} {
		t.Run(tt.sub, func(t *testing.T) {
			w := e.do(request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) { c["sub"] = tt.sub }), nil))})
			var body struct{ Error string }
			json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tt.wantStatus || body.Error != tt.wantError {
				t.Fatalf("status %d %s, want %d %q", w.Code, w.Body, tt.wantStatus, tt.wantError)
			}
		})
	}
}

// An organization at the domain of service accounts' emails made under an
// earlier account domain (the admin API refuses one now; an older store or
// an import may have it) may hold a user whose email is an account's. A
// delegated token for that user would carry the account's email as its
// sub: it is refused as an unknown user is, whatever the capitals of the
// sub or of the stored email, and only once the client is entitled to
// learn about the organization's users.
func TestDelegationSubjectIsAnAccountEmail(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}
	// The last made under an account domain written with a final dot.
	for i, email := range []string{"old@shop.old.test", "Caps@shop.OLD.test", "dot@shop.old.test."} {
		local, _, _ := strings.Cut(email, "@")
		a := storage.Account{ID: fmt.Sprintf("10000000000000000008%d", i), Email: email, Name: strings.ToLower(local), Project: "shop",
			TokenLifetime: 30 * time.Minute, AuthMethods: storage.DefaultAuthMethods, CreatedAt: t0, UpdatedAt: t0}
		if err := e.store.CreateAccount(ctx, a, ev); err != nil {
			t.Fatal(err)
		}
	}
	// One an import kept whose email, in capitals, is not of its name and
	// project (NAME@PROJECT.<account domain>).
	imported := storage.Account{ID: "100000000000000000089", Email: "Imported.Job@Shop.OLD.test", Name: "job", Project: "billing",
		TokenLifetime: 30 * time.Minute, AuthMethods: storage.DefaultAuthMethods, CreatedAt: t0, UpdatedAt: t0}
	if err := e.store.CreateAccount(ctx, imported, ev); err != nil {
		t.Fatal(err)
	}
	// Imported ones with letters beyond ASCII, one in capitals: a sub
	// written as its email, or lowered as its user's is stored, is
	// refused; the store compares ASCII case only (storage.Storage).
	for i, email := range []string{"ÉLISE@shop.old.test", "zoë@shop.old.test"} {
		a := storage.Account{ID: fmt.Sprintf("10000000000000000009%d", i), Email: email, Name: fmt.Sprintf("intl%d", i), Project: "intl",
			TokenLifetime: 30 * time.Minute, AuthMethods: storage.DefaultAuthMethods, CreatedAt: t0, UpdatedAt: t0}
		if err := e.store.CreateAccount(ctx, a, ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.CreateOrg(ctx, storage.Org{Domain: "shop.old.test", BlockedScopes: []string{}, CreatedAt: t0}, ev); err != nil {
		t.Fatal(err)
	}
	if err := e.store.PutUsers(ctx, []storage.User{
		{Email: "old@shop.old.test", Org: "shop.old.test", CreatedAt: t0},
		{Email: "caps@shop.old.test", Org: "shop.old.test", CreatedAt: t0},
		{Email: "dot@shop.old.test", Org: "shop.old.test", CreatedAt: t0},
		{Email: "imported.job@shop.old.test", Org: "shop.old.test", CreatedAt: t0},
		{Email: "alice@shop.old.test", Org: "shop.old.test", CreatedAt: t0},
		{Email: "élise@shop.old.test", Org: "shop.old.test", CreatedAt: t0},
		{Email: "zoë@shop.old.test", Org: "shop.old.test", CreatedAt: t0},
	}, func([]storage.User) storage.AuditEvent { return ev }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.PutGrant(ctx, storage.Grant{Org: "shop.old.test", ClientID: e.job.ID, Scopes: []string{"orders.read"}, CreatedAt: t0}, ev); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		sub        string
		wantStatus int
		wantError  string
		wantDesc   string
	}{
		{"alice@shop.old.test", 200, "", ""},
		{"old@shop.old.test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
		{"Old@Shop.Old.Test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
		{"caps@shop.old.test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
		{"dot@shop.old.test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
		{"imported.job@shop.old.test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
		{"Imported.Job@Shop.Old.Test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
		{"ÉLISE@shop.old.test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
		{"ÉLISE@Shop.Old.Test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
		{"zoë@shop.old.test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
		{"ZOË@shop.old.test", 400, oauth2.ErrInvalidGrant, "Not a valid email."},
	} {
		t.Run(tt.sub, func(t *testing.T) {
			w := e.do(request{body: form(sign(t, e.rsKey, jose.RS256, "rs", claims(func(c map[string]any) { c["sub"] = tt.sub }), nil))})
			var body struct {
				Error       string
				Description string `json:"error_description"`
			}
			json.Unmarshal(w.Body.Bytes(), &body)
			if w.Code != tt.wantStatus || body.Error != tt.wantError || body.Description != tt.wantDesc {
				t.Fatalf("status %d %s, want %d %q %q", w.Code, w.Body, tt.wantStatus, tt.wantError, tt.wantDesc)
			}
		})
	}
}

// A store made before the account domain had to be lower case may hold an
// account whose email has capitals. An assertion whose sub is that email,
// exactly or in other capitals, is the account's own, not a delegation:
// 1873a27 compared the lower-cased sub with the email as stored.
func TestJWTBearerSubIsEmailWithCapitals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ev := storage.AuditEvent{Time: t0, Action: "fixture", Outcome: storage.OutcomeSuccess}
	a := storage.Account{ID: "100000000000000000009", Email: "cap@proj.IAM.test", Name: "cap", Project: "proj", Scopes: []string{"orders.read"},
		TokenLifetime: 30 * time.Minute, AuthMethods: storage.DefaultAuthMethods, CreatedAt: t0, UpdatedAt: t0}
	if err := e.store.CreateAccount(ctx, a, ev); err != nil {
		t.Fatal(err)
	}
	spki, _ := x509.MarshalPKIXPublicKey(&e.other.PublicKey)
	if err := e.store.CreateKey(ctx, storage.Key{ID: "cap", AccountID: a.ID, Algorithm: "RS256", PublicKey: spki, Origin: storage.KeyOriginUploaded, CreatedAt: t0}, nil, ev); err != nil {
		t.Fatal(err)
	}
	for _, sub := range []string{"cap@proj.IAM.test", "Cap@proj.iam.test"} {
		t.Run(sub, func(t *testing.T) {
			w := e.do(request{body: form(sign(t, e.other, jose.RS256, "cap", claims(func(c map[string]any) { c["iss"], c["sub"] = a.Email, sub }), nil))})
			if w.Code != 200 {
				t.Fatalf("status %d %s, want 200", w.Code, w.Body)
			}
		})
	}
}
