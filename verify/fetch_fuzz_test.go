package verify_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyward/keyward/internal/dpop"
	"github.com/keyward/keyward/internal/dpop/dpoptest"
	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/verify"
)

// The issuer of the fuzzers below: never dialled, their HTTP client
// answers in memory.
const (
	fuzzIssuer  = "https://issuer.test"
	fuzzAud     = "https://orders.internal"
	fuzzAccount = "job@shop.iam.test"
)

// fuzzNow is the fuzzers' clock, so the tokens built once stay valid.
var fuzzNow = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// memoryClient answers GETs by path from docs (any host: the metadata may
// name any jwks_uri) and POSTs to the introspection path with status and
// intro; 404 for anything else.
func memoryClient(docs map[string][]byte, status int, intro []byte) *http.Client {
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Body != nil {
			r.Body.Close()
		}
		resp := &http.Response{StatusCode: http.StatusNotFound, Status: "404 Not Found", Header: http.Header{}, Request: r, Body: io.NopCloser(strings.NewReader(""))}
		if r.Method == http.MethodPost && r.URL.Path == "/introspect" {
			resp.StatusCode, resp.Status = status, http.StatusText(status)
			resp.Header.Set("Retry-After", "5")
			resp.Body = io.NopCloser(bytes.NewReader(intro))
		} else if b, ok := docs[r.URL.Path]; ok && r.Method == http.MethodGet {
			resp.StatusCode, resp.Status = http.StatusOK, "200 OK"
			resp.Header.Set("Cache-Control", "max-age=300")
			resp.Body = io.NopCloser(bytes.NewReader(b))
		}
		return resp, nil
	})}
}

// fuzzTokens are tokens for the fuzzers' issuer: real ones, signed with
// the keys of the seed documents, and forgeries that must never pass
// whatever the documents say.
type fuzzTokens struct {
	access, selfSigned []string
	forged             []string
	// bound is an access token bound to prover's key (cnf.jkt).
	bound  string
	prover *dpop.Prover
	// seeds: metadata, JWKS and the account's JWKS, as a Keyward issuer
	// serves them.
	metadata, jwks, accountJWKS, hmacJWKS []byte
}

// fuzzRSAKey is the account's key, generated once for all the fuzzers of
// the test binary: an RSA-2048 key takes a noticeable while.
var fuzzRSAKey = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

func newFuzzTokens(f *testing.F) *fuzzTokens {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	rk, err := fuzzRSAKey()
	if err != nil {
		f.Fatal(err)
	}
	secret := []byte("0123456789abcdef0123456789abcdef")
	tk := &fuzzTokens{}
	mustJSON := func(v any) []byte {
		b, err := json.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	tk.metadata = mustJSON(map[string]string{"issuer": fuzzIssuer, "jwks_uri": fuzzIssuer + "/jwks",
		"introspection_endpoint": fuzzIssuer + "/introspect", "token_endpoint": fuzzIssuer + "/token"})
	signing := jose.JSONWebKey{Key: ec, KeyID: "k1", Algorithm: string(jose.ES256), Use: "sig"}
	account := jose.JSONWebKey{Key: rk, KeyID: "a1", Algorithm: string(jose.RS256), Use: "sig"}
	tk.jwks = mustJSON(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{signing.Public()}})
	tk.accountJWKS = mustJSON(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{account.Public()}})
	// A symmetric key published by mistake, or by an attacker who controls
	// the documents but not the tokens: never a key to verify with.
	tk.hmacJWKS = mustJSON(map[string]any{"keys": []map[string]string{
		{"kty": "oct", "kid": "k1", "alg": "HS256", "k": base64.RawURLEncoding.EncodeToString(secret)},
		{"kty": "oct", "kid": "a1", "alg": "RS256", "k": base64.RawURLEncoding.EncodeToString(secret)},
	}})
	sign := func(key any, alg jose.SignatureAlgorithm, hdr map[jose.HeaderKey]any, claims map[string]any) string {
		opts := &jose.SignerOptions{}
		for k, v := range hdr {
			opts.WithHeader(k, v)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			f.Fatal(err)
		}
		jws, err := s.Sign(mustJSON(claims))
		if err != nil {
			f.Fatal(err)
		}
		raw, err := jws.CompactSerialize()
		if err != nil {
			f.Fatal(err)
		}
		return raw
	}
	at := map[string]any{"iss": fuzzIssuer, "sub": "123", "aud": fuzzAud, "client_id": "123", "jti": "j1",
		"iat": fuzzNow.Unix(), "exp": fuzzNow.Add(time.Hour).Unix(), "scope": "orders.read"}
	ss := map[string]any{"iss": fuzzAccount, "sub": fuzzAccount, "aud": fuzzAud, "iat": fuzzNow.Unix(), "exp": fuzzNow.Add(time.Hour).Unix()}
	tk.access = []string{sign(ec, jose.ES256, map[jose.HeaderKey]any{"kid": "k1", "typ": "at+jwt"}, at)}
	tk.prover = dpoptest.NewProver(f)
	bound := maps.Clone(at)
	bound["cnf"] = map[string]string{"jkt": tk.prover.JKT()}
	tk.bound = sign(ec, jose.ES256, map[jose.HeaderKey]any{"kid": "k1", "typ": "at+jwt"}, bound)
	tk.selfSigned = []string{sign(rk, jose.RS256, map[jose.HeaderKey]any{"kid": "a1", "typ": "JWT"}, ss)}
	// HMAC-signed with the published symmetric key, under its own alg and
	// under an asymmetric alg the verifier allows (alg confusion).
	tk.forged = []string{
		sign(secret, jose.HS256, map[jose.HeaderKey]any{"kid": "k1", "typ": "at+jwt"}, at),
		sign(secret, jose.HS256, map[jose.HeaderKey]any{"kid": "a1", "typ": "JWT"}, ss),
		forgeHMAC(mustJSON(map[string]string{"alg": "ES256", "kid": "k1", "typ": "at+jwt"}), mustJSON(at), secret),
		forgeHMAC(mustJSON(map[string]string{"alg": "RS256", "kid": "a1", "typ": "JWT"}), mustJSON(ss), secret),
		forgeHMAC(mustJSON(map[string]string{"alg": "none", "kid": "k1", "typ": "at+jwt"}), mustJSON(at), nil),
	}
	return tk
}

