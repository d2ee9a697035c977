package assertion

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyward/keyward/internal/oauth2"
	"github.com/keyward/keyward/internal/storage"
	"github.com/keyward/keyward/internal/testkeys"
)

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func fixture(t testing.TB) (*ecdsa.PrivateKey, []storage.Key) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	return k, []storage.Key{{ID: "k1", AccountID: "a", Algorithm: "ES256", PublicKey: spki}}
}

func signed(t testing.TB, k *ecdsa.PrivateKey, c map[string]any) string {
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
	raw, err := jwt.Signed(s).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var expect = Expect{Audiences: []string{"https://kw/token"}, MaxLifetime: time.Hour, RequireIssuedAt: true, Skew: time.Minute, Now: now}

func TestVerifyReasons(t *testing.T) {
	k, keys := fixture(t)
	base := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	tests := []struct {
		name string
		c    map[string]any
		keys []storage.Key
		want Reason
	}{
		{"ok", base(nil), keys, 0},
		{"no exp", base(func(c map[string]any) { delete(c, "exp") }), keys, MissingClaim},
		{"no iat", base(func(c map[string]any) { delete(c, "iat") }), keys, MissingClaim},
		{"no aud", base(func(c map[string]any) { delete(c, "aud") }), keys, MissingClaim},
		{"wrong aud", base(func(c map[string]any) { c["aud"] = "x" }), keys, WrongAudience},
		{"expired", base(func(c map[string]any) { c["iat"], c["exp"] = now.Add(-2*time.Hour).Unix(), now.Add(-time.Hour).Unix() }), keys, Expired},
		{"future iat", base(func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() }), keys, NotYetValid},
		{"future nbf", base(func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() }), keys, NotYetValid},
		{"too long", base(func(c map[string]any) { c["exp"] = now.Add(65*time.Minute + time.Second).Unix() }), keys, TooLongLived},
		{"65 minutes", base(func(c map[string]any) { c["exp"] = now.Add(65 * time.Minute).Unix() }), keys, 0},
		{"iat backdated a minute (Google's PHP client)", base(func(c map[string]any) { c["iat"] = now.Add(-time.Minute).Unix() }), keys, 0},
		{"exp before iat", base(func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix(); c["iat"] = now.Unix() }), keys, TooLongLived},
		{"no keys", base(nil), nil, BadSignature},
		{"disabled key", base(nil), []storage.Key{{ID: "k1", Algorithm: "ES256", PublicKey: keys[0].PublicKey, Disabled: true}}, DisabledKey},
		{"expired key", base(nil), []storage.Key{{ID: "k1", Algorithm: "ES256", PublicKey: keys[0].PublicKey, ExpiresAt: now}}, BadSignature},
		{"key of another algorithm", base(nil), []storage.Key{{ID: "k1", Algorithm: "RS256", PublicKey: keys[0].PublicKey}}, BadSignature},
		{"garbage key", base(nil), []storage.Key{{ID: "k9", Algorithm: "ES256", PublicKey: []byte{1}}}, BadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(signed(t, k, tt.c))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tok.Verify(tt.keys, expect)
			if tt.want == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !IsReason(err, tt.want) {
				t.Fatalf("err = %v, want reason %d", err, tt.want)
			}
		})
	}
}

// TestExpiredKeyCause: an assertion whose kid names an expired key is
// refused "Invalid JWT Signature." as the service-account flow has it, and
// the cause, for the server's log, says that key expired and when: the
// operator otherwise saw no reason at all.
func TestExpiredKeyCause(t *testing.T) {
	k, keys := fixture(t)
	expired := []storage.Key{{ID: "k1", AccountID: "a", Algorithm: "ES256", PublicKey: keys[0].PublicKey, ExpiresAt: now.Add(-time.Hour)}}
	tok, err := Parse(signed(t, k, map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}))
	if err != nil {
		t.Fatal(err)
	}
	_, err = tok.Verify(expired, expect)
	var ae *Error
	if !errors.As(err, &ae) || ae.Reason != BadSignature || ae.Description != "Invalid JWT Signature." {
		t.Fatalf("Verify = %v, want BadSignature", err)
	}
	want := "key k1, which the assertion's kid names, expired at " + now.Add(-time.Hour).UTC().Format(time.RFC3339)
	if ae.Err == nil || ae.Err.Error() != want {
		t.Fatalf("cause %v, want %q", ae.Err, want)
	}
}

// TestUnknownKidCause: an assertion whose kid names no key of the account
// (one deleted, the store keeps none, or one never made) is refused
// "Invalid JWT Signature." as a bad signature is, and the cause, for the
// server's log, says no key has that kid, so the operator can tell it from
// a signature that does not verify. With no kid, no such cause.
func TestUnknownKidCause(t *testing.T) {
	k, keys := fixture(t)
	other, otherKeys := fixture(t)
	tok, err := Parse(signed(t, k, map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}))
	if err != nil {
		t.Fatal(err)
	}
	want := `the account has no key "k1", which the assertion's kid names (deleted, or never made)`
	for _, tc := range []struct {
		name string
		keys []storage.Key
	}{
		{"no keys left", nil},
		{"another key", []storage.Key{{ID: "k2", AccountID: "a", Algorithm: "ES256", PublicKey: otherKeys[0].PublicKey}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tok.Verify(tc.keys, expect)
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != BadSignature || ae.Description != "Invalid JWT Signature." {
				t.Fatalf("Verify = %v, want BadSignature", err)
			}
			if ae.Err == nil || ae.Err.Error() != want {
				t.Fatalf("cause %v, want %q", ae.Err, want)
			}
		})
	}
	// The kid names a key that does not verify the signature: a bad
	// signature, no cause about the kid.
	bad, err := Parse(signed(t, other, map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}))
	if err != nil {
		t.Fatal(err)
	}
	var ae *Error
	if _, err := bad.Verify(keys, expect); !errors.As(err, &ae) || ae.Reason != BadSignature || ae.Err != nil {
		t.Fatalf("Verify with the key the kid names not verifying = %v (cause %v), want BadSignature without a cause", err, ae)
	}
}

