package verify_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
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
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/admin"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/internal/signer"
	"github.com/keyward/keyward/internal/testkeys"
	"github.com/keyward/keyward/internal/testkeyward"
	"github.com/keyward/keyward/internal/tokenstate"
	"github.com/keyward/keyward/verify"
)

func newVerifier(t testing.TB, k *testkeyward.Server, opts ...verify.Option) *verify.Verifier {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := verify.New(ctx, k.URL, "https://orders.internal", append([]verify.Option{verify.WithClock(k.Clock.Now)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantInvalid(t *testing.T, err error, fragment string) {
	t.Helper()
	var ve *verify.Error
	if !errors.As(err, &ve) || ve.Code != "invalid_token" {
		t.Fatalf("err = %v, want invalid_token", err)
	}
	if fragment != "" && !strings.Contains(ve.Description, fragment) {
		t.Fatalf("description %q does not mention %q", ve.Description, fragment)
	}
}

func wantUnavailable(t *testing.T, err error) {
	t.Helper()
	var ve *verify.Error
	if !errors.Is(err, verify.ErrUnavailable) || !errors.As(err, &ve) || ve.Code != "temporarily_unavailable" {
		t.Fatalf("err = %v, want ErrUnavailable (temporarily_unavailable)", err)
	}
}

// wantMiddlewareUnavailable checks that Middleware answers raw 503
// temporarily_unavailable with Retry-After and no challenge (RFC 6750
// §3.1's invalid_token is for tokens known bad).
func wantMiddlewareUnavailable(t *testing.T, v *verify.Verifier, raw string) {
	t.Helper()
	w := serve(v, raw)
	if w.Code != 503 || w.Header().Get("Retry-After") == "" || w.Header().Get("WWW-Authenticate") != "" {
		t.Fatalf("middleware: %d, Retry-After %q, WWW-Authenticate %q; want 503 with Retry-After and no challenge",
			w.Code, w.Header().Get("Retry-After"), w.Header().Get("WWW-Authenticate"))
	}
	var body struct{ Error string }
	if json.Unmarshal(w.Body.Bytes(), &body); body.Error != "temporarily_unavailable" {
		t.Fatalf("body %s, want error temporarily_unavailable", w.Body)
	}
}

// flakyIssuer is an HTTP client to k that fails, while the returned mode
// is set, every request whose path ends with one of paths: with a network
// error for mode "down", with the status for a mode such as "503".
func flakyIssuer(paths ...string) (*http.Client, *atomic.Value) {
	var mode atomic.Value
	mode.Store("")
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		m := mode.Load().(string)
		if m != "" && slices.ContainsFunc(paths, func(p string) bool { return strings.HasSuffix(r.URL.Path, p) }) {
			if m == "down" {
				return nil, errors.New("connection refused")
			}
			code, _ := strconv.Atoi(m)
			return &http.Response{StatusCode: code, Status: m, Body: io.NopCloser(strings.NewReader(`{"error":"server_error"}`)), Header: http.Header{}, Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}, &mode
}

// An issuer that cannot be reached makes tokens neither valid nor invalid:
// ErrUnavailable, and 503 from the middleware.
func TestIssuerUnavailable(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, apiID, apiSecret := k.Setup(t, "opaque")
	ctx := context.Background()
	client, mode := flakyIssuer("/introspect", "/jwks.json")
	v := newVerifier(t, k, verify.WithHTTPClient(client), verify.WithIntrospection(apiID, apiSecret), verify.WithUnknownKidEvery(0))
	opaque := tokenFor(t, k, id, secret, "orders.read")
	k.Signer.Rotate(ctx, "test", "")
	k.Signer.Rotate(ctx, "test", "")
	newKid := k.Sign(t, nil) // signed by a key the verifier has not fetched

	tests := []struct{ name, mode, raw string }{
		{"introspection unreachable", "down", opaque},
		{"introspection 503", "503", opaque},
		{"introspection 500", "500", opaque},
		{"introspection credentials refused", "401", opaque},
		{"unknown kid, JWKS unreachable", "down", newKid},
		{"unknown kid, JWKS 502", "502", newKid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mode.Store(tt.mode)
			defer mode.Store("")
			_, err := v.Verify(ctx, tt.raw)
			wantUnavailable(t, err)
			wantMiddlewareUnavailable(t, v, tt.raw)
		})
	}
	// Back up: both verify, and an unknown kid is invalid again. After a
	// 401 the issuer is not asked for 10 s, so its audit log is not filled
	// with refusals.
	k.Clock.Add(10 * time.Second)
	for _, raw := range []string{opaque, newKid} {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatalf("issuer back: %v", err)
		}
	}
	_, err := v.Verify(ctx, testkeyward.Start(t).Sign(t, nil))
	wantInvalid(t, err, "does not publish")
}

// A failed fetch of the issuer's keys for an unknown kid is answered
// Retry-After: 10, when the keys are tried again, whatever Retry-After
// the issuer's answer had: only introspection's is passed on.
func TestUnknownKidKeysRetryAfterNotPassedOn(t *testing.T) {
	k := testkeyward.Start(t)
	var down atomic.Bool
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if down.Load() && strings.HasSuffix(r.URL.Path, "/jwks.json") {
			return &http.Response{StatusCode: 503, Status: "503 Service Unavailable", Header: http.Header{"Retry-After": {"30"}},
				Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	v := newVerifier(t, k, verify.WithHTTPClient(client), verify.WithUnknownKidEvery(0))
	ctx := context.Background()
	k.Signer.Rotate(ctx, "test", "")
	k.Signer.Rotate(ctx, "test", "")
	down.Store(true)
	raw := k.Sign(t, nil) // signed by a key the verifier has not fetched
	_, err := v.Verify(ctx, raw)
	wantUnavailable(t, err)
	if w := serve(v, raw); w.Code != 503 || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("middleware: %d, Retry-After %q; want 503 with Retry-After 10", w.Code, w.Header().Get("Retry-After"))
	}
}

// tokenFor gets a real token through the token endpoint.
func tokenFor(t *testing.T, k *testkeyward.Server, id, secret, scope string) string {
	t.Helper()
	req, _ := http.NewRequest("POST", k.URL+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {scope}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != 200 {
		t.Fatalf("token: %s", resp.Status)
	}
	return body.AccessToken
}

func TestVerifyJWT(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, _, _ := k.Setup(t, "jwt")
	v := newVerifier(t, k)
	ctx := context.Background()

	c, err := v.Verify(ctx, tokenFor(t, k, id, secret, "orders.read"))
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientID != id || c.Subject != id || c.ClientEmail != "job@shop.iam.test" || !c.HasScope("orders.read") || c.ID == "" || c.Expiry.IsZero() {
		t.Fatalf("claims = %+v", c)
	}

	other := testkeyward.Start(t) // another issuer, with keys of its own
	wrongTyp := func() string {
		sealer, _ := signer.NewSealer(make([]byte, 32))
		s, err := signer.New(ctx, k.Store, sealer, signer.Config{Policy: signer.Policy{Algorithm: "ES256", RetainFor: time.Hour}, Type: "JWT", Now: k.Clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := s.Sign(oauth2.AccessClaims{Issuer: k.URL, Audience: oauth2.Audience{"https://orders.internal"}, Expiry: k.Clock.Now().Add(time.Hour).Unix(), ID: "x"})
		return raw
	}()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: rsaKey}, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", k.Signer.CurrentKeyID()))
	wrongAlg, _ := jwt.Signed(rs).Claims(map[string]any{"iss": k.URL, "aud": "https://orders.internal", "exp": time.Now().Add(time.Hour).Unix()}).Serialize()
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("secret-secret-secret-secret-1234")}, (&jose.SignerOptions{}).WithType("at+jwt"))
	hmacTok, _ := jwt.Signed(hs).Claims(map[string]any{"iss": k.URL, "aud": "https://orders.internal", "exp": time.Now().Add(time.Hour).Unix()}).Serialize()

	// without signs Keyward's claims, less the named ones (RFC 9068 §2.2).
	without := func(names ...string) string {
		var m map[string]any
		b, _ := json.Marshal(oauth2.AccessClaims{Issuer: k.URL, Subject: id, ClientID: id, Audience: oauth2.Audience{"https://orders.internal"},
			IssuedAt: k.Clock.Now().Unix(), Expiry: k.Clock.Now().Add(time.Hour).Unix(), ID: "jti-1"})
		json.Unmarshal(b, &m)
		for _, n := range names {
			delete(m, n)
		}
		raw, err := k.Signer.Sign(m)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	if _, err := v.Verify(ctx, without()); err != nil {
		t.Fatalf("with every required claim: %v", err)
	}
	// tampered changes a character in the middle of the claims. (One
	// changed in the header may change the kid: a kid unknown is not
	// refused while the keys may not be fetched again.)
	tampered := func(raw string) string {
		head, rest, _ := strings.Cut(raw, ".")
		i := len(head) + 1 + strings.Index(rest, ".")/2
		c := byte('x')
		if raw[i] == c {
			c = 'y'
		}
		return raw[:i] + string(c) + raw[i+1:]
	}

	tests := []struct {
		name, raw, fragment string
	}{
		{"no sub", without("sub"), "lacks sub, required"},
		{"no client_id", without("client_id"), "lacks client_id, required"},
		{"no iat", without("iat"), "lacks iat, required"},
		{"no jti", without("jti"), "lacks jti, required"},
		{"empty sub and jti", k.Sign(t, func(c *oauth2.AccessClaims) { c.Subject, c.ID = "", "" }), "lacks sub, jti, required"},
		{"no exp, aud or iss", without("exp", "aud", "iss"), "lacks iss, exp, aud, required"},
		{"wrong issuer", k.Sign(t, func(c *oauth2.AccessClaims) { c.Issuer = "https://evil" }), "issued by"},
		{"another issuer's key", other.Sign(t, nil), "does not publish"},
		{"wrong audience", k.Sign(t, func(c *oauth2.AccessClaims) { c.Audience = oauth2.Audience{"https://billing.internal"} }), "not for this API"},
		{"wrong typ", wrongTyp, "typ"},
		{"RS256 under an ES256 kid", wrongAlg, ""},
		{"HS256", hmacTok, ""},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0.eyJpc3MiOiJ4In0.", ""},
		{"expired", k.Sign(t, func(c *oauth2.AccessClaims) { c.Expiry = k.Clock.Now().Add(-time.Minute).Unix() }), "expired"},
		{"not yet valid", k.Sign(t, func(c *oauth2.AccessClaims) { c.NotBefore = k.Clock.Now().Add(10 * time.Minute).Unix() }), "not valid yet"},
		{"tampered claims", tampered(tokenFor(t, k, id, secret, "orders.read")), "signature does not verify"},
		{"opaque without introspection", "kwat_" + strings.Repeat("A", 43), "introspect"},
		{"neither JWT nor opaque", "hello", "neither"},
		{"garbage", "a.b.c", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tt.raw)
			wantInvalid(t, err, tt.fragment)
		})
	}
	t.Run("leeway", func(t *testing.T) {
		raw := k.Sign(t, func(c *oauth2.AccessClaims) { c.Expiry = k.Clock.Now().Add(-10 * time.Second).Unix() })
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatalf("a token expired 10 s ago is within the default 30 s leeway: %v", err)
		}
	})
	t.Run("cached until expiry", func(t *testing.T) {
		raw := k.Sign(t, func(c *oauth2.AccessClaims) { c.Expiry = k.Clock.Now().Add(time.Minute).Unix() })
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
		k.Clock.Add(2 * time.Minute)
		_, err := v.Verify(ctx, raw)
		wantInvalid(t, err, "expired")
	})
}

func TestUnknownKidRefetchesKeys(t *testing.T) {
	k := testkeyward.Start(t)
	v := newVerifier(t, k)
	ctx := context.Background()
	before := k.JWKSFetches.Load()
	// Two rotations: the key now signing was not in the JWKS the verifier
	// fetched at start.
	k.Signer.Rotate(ctx, "test", "")
	k.Signer.Rotate(ctx, "test", "")
	if _, err := v.Verify(ctx, k.Sign(t, nil)); err != nil {
		t.Fatalf("token of a rotated-in key: %v", err)
	}
	if got := k.JWKSFetches.Load() - before; got != 1 {
		t.Fatalf("%d JWKS fetches for one unknown kid, want 1", got)
	}
	// A flood of made-up kids does not hammer the issuer.
	other := testkeyward.Start(t)
	for range 200 {
		v.Verify(ctx, other.Sign(t, func(c *oauth2.AccessClaims) { c.ID = fmt.Sprint(time.Now().UnixNano()) }))
	}
	if got := k.JWKSFetches.Load() - before; got > 2 {
		t.Fatalf("%d JWKS fetches after 200 tokens with unknown kids, want at most 2", got)
	}
}

// pausedRefetch returns an issuer whose signing key and email's key were
// both replaced just after a Verifier, which may fetch keys again for an
// unknown kid only an hour later, fetched the old ones; and a signer with
// the account's new key.
func pausedRefetch(t *testing.T, aud, email string) (*testkeyward.Server, *verify.Verifier, func(email string, life time.Duration, aud string) string) {
	t.Helper()
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	ctx := context.Background()
	sign, _, _ := selfSignedKey(t, k)
	v := newVerifier(t, k, verify.WithSelfSignedJWTs(), verify.WithUnknownKidEvery(time.Hour))
	// The account's keys fetched, and the JWKS for a kid the issuer does
	// not publish.
	if _, err := v.Verify(ctx, sign(email, time.Hour, aud)); err != nil {
		t.Fatal(err)
	}
	_, err := v.Verify(ctx, testkeyward.Start(t).Sign(t, nil))
	wantInvalid(t, err, "does not publish")
	// New keys: a signing key rotated in, a key added to the account.
	k.Signer.Rotate(ctx, "test", "")
	k.Signer.Rotate(ctx, "test", "")
	newSign, _, _ := selfSignedKey(t, k)
	return k, v, newSign
}

// A token whose kid is unknown while the keys may not be fetched again
// yet is not called invalid: its key may be new. An access token and a
// self-signed JWT alike get ErrUnavailable with a RetryAfter, and 503 with
// Retry-After from the middleware (RFC 6750 §3.1's invalid_token is for
// tokens known bad); once the keys may be fetched again, they verify.
func TestUnknownKidRefetchPaused(t *testing.T) {
	ctx := context.Background()
	const aud, email = "https://orders.internal", "job@shop.iam.test"
	k, v, newSign := pausedRefetch(t, aud, email)
	selfSigned := newSign(email, time.Hour, aud)
	for _, tt := range []struct{ name, raw string }{
		{"access token", k.Sign(t, nil)},
		{"self-signed JWT", selfSigned},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tt.raw)
			wantUnavailable(t, err)
			if ve := err.(*verify.Error); ve.RetryAfter <= 0 {
				t.Fatalf("RetryAfter = %s, want when the keys may be fetched again", ve.RetryAfter)
			}
			wantMiddlewareUnavailable(t, v, tt.raw)
		})
	}
	k.Clock.Add(10 * time.Second) // the account's keys may be fetched again
	if _, err := v.Verify(ctx, selfSigned); err != nil {
		t.Fatalf("once the keys may be fetched again: %v", err)
	}
}