// forgeHMAC makes a compact JWS of header and payload whose signature is
// an HMAC-SHA256 with secret (empty without one), whatever alg the header
// names.
func forgeHMAC(header, payload, secret []byte) string {
	enc := base64.RawURLEncoding.EncodeToString
	input := enc(header) + "." + enc(payload)
	if secret == nil {
		return input + "."
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + enc(m.Sum(nil))
}

// FuzzIssuerDocuments: whatever an issuer serves as its RFC 8414
// metadata, its JWKS and a service account's keys (at Google's path), New
// and Verify never panic, a Verify error is a *verify.Error, and a token
// passes only if its claims are what the verifier checks: no document can
// make a forgery signed with a symmetric key, or unsigned, pass.
func FuzzIssuerDocuments(f *testing.F) {
	tk := newFuzzTokens(f)
	f.Add(tk.metadata, tk.jwks, tk.accountJWKS)
	f.Add(tk.metadata, tk.hmacJWKS, tk.hmacJWKS)
	f.Add(tk.metadata, []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":"","kid":"k1","alg":"ES256"}]}`), []byte(`{"keys":[{"kty":"RSA","n":"AQ","e":"AQAB","kid":"a1","alg":"RS256"}]}`))
	f.Add([]byte(`{"issuer":"https://issuer.test","jwks_uri":"/jwks"}`), []byte(`{"keys":null}`), []byte(`null`))
	f.Add([]byte(`{"issuer":"https://issuer.test","jwks_uri":"https://issuer.test/jwks"}`), []byte(`{"keys":[{}]}`), []byte(`{"keys":[{"kty":"oct"}]}`))
	f.Add([]byte(`[]`), []byte(`"x"`), []byte(`{"keys":{}}`))
	f.Fuzz(func(t *testing.T, metadata, jwks, accountJWKS []byte) {
		docs := map[string][]byte{
			"/.well-known/oauth-authorization-server": metadata,
			"/jwks": jwks,
			"/service_accounts/v1/jwk/" + fuzzAccount:      accountJWKS,
			"/service_accounts/v1/jwk/job%40shop.iam.test": accountJWKS,
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		v, err := verify.New(ctx, fuzzIssuer, fuzzAud, verify.WithHTTPClient(memoryClient(docs, 0, nil)),
			verify.WithSelfSignedJWTs(), verify.WithClock(func() time.Time { return fuzzNow }))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "verify: ") {
				t.Fatalf("New's error %q does not say it is verify's", err)
			}
			return
		}
		// The documents as a Keyward issuer serves them verify its tokens.
		genuine := bytes.Equal(metadata, tk.metadata) && bytes.Equal(jwks, tk.jwks) && bytes.Equal(accountJWKS, tk.accountJWKS)
		check := func(raw string, forged bool) {
			c, err := v.Verify(ctx, raw)
			if err != nil && genuine && !forged {
				t.Fatalf("the issuer's own documents: a genuine token refused: %v", err)
			}
			if err != nil {
				if _, ok := errors.AsType[*verify.Error](err); !ok {
					t.Fatalf("Verify's error %T (%v) is not a *verify.Error", err, err)
				}
				return
			}
			if forged {
				t.Fatalf("a forged token passed: %s; claims %+v", raw, c)
			}
			if !slices.Contains(c.Audience, fuzzAud) || c.Expiry.IsZero() || !fuzzNow.Before(c.Expiry) {
				t.Fatalf("a token passed with claims the verifier refuses: %+v", c)
			}
			if c.SelfSigned != (c.Issuer == fuzzAccount) || (!c.SelfSigned && c.Issuer != fuzzIssuer) {
				t.Fatalf("a token passed with issuer %q (self-signed %v)", c.Issuer, c.SelfSigned)
			}
		}
		for _, raw := range tk.access {
			check(raw, false)
		}
		for _, raw := range tk.selfSigned {
			check(raw, false)
		}
		for _, raw := range tk.forged {
			check(raw, true)
		}
	})
}

// FuzzIntrospectionAnswer: whatever the issuer's introspection endpoint
// answers (RFC 7662 §2.2), Verify never panics, its error is a
// *verify.Error, and an opaque token passes only if the answer says it is
// active, for this API, of this issuer, with an exp.
func FuzzIntrospectionAnswer(f *testing.F) {
	tk := newFuzzTokens(f)
	exp := fuzzNow.Add(time.Hour).Unix()
	for _, seed := range []struct {
		status int
		body   string
	}{
		{200, `{"active":true,"iss":"https://issuer.test","sub":"123","client_id":"123","aud":"https://orders.internal","scope":"orders.read","exp":` + jsonInt(exp) + `,"iat":` + jsonInt(fuzzNow.Unix()) + `,"jti":"j"}`},
		{200, `{"active":true,"aud":["https://orders.internal","x"],"exp":` + jsonInt(exp) + `,"act":{"sub":"9","email":"a@b"},"cnf":{"x5t#S256":"abc","jkt":"def"}}`},
		{200, `{"active":true,"aud":"https://orders.internal","exp":1e400}`},
		{200, `{"active":true,"aud":"https://orders.internal","exp":-9223372036854775808}`},
		{200, `{"active":true,"aud":"https://orders.internal","exp":"soon"}`},
		{200, `{"active":false}`},
		{200, `{"active":"yes"}`},
		{401, `{"error":"invalid_client"}`},
		{429, ``},
		{503, `<html>`},
		{302, ``},
	} {
		f.Add(seed.status, []byte(seed.body))
	}
	opaque := oauth2.OpaqueTokenPrefix + strings.Repeat("A", 43)
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return // not an HTTP status line
		}
		docs := map[string][]byte{"/.well-known/oauth-authorization-server": tk.metadata, "/jwks": tk.jwks}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		v, err := verify.New(ctx, fuzzIssuer, fuzzAud, verify.WithHTTPClient(memoryClient(docs, status, body)),
			verify.WithIntrospection("api", "secret"), verify.WithRevocationCheck(), verify.WithClock(func() time.Time { return fuzzNow }))
		if err != nil {
			t.Fatal(err)
		}
		for _, raw := range []string{opaque, tk.access[0]} {
			c, err := v.Verify(ctx, raw)
			if err != nil {
				if _, ok := errors.AsType[*verify.Error](err); !ok {
					t.Fatalf("Verify's error %T (%v) is not a *verify.Error", err, err)
				}
				continue
			}
			if status != http.StatusOK {
				t.Fatalf("a token passed on an introspection answer of status %d", status)
			}
			// The answer's "active" is the issuer's word on the times (RFC
			// 7662 §2.2): its exp is required, not compared with the clock.
			if !slices.Contains(c.Audience, fuzzAud) || c.Issuer != fuzzIssuer || c.Expiry.IsZero() {
				t.Fatalf("a token passed with claims the verifier refuses: %+v", c)
			}
		}
	})
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