// TestAudienceMessages: the messages that refuse aud name what it must be
// as AudienceHint says, or else every one of Audiences, never the first
// alone under a name that may not be its own.
func TestAudienceMessages(t *testing.T) {
	k, keys := fixture(t)
	two := Expect{Audiences: []string{"https://kw", "https://kw/token"}, SingleAudience: true, MaxLifetime: time.Hour, Now: now}
	hinted := two
	hinted.AudienceHint = "this server's issuer https://kw or its token endpoint URL https://kw/token"
	tests := []struct {
		name string
		e    Expect
		aud  any
		want string
	}{
		{"no aud, no hint", two, nil, "Invalid JWT: the aud claim is required; use https://kw or https://kw/token."},
		{"wrong aud, no hint", two, "x", "Invalid JWT: aud must be https://kw or https://kw/token."},
		{"two values, no hint", two, []string{"https://kw", "x"}, "Invalid JWT: aud must be a single value, https://kw or https://kw/token."},
		{"no aud", hinted, nil, "Invalid JWT: the aud claim is required; use " + hinted.AudienceHint + "."},
		{"wrong aud", hinted, "x", "Invalid JWT: aud must be " + hinted.AudienceHint + "."},
		{"two values", hinted, []string{"https://kw", "x"}, "Invalid JWT: aud must be a single value, " + hinted.AudienceHint + "."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := map[string]any{"iss": "a@p", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
			if tt.aud != nil {
				c["aud"] = tt.aud
			}
			tok, err := Parse(signed(t, k, c))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tok.Verify(keys, tt.e)
			var ae *Error
			if !errors.As(err, &ae) || ae.Description != tt.want {
				t.Fatalf("Verify = %v, want %q", err, tt.want)
			}
		})
	}
}

// TestWrongAudienceCause: the cause of a wrong aud, which the endpoints
// log, shows the aud sent cut short, and not at all when it is shaped like
// a credential: a 40 KB aud made a 40 KB log line, and a secret there was
// logged.
func TestWrongAudienceCause(t *testing.T) {
	k, keys := fixture(t)
	secret := "kw_" + strings.Repeat("S", 43)
	tests := []struct {
		name, aud, want string
		wantMax         int
	}{
		{"plain", "https://elsewhere/token", "aud 'https://elsewhere/token'", 0},
		{"long", "https://x/" + strings.Repeat("a", 40000), "aud 'https://x/aaaa", 200},
		{"secret", secret, "aud '(not repeated: shaped like a secret or token)'", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(signed(t, k, map[string]any{"iss": "a@p", "aud": tt.aud, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tok.Verify(keys, expect)
			var ae *Error
			if !errors.As(err, &ae) || ae.Err == nil {
				t.Fatalf("Verify = %v, want a wrong audience with a cause", err)
			}
			cause := ae.Err.Error()
			if !strings.HasPrefix(cause, tt.want) {
				t.Errorf("cause %.100q, want it to start %q", cause, tt.want)
			}
			if tt.wantMax > 0 && len(cause) > tt.wantMax {
				t.Errorf("cause of %d bytes, want at most %d", len(cause), tt.wantMax)
			}
			if strings.Contains(cause, secret[3:]) {
				t.Errorf("cause %q holds the secret", cause)
			}
		})
	}
}

// TestVerifyRequireID: jti is optional unless RequireID, which refuses an
// assertion without one as a missing claim, after its signature is checked.
func TestVerifyRequireID(t *testing.T) {
	k, keys := fixture(t)
	c := func(jti string) map[string]any {
		c := map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		if jti != "" {
			c["jti"] = jti
		}
		return c
	}
	tests := []struct {
		name      string
		requireID bool
		jti       string
		keys      []storage.Key
		want      Reason
	}{
		{"no jti", false, "", keys, 0},
		{"jti", false, "j", keys, 0},
		{"no jti, required", true, "", keys, MissingClaim},
		{"jti, required", true, "j", keys, 0},
		{"no jti, required, bad signature", true, "", nil, BadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(signed(t, k, c(tt.jti)))
			if err != nil {
				t.Fatal(err)
			}
			e := expect
			e.RequireID = tt.requireID
			_, err = tok.Verify(tt.keys, e)
			switch {
			case tt.want == 0 && err != nil:
				t.Fatalf("Verify: %v", err)
			case tt.want != 0 && !IsReason(err, tt.want):
				t.Fatalf("err = %v, want reason %d", err, tt.want)
			}
		})
	}
}

// Claims that would break storage for everyone in a batch (a NUL byte is
// not valid text in PostgreSQL; a huge jti does not fit an index row) are
// refused when parsed.
func TestParseRefusesUnstorableClaims(t *testing.T) {
	k, _ := fixture(t)
	for name, c := range map[string]map[string]any{
		"NUL in jti":   {"iss": "a@p", "jti": "a\x00b"},
		"NUL in iss":   {"iss": "a\x00@p"},
		"NUL in aud":   {"iss": "a@p", "aud": []string{"x", "y\x00"}},
		"NUL in scope": {"iss": "a@p", "scope": "a\x00"},
		"long jti":     {"iss": "a@p", "jti": strings.Repeat("j", MaxJTILength+1)},
	} {
		if _, err := Parse(signed(t, k, c)); !IsReason(err, Malformed) {
			t.Errorf("%s: err = %v, want Malformed", name, err)
		}
	}
	if _, err := Parse(signed(t, k, map[string]any{"iss": "a@p", "jti": strings.Repeat("j", MaxJTILength)})); err != nil {
		t.Errorf("jti of %d bytes: %v", MaxJTILength, err)
	}
}

// An assertion with a line break anywhere is not a compact JWS (RFC 7515
// §7.1; the seed: "without newlines"), though Go's base64 decoder would
// skip it; the same assertion without one parses.
func TestParseRefusesLineBreaks(t *testing.T) {
	k, _ := fixture(t)
	raw := signed(t, k, map[string]any{"iss": "a@p"})
	dot := strings.Index(raw, ".")
	for name, bad := range map[string]string{
		"LF in the header":    raw[:4] + "\n" + raw[4:],
		"CRLF in the payload": raw[:dot+5] + "\r\n" + raw[dot+5:],
		"CR in the signature": raw[:len(raw)-6] + "\r" + raw[len(raw)-6:],
		"trailing LF":         raw + "\n",
		"padded, then LF":     raw + "==\n",
	} {
		if _, err := Parse(bad); !IsReason(err, Malformed) || !strings.Contains(err.Error(), "no newlines") {
			t.Errorf("%s: err = %v, want Malformed saying no newlines", name, err)
		}
	}
	if _, err := Parse(raw); err != nil {
		t.Errorf("without a line break: %v", err)
	}
}

// An assertion whose segments carry base64 padding, as google-auth for
// Python before 1.6.3 signs them, verifies over the segments as sent; the
// same assertion with its padding taken off, or its payload changed, does
// not.
func TestPaddedAssertion(t *testing.T) {
	k, keys := fixture(t)
	enc := base64.URLEncoding.EncodeToString
	claims := fmt.Sprintf(`{"iss": "a@p", "aud": "https://kw/token", "iat": %d, "exp": %d}`, now.Unix(), now.Add(time.Hour).Unix())
	header := enc([]byte(`{"typ": "JWT", "alg": "ES256", "kid": "k1"}`))
	input := header + "." + enc([]byte(claims))
	h := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	raw := input + "." + enc(append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...))
	if !strings.Contains(raw, "=.") {
		t.Fatalf("the fixture has no padding: %s", raw)
	}
	tok, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Claims.Issuer != "a@p" || tok.Header.KeyID != "k1" {
		t.Fatalf("parsed %+v %+v", tok.Header, tok.Claims)
	}
	if _, err := tok.Verify(keys, expect); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	for name, bad := range map[string]string{
		"padding taken off": strings.ReplaceAll(raw, "=", ""),
		"payload changed":   header + "." + enc([]byte(strings.Replace(claims, "a@p", "b@p", 1))) + raw[len(input):],
	} {
		tok, err := Parse(bad)
		if err != nil {
			t.Fatalf("%s: Parse: %v", name, err)
		}
		if _, err := tok.Verify(keys, expect); !IsReason(err, BadSignature) {
			t.Errorf("%s: Verify = %v, want BadSignature", name, err)
		}
	}
	if _, err := Parse(strings.Replace(raw, "=.", "==.", 1)); !IsReason(err, Malformed) {
		t.Errorf("wrong padding: err = %v, want Malformed", err)
	}
}