// A token with an unknown kid while the keys may not be fetched again,
// which would be refused whatever its key (expired, another issuer's, for
// another API, living too long), is refused at once (invalid_token), not
// answered 503: retried once the keys may be fetched, it would only be
// refused then, and a client that refreshes its token on 401 would
// instead keep sending the one it has.
func TestUnknownKidRefetchPausedHopeless(t *testing.T) {
	ctx := context.Background()
	const aud, email = "https://orders.internal", "job@shop.iam.test"
	k, v, newSign := pausedRefetch(t, aud, email)
	now := k.Clock.Now()
	k.Clock.Add(-2 * time.Hour)
	expiredSelfSigned := newSign(email, time.Hour, aud)
	k.Clock.Add(2 * time.Hour)
	for _, tt := range []struct{ name, raw, fragment string }{
		{"expired access token", k.Sign(t, func(c *oauth2.AccessClaims) {
			c.IssuedAt, c.Expiry = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
		}), "expired"},
		{"access token of another issuer", k.Sign(t, func(c *oauth2.AccessClaims) { c.Issuer = "https://other.example" }), "another issuer"},
		{"access token for another API", k.Sign(t, func(c *oauth2.AccessClaims) { c.Audience = oauth2.Audience{"https://billing.internal"} }), "not for this API"},
		{"expired self-signed JWT", expiredSelfSigned, "expired"},
		{"self-signed JWT for another API", newSign(email, time.Hour, "https://billing.internal"), "aud must be this API"},
		{"self-signed JWT living too long", newSign(email, 2*time.Hour, aud), "at most an hour"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tt.raw)
			wantInvalid(t, err, tt.fragment)
		})
	}
	// One that may be valid is still 503.
	_, err := v.Verify(ctx, newSign(email, time.Hour, aud))
	wantUnavailable(t, err)
	_, err = v.Verify(ctx, k.Sign(t, nil))
	wantUnavailable(t, err)
}

// The same holds while the issuer's keys cannot be fetched: a token whose
// kid is unknown and which would be refused whatever its key is refused
// at once (invalid_token), not answered 503, as a service account's JWT
// is; one that may be valid is still ErrUnavailable.
func TestUnknownKidIssuerDownHopeless(t *testing.T) {
	k := testkeyward.Start(t)
	ctx := context.Background()
	client, mode := flakyIssuer("/jwks.json")
	v := newVerifier(t, k, verify.WithHTTPClient(client), verify.WithUnknownKidEvery(0))
	k.Signer.Rotate(ctx, "test", "")
	k.Signer.Rotate(ctx, "test", "") // signs with a key the verifier has not fetched
	now := k.Clock.Now()
	for _, m := range []string{"down", "503"} {
		mode.Store(m)
		for _, tt := range []struct{ name, raw, fragment string }{
			{"expired", k.Sign(t, func(c *oauth2.AccessClaims) {
				c.IssuedAt, c.Expiry = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix()
			}), "expired"},
			{"another issuer", k.Sign(t, func(c *oauth2.AccessClaims) { c.Issuer = "https://other.example" }), "another issuer"},
			{"another API", k.Sign(t, func(c *oauth2.AccessClaims) { c.Audience = oauth2.Audience{"https://billing.internal"} }), "not for this API"},
		} {
			t.Run(m+" "+tt.name, func(t *testing.T) {
				_, err := v.Verify(ctx, tt.raw)
				wantInvalid(t, err, tt.fragment)
				if w := serve(v, tt.raw); w.Code != 401 {
					t.Fatalf("middleware: %d, want 401", w.Code)
				}
			})
		}
		_, err := v.Verify(ctx, k.Sign(t, nil))
		wantUnavailable(t, err)
	}
}