// signWithOptions signs a valid assertion's claims with k (ES256, kid
// k1) and opts' headers.
func signWithOptions(t *testing.T, k any, opts *jose.SignerOptions) string {
	t.Helper()
	claims := map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, opts.WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// An assertion that marks an extension critical is refused saying so, not
// as a bad signature — with padding on its signature or not (the padding
// must not get it past the check). Only b64, which go-jose supports, may
// be critical.
func TestParseRefusesCritical(t *testing.T) {
	k, keys := fixture(t)
	sign := func(opts *jose.SignerOptions) string { return signWithOptions(t, k, opts) }
	unsupported := sign((&jose.SignerOptions{}).WithCritical("urn:x").WithHeader("urn:x", 1))
	enc := base64.URLEncoding.EncodeToString
	padded := enc([]byte(`{"alg": "ES256", "crit": ["urn:x"], "urn:x": 1}`)) + "." + enc([]byte(`{"iss": "a@p"}`)) + ".c2ln"
	for _, tt := range []struct{ name, raw, desc string }{
		{"unsupported extension", unsupported, `the extension 'urn:x'`},
		{"unsupported extension, signature padded", unsupported + "==", `the extension 'urn:x'`},
		{"crit not a list", sign((&jose.SignerOptions{}).WithHeader("crit", "urn:x")), "must be a list"},
		{"crit with a number", sign((&jose.SignerOptions{}).WithHeader("crit", []any{1})), "must be a list"},
		{"padded segments", padded, "padded base64 segments"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.raw)
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != Malformed || !strings.Contains(ae.Description, "crit") || !strings.Contains(ae.Description, tt.desc) {
				t.Fatalf("Parse = %v, want Malformed saying crit and %q", err, tt.desc)
			}
		})
	}
	// A padded assertion may have only alg, typ and kid: b64 false, which
	// go-jose would honour, is refused saying so.
	b64 := enc([]byte(`{"alg": "ES256", "b64": false}`)) + "." + enc([]byte(`{"iss": "a@p"}`)) + ".c2ln"
	if !strings.Contains(b64, "=") {
		t.Fatalf("no padding in %s", b64)
	}
	if _, err := Parse(b64); !IsReason(err, Malformed) || !strings.Contains(err.Error(), "only alg, typ and kid") {
		t.Errorf("padded b64 false: Parse = %v, want Malformed saying only alg, typ and kid", err)
	}
	// b64 is go-jose's to check; true is the default and changes nothing.
	tok, err := Parse(sign((&jose.SignerOptions{}).WithBase64(true).WithCritical("b64")))
	if err != nil {
		t.Fatalf("crit b64: %v", err)
	}
	if _, err := tok.Verify(keys, expect); err != nil {
		t.Fatalf("crit b64: Verify = %v", err)
	}
}

// A JWT's claims are always base64url-encoded (RFC 7519 §7.2). go-jose
// honours b64 false (RFC 7797), with crit or without, and would check the
// signature over the raw claims: such an assertion is refused when parsed.
func TestParseRefusesUnencodedPayload(t *testing.T) {
	k, keys := fixture(t)
	sign := func(opts *jose.SignerOptions) string { return signWithOptions(t, k, opts) }
	// go-jose's signer refuses a b64 that is not a bool; its verifier
	// reads one as true. Signed by hand.
	enc := base64.RawURLEncoding.EncodeToString
	input := enc([]byte(`{"alg":"ES256","kid":"k1","b64":"true"}`)) + "." +
		enc([]byte(fmt.Sprintf(`{"iss":"a@p","aud":"https://kw/token","iat":%d,"exp":%d}`, now.Unix(), now.Add(time.Hour).Unix())))
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	notBool := input + "." + enc(append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...))
	for _, tt := range []struct{ name, raw string }{
		{"b64 false, critical", sign((&jose.SignerOptions{}).WithBase64(false))},
		{"b64 false, not critical", sign((&jose.SignerOptions{}).WithHeader("b64", false))},
		{"b64 not a bool", notBool},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(tt.raw)
			if err == nil {
				_, verr := tok.Verify(keys, expect)
				t.Fatalf("Parse accepted it (Verify = %v), want Malformed", verr)
			}
			if !IsReason(err, Malformed) || !strings.Contains(err.Error(), "b64") {
				t.Fatalf("Parse = %v, want Malformed saying b64", err)
			}
		})
	}
	// The check is on every assertion's path: it allocates nothing.
	h := jose.Header{ExtraHeaders: map[jose.HeaderKey]any{"typ": "JWT", "b64": true}}
	if n := testing.AllocsPerRun(100, func() { unencodedSink = oauth2.Unencoded(h) }); n != 0 || unencodedSink {
		t.Errorf("oauth2.Unencoded(b64 true) = %v, %v allocations; want false, 0", unencodedSink, n)
	}
}

var unencodedSink bool

// An assertion whose typ names another kind of JWT Keyward knows, an
// access token (RFC 9068 §4) or a DPoP proof (RFC 9449 §4.2), in either
// form and any case, is refused saying so, with padded segments too: one
// is never taken for the other (RFC 8725 §3.11). Any other typ, JWT as
// clients send it or none, parses and verifies as before.
func TestParseRefusesOtherJWTTypes(t *testing.T) {
	k, keys := fixture(t)
	typed := func(typ any) string {
		return signWithOptions(t, k, (&jose.SignerOptions{}).WithHeader(jose.HeaderType, typ))
	}
	enc := base64.URLEncoding.EncodeToString
	padded := enc([]byte(`{"alg": "ES256", "typ": "at+jwt"}`)) + "." + enc([]byte(`{"iss": "a@p"}`)) + ".c2ln"
	if !strings.Contains(padded, "=") {
		t.Fatalf("no padding in %s", padded)
	}
	for _, tt := range []struct{ name, raw, want string }{
		{"at+jwt", typed("at+jwt"), "an access token"},
		{"application/at+jwt", typed("application/at+jwt"), "an access token"},
		{"AT+JWT", typed("AT+JWT"), "an access token"},
		{"Application/At+Jwt", typed("Application/At+Jwt"), "an access token"},
		{"at+jwt, padded segments", padded, "an access token"},
		{"dpop+jwt", typed("dpop+jwt"), "a DPoP proof"},
		{"application/dpop+jwt", typed("application/dpop+jwt"), "a DPoP proof"},
		{"DPoP+JWT", typed("DPoP+JWT"), "a DPoP proof"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.raw)
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != Malformed || !strings.Contains(ae.Description, "typ") || !strings.Contains(ae.Description, tt.want) {
				t.Fatalf("Parse = %v, want Malformed saying typ names %s", err, tt.want)
			}
		})
	}
	for _, typ := range []any{nil, "JWT", "jwt", "application/jwt", "JOSE", "", "at+jwt ", "application/at+jwt; x=y", "jwt+at", "secevent+jwt", 1} {
		t.Run(fmt.Sprintf("accepted %#v", typ), func(t *testing.T) {
			opts := &jose.SignerOptions{}
			if typ != nil {
				opts = opts.WithHeader(jose.HeaderType, typ)
			}
			tok, err := Parse(signWithOptions(t, k, opts))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if _, err := tok.Verify(keys, expect); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestParseRefusesAlgorithms(t *testing.T) {
	for _, raw := range []string{
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJhIn0.",                                                // none
		"eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhIn0.c2ln",                                           // HS256
		"eyJhbGciOiJQUzI1NiJ9.eyJpc3MiOiJhIn0.c2ln",                                           // PS256: not allowed for assertions
		"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhIn0.c2ln.extra",                                     // too many parts
		`{"payload":"eyJpc3MiOiJhIn0","signatures":[{"protected":"e30","signature":"c2ln"}]}`, // JSON serialization
	} {
		if _, err := Parse(raw); !IsReason(err, Malformed) {
			t.Errorf("Parse(%.30q) = %v, want Malformed", raw, err)
		}
	}
}

// TestParseCauseOfAlgorithm: the cause of an assertion refused for its
// alg, which the endpoints log, names the alg sent cut short, and not at
// all when it is shaped like a credential: go-jose's message repeats it
// whole, so a 30 KB alg made a 30 KB log line, and a secret was logged.
func TestParseCauseOfAlgorithm(t *testing.T) {
	secret := "kw_" + strings.Repeat("S", 43)
	enc := func(alg string) string {
		h, _ := json.Marshal(map[string]string{"alg": alg})
		return base64.RawURLEncoding.EncodeToString(h) + ".eyJpc3MiOiJhIn0.c2ln"
	}
	for _, tt := range []struct {
		name, alg, want string
	}{
		{"none", "none", `unexpected signature algorithm "none"`},
		{"long", strings.Repeat("A", 30000), "unexpected signature algorithm"},
		{"secret", secret, "go-jose"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(enc(tt.alg))
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != Malformed || ae.Err == nil {
				t.Fatalf("Parse = %v, want Malformed with a cause", err)
			}
			cause := ae.Err.Error()
			if !strings.Contains(cause, tt.want) || len(cause) > 300 || strings.Contains(cause, secret[3:]) {
				t.Errorf("cause %.120q (%d bytes), want at most 300 bytes with %q, without a secret", cause, len(cause), tt.want)
			}
		})
	}
}

// FuzzParse feeds arbitrary strings to Parse and Verify: they must never
// panic and must refuse with an *Error.
func FuzzParse(f *testing.F) {
	k, keys := fixture(f)
	f.Add(signed(f, k, map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}))
	f.Add("eyJhbGciOiJFUzI1NiJ9.e30.")
	f.Add("eyJhbGciOiAiRVMyNTYifQ==.e30=.c2ln") // padded, as google-auth for Python before 1.6.3 sends
	f.Add("a.b.c")
	f.Add("")
	// A refusal is an *Error with a reason and words for the client.
	refusal := func(t *testing.T, op string, err error) {
		var ae *Error
		if !errors.As(err, &ae) {
			t.Fatalf("%s error %T is not *Error", op, err)
		}
		if ae.Reason < Malformed || ae.Reason > TooLongLived || ae.Description == "" || !utf8.ValidString(ae.Description) {
			t.Fatalf("%s refused with reason %d, description %q", op, ae.Reason, ae.Description)
		}
	}
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := Parse(raw)
		if err != nil {
			refusal(t, "Parse", err)
			return
		}
		if _, err := tok.Verify(keys, expect); err != nil {
			refusal(t, "Verify", err)
		}
	})
}