func TestIntrospection(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, apiID, apiSecret := k.Setup(t, "opaque")
	v := newVerifier(t, k, verify.WithIntrospection(apiID, apiSecret), verify.WithIntrospectionCacheTTL(10*time.Second))
	ctx := context.Background()
	tok := tokenFor(t, k, id, secret, "orders.read")
	if !strings.HasPrefix(tok, "kwat_") {
		t.Fatalf("token %q is not opaque", tok[:8])
	}
	c, err := v.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientID != id || !c.HasScope("orders.read") {
		t.Fatalf("claims = %+v", c)
	}
	// Revoke it; within the cache lifetime the old answer stands, after it
	// the token is refused.
	req, _ := http.NewRequest("POST", k.URL+"/revoke", strings.NewReader("token="+tok))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(id, secret)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("revoke: %v", err)
	}
	k.Clock.Add(11 * time.Second)
	_, err = v.Verify(ctx, tok)
	wantInvalid(t, err, "not active")

	// A token for another API is refused by introspection too.
	bill := tokenFor(t, k, id, secret, "billing.read")
	_, err = v.Verify(ctx, bill)
	wantInvalid(t, err, "")

	t.Run("revocation check of JWTs", func(t *testing.T) {
		ids := []string{apiID}
		format := "jwt"
		k.Srv.Admin.UpdateAPI(ctx, testkeyward.Sys, "orders", admin.APIUpdate{TokenFormat: &format, Introspectors: &ids})
		rv := newVerifier(t, k, verify.WithIntrospection(apiID, apiSecret), verify.WithRevocationCheck(), verify.WithIntrospectionCacheTTL(5*time.Second))
		jwtTok := tokenFor(t, k, id, secret, "orders.read")
		if _, err := rv.Verify(ctx, jwtTok); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Srv.Admin.RevokeAccountTokens(ctx, testkeyward.Sys, id); err != nil {
			t.Fatal(err)
		}
		k.Clock.Add(6 * time.Second)
		_, err := rv.Verify(ctx, jwtTok)
		wantInvalid(t, err, "not active")
	})
}

// TestClaimsOfATokenForSeveralAPIs: a JWT for orders and billing has all
// of its aud and scope in its Claims, with or without the revocation
// check; the same token opaque has only what introspection tells the
// orders API's introspector, its part, so RequireScopes("billing.read")
// on the orders API refuses it.
func TestClaimsOfATokenForSeveralAPIs(t *testing.T) {
	tests := []struct {
		format       string
		revocation   bool
		wantAudience []string
		wantScopes   []string
		wantBilling  int // the status of a route that requires billing.read
	}{
		{"jwt", false, []string{"https://orders.internal", "https://billing.internal"}, []string{"orders.read", "billing.read"}, http.StatusOK},
		{"jwt", true, []string{"https://orders.internal", "https://billing.internal"}, []string{"orders.read", "billing.read"}, http.StatusOK},
		{"opaque", false, []string{"https://orders.internal"}, []string{"orders.read"}, http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s revocation=%v", tt.format, tt.revocation), func(t *testing.T) {
			k := testkeyward.Start(t)
			id, secret, apiID, apiSecret := k.Setup(t, tt.format)
			opts := []verify.Option{verify.WithIntrospection(apiID, apiSecret)}
			if tt.revocation {
				opts = append(opts, verify.WithRevocationCheck())
			}
			v := newVerifier(t, k, opts...)
			tok := tokenFor(t, k, id, secret, "orders.read billing.read")
			c, err := v.Verify(context.Background(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(sorted(c.Audience), sorted(tt.wantAudience)) || !slices.Equal(sorted(c.Scopes), sorted(tt.wantScopes)) {
				t.Errorf("Audience %q, Scopes %q; want %q, %q", c.Audience, c.Scopes, tt.wantAudience, tt.wantScopes)
			}
			h := verify.Middleware(v)(verify.RequireScopes("billing.read")(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.wantBilling {
				t.Errorf("RequireScopes(\"billing.read\") answered %d, want %d", w.Code, tt.wantBilling)
			}
		})
	}
}

func sorted(s []string) []string { return slices.Sorted(slices.Values(s)) }

// Tokens that cannot be Keyward's opaque tokens never reach the issuer's
// introspection endpoint (each request there is audited), and one unknown
// token sent again and again reaches it once per cache lifetime.
func TestIntrospectionAmplification(t *testing.T) {
	k := testkeyward.Start(t)
	_, _, apiID, apiSecret := k.Setup(t, "opaque")
	ctx := context.Background()
	var asked atomic.Int32
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/introspect") {
			asked.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	v := newVerifier(t, k, verify.WithHTTPClient(client), verify.WithIntrospection(apiID, apiSecret), verify.WithIntrospectionCacheTTL(10*time.Second))
	unknown := tokenstate.OpaquePrefix + strings.Repeat("A", 43)
	for _, raw := range []string{
		"hello",
		tokenstate.OpaquePrefix,
		tokenstate.OpaquePrefix + "abcdef", // too short for 256 bits
		tokenstate.OpaquePrefix + strings.Repeat("A", 42),       // one character short
		tokenstate.OpaquePrefix + strings.Repeat("A", 42) + "=", // padded
		tokenstate.OpaquePrefix + strings.Repeat("A", 42) + "+", // not base64url
		tokenstate.OpaquePrefix + strings.Repeat("A", 300),      // too long
		"KWAT_" + strings.Repeat("A", 43),
		strings.Repeat("A", 48),
	} {
		_, err := v.Verify(ctx, raw)
		wantInvalid(t, err, "neither a JWT nor a Keyward opaque token")
	}
	if n := asked.Load(); n != 0 {
		t.Fatalf("%d introspection requests for tokens that cannot be Keyward's, want 0", n)
	}

	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() { _, errs[i] = v.Verify(ctx, unknown) })
	}
	wg.Wait()
	for _, err := range errs {
		wantInvalid(t, err, "not active")
	}
	for range 50 {
		_, err := v.Verify(ctx, unknown)
		wantInvalid(t, err, "not active")
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("%d introspection requests for one unknown token sent 100 times, want 1", n)
	}
	k.Clock.Add(11 * time.Second) // the refusal is remembered no longer than the cache lifetime
	_, err := v.Verify(ctx, unknown)
	wantInvalid(t, err, "not active")
	if n := asked.Load(); n != 2 {
		t.Fatalf("%d introspection requests after the cache lifetime, want 2", n)
	}
}

// selfSignedKey gives job@shop.iam.test a key and returns a function that
// signs the account's own JWTs with it (iss and sub = email), with the key
// file's private key and key ID.
func selfSignedKey(t *testing.T, k *testkeyward.Server) (sign func(email string, life time.Duration, aud string) string, privatePEM, kid string) {
	t.Helper()
	kf, err := k.Srv.Admin.CreateKey(context.Background(), testkeyward.Sys, "job@shop.iam.test", 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(kf)
	var f struct{ PrivateKey, PrivateKeyID string }
	json.Unmarshal(raw, &struct {
		PK  *string `json:"private_key"`
		KID *string `json:"private_key_id"`
	}{&f.PrivateKey, &f.PrivateKeyID})
	priv := testkeyward.ParsePKCS8(t, f.PrivateKey)
	sign = func(email string, life time.Duration, aud string) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: priv}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", f.PrivateKeyID))
		now := k.Clock.Now()
		tok, _ := jwt.Signed(s).Claims(map[string]any{"iss": email, "sub": email, "aud": aud,
			"iat": now.Unix(), "exp": now.Add(life).Unix()}).Serialize()
		return tok
	}
	return sign, f.PrivateKey, f.PrivateKeyID
}

// selfSignedSigner gives job@shop.iam.test a key, as selfSignedKey does,
// and returns a signer of JWTs (typ JWT) with its private key and key ID,
// for claims written by hand.
func selfSignedSigner(t *testing.T, k *testkeyward.Server) jose.Signer {
	t.Helper()
	_, privatePEM, kid := selfSignedKey(t, k)
	return typSigner(t, privatePEM, kid, "JWT")
}

// typSigner signs with privatePEM under kid, with typ in the header
// (none when typ is "").
func typSigner(t *testing.T, privatePEM, kid, typ string) jose.Signer {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", kid)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: testkeyward.ParsePKCS8(t, privatePEM)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verifySigned signs claims with s and verifies the JWT with v: it must
// be accepted when refusal is "", else refused invalid_token with a
// description holding refusal.
func verifySigned(t *testing.T, v *verify.Verifier, s jose.Signer, claims map[string]any, refusal string) {
	t.Helper()
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), raw)
	if refusal == "" {
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		return
	}
	wantInvalid(t, err, refusal)
}

func TestSelfSignedJWT(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	ctx := context.Background()
	sign, privatePEM, kid := selfSignedKey(t, k)
	selfSigned := func(life time.Duration, aud string) string { return sign("job@shop.iam.test", life, aud) }
	f := struct{ PrivateKey, PrivateKeyID string }{privatePEM, kid}
	off := newVerifier(t, k)
	if _, err := off.Verify(ctx, selfSigned(time.Hour, "https://orders.internal")); err == nil {
		t.Fatal("self-signed JWTs are accepted without WithSelfSignedJWTs")
	}
	v := newVerifier(t, k, verify.WithSelfSignedJWTs())
	c, err := v.Verify(ctx, selfSigned(time.Hour, "https://orders.internal"))
	if err != nil {
		t.Fatal(err)
	}
	if !c.SelfSigned || c.ClientEmail != "job@shop.iam.test" || len(c.Scopes) != 0 {
		t.Fatalf("claims = %+v", c)
	}
	// Go's base64 skips CR and LF, which a compact JWS never holds: the
	// same JWT with one inserted is no token, as for access tokens.
	first, rest, _ := strings.Cut(selfSigned(time.Hour, "https://orders.internal"), ".")
	_, err = v.Verify(ctx, first+".\n"+rest)
	wantInvalid(t, err, "neither")
	_, err = v.Verify(ctx, selfSigned(2*time.Hour, "https://orders.internal"))
	wantInvalid(t, err, "at most an hour")
	_, err = v.Verify(ctx, selfSigned(time.Hour, "https://billing.internal"))
	wantInvalid(t, err, "aud")
	// google-auth for Python before 1.6.3 pads every segment and signs them
	// padded.
	padded := func() string {
		enc := base64.URLEncoding.EncodeToString
		now := k.Clock.Now()
		input := enc([]byte(fmt.Sprintf(`{"typ": "JWT", "alg": "RS256", "kid": %q}`, f.PrivateKeyID))) + "." +
			enc([]byte(fmt.Sprintf(`{"iss": "job@shop.iam.test", "sub": "job@shop.iam.test", "aud": "https://orders.internal", "iat": %d, "exp": %d}`, now.Unix(), now.Add(time.Hour).Unix())))
		h := sha256.Sum256([]byte(input))
		sig, err := rsa.SignPKCS1v15(nil, testkeyward.ParsePKCS8(t, f.PrivateKey).(*rsa.PrivateKey), crypto.SHA256, h[:])
		if err != nil {
			t.Fatal(err)
		}
		return input + "." + enc(sig)
	}
	good := padded()
	if !strings.Contains(good, "=") {
		t.Fatalf("no padding in %s", good)
	}
	if c, err := v.Verify(ctx, good); err != nil || c.ClientEmail != "job@shop.iam.test" {
		t.Fatalf("padded self-signed JWT: %+v, %v", c, err)
	}
	_, err = v.Verify(ctx, strings.ReplaceAll(good, "=", ""))
	wantInvalid(t, err, "not signed with a key of")
	// Padding on the signature alone leaves go-jose's checks in place: a
	// JWT that marks an extension critical stays refused.
	crit, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: testkeyward.ParsePKCS8(t, f.PrivateKey)},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", f.PrivateKeyID).WithCritical("urn:x").WithHeader("urn:x", 1))
	now := k.Clock.Now()
	critical, _ := jwt.Signed(crit).Claims(map[string]any{"iss": "job@shop.iam.test", "sub": "job@shop.iam.test", "aud": "https://orders.internal",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	for _, raw := range []string{critical, critical + "=="} {
		_, err = v.Verify(ctx, raw)
		wantInvalid(t, err, "not signed with a key of")
	}
	// Access tokens still verify alongside.
	if _, err := v.Verify(ctx, k.Sign(t, nil)); err != nil {
		t.Fatal(err)
	}
}

// A self-signed JWT whose typ names another kind of JWT, an access token
// (at+jwt) or a DPoP proof (dpop+jwt), in any case, with application/
// or without, is refused, as the token endpoint refuses such an
// assertion (RFC 8725 §3.11); JWT, none, or any other is accepted.
func TestSelfSignedJWTTyp(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	_, privatePEM, kid := selfSignedKey(t, k)
	v := newVerifier(t, k, verify.WithSelfSignedJWTs())
	now := k.Clock.Now()
	for _, tc := range []struct {
		name string
		typ  string // "": no typ
		ok   bool
	}{
		{"JWT", "JWT", true},
		{"absent", "", true},
		{"another", "secevent+jwt", true},
		{"at+jwt", "at+jwt", false},
		{"application/dpop+jwt", "application/dpop+jwt", false},
		{"AT+JWT", "AT+JWT", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusal := ""
			if !tc.ok {
				refusal = "typ"
			}
			verifySigned(t, v, typSigner(t, privatePEM, kid, tc.typ), map[string]any{"iss": "job@shop.iam.test", "sub": "job@shop.iam.test",
				"aud": "https://orders.internal", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}, refusal)
		})
	}
}

// A self-signed JWT's nbf, when it has one, is honoured (RFC 7519
// §4.1.5): a JWT made for later is not accepted before its time.
func TestSelfSignedJWTNotBefore(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	s := selfSignedSigner(t, k)
	v := newVerifier(t, k, verify.WithSelfSignedJWTs())
	now := k.Clock.Now()
	for _, tc := range []struct {
		name string
		nbf  any // nil: no nbf
		ok   bool
	}{
		{"no nbf", nil, true},
		{"nbf now", now.Unix(), true},
		{"nbf within the leeway", now.Add(20 * time.Second).Unix(), true},
		{"nbf in 10 minutes", now.Add(10 * time.Minute).Unix(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := map[string]any{"iss": "job@shop.iam.test", "sub": "job@shop.iam.test", "aud": "https://orders.internal",
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
			if tc.nbf != nil {
				c["nbf"] = tc.nbf
			}
			refusal := ""
			if !tc.ok {
				refusal = "not valid yet"
			}
			verifySigned(t, v, s, c, refusal)
		})
	}
}

func TestCertificateBinding(t *testing.T) {
	k := testkeyward.Start(t)
	v := newVerifier(t, k)
	ctx := context.Background()
	cert, other := testCert(t), testCert(t)
	sum := sha256.Sum256(cert.Raw)
	bound := k.Sign(t, func(c *oauth2.AccessClaims) {
		c.Confirmation = &oauth2.Confirmation{X5TS256: base64.RawURLEncoding.EncodeToString(sum[:])}
	})
	if _, err := v.VerifyWithCertificate(ctx, bound, cert); err != nil {
		t.Fatalf("with its certificate: %v", err)
	}
	_, err := v.Verify(ctx, bound)
	wantInvalid(t, err, "presented none")
	_, err = v.VerifyWithCertificate(ctx, bound, other)
	wantInvalid(t, err, "another client certificate")
}

// Middleware takes a certificate-bound token's certificate from the
// connection alone, as its documentation says: behind a proxy that
// terminates TLS the token is refused, whatever header names the
// certificate, and over mTLS with it the token passes.
func TestMiddlewareCertificateFromConnection(t *testing.T) {
	k := testkeyward.Start(t)
	v := newVerifier(t, k)
	cert := testCert(t)
	sum := sha256.Sum256(cert.Raw)
	bound := k.Sign(t, func(c *oauth2.AccessClaims) {
		c.Confirmation = &oauth2.Confirmation{X5TS256: base64.RawURLEncoding.EncodeToString(sum[:])}
	})
	h := verify.Middleware(v)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	forwarded := url.QueryEscape(string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})))
	for _, tc := range []struct {
		name string
		tls  bool
		want int
	}{{"behind a TLS-terminating proxy", false, 401}, {"over mTLS", true, 200}} {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.Header.Set("Authorization", "Bearer "+bound)
		r.Header.Set("X-Client-Cert", forwarded)
		r.Header.Set("X-SSL-Client-Cert", forwarded)
		if tc.tls {
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{cert}}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.want)
		}
	}
}

func testCert(t *testing.T) *x509.Certificate {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "c"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	c, _ := x509.ParseCertificate(der)
	_ = tls.Certificate{}
	return c
}

func TestNewErrors(t *testing.T) {
	k := testkeyward.Start(t)
	ctx := context.Background()
	if _, err := verify.New(ctx, k.URL+"/elsewhere", "x"); err == nil {
		t.Fatal("New accepted an issuer without metadata")
	}
	if _, err := verify.New(ctx, k.URL, ""); err == nil {
		t.Fatal("New accepted an empty audience")
	}
	if _, err := verify.New(ctx, "http://127.0.0.1:1", "x"); err == nil {
		t.Fatal("New accepted an unreachable issuer")
	}
	// Configurations that cannot work fail in New, not on every request.
	for _, tt := range []struct {
		name     string
		opts     []verify.Option
		fragment string
	}{
		{"introspection without a client ID", []verify.Option{verify.WithIntrospection("", "secret")}, "client ID and client secret"},
		{"introspection without a secret", []verify.Option{verify.WithIntrospection("id", "")}, "client ID and client secret"},
		{"introspection without a key file", []verify.Option{verify.WithIntrospectionKeyFile(nil)}, "key file"},
		{"revocation check without introspection", []verify.Option{verify.WithRevocationCheck()}, "WithRevocationCheck needs introspection"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify.New(ctx, k.URL, "https://orders.internal", tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.fragment) {
				t.Fatalf("New: %v, want an error mentioning %q", err, tt.fragment)
			}
		})
	}
}