// The parsed-key cache stays within its bound, and a key that replaced
// another under the same ID (the DER differs) is parsed anew.
func TestParsedKeyCacheBounded(t *testing.T) {
	defer func(n int) { maxParsedKeys = n }(maxParsedKeys)
	maxParsedKeys = 3
	// The other tests, and this one's earlier runs under -count, leave
	// keys cached: the bound holds for a cache filled under it.
	parsedMu.Lock()
	clear(parsed)
	parsedMu.Unlock()
	var keys []storage.Key
	for i := range 10 {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		spki, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		keys = append(keys, storage.Key{ID: "bounded-" + string(rune('a'+i)), PublicKey: spki})
	}
	for round := range 2 {
		for _, k := range keys {
			pub, err := publicKey(k)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := x509.ParsePKIXPublicKey(k.PublicKey)
			if !pub.(*ecdsa.PublicKey).Equal(want) {
				t.Fatalf("round %d: key %s parsed wrong", round, k.ID)
			}
			parsedMu.RLock()
			n := len(parsed)
			parsedMu.RUnlock()
			if n > maxParsedKeys {
				t.Fatalf("%d cached keys, bound %d", n, maxParsedKeys)
			}
		}
	}
	replaced := keys[9]
	replaced.PublicKey = keys[0].PublicKey
	if pub, _ := publicKey(replaced); !pub.(*ecdsa.PublicKey).Equal(mustParse(t, keys[0].PublicKey)) {
		t.Fatal("a new key under a cached ID returned the old key")
	}
}

func mustParse(t *testing.T, der []byte) *ecdsa.PublicKey {
	t.Helper()
	pub, err := x509.ParsePKIXPublicKey(der)
	if err != nil {
		t.Fatal(err)
	}
	return pub.(*ecdsa.PublicKey)
}