// With WithSelfSignedJWTs the audience cannot be the issuer or its token
// endpoint URL, however written: service accounts sign the JWTs they trade
// there for access tokens with that aud, and this API would receive them.
// Access tokens alone, which no token endpoint takes as an assertion, may
// still be checked for such an audience (an API left from before Keyward
// refused the identifier).
func TestNewRefusesTokenEndpointAudience(t *testing.T) {
	k := testkeyward.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	upper := "HTTP://" + strings.ToUpper(strings.TrimPrefix(k.URL, "http://"))
	for _, aud := range []string{k.URL, k.URL + "/", k.URL + "/token", k.URL + "/token/", upper + "/token"} {
		t.Run(aud, func(t *testing.T) {
			_, err := verify.New(ctx, k.URL, aud, verify.WithSelfSignedJWTs())
			if err == nil || !strings.Contains(err.Error(), "token endpoint") {
				t.Fatalf("New: %v, want an error saying the audience is the token endpoint's", err)
			}
			if _, err := verify.New(ctx, k.URL, aud); err != nil {
				t.Fatalf("New without WithSelfSignedJWTs: %v", err)
			}
		})
	}
	if _, err := verify.New(ctx, k.URL, k.URL+"/orders", verify.WithSelfSignedJWTs()); err != nil {
		t.Fatalf("another URL of the issuer's host: %v", err)
	}
}

// A nil HTTP client keeps the default, as a nil DPoP replay cache does:
// New neither panics nor fails, and the Verifier reaches the issuer.
func TestNilHTTPClient(t *testing.T) {
	k := testkeyward.Start(t)
	v := newVerifier(t, k, verify.WithHTTPClient(nil))
	if _, err := v.Verify(context.Background(), k.Sign(t, nil)); err != nil {
		t.Fatal(err)
	}
}

// keyRefreshers counts the goroutines refreshing a Verifier's keys.
func keyRefreshers() int {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "verify.(*keySet).run(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// A New that fails leaves no goroutine behind, even with a context that
// never ends.
func TestNewFailureLeaksNothing(t *testing.T) {
	f := startFakeIssuer(t) // has no introspection endpoint
	before := keyRefreshers()
	if _, err := verify.New(context.Background(), f.URL, "https://orders.internal", verify.WithIntrospection("id", "secret")); err == nil {
		t.Fatal("New accepted introspection without an introspection endpoint")
	}
	// A goroutine shows in runtime.Stack once it has run: give it time.
	for range 20 {
		time.Sleep(5 * time.Millisecond)
		if after := keyRefreshers(); after > before {
			t.Fatalf("%d key refreshers after a failed New, %d before", after, before)
		}
	}
}

func FuzzVerify(f *testing.F) {
	k := testkeyward.Start(f)
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	v, err := verify.New(ctx, k.URL, "https://orders.internal", verify.WithSelfSignedJWTs())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.Sign(f, nil))
	f.Add("a.b.c")
	f.Add("kwat_x")
	f.Add("eyJhbGciOiAiUlMyNTYifQ==.eyJpc3MiOiAiYUBiIn0=.c2ln") // padded, iss an email: self-signed
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(ctx, raw)
		if err != nil {
			var ve *verify.Error
			if !errors.As(err, &ve) {
				t.Fatalf("error %T is not *verify.Error", err)
			}
			if !slices.Contains([]string{"invalid_token", "invalid_request", "temporarily_unavailable"}, ve.Code) || ve.Description == "" {
				t.Fatalf("refused with code %q, description %q", ve.Code, ve.Description)
			}
			return
		}
		// A token passes only for this API, from the issuer or, self-signed,
		// from an account of it.
		if !slices.Contains(c.Audience, "https://orders.internal") || (!c.SelfSigned && c.Issuer != k.URL) || (c.SelfSigned && c.Issuer == k.URL) {
			t.Fatalf("a token passed with claims %+v", c)
		}
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A disabled account's self-signed JWTs are refused once its keys would be
// refetched, however many unknown accounts are looked up meanwhile; keys
// the issuer cannot refresh are trusted for a bounded time only.
func TestSelfSignedJWTAccountGone(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	ctx := context.Background()
	sign, _, _ := selfSignedKey(t, k)
	const aud, email = "https://orders.internal", "job@shop.iam.test"
	var down atomic.Bool
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if down.Load() && strings.Contains(r.URL.Path, "/service_accounts/") {
			return nil, errors.New("issuer unreachable")
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	v := newVerifier(t, k, verify.WithSelfSignedJWTs(), verify.WithHTTPClient(client))
	if _, err := v.Verify(ctx, sign(email, time.Hour, aud)); err != nil {
		t.Fatal(err)
	}

	// The issuer is unreachable: keys fetched 6 minutes ago still serve,
	// keys fetched 16 minutes ago do not.
	down.Store(true)
	k.Clock.Add(6 * time.Minute)
	if _, err := v.Verify(ctx, sign(email, time.Hour, aud)); err != nil {
		t.Fatalf("keys 6 minutes old, issuer down: %v", err)
	}
	k.Clock.Add(10 * time.Minute)
	_, err := v.Verify(ctx, sign(email, time.Hour, aud))
	wantUnavailable(t, err)
	// An account not seen before cannot be told unknown either.
	_, err = v.Verify(ctx, sign("new@shop.iam.test", time.Hour, aud))
	wantUnavailable(t, err)
	down.Store(false)
	k.Clock.Add(11 * time.Second) // past the retry pause
	used := sign(email, time.Hour, aud)
	if _, err := v.Verify(ctx, used); err != nil {
		t.Fatalf("issuer back: %v", err)
	}

	if _, err := k.Srv.Admin.SetAccountDisabled(ctx, testkeyward.Sys, email, true); err != nil {
		t.Fatal(err)
	}
	// A flood of made-up accounts spends the budget for unknown ones (10 at
	// once): beyond it an unknown account cannot be told from a real one
	// not seen yet, so its JWT is not called invalid but unavailable (503,
	// retry); the known account is refreshed all the same.
	for i := range 30 {
		_, err := v.Verify(ctx, sign(fmt.Sprintf("ghost%d@shop.iam.test", i), time.Hour, aud))
		if i < 10 {
			wantInvalid(t, err, "no enabled service account")
		} else {
			wantUnavailable(t, err)
		}
	}
	k.Clock.Add(6 * time.Minute)
	for name, raw := range map[string]string{"cached": used, "new": sign(email, time.Hour, aud)} {
		_, err := v.Verify(ctx, raw)
		if err == nil {
			t.Fatalf("%s JWT of a disabled account accepted", name)
		}
		wantInvalid(t, err, "no enabled service account")
	}
	if _, err := k.Srv.Admin.SetAccountDisabled(ctx, testkeyward.Sys, email, false); err != nil {
		t.Fatal(err)
	}
	k.Clock.Add(time.Minute) // the unknown-account budget refills
	if _, err := v.Verify(ctx, sign(email, time.Hour, aud)); err != nil {
		t.Fatalf("enabled again: %v", err)
	}
}

// Self-signed JWTs that would be refused whatever their key — for another
// API, or expired — are refused before their account is looked up: a flood
// of them naming made-up accounts spends none of the budget for accounts
// new to this API, and a real account's first JWT still verifies.
func TestSelfSignedJWTRefusedBeforeLookup(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	ctx := context.Background()
	sign, _, _ := selfSignedKey(t, k)
	const aud, email = "https://orders.internal", "job@shop.iam.test"
	v := newVerifier(t, k, verify.WithSelfSignedJWTs())
	for i := range 30 {
		ghost := fmt.Sprintf("ghost%d@shop.iam.test", i)
		_, err := v.Verify(ctx, sign(ghost, time.Hour, "https://billing.internal"))
		wantInvalid(t, err, "aud must be this API")
		_, err = v.Verify(ctx, sign(ghost, 2*time.Hour, aud))
		wantInvalid(t, err, "at most an hour")
	}
	if _, err := v.Verify(ctx, sign(email, time.Hour, aud)); err != nil {
		t.Fatalf("a real account's first JWT after the flood: %v", err)
	}
}

// Made-up kids with the emails of many real accounts do not make the
// Verifier fetch each account's keys every 10 s: fetches for unknown kids
// are capped across accounts (10 at once, 5 a second), the JWTs beyond are
// answered ErrUnavailable, and keys gone stale are still refreshed.
func TestSelfSignedJWTUnknownKidFetches(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	published := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	var fetches atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/jwks"})
		case r.URL.Path == "/jwks":
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{})
		case strings.HasPrefix(r.URL.Path, "/service_accounts/v1/jwk/"):
			fetches.Add(1)
			json.NewEncoder(w).Encode(published) // every account has the key
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	var mu sync.Mutex
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	const aud = "https://orders.internal"
	sign := func(email, kid string) string {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
		raw, _ := jwt.Signed(s).Claims(map[string]any{"iss": email, "sub": email, "aud": aud,
			"iat": clock().Unix(), "exp": clock().Add(time.Hour).Unix(), "jti": rand.Text()}).Serialize()
		return raw
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := verify.New(ctx, srv.URL, aud, verify.WithSelfSignedJWTs(), verify.WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	// An account whose keys will be stale, then 100 accounts become known,
	// one a second (new accounts' own rate).
	const stale = "old@shop.iam.test"
	if _, err := v.Verify(ctx, sign(stale, "k1")); err != nil {
		t.Fatal(err)
	}
	advance(5 * time.Minute)
	const accounts = 100
	email := func(i int) string { return fmt.Sprintf("job%d@shop.iam.test", i) }
	for i := range accounts {
		if _, err := v.Verify(ctx, sign(email(i), "k1")); err != nil {
			t.Fatalf("account %d: %v", i, err)
		}
		advance(time.Second)
	}
	advance(10 * time.Second) // past every account's pause between fetches
	before := fetches.Load()

	for _, round := range []struct {
		after   time.Duration
		fetches int64 // at most, since the accounts were known
	}{{0, 10}, {time.Second, 15}, {10 * time.Second, 25}} {
		advance(round.after)
		var unavailable int
		for i := range accounts {
			_, err := v.Verify(ctx, sign(email(i), "made-up"))
			if errors.Is(err, verify.ErrUnavailable) {
				unavailable++
			} else {
				wantInvalid(t, err, "not signed with a key of")
			}
		}
		if got := fetches.Load() - before; got > round.fetches || unavailable == 0 {
			t.Fatalf("%s later: %d fetches for %d accounts' made-up kids, want at most %d; %d answered unavailable",
				round.after, got, accounts, round.fetches, unavailable)
		}
	}
	// The cap spent, keys gone stale are refreshed all the same.
	spent := fetches.Load()
	if _, err := v.Verify(ctx, sign(stale, "k1")); err != nil {
		t.Fatal(err)
	}
	if fetches.Load() == spent {
		t.Fatal("stale keys were not refetched while the cap on unknown kids was spent")
	}
}

// fakeIssuer serves RFC 8414 metadata and a JWKS the test changes: for
// key changes a real Keyward does not make on demand.
type fakeIssuer struct {
	URL  string
	jwks atomic.Pointer[jose.JSONWebKeySet]
}

func startFakeIssuer(t *testing.T, keys ...jose.JSONWebKey) *fakeIssuer {
	f := &fakeIssuer{}
	f.publish(keys...)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": f.URL, "jwks_uri": f.URL + "/jwks"})
		case "/jwks":
			json.NewEncoder(w).Encode(f.jwks.Load())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// publish replaces the JWKS with the public halves of keys.
func (f *fakeIssuer) publish(keys ...jose.JSONWebKey) {
	set := &jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Public())
	}
	f.jwks.Store(set)
}

// sign makes an access token of f signed with key under alg and kid,
// with every claim RFC 9068 §2.2 requires, changed by mod.
func (f *fakeIssuer) sign(t *testing.T, key jose.JSONWebKey, alg jose.SignatureAlgorithm, kid string, mod func(map[string]any)) string {
	t.Helper()
	return f.signWith(t, key, alg, (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", kid), mod)
}

// signWith is sign with the header opts make.
func (f *fakeIssuer) signWith(t *testing.T, key jose.JSONWebKey, alg jose.SignatureAlgorithm, opts *jose.SignerOptions, mod func(map[string]any)) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key.Key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	c := map[string]any{"iss": f.URL, "sub": "1", "client_id": "1", "aud": "https://orders.internal",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": rand.Text()}
	if mod != nil {
		mod(c)
	}
	raw, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// A new key with another algorithm than the cached keys' is fetched and
// used; the key's algorithm, never the token's, decides.
func TestKeyAlgorithmChange(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	es := jose.JSONWebKey{Key: ecKey, KeyID: "es-1", Algorithm: string(jose.ES256), Use: "sig"}
	rs := jose.JSONWebKey{Key: rsaKey, KeyID: "rs-1", Algorithm: string(jose.RS256), Use: "sig"}
	f := startFakeIssuer(t, es)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := verify.New(ctx, f.URL, "https://orders.internal")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(ctx, f.sign(t, es, jose.ES256, "es-1", nil)); err != nil {
		t.Fatal(err)
	}
	f.publish(es, rs) // the issuer moves to RS256
	if _, err := v.Verify(ctx, f.sign(t, rs, jose.RS256, "rs-1", nil)); err != nil {
		t.Fatalf("a token of a new RS256 key, with ES256 keys cached: %v", err)
	}

	good := f.sign(t, es, jose.ES256, "es-1", func(c map[string]any) { c["jti"] = "json" })
	jws, err := jose.ParseSignedCompact(good, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	// The JWS JSON serialization, with two dots somewhere to look like a JWT.
	jsonForm := `{"x":"..",` + strings.TrimPrefix(jws.FullSerialize(), "{")
	first, rest, _ := strings.Cut(good, ".")
	tests := []struct{ name, raw, fragment string }{
		{"RS256 under the ES256 kid", f.sign(t, rs, jose.RS256, "es-1", nil), "algorithm"},
		{"ES256 under the RS256 kid", f.sign(t, es, jose.ES256, "rs-1", nil), "algorithm"},
		{"JSON serialization", jsonForm, "compact"},
		{"space", first + ". " + rest, "compact"},
		{"line feed", first + ".\n" + rest, "compact"},
		{"carriage return", first + "\r." + rest, "compact"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tt.raw)
			wantInvalid(t, err, tt.fragment)
		})
	}
}

// A JWT's claims are always base64url-encoded (RFC 7519 §3). go-jose
// honours b64 false (RFC 7797) and would check the signature over the raw
// claims: an access token or a service account's JWT with it is refused.
func TestUnencodedPayload(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es := jose.JSONWebKey{Key: ecKey, KeyID: "es-1", Algorithm: string(jose.ES256), Use: "sig"}
	f := startFakeIssuer(t, es)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := verify.New(ctx, f.URL, "https://orders.internal")
	if err != nil {
		t.Fatal(err)
	}
	opts := func() *jose.SignerOptions {
		return (&jose.SignerOptions{}).WithType("at+jwt").WithHeader("kid", "es-1")
	}
	if _, err := v.Verify(ctx, f.signWith(t, es, jose.ES256, opts().WithBase64(true).WithCritical("b64"), nil)); err != nil {
		t.Fatalf("b64 true, the default: %v", err)
	}
	for name, o := range map[string]*jose.SignerOptions{
		"b64 false, critical":     opts().WithBase64(false),
		"b64 false, not critical": opts().WithHeader("b64", false),
	} {
		raw := f.signWith(t, es, jose.ES256, o, nil)
		t.Run("access token, "+name, func(t *testing.T) {
			_, err := v.Verify(ctx, raw)
			wantInvalid(t, err, "b64")
		})
	}

	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	_, privatePEM, kid := selfSignedKey(t, k)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: testkeyward.ParsePKCS8(t, privatePEM)},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid).WithBase64(false))
	if err != nil {
		t.Fatal(err)
	}
	now := k.Clock.Now()
	self, err := jwt.Signed(s).Claims(map[string]any{"iss": "job@shop.iam.test", "sub": "job@shop.iam.test", "aud": "https://orders.internal",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	vs := newVerifier(t, k, verify.WithSelfSignedJWTs())
	t.Run("service account's JWT", func(t *testing.T) {
		_, err := vs.Verify(ctx, self)
		wantInvalid(t, err, "b64")
	})
}

// pkcs8PEM is key as a PEM PRIVATE KEY block.
func pkcs8PEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
}

// The API may introspect with its account's key file, RSA (PKCS #8 or
// PKCS #1) or EC P-256; a key file that cannot sign what Keyward accepts is
// New's error, not a silent failure later.
func TestIntrospectionKeyFile(t *testing.T) {
	k := testkeyward.Start(t)
	id, secret, apiID, _ := k.Setup(t, "opaque")
	ctx := context.Background()
	rsaFile, err := k.Srv.Admin.CreateKey(ctx, testkeyward.Sys, apiID, 0)
	if err != nil {
		t.Fatal(err)
	}
	rsaJSON, _ := json.Marshal(rsaFile)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&ecKey.PublicKey)
	uploaded, err := k.Srv.Admin.UploadKey(ctx, testkeyward.Sys, apiID, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki}), 0)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := func(kid, privatePEM, clientID string) []byte {
		b, _ := json.Marshal(map[string]string{"type": "service_account", "private_key_id": kid, "private_key": privatePEM, "client_id": clientID})
		return b
	}
	tok := tokenFor(t, k, id, secret, "orders.read")
	pkcs1 := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testkeyward.ParsePKCS8(t, rsaFile.PrivateKey).(*rsa.PrivateKey))}))
	for name, kf := range map[string][]byte{
		"RSA":            rsaJSON,
		"RSA as PKCS #1": keyFile(rsaFile.PrivateKeyID, pkcs1, apiID),
		"EC P-256":       keyFile(uploaded.ID, pkcs8PEM(t, ecKey), apiID),
	} {
		t.Run(name, func(t *testing.T) {
			v := newVerifier(t, k, verify.WithIntrospectionKeyFile(kf))
			// Each introspection signs an assertion of its own: Keyward
			// takes one once, at /introspect as at /token.
			for i, tok := range []string{tok, tokenFor(t, k, id, secret, "orders.read")} {
				if c, err := v.Verify(ctx, tok); err != nil || c.ClientID != id {
					t.Fatalf("introspection %d with the %s key file: %+v, %v", i+1, name, c, err)
				}
			}
		})
	}

	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsaPEM := pkcs8PEM(t, testkeyward.ParsePKCS8(t, rsaFile.PrivateKey))
	tests := []struct {
		name     string
		keyFile  []byte
		fragment string
	}{
		{"not JSON", []byte("{"), "the introspection key file is not a JSON key file: unexpected end of JSON input (at byte 1)"},
		// Plain words, as the client package's for its key files, never
		// Go's types.
		{"empty", []byte(" \n"), "the introspection key file is empty"},
		{"PEM", []byte(rsaPEM), "the introspection key file is a PEM file, not a JSON key file"},
		{"array", []byte(`[{"client_id":"x"}]`), "the introspection key file is not a JSON key file: a JSON array, not an object"},
		{"number client_id", []byte(`{"client_id":5,"private_key":"x"}`), "the introspection key file is not a JSON key file: client_id is a JSON number, not a string"},
		{"no private_key", keyFile("k", "", apiID), "lacks client_id or private_key"},
		{"no client_id", keyFile("k", rsaPEM, ""), "lacks client_id or private_key"},
		{"not PEM", keyFile("k", "MIIE...", apiID), "not PEM"},
		{"not PKCS #8", keyFile("k", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")})), apiID), "PKCS #8"},
		{"EC P-384", keyFile("k", pkcs8PEM(t, p384), apiID), "the EC key is on P-384: Keyward accepts RS256 (RSA of 2048 to 8192 bits) and ES256 (P-256) keys"},
		{"RSA 1024", keyFile("k", pkcs8PEM(t, rsa1024), apiID), "the RSA key has 1024 bits: Keyward accepts"},
		{"Ed25519", keyFile("k", pkcs8PEM(t, edKey), apiID), "unsupported key type Ed25519: Keyward accepts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify.New(ctx, k.URL, "https://orders.internal", verify.WithIntrospectionKeyFile(tt.keyFile))
			if err == nil || !strings.Contains(err.Error(), tt.fragment) {
				t.Fatalf("New: %v, want an error mentioning %q", err, tt.fragment)
			}
			if strings.Contains(err.Error(), "Go value") || strings.Contains(err.Error(), "Go struct") {
				t.Fatalf("New: %q names Go's types", err)
			}
		})
	}
}