// How far in the future iat is reads as a clock that is off, however far
// (a Duration overflows past 292 years).
func TestFutureIssuedAtDescription(t *testing.T) {
	k, keys := fixture(t)
	for _, tt := range []struct {
		name string
		iat  int64
		want string
	}{
		{"minutes", now.Add(5 * time.Minute).Unix(), "iat is 5m0s in the future"},
		{"two days", now.Add(48 * time.Hour).Unix(), "iat is 48h0m0s in the future"},
		{"days", now.Add(10*24*time.Hour + time.Hour).Unix(), "iat is 10 days in the future"},
		{"years", now.AddDate(30, 0, 0).Unix(), "iat is more than a year in the future"},
		{"largest exact JSON number", 1 << 53, "iat is more than a year in the future"},
		{"beyond a Duration", now.Unix() + 300*365*24*3600, "iat is more than a year in the future"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(signed(t, k, map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": tt.iat, "exp": tt.iat + 60}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tok.Verify(keys, expect)
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != NotYetValid || !strings.Contains(ae.Description, tt.want) {
				t.Fatalf("Verify = %v, want NotYetValid saying %q", err, tt.want)
			}
		})
	}
}

// TestTooLongLivedDescription: an assertion that lives too long, or whose
// exp is before its iat, is refused with the seed's description followed by
// what is wrong, as an expired one or one issued in the future is.
func TestTooLongLivedDescription(t *testing.T) {
	k, keys := fixture(t)
	iat := now.Unix()
	for _, tt := range []struct {
		name string
		exp  int64
		want string
	}{
		{"two hours", iat + 7200, " exp is 2h0m0s after iat; this server allows at most 1h5m0s."},
		{"past a year", iat + 400*24*3600, " exp is more than a year after iat; this server allows at most 1h5m0s."},
		{"exp before iat", iat - 10, " exp is before iat."},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Parse(signed(t, k, map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": iat, "exp": tt.exp}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = tok.Verify(keys, expect)
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != TooLongLived || ae.Description != expect.timeframe()+tt.want {
				t.Fatalf("Verify = %v, want TooLongLived %q", err, expect.timeframe()+tt.want)
			}
		})
	}
}

// TestLifetimeInDescription: the too-long-lived refusal names the
// server's longest lifetime as set, in the words of Google's message
// ("60 minutes"), and neither cuts a part of a minute off nor calls one
// minute "1 minutes".
func TestLifetimeInDescription(t *testing.T) {
	k, keys := fixture(t)
	for _, tt := range []struct {
		max  time.Duration
		want string
	}{
		{time.Hour, "(60 minutes)"},
		{time.Minute, "(1 minute)"},
		{90 * time.Second, "(1m30s)"},
		{24 * time.Hour, "(1440 minutes)"},
	} {
		t.Run(tt.max.String(), func(t *testing.T) {
			iat := now.Unix()
			tok, err := Parse(signed(t, k, map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": iat, "exp": iat + int64(tt.max/time.Second) + 3600}))
			if err != nil {
				t.Fatal(err)
			}
			e := expect
			e.MaxLifetime = tt.max
			_, err = tok.Verify(keys, e)
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != TooLongLived || !strings.Contains(ae.Description, "short-lived token "+tt.want+" and") {
				t.Fatalf("Verify = %v, want TooLongLived saying %q", err, tt.want)
			}
		})
	}
}

// TestUnusableKeySkipped: a stored key that cannot be used — an RSA key
// over keyfile.MaxRSABits bits, stored before uploads were bounded, or a
// DER that does not parse — is never verified with, even when the kid
// names it, and is reported at warn; the other keys are still tried.
func TestUnusableKeySkipped(t *testing.T) {
	signer, _ := rsa.GenerateKey(rand.Reader, 2048)
	spki := func(k any) []byte { b, _ := x509.MarshalPKIXPublicKey(k); return b }
	good := storage.Key{ID: "good", AccountID: "a", Algorithm: "RS256", PublicKey: spki(&signer.PublicKey)}
	huge := storage.Key{ID: "huge", AccountID: "a", Algorithm: "RS256", PublicKey: spki(testkeys.RSAPublic(8200))}
	atLimit := storage.Key{ID: "at-limit", AccountID: "a", Algorithm: "RS256", PublicKey: spki(testkeys.RSAPublic(8192))}
	garbage := storage.Key{ID: "garbage", AccountID: "a", Algorithm: "RS256", PublicKey: []byte{1}}
	tests := []struct {
		name    string
		kid     string
		keys    []storage.Key
		want    Reason
		wantLog string // "" for no warning
	}{
		{"over the limit, named by kid", "huge", []storage.Key{huge}, BadSignature, "key=huge err=\"the RSA key has 8200 bits, more than the 8192 Keyward accepts\""},
		{"over the limit, no kid", "", []storage.Key{huge}, BadSignature, "key=huge"},
		{"over the limit, another key verifies", "huge", []storage.Key{good, huge}, 0, "key=huge"},
		{"another key verifies first", "good", []storage.Key{good, huge}, 0, ""},
		{"at the limit, tried", "at-limit", []storage.Key{atLimit}, BadSignature, ""},
		{"garbage", "garbage", []storage.Key{garbage}, BadSignature, "key=garbage"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := &jose.SignerOptions{}
			if tt.kid != "" {
				opts = opts.WithHeader("kid", tt.kid)
			}
			s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signer}, opts)
			raw, err := jwt.Signed(s).Claims(map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			warnedKeys.Clear() // each case sees its first warning
			var log strings.Builder
			e := expect
			e.Logger = slog.New(slog.NewTextHandler(&log, nil))
			_, err = tok.Verify(tt.keys, e)
			if (tt.want == 0 && err != nil) || (tt.want != 0 && !IsReason(err, tt.want)) {
				t.Fatalf("Verify: %v, want reason %d", err, tt.want)
			}
			got := log.String()
			if tt.wantLog == "" && got != "" {
				t.Errorf("logged %q, want nothing", got)
			}
			if tt.wantLog != "" && (!strings.Contains(got, "level=WARN") || !strings.Contains(got, tt.wantLog)) {
				t.Errorf("logged %q, want a warning with %q", got, tt.wantLog)
			}
		})
	}
}

// TestUnusableKeyWarnedOnce: a stored key that cannot be used is warned of
// once per process, not on each assertion naming its account (every one
// tries all the account's keys), so that anyone who knows the account's
// client ID cannot fill the log.
func TestUnusableKeyWarnedOnce(t *testing.T) {
	warnedKeys.Clear()
	signer, _ := rsa.GenerateKey(rand.Reader, 2048)
	spki := func(k any) []byte { b, _ := x509.MarshalPKIXPublicKey(k); return b }
	keys := []storage.Key{
		{ID: "huge", AccountID: "a", Algorithm: "RS256", PublicKey: spki(testkeys.RSAPublic(8200))},
		{ID: "garbage", AccountID: "a", Algorithm: "RS256", PublicKey: []byte{1}},
	}
	var log strings.Builder
	e := expect
	e.Logger = slog.New(slog.NewTextHandler(&log, nil))
	for _, kid := range []string{"huge", "garbage", "huge", "other"} {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: signer}, (&jose.SignerOptions{}).WithHeader("kid", kid))
		raw, err := jwt.Signed(s).Claims(map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		tok, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tok.Verify(keys, e); !IsReason(err, BadSignature) {
			t.Fatalf("kid %s: Verify: %v, want a bad signature", kid, err)
		}
	}
	got := log.String()
	for _, key := range []string{"key=huge", "key=garbage"} {
		if n := strings.Count(got, key); n != 1 {
			t.Errorf("%s warned of %d times, want once; logged %q", key, n, got)
		}
	}
	if !strings.Contains(got, "logged once per process") {
		t.Errorf("logged %q, want it to say it is logged once per process", got)
	}
}

// TestAcceptedAssertionAllocs pins what Keyward's own checks add to the
// heap on the way to accepting an assertion, which every JWT-bearer grant
// and private_key_jwt authentication does: checkClaims writes the time
// frame's description only for a refusal (none), and Parse's check for NUL
// in the claims copies none of them. Parse's total is mostly go-jose's
// parsing; it moves when go-jose changes.
func TestAcceptedAssertionAllocs(t *testing.T) {
	k, _ := fixture(t)
	raw := signed(t, k, map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "j1", "scope": "s"})
	tok, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if err := tok.checkClaims(expect); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("checkClaims: %v allocations, want none", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := Parse(raw); err != nil {
			t.Fatal(err)
		}
	}); n > 59 {
		t.Errorf("Parse: %v allocations, want at most 59 (go-jose's parsing, and the Token)", n)
	}
}