// An Error reads well in a log, also without a code (a request without a
// token, RFC 6750 §3.1).
func TestErrorString(t *testing.T) {
	for _, tc := range []struct {
		err  *verify.Error
		want string
	}{
		{&verify.Error{Code: "invalid_token", Description: "the token has expired"}, "invalid_token: the token has expired"},
		{&verify.Error{Description: "an access token is required"}, "an access token is required"},
		{&verify.Error{Code: "temporarily_unavailable", Description: "the issuer is unavailable", Err: errors.New("connection refused")},
			"temporarily_unavailable: the issuer is unavailable (connection refused)"},
	} {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
}

// TestIntrospectionKeyFileStrictAudience: the client assertion with which
// the API introspects has the issuer as its aud, which a server with
// StrictClientAssertionAudience (serve --strict-client-assertion-audience)
// requires; that server refuses one made for the token endpoint URL, which
// the default accepts.
func TestIntrospectionKeyFileStrictAudience(t *testing.T) {
	for _, strict := range []bool{false, true} {
		t.Run(fmt.Sprintf("strict=%v", strict), func(t *testing.T) {
			k := testkeyward.Start(t, func(c *server.Config) { c.StrictClientAssertionAudience = strict })
			id, secret, apiID, _ := k.Setup(t, "opaque")
			ctx := context.Background()
			kf, err := k.Srv.Admin.CreateKey(ctx, testkeyward.Sys, apiID, 0)
			if err != nil {
				t.Fatal(err)
			}
			data, _ := json.Marshal(kf)
			tok := tokenFor(t, k, id, secret, "orders.read")
			v := newVerifier(t, k, verify.WithIntrospectionKeyFile(data))
			if c, err := v.Verify(ctx, tok); err != nil || c.ClientID != id {
				t.Fatalf("introspection with the key file: %+v, %v", c, err)
			}

			// By hand, for the token endpoint URL.
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: testkeyward.ParsePKCS8(t, kf.PrivateKey)},
				(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kf.PrivateKeyID))
			if err != nil {
				t.Fatal(err)
			}
			now := k.Clock.Now()
			a, err := jwt.Signed(s).Claims(map[string]any{"iss": apiID, "sub": apiID, "aud": k.URL + "/token", "jti": "by-hand",
				"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := http.PostForm(k.URL+"/introspect", url.Values{"token": {tok},
				"client_assertion_type": {oauth2.ClientAssertionJWT}, "client_assertion": {a}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if want := map[bool]int{false: 200, true: 401}[strict]; resp.StatusCode != want {
				t.Fatalf("an assertion for the token endpoint URL: %s, want %d", resp.Status, want)
			}
		})
	}
}

// TestOversizedRSAKeysNotUsed: an RSA key over 8192 bits that the issuer
// publishes, in its JWKS or among a service account's keys, is never
// verified with (its cost grows with the square of its size): a token
// naming it is invalid_token, with the key's size and the limit in the
// cause, and the issuer's other keys stay in use. So is one that go-jose
// does not parse, such as an RSA key over its MaxRSAModulusBits (4096),
// which made the whole set fail to parse. (The moduli are random odd
// numbers: only their size matters.)
func TestOversizedRSAKeysNotUsed(t *testing.T) {
	huge := jose.JSONWebKey{Key: testkeys.RSAPublic(8200), KeyID: "huge", Algorithm: "RS256", Use: "sig"}
	mid := jose.JSONWebKey{Key: testkeys.RSAPublic(6144), KeyID: "mid", Algorithm: "RS256", Use: "sig"}
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es := jose.JSONWebKey{Key: ecKey, KeyID: "es", Algorithm: "ES256", Use: "sig"}
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048) // signs what only huge could verify
	rs := jose.JSONWebKey{Key: rsaKey}
	published := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{huge, mid, es.Public()}}
	f := &fakeIssuer{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": f.URL, "jwks_uri": f.URL + "/jwks"})
		case r.URL.Path == "/jwks", strings.HasPrefix(r.URL.Path, "/service_accounts/v1/jwk/"):
			json.NewEncoder(w).Encode(published)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	const aud, email = "https://orders.internal", "job@shop.iam.test"
	selfSigned := func(key jose.JSONWebKey, alg jose.SignatureAlgorithm, kid string) string {
		opts := (&jose.SignerOptions{}).WithType("JWT")
		if kid != "" {
			opts = opts.WithHeader("kid", kid)
		}
		return f.signWith(t, key, alg, opts, func(c map[string]any) {
			c["iss"], c["sub"] = email, email
			delete(c, "client_id")
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := verify.New(ctx, f.URL, aud, verify.WithSelfSignedJWTs())
	if err != nil {
		t.Fatal(err)
	}
	const (
		tooBig    = `key "huge" is not used: the RSA key has 8200 bits, more than the 8192 Keyward accepts`
		unparsed  = `key "mid" is not used: go-jose/go-jose: invalid RSA key, modulus too large`
		notUsed   = "a key of the issuer's that this verifier does not use"
		notSigned = "not signed with a key of the service account"
	)
	tests := []struct {
		name      string
		raw       string
		wantDesc  string   // "" accepts
		wantCause []string // in the error
	}{
		{"access token, another key", f.sign(t, es, jose.ES256, "es", nil), "", nil},
		{"access token naming it", f.sign(t, rs, jose.RS256, "huge", nil), notUsed, []string{tooBig}},
		{"access token naming one go-jose refuses", f.sign(t, rs, jose.RS256, "mid", nil), notUsed, []string{unparsed}},
		{"self-signed JWT, another key", selfSigned(es, jose.ES256, "es"), "", nil},
		{"self-signed JWT naming it", selfSigned(rs, jose.RS256, "huge"), notSigned, []string{tooBig}},
		{"self-signed JWT without kid", selfSigned(rs, jose.RS256, ""), notSigned, []string{tooBig, unparsed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(ctx, tt.raw)
			if tt.wantDesc == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantInvalid(t, err, tt.wantDesc)
			for _, c := range tt.wantCause {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("err = %v, want %q in the cause", err, c)
				}
			}
		})
	}
}

// rawJWKSIssuer serves discovery and, as its JWKS, whatever body holds.
func rawJWKSIssuer(t *testing.T) (f *fakeIssuer, body *atomic.Pointer[string]) {
	t.Helper()
	f, body = &fakeIssuer{}, &atomic.Pointer[string]{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/oauth-authorization-server":
			json.NewEncoder(w).Encode(map[string]string{"issuer": f.URL, "jwks_uri": f.URL + "/jwks"})
		case "/jwks":
			io.WriteString(w, *body.Load())
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f, body
}

// TestOversizedRSAKeyCaseDuplicate: a JWK with both "n" and "N" is read by
// go-jose's JSON, which matches names exactly, as "n"; encoding/json,
// matching in any case with the last duplicate winning, reads "N". An "n"
// over 8192 bits beside a small "N" is still refused, in a program that
// raised go-jose's own MaxRSAModulusBits above the cap.
func TestOversizedRSAKeyCaseDuplicate(t *testing.T) {
	defer func(old int) { jose.MaxRSAModulusBits = old }(jose.MaxRSAModulusBits)
	jose.MaxRSAModulusBits = 16384
	huge, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 8199))
	huge.SetBit(huge, 8199, 1).SetBit(huge, 0, 1)
	small, _ := rsa.GenerateKey(rand.Reader, 2048) // signs the token
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es := jose.JSONWebKey{Key: ecKey, KeyID: "es", Algorithm: "ES256", Use: "sig"}
	esJSON, _ := json.Marshal(es.Public())
	b64 := base64.RawURLEncoding.EncodeToString
	f, body := rawJWKSIssuer(t)
	set := fmt.Sprintf(`{"keys":[%s,{"kty":"RSA","kid":"dup","alg":"RS256","use":"sig","n":%q,"N":%q,"e":"AQAB"}]}`,
		esJSON, b64(huge.Bytes()), b64(small.N.Bytes()))
	body.Store(&set)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	v, err := verify.New(ctx, f.URL, "https://orders.internal")
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(ctx, f.sign(t, jose.JSONWebKey{Key: small}, jose.RS256, "dup", nil))
	wantInvalid(t, err, "a key of the issuer's that this verifier does not use")
	if want := "the RSA key has 8200 bits, more than the 8192 Keyward accepts"; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want %q in the cause", err, want)
	}
}

// TestNewRefusesUnusableKeySet: New fails, saying why, when the issuer's
// JWK set has keys but none of them can be used (every token would be
// invalid_token), as it did when such a set failed to parse as a whole;
// an empty set, or one with a usable key beside those, is accepted.
func TestNewRefusesUnusableKeySet(t *testing.T) {
	huge, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 8199))
	huge.SetBit(huge, 8199, 1).SetBit(huge, 0, 1)
	hugeJWK := fmt.Sprintf(`{"kty":"RSA","kid":"huge","alg":"RS256","use":"sig","n":%q,"e":"AQAB"}`, base64.RawURLEncoding.EncodeToString(huge.Bytes()))
	hugeNoKid := strings.Replace(hugeJWK, `"kid":"huge",`, "", 1)
	unknown := `{"kty":"PQC","kid":"pq","alg":"RS256","use":"sig"}`
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	es, _ := json.Marshal(jose.JSONWebKey{Key: ecKey.Public(), KeyID: "es", Algorithm: "ES256", Use: "sig"})
	tests := []struct {
		name    string
		keys    []string
		wantErr []string // in New's error; none: New succeeds
		body    string   // the whole answer, instead of a set of keys
	}{
		{"empty", nil, nil, ""},
		{name: "an empty object", body: "{}", wantErr: []string{"not a JWK set: it has no keys member"}},
		{name: "null", body: "null", wantErr: []string{"not a JWK set: it has no keys member"}},
		{name: "keys null, go-jose's empty set", body: `{"keys":null}`},
		{"a usable key beside an oversized one", []string{hugeJWK, string(es)}, nil, ""},
		{"only an oversized key", []string{hugeJWK}, []string{"none of the issuer's keys", `key "huge" is not used: the RSA key has 8200 bits, more than the 8192 Keyward accepts`}, ""},
		{"only an oversized key without kid", []string{hugeNoKid}, []string{"without a kid is not used: the RSA key has 8200 bits"}, ""},
		{"oversized and of an unknown type", []string{hugeJWK, unknown}, []string{`key "huge" is not used`, `key "pq" is not used`}, ""},
		{"five refused", []string{unknown, unknown, unknown, hugeJWK, hugeJWK}, []string{"and 2 more"}, ""},
		{"only an encryption key", []string{strings.Replace(string(es), `"use":"sig"`, `"use":"enc"`, 1)}, []string{`key "es" is not used: it is for encryption`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, body := rawJWKSIssuer(t)
			set := `{"keys":[` + strings.Join(tt.keys, ",") + `]}`
			if tt.body != "" {
				set = tt.body
			}
			body.Store(&set)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			_, err := verify.New(ctx, f.URL, "https://orders.internal")
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New succeeded, want an error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("New: %v, want %q in it", err, w)
				}
			}
		})
	}
}

// A JWT without a kid is refused at once as invalid_token, and the keys
// are not fetched for it: every key of the issuer's has a kid (keys
// without one are not used), so no key could ever verify it. It was
// taken for an unknown kid, which fetched the keys, and, while they
// could not be fetched again, answered 503 as if its key might be new.
func TestTokenWithoutKid(t *testing.T) {
	k := testkeyward.Start(t)
	v := newVerifier(t, k)
	ctx := context.Background()
	before := k.JWKSFetches.Load()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType("at+jwt"))
	now := k.Clock.Now()
	for i := range 3 {
		raw, _ := jwt.Signed(s).Claims(map[string]any{"iss": k.URL, "sub": "1", "client_id": "1", "aud": "https://orders.internal",
			"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": fmt.Sprint(i)}).Serialize()
		_, err := v.Verify(ctx, raw)
		wantInvalid(t, err, "kid")
	}
	if got := k.JWKSFetches.Load() - before; got != 0 {
		t.Fatalf("%d JWKS fetches for tokens without a kid, want 0", got)
	}
}

// TestKeysNotForSignatures: a key of the issuer's JWK set that is not
// verified with (for encryption, without an alg, with a symmetric
// algorithm or none) is known, like an oversized one: a token naming it
// is invalid_token at once, saying why, every time. It was taken for a
// kid not yet fetched, refused as a key the issuer does not publish, and
// while the keys could not be fetched again answered 503 as if its key
// might be new.
func TestKeysNotForSignatures(t *testing.T) {
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pub, _ := json.Marshal(jose.JSONWebKey{Key: ecKey.Public(), KeyID: "k", Algorithm: "ES256", Use: "sig"})
	es := jose.JSONWebKey{Key: ecKey}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	good, _ := json.Marshal(jose.JSONWebKey{Key: other.Public(), KeyID: "good", Algorithm: "ES256", Use: "sig"})
	tests := []struct{ name, jwk, why string }{
		{"use enc", strings.Replace(string(pub), `"use":"sig"`, `"use":"enc"`, 1), "for encryption (use enc)"},
		{"no alg", strings.Replace(string(pub), `"alg":"ES256",`, "", 1), "names no algorithm"},
		{"alg none", strings.Replace(string(pub), `"alg":"ES256"`, `"alg":"none"`, 1), `algorithm "none" is not`},
		{"HMAC", `{"kty":"oct","kid":"k","alg":"HS256","use":"sig","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMzQ"}`, "not a public key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, body := rawJWKSIssuer(t)
			set := `{"keys":[` + string(good) + "," + tt.jwk + `]}`
			body.Store(&set)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			v, err := verify.New(ctx, f.URL, "https://orders.internal")
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // the second while the keys may not be fetched again
				_, err := v.Verify(ctx, f.sign(t, es, jose.ES256, "k", nil))
				wantInvalid(t, err, "a key of the issuer's that this verifier does not use")
				if !strings.Contains(err.Error(), tt.why) {
					t.Fatalf("err = %v, want %q in the cause", err, tt.why)
				}
			}
		})
	}
}

// TestSelfSignedJWTClaimNames: a service account's JWT is read as
// Keyward's token endpoint and other JOSE libraries read JWTs: claim
// names are case-sensitive (RFC 7519 §4), a claim named twice is
// refused, and times are JSON numbers (RFC 7519 §2). encoding/json took
// "ISS" for iss, the last of two aud and "iat":"1700000000", so a JWT
// lacking required claims was accepted.
func TestSelfSignedJWTClaimNames(t *testing.T) {
	k := testkeyward.Start(t)
	k.Setup(t, "jwt")
	ctx := context.Background()
	s := selfSignedSigner(t, k)
	v := newVerifier(t, k, verify.WithSelfSignedJWTs())
	now := k.Clock.Now().Unix()
	const who = `"iss":"job@shop.iam.test","sub":"job@shop.iam.test"`
	const aud = `"aud":"https://orders.internal"`
	times := fmt.Sprintf(`"iat":%d,"exp":%d`, now, now+600)
	tests := []struct {
		name, claims string
		ok           bool
	}{
		{"as written", who + "," + aud + "," + times, true},
		{"ISS and SUB", `"ISS":"job@shop.iam.test","SUB":"job@shop.iam.test",` + aud + "," + times, false},
		{"Aud", who + `,"Aud":"https://orders.internal",` + times, false},
		{"aud twice", who + `,"aud":"https://billing.internal",` + aud + "," + times, false},
		{"iat a string", who + "," + aud + fmt.Sprintf(`,"iat":"%d","exp":%d`, now, now+600), false},
		{"exp a string", who + "," + aud + fmt.Sprintf(`,"iat":%d,"exp":"%d"`, now, now+600), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jws, err := s.Sign([]byte("{" + tt.claims + "}"))
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := jws.CompactSerialize()
			c, err := v.Verify(ctx, raw)
			if tt.ok {
				if err != nil || !c.SelfSigned {
					t.Fatalf("Verify = %+v, %v", c, err)
				}
				return
			}
			wantInvalid(t, err, "")
		})
	}
}