// TestVerifySignatureAllocs: trying an account's keys, the one the
// assertion's kid names first, costs no allocation beyond the
// verification of the signature with the one that fits. (A kid naming
// another than the first costs the reordered copy.)
func TestVerifySignatureAllocs(t *testing.T) {
	k, keys := fixture(t)
	keys = append(keys, storage.Key{ID: "k2", AccountID: "a", Algorithm: "ES256", PublicKey: keys[0].PublicKey})
	tok, err := Parse(signed(t, k, map[string]any{"iss": "a@p", "aud": "https://kw/token", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := publicKey(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	alone := testing.AllocsPerRun(100, func() {
		if err := tok.verifyWith(pub, jose.ES256); err != nil {
			t.Fatal(err)
		}
	})
	tried := testing.AllocsPerRun(100, func() {
		if got, err := tok.verifySignature(keys, now, nil); err != nil || got.ID != "k1" {
			t.Fatalf("verifySignature = %q, %v; want k1", got.ID, err)
		}
	})
	if tried > alone {
		t.Errorf("verifySignature: %v allocations, want those of the signature's verification alone, %v", tried, alone)
	}
}

// TestVerifyDecoy: each algorithm an assertion may use has a decoy key of
// its family, which really checks the signature (the check fails, as a
// foreign key's does, rather than stopping at a key of the wrong type) and
// is counted.
func TestVerifyDecoy(t *testing.T) {
	rsKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	esKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := map[jose.SignatureAlgorithm]any{jose.RS256: rsKey, jose.ES256: esKey}
	for _, alg := range Algorithms {
		t.Run(string(alg), func(t *testing.T) {
			s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: keys[alg]}, nil)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := jwt.Signed(s).Claims(map[string]any{"iss": "a@p"}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			tok, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			pub := decoyES256()
			if alg == jose.RS256 {
				pub = decoyRSA(2048 / 8)
			}
			if err := tok.verifyWith(pub, alg); !errors.Is(err, jose.ErrCryptoFailure) {
				t.Fatalf("verify with the decoy key: %v, want %v", err, jose.ErrCryptoFailure)
			}
			before := SignatureChecks()
			tok.VerifyDecoy()
			if n := SignatureChecks() - before; n != 1 {
				t.Fatalf("VerifyDecoy made %d signature checks, want 1", n)
			}
		})
	}
}

// BenchmarkBadSignature compares a refusal of a signature by an account's
// key with one by the decoy key, which must cost about as much.
func BenchmarkBadSignature(b *testing.B) {
	rsKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsOther, _ := rsa.GenerateKey(rand.Reader, 2048)
	esKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	esOther, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	// The signer's key, and the account's, which is another.
	foreign := map[jose.SignatureAlgorithm][2]any{
		jose.RS256: {rsKey, &rsOther.PublicKey},
		jose.ES256: {esKey, &esOther.PublicKey},
	}
	for _, alg := range Algorithms {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: foreign[alg][0]}, nil)
		raw, _ := jwt.Signed(s).Claims(map[string]any{"iss": "a@p"}).Serialize()
		tok, err := Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		spki, _ := x509.MarshalPKIXPublicKey(foreign[alg][1])
		keys := []storage.Key{{ID: "bench-" + string(alg), AccountID: "a", Algorithm: string(alg), PublicKey: spki}}
		b.Run(string(alg)+"/account key", func(b *testing.B) {
			for b.Loop() {
				_, _ = tok.verifySignature(keys, now, nil)
			}
		})
		b.Run(string(alg)+"/decoy", func(b *testing.B) {
			for b.Loop() {
				tok.VerifyDecoy()
			}
		})
	}
}

// TestSignatureCheckedAtItsLength: rsa.VerifyPKCS1v15 refuses at once a
// signature of another length than the key's modulus (RFC 8017 §8.2.2),
// so a check costs what a key of the signature's length does. A refused
// assertion makes exactly one check with a key of its signature's length,
// and none with a key of another, whether its iss names no account
// (VerifyDecoy) or an account whose keys are all of other lengths: a
// guesser sending an 8192-bit signature learns nothing from its answer
// coming later for an account with a key of 8192 bits. A signature of a
// length no key accepted has (under keyfile.MinRSABits or over
// keyfile.MaxRSABits) is checked with nothing, whoever the iss names.
// ES256 signatures are 64 bytes, as every P-256 key's, the decoy's too.
func TestSignatureCheckedAtItsLength(t *testing.T) {
	rsaKey := func(bits int) storage.Key {
		spki, err := x509.MarshalPKIXPublicKey(testkeys.RSAPublic(bits))
		if err != nil {
			t.Fatal(err)
		}
		return storage.Key{ID: fmt.Sprintf("rsa-%d", bits), AccountID: "a", Algorithm: "RS256", PublicKey: spki}
	}
	_, es := fixture(t)
	tests := []struct {
		name   string
		alg    string
		sigLen int           // bytes
		keys   []storage.Key // nil: the iss names no account
		padded bool          // segments with base64 padding (package jwspad)
		want   []int         // the lengths of the keys checked, in bytes
	}{
		{"unknown, 2048-bit signature", "RS256", 256, nil, false, []int{256}},
		{"unknown, 3000-bit signature", "RS256", 375, nil, false, []int{375}},
		{"unknown, 4096-bit signature", "RS256", 512, nil, false, []int{512}},
		{"unknown, 4096-bit signature, padded", "RS256", 512, nil, true, []int{512}},
		{"unknown, 8192-bit signature", "RS256", 1024, nil, false, []int{1024}},
		{"unknown, shorter than any key", "RS256", 128, nil, false, nil},
		{"unknown, longer than any key", "RS256", 1025, nil, false, nil},
		{"4096-bit key, 4096-bit signature", "RS256", 512, []storage.Key{rsaKey(4096)}, false, []int{512}},
		{"2048-bit key, 4096-bit signature", "RS256", 512, []storage.Key{rsaKey(2048)}, false, []int{512}},
		{"2048-bit key, 4096-bit signature, padded", "RS256", 512, []storage.Key{rsaKey(2048)}, true, []int{512}},
		{"2048- and 4096-bit keys, 4096-bit signature", "RS256", 512, []storage.Key{rsaKey(2048), rsaKey(4096)}, false, []int{512}},
		{"4096-bit key, 2048-bit signature", "RS256", 256, []storage.Key{rsaKey(4096)}, false, []int{256}},
		{"2048-bit key, 8192-bit signature", "RS256", 1024, []storage.Key{rsaKey(2048)}, false, []int{1024}},
		{"8192-bit key, longer signature", "RS256", 1025, []storage.Key{rsaKey(8192)}, false, nil},
		{"2048-bit key, shorter signature", "RS256", 128, []storage.Key{rsaKey(2048)}, false, nil},
		{"unknown, ES256", "ES256", 64, nil, false, []int{64}},
		{"P-256 key, ES256", "ES256", 64, es, false, []int{64}},
		{"P-256 key, ES256 signature too long", "ES256", 512, es, false, []int{64}},
		{"unknown, ES256 signature too long", "ES256", 512, nil, false, []int{64}},
	}
	var checked []int
	onCheck = func(pub crypto.PublicKey) {
		switch k := pub.(type) {
		case *rsa.PublicKey:
			checked = append(checked, k.Size())
		case *ecdsa.PublicKey:
			checked = append(checked, 2*((k.Curve.Params().BitSize+7)/8))
		default:
			t.Errorf("checked with a %T", pub)
		}
	}
	t.Cleanup(func() { onCheck = nil })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := base64.RawURLEncoding
			if tt.padded {
				enc = base64.URLEncoding
			}
			sig := make([]byte, tt.sigLen)
			rand.Read(sig)
			raw := enc.EncodeToString([]byte(`{"alg":"`+tt.alg+`"}`)) + "." +
				enc.EncodeToString([]byte(`{"iss":"a@p"}`)) + "." + enc.EncodeToString(sig)
			tok, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if tt.padded != (tok.padded != nil) {
				t.Fatalf("Parse: padded %v, want %v", tok.padded != nil, tt.padded)
			}
			checked = nil
			if tt.keys == nil {
				tok.VerifyDecoy()
			} else if _, err := tok.verifySignature(tt.keys, now, nil); !IsReason(err, BadSignature) {
				t.Fatalf("verifySignature: %v, want reason BadSignature", err)
			}
			if !slices.Equal(checked, tt.want) {
				t.Errorf("checked with keys of %v bytes, want %v", checked, tt.want)
			}
		})
	}
}

// An RSA key refuses at once, before the modular exponentiation that is
// most of a check's cost, a signature whose value is not below its
// modulus; the sender chooses the signature, and learns the decoy's
// modulus by timing answers for an iss naming no account. So a refusal
// costs as many checks made in full (the signature below the key's
// modulus) for an account's key as for an unknown iss, whatever the
// signature's value: one, but for a signature of all one bits, which is
// below no modulus of its length.
func TestSignatureCheckedInFullWhateverItsValue(t *testing.T) {
	spki, err := x509.MarshalPKIXPublicKey(testkeys.RSAPublic(2048))
	if err != nil {
		t.Fatal(err)
	}
	keys := []storage.Key{{ID: "rsa", AccountID: "a", Algorithm: "RS256", PublicKey: spki}}
	var sig []byte
	full := 0
	onCheck = func(pub crypto.PublicKey) {
		if new(big.Int).SetBytes(sig).Cmp(pub.(*rsa.PublicKey).N) < 0 {
			full++
		}
	}
	t.Cleanup(func() { onCheck = nil })
	for _, tt := range []struct {
		name  string
		first byte // the signature's first byte, then random bytes
		ones  bool // all one bits
		want  int
	}{
		{"low", 0x01, false, 1},
		{"just above half", 0x80, false, 1},
		{"high", 0xfe, false, 1},
		{"all ones but the last bit", 0xff, false, 1},
		{"all ones", 0xff, true, 0},
	} {
		sig = make([]byte, 256)
		if tt.ones {
			for i := range sig {
				sig[i] = 0xff
			}
		} else {
			rand.Read(sig)
			sig[0] = tt.first
			if tt.first == 0xff {
				for i := range sig {
					sig[i] = 0xff
				}
				sig[255] = 0xfe
			}
		}
		enc := base64.RawURLEncoding
		raw := enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString([]byte(`{"iss":"a@p"}`)) + "." + enc.EncodeToString(sig)
		tok, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, known := range []bool{false, true} {
			full = 0
			if known {
				if _, err := tok.verifySignature(keys, now, nil); !IsReason(err, BadSignature) {
					t.Fatalf("%s: verifySignature: %v, want reason BadSignature", tt.name, err)
				}
			} else {
				tok.VerifyDecoy()
			}
			if full != tt.want {
				t.Errorf("%s, known account %v: %d checks made in full, want %d", tt.name, known, full, tt.want)
			}
		}
	}
}

// TestFitsAllocatesNothing: fits runs for every RS256 assertion, before
// each key is tried; comparing the signature with the key's modulus costs
// no allocation (a big.Int of the signature cost three a request).
func TestFitsAllocatesNothing(t *testing.T) {
	pub := testkeys.RSAPublic(2048)
	sig := make([]byte, 256)
	sig[0] = 0x01
	enc := base64.RawURLEncoding
	raw := enc.EncodeToString([]byte(`{"alg":"RS256"}`)) + "." + enc.EncodeToString([]byte(`{"iss":"a@p"}`)) + "." + enc.EncodeToString(sig)
	tok, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c := *tok; !c.fits(pub) {
		t.Fatal("a signature below the modulus does not fit")
	}
	// Each run on a fresh copy of the token, as each request has its own.
	if n := testing.AllocsPerRun(100, func() { c := *tok; c.fits(pub) }); n != 0 {
		t.Errorf("fits allocates %v times", n)
	}
}
